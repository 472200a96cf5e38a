"""What the slides print and claim outside the demos, per experiment, set beside a run's results.

The demos' numbers are kclf.demos.published's (a demo run checks them itself and writes the
rows into its results). The other slide sections print a few numbers (the SGD and BGD
iterations, z and σ(z), the softmax table) or state what gradient descent does ("if it starts
where the gradient is 0 (plateau), the algorithm will have nowhere to go and end there"):

- a :class:`Number` is a value the slide prints, compared as :func:`agreement` compares the
  demos' (rounded as the slide prints it, else to float32 precision);
- a :class:`Claim` is a statement the slide makes, with the measurement that tests it on a
  run's results (the slide's words, what kclf measured, whether it holds).

:func:`check` gives one row per entry, in the demos' row shape (cell, lecture, value, agrees,
max_rel_diff), so kclf compare's report shows both kinds in one table.

    >>> rows = check("sgd", {"theta": [[0, 0], [0.5, 0.1], [2.732, 0.348]],
    ...                      "gradients": [[-50, -10], [-223.2, -24.8]], "losses": [25, 153.76]})
    >>> [row["agrees"] for row in rows]
    [True, True, True, True, True]
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

FLOAT32 = 1e-6  # an exact slide value against a float32 result: a few ulps


def _significant(a: np.ndarray, digits: int) -> np.ndarray:
    """``a`` rounded to ``digits`` significant digits, as NumPy prints it in e-notation."""
    return np.array([float(f"{v:.{digits - 1}e}") for v in a.ravel()]).reshape(a.shape)


def agreement(ours, theirs, decimals=None, rtol: float = FLOAT32) -> tuple[bool, float | None]:
    """(agrees, largest relative difference) for one entry: ``ours`` rounded as the lecture
    printed it (``decimals``: a number of decimals, "N significant", or None), then within
    ``rtol`` of the lecture's value; strings, dicts and lists of strings exactly."""
    if ours is None:
        return False, None
    if isinstance(theirs, (str, dict)) or (isinstance(theirs, list) and theirs
                                           and isinstance(theirs[0], str)):
        return ours == theirs, None
    a = np.asarray(ours, dtype="float64")
    b = np.asarray(theirs, dtype="float64")
    if a.shape != b.shape:
        return False, None
    if isinstance(decimals, str):  # "N significant"
        a = _significant(a, int(decimals.split()[0]))
    elif decimals is not None:
        a = np.round(a, decimals)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(a == b, 0.0, np.abs(a - b) / np.maximum(np.abs(b), 1e-300))
    worst = float(np.max(rel)) if rel.size else 0.0
    return bool(np.all(np.abs(a - b) <= rtol * np.abs(b))), worst


@dataclass(frozen=True)
class Number:
    """A number the slide prints: ``path`` into the results, as it is printed."""

    path: str
    cell: str  # what the slide shows
    value: Any
    decimals: int | str | None = None  # as printed: decimals, "N significant", None: exact
    rtol: float = FLOAT32


@dataclass(frozen=True)
class Claim:
    """A statement the slide makes; ``measure(results)`` → (holds, what the run shows)."""

    cell: str  # the slide's words
    lecture: str  # what they predict, in a few words
    measure: Callable[[dict], tuple[bool, str]]


def lookup(results, path: str):
    """The leaf at ``path`` ("tables/0/dL/dw": keys may hold "/", lists take indices); None
    when the results have no such leaf."""
    parts, node = path.split("/"), results
    while parts:
        if isinstance(node, list):
            head = parts.pop(0)
            if not head.isdigit() or int(head) >= len(node):
                return None
            node = node[int(head)]
            continue
        if not isinstance(node, dict):
            return None
        for n in range(len(parts), 0, -1):  # the longest key first: "dL/dw" before "dL"
            key = "/".join(parts[:n])
            if key in node:
                node, parts = node[key], parts[n:]
                break
        else:
            return None
    return node


def _get(results: dict, path: str, default=None):
    value = lookup(results, path)
    return default if value is None else value


def _steps(results: dict, run: str) -> tuple[bool, str]:
    return True, f"{_get(results, run + '/steps', '?')} steps"


def _diverges(path: str) -> Callable[[dict], tuple[bool, str]]:
    def measure(results: dict) -> tuple[bool, str]:
        step = lookup(results, path)
        return step is not None, f"diverged at step {step}" if step is not None else "finite"
    return measure


def _stays(run: str, steps: int) -> Callable[[dict], tuple[bool, str]]:
    def measure(results: dict) -> tuple[bool, str]:
        r = lookup(results, run) or {}
        gradients = r.get("gradients") or []
        still = r.get("final_theta") == r.get("start") and not any(gradients)
        return still, (f"θ stays {r.get('start')}, gradient 0.0 at all {len(gradients)} steps" if still
                       else f"θ moves from {r.get('start')} to {r.get('final_theta')}")
    return measure


def _slower(small: str, normal: str) -> Callable[[dict], tuple[bool, str]]:
    def measure(results: dict) -> tuple[bool, str]:
        a, b = lookup(results, small + "/steps_to_minimum"), lookup(results, normal + "/steps_to_minimum")
        return (a is not None and b is not None and a > b), f"{a} steps to the minimum, against {b}"
    return measure


def _escapes(start: str, steps_word: str = "seeds") -> Callable[[dict], tuple[bool, str]]:
    def measure(results: dict) -> tuple[bool, str]:
        full = lookup(results, f"starts/{start}/full_batch/escaped")
        mini = lookup(results, f"starts/{start}/minibatch/escaped_count")
        seeds = len(lookup(results, "seeds") or [])
        return (full is False and bool(mini)), (f"full batch {'escapes' if full else 'stays'}; "
                                                f"mini-batch: {mini} of {seeds} {steps_word} escape")
    return measure


def _lr_too_small(results: dict) -> tuple[bool, str]:
    small = _get(results, "too small (0.0001)/final_full_mse")
    right = _get(results, "about right (0.005)/final_full_mse")
    holds = small is not None and right is not None and small > right
    return holds, f"MSE after 200 steps {small:.3g}, against {right:.3g} at 0.005" if holds else "no"


def _schedule_lowest(results: dict) -> tuple[bool, str]:
    return bool(results.get("schedule_is_lowest")), f"lowest: {results.get('lowest')}"


def _plateaus(results: dict) -> tuple[bool, str]:
    high = _get(results, "runs/high (0.3)/final_excess_over_optimum")
    right = _get(results, "runs/just right (0.03)/final_excess_over_optimum")
    holds = high is not None and right is not None and high > right
    return holds, (f"MSE above the optimum after 20 epochs: {high:.3g}, against {right:.3g} "
                   "at 0.03") if holds else "no"


def _accuracy_loss(results: dict) -> tuple[bool, str]:
    run = _get(results, "accuracy_loss/threshold", {})
    moved = run.get("weights_moved")
    return moved is False, "the weights never move: " + str(run.get("what_happens") or "")


def _dead_relu(results: dict) -> tuple[bool, str]:
    relu = _get(results, "dead_relu/relu", {})
    steps = relu.get("unit0_zero_gradient_steps")
    return bool(relu.get("unit0_gradient_rows_all_zero")), f"the dead unit's gradient is 0.0 at {steps} steps"


def _bounded(results: dict) -> tuple[bool, str]:
    mse, ce = results.get("keras_mse") or [], results.get("keras_binary_crossentropy") or []
    holds = bool(mse) and max(mse) <= 1 and bool(ce) and max(ce) > 6
    return holds, f"(1 − p)² at most {max(mse, default=0):.4g}; −log p up to {max(ce, default=0):.4g}"


def _pit(results: dict) -> tuple[bool, str]:
    r = _get(results, "learning_rates/too large", {})
    before, after = r.get("loss_start"), r.get("loss_after_first_step")
    holds = before is not None and after is not None and after > before
    return holds, f"loss {before:.3g} → {after:.3g} after one step of η = 0.75" if holds else "no"


def _too_small_lr(results: dict) -> tuple[bool, str]:
    r = _get(results, "learning_rates/too small", {})
    if "final_theta" not in r:
        return False, "not in this run's results"
    return r.get("steps_to_minimum") is None, f"still at {r['final_theta']:.3g} after 200 steps"


_SGD = (
    Number("losses/0", "SGD, first iteration: Loss_i = (0 − 5)²", 25.0),
    Number("gradients/0", "∇Loss_i = (−50, −10)", [-50.0, -10.0]),
    Number("theta/1", "θ1 = θ0 − 0.01 ∇Loss_i", [0.5, 0.1]),
    Number("gradients/1", "SGD, second iteration: ∇Loss_i = (−223.2, −24.8)", [-223.2, -24.8]),
    Number("theta/2", "θ2 = θ1 − 0.01 ∇Loss_i", [2.732, 0.348]),
)
# df.round(2), and NumPy's precision 2 (the 2026 setup.py) for ∇ and θ.
_BGD = (
    Number("tables/0/y", "BGD, first iteration: y (df.round(2))", [0.99, 3.0, 5.01], 2),
    Number("tables/0/loss", "first iteration: loss", [0.98, 9.02, 25.15], 2),
    Number("tables/0/dL/dw", "first iteration: dL/dw", [-1.98, -12.02, -30.09], 2),
    Number("tables/0/dL/db", "first iteration: dL/db", [-1.98, -6.01, -10.03], 2),
    Number("keras_gradient/0", "∇Loss_1:3 (nabla)", [-14.69, -6.0], 2),
    Number("theta/1", "θ1 = θ0 − 0.1 ∇", [1.47, 0.6], 2),
    Number("tables/1/y_hat", "BGD, second iteration: y_hat", [2.07, 3.54, 5.01], 2),
    Number("tables/1/loss", "second iteration: loss", [1.17, 0.29, 0.0], 2),
    Number("tables/1/dL/dw", "second iteration: dL/dw", [2.16, 2.14, -0.04], 2),
    Number("tables/1/dL/db", "second iteration: dL/db", [2.16, 1.07, -0.01], 2),
    Number("keras_gradient/1", "∇Loss_1:3 (nabla)", [1.42, 1.07], 2),
    Number("theta/2", "θ2 = θ1 − 0.1 ∇", [1.33, 0.49], 2),
)
_PITFALLS_2026 = (
    Number("runs/local minimum/final_theta", "θ0 = −2.8 ends in the local minimum, \"x = −2.15\"",
           -2.15, 2),
    Number("runs/local minimum/final_loss", "local minimum: \"value = 1.47\"", 1.47, 2),
    Number("runs/global minimum/final_theta", "θ0 = 3 ends in the global minimum, \"x = 5\"", 5.0, 2),
    Number("runs/global minimum/final_loss", "global minimum: \"value = −5\"", -5.0, 2),
    Claim("\"If it starts where the gradient is very small, it may take a long time\" "
          "(θ0 = −1.001 against −2.8)", "more steps", _slower("runs/small gradient", "runs/local minimum")),
    Claim("\"If it starts where the gradient is 0 (plateau), the algorithm will have nowhere to "
          "go and end there\" (θ0 = 2)", "stays at 2", _stays("runs/plateau", 200)),
    Claim("Learning rates: \"too small … takes too long\" (θ0 = 7, η = 0.01)",
          "not there after 200 steps", _too_small_lr),
    Claim("Learning rates: \"too big, you could overshoot and the loss may increase\" "
          "(θ0 = 7, η = 0.75)", "the loss increases", _pit),
)
def _outcome(run: str) -> Callable[[dict], tuple[bool, str]]:
    """2025 pitfalls: run ``run`` ends where its name says (its results' "outcome")."""
    def measure(results: dict) -> tuple[bool, str]:
        r = lookup(results, f"runs/{run}") or {}
        return r.get("outcome") == run, (f"x0 = {r.get('start')} → {r.get('final_x', float('nan')):.4g}: "
                                         f"{r.get('outcome')}")
    return measure


def _slow_2025(results: dict) -> tuple[bool, str]:
    part = lookup(results, "too_small/fraction_of_the_way")
    return part is not None and part < 0.5, f"{part:.0%} of the way after 20 steps of η = 2"


def _overshoots_2025(results: dict) -> tuple[bool, str]:
    k = lookup(results, "too_large/eta_times_curvature")
    return k is not None and k > 2, f"η·f'' = {k:.3g} > 2: every step overshoots the minimum"


def _escapes_2025(results: dict) -> tuple[bool, str]:
    full = lookup(results, "full_batch/escaped")
    mini = lookup(results, "minibatch/escaped_count")
    seeds = len(lookup(results, "seeds") or [])
    return (full is False and bool(mini)), (f"full batch {'escapes' if full else 'stays'}; "
                                            f"mini-batch: {mini} of {seeds} seeds escape")


_PITFALLS_2025 = (
    Claim("Géron Fig. 4-6: a start ends in a local minimum, not the global one (x0 = 50)",
          "a local minimum", _outcome("local minimum")),
    Claim("Géron Fig. 4-6: a start ends in the global minimum (x0 = 90)", "the global minimum",
          _outcome("global minimum")),
    Claim("Géron Fig. 4-6: a start on the plateau barely moves (x0 = 3)", "the plateau",
          _outcome("plateau")),
    Claim("Learning rates: too small is slow (Géron Fig. 4-4)", "far from the minimum", _slow_2025),
    Claim("Learning rates: too large overshoots (Géron Fig. 4-5)", "jumps across the valley",
          _overshoots_2025),
)


ENTRIES: dict[str, dict[str, tuple]] = {
    # name -> {edition or "*": entries}
    "logistic-forward": {"*": (
        Number("z", "z = Xw + b with w = (1, 2), b = −10", [-5.0, 1.0, 7.0]),
        Number("y_hat", "a = σ(z) (printed with precision 2)", [0.01, 0.73, 1.0], 2),
    )},
    "softmax-forward": {"*": (
        Number("Z", "Z = XW + b", [[-5.0, -9.0], [1.0, 5.0], [7.0, 19.0]]),
        Number("A", "Softmax(Z) (printed to 3 significant digits)",
               [[9.82e-01, 1.80e-02], [1.80e-02, 9.82e-01], [6.14e-06, 1.00e+00]], "3 significant"),
    )},
    "cross-entropy-vs-mse": {"*": (
        Number("keras_binary_crossentropy/0", "cross-entropy −log p at p = 0.001 (the formula)",
               6.9078, 4),
        Number("keras_mse/0", "squared error (1 − p)² at p = 0.001 (the formula)", 0.998, 3),
        Claim("cross-entropy grows without bound as p → 0; (1 − p)² stays at most 1",
              "unbounded vs ≤ 1", _bounded),
    )},
    "sgd": {"*": _SGD},
    "bgd": {"*": _BGD},
    "minibatch": {"*": (
        Number("SGD (batch 1)/steps", "Pick a random training example (SGD): a step per example, "
               "100 examples × 10 epochs", 1000),
        Number("mini-batch (10)/steps", "Take a group of training examples: batches of 10", 100),
        Number("BGD (batch 100)/steps", "Go over all the training data (BGD): a step per epoch", 10),
    )},
    "learning-rates": {"*": (
        Claim("\"If the learning rate is too small … it takes too long for the parameters to "
              "converge\" (η = 0.0001)", "slower than η = 0.005", _lr_too_small),
        Claim("\"If the learning rate is too big, you could overshoot and the loss may increase\" "
              "(η = 0.08)", "the loss increases", _diverges("too large (0.08)/diverged_at")),
    )},
    "gradient-based-learning": {"*": (
        Number("starts/50/final_x", "the demo's first guess x = 50, followed downhill: the minimum "
               "at x = 55.86", 55.86, 2),
        Number("starts/90/final_x", "from x = 90: the minimum at x = 86.97", 86.97, 2),
    )},
    "gradient-descent-pitfalls": {"2026": _PITFALLS_2026, "2025": _PITFALLS_2025},
    "minibatch-noise": {"2026": (
        Claim("\"The noise helps us jump out of local minima\" (θ0 = −3)",
              "full batch stays, mini-batch escapes", _escapes("local minimum")),
        Claim("from the plateau (θ0 = 2): full batch has nowhere to go, mini-batch moves",
              "full batch stays, mini-batch moves", _escapes("plateau")),
    ), "2025": (
        Claim("\"The noise helps us jump out of local minima\" (the tilted double well, θ0 = 1.5)",
              "full batch stays, mini-batch escapes", _escapes_2025),
    )},
    "learning-rate-schedule": {"*": (
        Claim("too high: the loss blows up (η = 1.3)", "diverges",
              _diverges("runs/too high (1.3)/diverged_at")),
        Claim("high: fast, then stuck above the optimum (η = 0.3 vs 0.03)", "plateaus higher",
              _plateaus),
        Claim("start high then reduce: ends lowest", "lowest", _schedule_lowest),
    )},
    "non-zero-derivatives": {"*": (
        Claim("\"This is why we can't use accuracy as the loss function\"", "no learning",
              _accuracy_loss),
        Claim("\"Also why we can have the dead ReLU problem\"", "zero gradients", _dead_relu),
    )},
}


def entries(name: str, edition: str = "2026") -> tuple:
    """The slide's entries for experiment ``name`` in ``edition`` (none for a demo, whose numbers
    kclf.demos.published holds, nor for an experiment without a slide)."""
    table = ENTRIES.get(name, {})
    return table.get(edition, table.get("*", ()))


def check(name: str, results: dict, edition: str = "2026") -> list[dict]:
    """One row per entry: cell, lecture, value, agrees, max_rel_diff (kclf.demos.published's
    row shape) and ``shown``, the run's value as text for a claim."""
    rows = []
    for entry in entries(name, edition):
        if isinstance(entry, Number):
            ours = lookup(results, entry.path)
            ok, rel = agreement(ours, entry.value, entry.decimals, entry.rtol)
            rows.append({"path": entry.path, "cell": entry.cell, "lecture": entry.value,
                         "value": ours, "agrees": ok, "max_rel_diff": rel,
                         "decimals": entry.decimals})
        else:
            try:
                ok, shown = entry.measure(results or {})
            except (TypeError, ValueError, AttributeError, KeyError):  # a result of another shape
                ok, shown = False, "not in this run's results"
            rows.append({"path": None, "cell": entry.cell, "lecture": entry.lecture,
                         "value": shown, "agrees": bool(ok), "max_rel_diff": None})
    return rows
