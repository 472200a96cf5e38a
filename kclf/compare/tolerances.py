"""Tolerances: when two backends' numbers agree, per experiment and --start mode.

Each experiment declares its tolerance next to its NAME (``TOLERANCE = "deterministic"``,
or a dict from --start mode to a name for the demos); :data:`NAMED` holds the names. A
declaration that is missing or names no tolerance is an error (kclf.registry). A user's
script may declare one the same way; without one it is judged DETERMINISTIC.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from fnmatch import fnmatch
from pathlib import Path

from kclf.editions import ALIASES, STARTS
from kclf.errors import KclfError

START_MODES = tuple(STARTS)  # how the demos start (kclf.editions)


@dataclass(frozen=True)
class Tolerance:
    """a and b agree when |a − b| ≤ atol + rtol · max(|a|, |b|); NaN agrees with NaN.

    ``quantities``: (trace quantity, rtol, atol) for weights, gradients or loss.
    ``metrics``: (glob on a result's lower-case path, rtol, atol), first match wins.
    ``step_by_step``: the traces decide the verdict (else they are informational).
    ``final_metrics_only``: only result leaves matching ``metrics`` decide the verdict.
    """

    rtol: float = 1e-5
    atol: float = 1e-6
    quantities: tuple[tuple[str, float, float], ...] = ()
    metrics: tuple[tuple[str, float, float], ...] = ()
    step_by_step: bool = True
    final_metrics_only: bool = False
    why: str = ""

    def for_quantity(self, quantity: str) -> tuple[float, float]:
        for name, rtol, atol in self.quantities:
            if name == quantity:
                return rtol, atol
        return self.rtol, self.atol

    def for_path(self, path: str) -> tuple[float, float, bool]:
        """(rtol, atol, judged) for one result leaf."""
        for pattern, rtol, atol in self.metrics:
            if fnmatch(path.lower(), pattern):
                return rtol, atol, True
        return self.rtol, self.atol, not self.final_metrics_only


# Same data, same NumPy-seeded initial weights, float32 steps: the backends differ only in
# the order of float32 operations. Everything must agree to float32 precision (rtol 1e-5).
# Gradients and losses are sums over the batch of terms built from the residual ŷ − y,
# which cancels as training converges: float32 rounds each term relative to its own size
# (|x|·|y| up to ~200 on the slides' data), not to the small sum, so they carry about
# 1e-5 of absolute rounding. Measured (keras 3.15, CPU): JAX's gradients differ from
# TensorFlow's and PyTorch's by up to 2.4e-5 in minibatch and learning-rates while the
# weights agree to 1e-6; an atol of 1e-4 (same rtol) leaves a margin of ~4.
_RESIDUAL = (1e-5, 1e-4)
DETERMINISTIC = Tolerance(
    rtol=1e-5, atol=1e-6,
    quantities=(("gradients", *_RESIDUAL), ("loss", *_RESIDUAL)),
    metrics=(("*loss*", *_RESIDUAL), ("*dl/d*", *_RESIDUAL), ("*grad*", *_RESIDUAL)),
    why="deterministic: everything to rtol 1e-5; atol 1e-6 for weights and results, 1e-4 for "
    "gradients and losses (sums of cancelling residual terms)",
)


def _long_training(accuracy_atol: float, why: str) -> Tolerance:
    """Hundreds of steps: float32 rounding differences (1e-7) pass through the training
    dynamics, so the final metrics decide and the traces are shown for information.
    Measured (keras 3.15, CPU, full runs): test losses agree to 2.6e-6 relative, AUCs to
    2e-7, accuracies, epoch counts and confusion counts exactly. Losses: rtol 1e-3 (400x the
    measured spread; a different start or data order moves them ~10%). AUC-type: atol 1e-3
    (~50 swapped positive/negative pairs on stroke). Accuracy: one test example flipped.
    Epoch and confusion counts are shown, not judged (an early-stopping tie could move them).
    """
    auc = 1e-3
    return Tolerance(
        rtol=1e-3, atol=1e-6, step_by_step=False, final_metrics_only=True,
        metrics=(
            ("*acc*", 0.0, accuracy_atol), ("*auc*", 0.0, auc), ("*precision*", 0.0, auc),
            ("*recall*", 0.0, auc), ("*f1*", 0.0, auc),
            ("*loss*", 1e-3, 1e-6), ("*entropy*", 1e-3, 1e-6), ("*mse*", 1e-3, 1e-6),
        ),
        why=f"long training: final metrics only (losses rtol 1e-3, AUC atol 1e-3, accuracy atol "
        f"{accuracy_atol:g} = {why}); traces informational",
    )


IRIS = _long_training(0.03, "one of 38 test flowers")
STROKE = _long_training(0.002, "two of 1022 test patients")
LONG_TRAINING = IRIS  # the default for a long training without its own entry

# non-zero-derivatives: the accuracy-as-a-loss part differs by design between backends (JAX
# records steps whose gradients are exactly 0.0, TensorFlow and PyTorch raise before the first
# step), so its message, step count and gradients are shown, not judged; what the slide claims
# is judged exactly: the weights never move (bit-identical), the dead unit's zero gradients and
# bit-identical weights, the dead-unit counts. Everything else at DETERMINISTIC's tolerances:
# the traces step by step (its accuracy-loss steps are not attached as a trace, so every
# backend has the same trace rows; nor is its η = 10 run, whose weights part by up to 3.8e-3
# between backends within 20 steps, measured: it is judged by its dead-unit counts, exactly).
NON_ZERO_DERIVATIVES = Tolerance(
    rtol=1e-5, atol=1e-6,
    quantities=(("gradients", *_RESIDUAL), ("loss", *_RESIDUAL)),
    final_metrics_only=True,
    metrics=(("accuracy_loss/*/weights_moved", 0.0, 0.0), ("accuracy_loss/*/weights_after/*", 0.0, 0.0),
             ("accuracy_loss/*/accuracy", 0.0, 0.0),
             ("cross_entropy/losses/*", *_RESIDUAL), ("cross_entropy/kernel_gradients/*", *_RESIDUAL),
             ("dead_relu/*/final_loss", *_RESIDUAL), ("dead_relu/*/unit0_gradient_first_steps/*", *_RESIDUAL),
             ("dead_relu/*/unit0_*_all_zero", 0.0, 0.0), ("dead_relu/*/unit0_zero_gradient_steps", 0.0, 0.0),
             ("dead_relu/*/unit0_weights_bit_identical", 0.0, 0.0), ("dead_relu/*/unit0_active_inputs*", 0.0, 0.0),
             ("dead_units/*/dead_*", 0.0, 0.0), ("dead_units/*/final_loss", *_RESIDUAL),
             ("cross_entropy/*", 1e-5, 1e-6), ("dead_relu/*", 1e-5, 1e-6), ("dead_units/*", 1e-5, 1e-6)),
    why="deterministic, step by step; accuracy-as-a-loss's per-backend message, steps and gradients "
    "shown, not judged (JAX: zeros; TensorFlow, PyTorch: an error); weights never moving, zero "
    "gradients and dead-unit counts exactly",
)

TOLERANCES: dict[str, Tolerance] = {
    "logistic-forward": DETERMINISTIC,
    "softmax-forward": DETERMINISTIC,
    "cross-entropy-vs-mse": DETERMINISTIC,
    "sgd": DETERMINISTIC,
    "bgd": DETERMINISTIC,
    "minibatch": DETERMINISTIC,
    "learning-rates": DETERMINISTIC,  # its diverging run: NaN at the same place agrees
    "gradient-based-learning": DETERMINISTIC,
    "gradient-descent-pitfalls": DETERMINISTIC,
    "minibatch-noise": DETERMINISTIC,
    "learning-rate-schedule": DETERMINISTIC,  # its diverging run: NaN at the same place agrees
    "non-zero-derivatives": NON_ZERO_DERIVATIVES,
    "iris": IRIS,
    "stroke": STROKE,
}


# --start tensorflow: the demos start from TensorFlow's initial weights and batch order on
# every backend, so only float32 arithmetic differs. Measured (keras 3.15.1, CPU, the Kaggle
# file): every number the lecture prints agrees with TensorFlow's to 3.1e-6 relative (torch's
# 500-epoch iris test loss; all others within 5.3e-7), and every early-stopping decision
# (68; 65/15 and 74/24) and confusion count is the same. Judged: those numbers (values/*),
# rtol 3e-5 (10x the largest measured), which keeps integers exact. The traces and histories
# are shown at DETERMINISTIC's float32 tolerances, not judged: over thousands of Adam steps
# the rounding differences grow (stroke's weights pass rtol 1e-5 within 15-45 epochs while
# the restored best weights still evaluate alike), and the report says where they part.
LECTURE_START = Tolerance(
    rtol=1e-5, atol=1e-6, quantities=DETERMINISTIC.quantities, step_by_step=False,
    final_metrics_only=True, metrics=(("values/*", 3e-5, 1e-7),),
    why="--start tensorflow: every printed number (values/*) to rtol 3e-5, early stopping's "
    "epochs and the confusion counts exactly; traces and per-epoch histories at float32 "
    "tolerance, informational (the report says where they part)",
)
# --start lecture: each backend draws its own weights and order; nothing is expected to agree.
OWN_DRAWS = Tolerance(
    rtol=0.0, atol=0.0, step_by_step=False, final_metrics_only=True, metrics=(),
    why="--start lecture: each backend draws its own initial weights and batch order from the "
    "same seeds, so the runs are shown side by side and nothing is judged",
)
NAMED: dict[str, Tolerance] = {
    "deterministic": DETERMINISTIC,
    "iris": IRIS,
    "stroke": STROKE,
    "non-zero-derivatives": NON_ZERO_DERIVATIVES,
    "lecture-start": LECTURE_START,
    "own-draws": OWN_DRAWS,
}


def declared(subject: str, declaration, start: str) -> Tolerance:
    """The tolerance a TOLERANCE declaration gives under ``start`` (an alias such as
    "tensorflow" means the mode it names); ``subject`` names the declaring file in errors."""
    start = ALIASES.get(start, start)
    if isinstance(declaration, dict):
        entries = {ALIASES.get(k, k): v for k, v in declaration.items()}
        if start not in entries and "default" not in entries:
            raise KclfError(f"{subject}: TOLERANCE has no entry for --start {start} (only for "
                            f"{', '.join(entries)}); expected one for each start it is compared "
                            'under, or a "default"')
        declaration = entries.get(start, entries.get("default"))
    if declaration not in NAMED:
        raise KclfError(f"{subject}: TOLERANCE {declaration!r} under --start {start}: "
                        f"expected one of {', '.join(NAMED)} (kclf.compare.tolerances.NAMED)")
    return NAMED[declaration]


def tolerance_for(name: str, rtol: float | None = None, atol: float | None = None, *,
                  start: str = "numpy", script: Path | None = None) -> Tolerance:
    """The declared tolerance of experiment ``name`` under the demos' ``start`` mode; for a
    user's ``script``, its own TOLERANCE declaration (DETERMINISTIC without one), never a
    built-in experiment's of the same name. --rtol/--atol override it."""
    from kclf import registry

    if script is not None:
        declaration = registry.script_tolerance(script)
        subject = f"script {script}"
    else:
        info = registry.discover().get(name)
        declaration = info.tolerance if info else None
        subject = f"experiment {name!r}"
    tol = declared(subject, declaration, start) if declaration is not None else DETERMINISTIC
    if rtol is None and atol is None:
        return tol
    rtol = tol.rtol if rtol is None else rtol
    atol = tol.atol if atol is None else atol
    metrics = tuple((pattern, rtol, atol) for pattern, _, _ in tol.metrics)
    return replace(tol, rtol=rtol, atol=atol, quantities=(), metrics=metrics,
                   why=f"--rtol {rtol:g} --atol {atol:g} for every number")


# -- measured, not chosen (kclf.compare.envelope) ---------------------------------------------
def _literal(path: str) -> str:
    """``path`` as an fnmatch pattern that matches only itself."""
    return "".join(f"[{c}]" if c in "*?[]" else c for c in path.lower())


def measured(tol: Tolerance, spreads: dict[str, float], margin: float, runs: int,
             reference: str) -> Tolerance:
    """``tol`` with each judged result whose spread over the reference's own 1-ulp perturbed
    runs was measured (``spreads``: path -> largest |difference|, > 0) judged by it:
    |a − b| ≤ margin × spread. A result the perturbations left exactly alone (spread 0) keeps
    its hand-chosen tolerance: the envelope cannot measure it."""
    entries = tuple((_literal(path), 0.0, margin * spread) for path, spread in spreads.items()
                    if spread > 0 and tol.for_path(path)[2])
    if not entries:
        return tol
    kept = sum(1 for path, spread in spreads.items() if spread == 0 and tol.for_path(path)[2])
    return replace(tol, metrics=entries + tol.metrics, why=(
        f"{tol.why}; measured: {len(entries)} printed numbers judged within x{margin:g} of "
        f"{reference}'s own spread over {runs} runs from 1-ulp perturbed starts, {kept} at the "
        "hand-chosen tolerance (the perturbations leave them exactly alone: the envelope cannot "
        "measure them)"))
