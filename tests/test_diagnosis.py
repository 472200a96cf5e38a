"""Why backends part, on traces made up to show it: the local/carried split and the parting's
class, forward/backward/update, the start and batch diagnoses, the envelope of 1-ulp
perturbed starts, and tolerances measured from it. No backend: these read frames."""

import numpy as np
import pandas as pd
import pytest

from kclf.compare.diagnosis import fit_steps, same_start, same_start_text, split_fit, start_problem
from kclf.compare.envelope import MARGIN, measure, perturbed
from kclf.compare.tolerances import DETERMINISTIC, LECTURE_START, measured


def frame(steps=10, *, fit="main", start=(0.5, -0.25), grad=(0.1, -0.05), loss=1.0, kick=None,
          step_loss=None, update=None):
    """A trace of plain SGD (lr 0.1) on two weights; ``kick``: (step, amount) added to the
    first weight's update from that step on (a step that computes otherwise)."""
    w, rows = list(start), []
    for step in range(1, steps + 1):
        before = list(w)
        g = [grad[0] * step, grad[1] * step]
        for i in range(2):
            w[i] = before[i] - 0.1 * g[i]
        if kick is not None and step >= kick[0]:
            w[0] += kick[1]
        this_loss = loss / step + (step_loss or {}).get(step, 0.0)
        for i, name in enumerate(["dense/kernel", "dense/bias"]):
            rows.append({"run": fit, "step": step, "variable": name, "index": "0",
                         "weight_before": before[i], "gradient": g[i], "weight_after": w[i],
                         "loss": this_loss, "learning_rate": 0.1,
                         **({"update_after": w[i] + update} if update is not None else {})})
    return pd.DataFrame(rows)


def test_a_carried_parting_is_drift_from_earlier_steps_with_a_bit_identical_step():
    ref = frame()
    other = frame(kick=(3, 2e-6))  # its runs part: each step from step 3 adds 2e-6
    replay = frame(update=0.0)  # its step from the reference's state is the reference's
    drift = split_fit("main", fit_steps(ref, "main"), fit_steps(other, "main"),
                      fit_steps(replay, "main"), DETERMINISTIC, 5, None)
    assert drift.local == [0.0] * 10 and drift.identical_steps == 10
    assert drift.total[4] == pytest.approx(6e-6, rel=1e-6)  # steps 3, 4, 5
    assert drift.carried[4] == pytest.approx(drift.total[4])
    assert drift.parting.kind == "carried" and drift.parting.step == 5
    assert drift.first_parts == {} and drift.origin is None


def test_a_local_parting_names_the_step_and_what_differs_first():
    ref = frame()
    replay = frame(kick=(4, 1e-3), step_loss={4: 1e-3})  # step 4 itself computes otherwise
    drift = split_fit("main", fit_steps(ref, "main"), fit_steps(replay, "main"),
                      fit_steps(replay, "main"), DETERMINISTIC, 4, None)
    p = drift.parting
    assert p.kind == "local" and p.step == 4 and p.local == pytest.approx(1e-3)
    assert p.carried == 0 and p.parts.first == "forward"
    assert drift.local_max_step >= 4 and drift.origin.step == 4


def test_a_gradient_that_differs_names_its_variable_and_an_update_is_measured_apart():
    ref = frame()
    replay = frame(grad=(0.1, -0.0501))
    replay["update_after"] = ref["weight_after"] + 1e-9  # the reference's gradient, applied
    drift = split_fit("main", fit_steps(ref, "main"), None, fit_steps(replay, "main"),
                      DETERMINISTIC, None, None)
    assert drift.first_parts == {"gradient": 10}
    assert drift.gradient_variable == "dense/bias"
    assert max(drift.update) == pytest.approx(1e-9, rel=1e-3)
    assert drift.total == [None] * 10 and drift.parting is None


def test_growth_is_measured_on_the_total_difference():
    ref = frame(steps=30)
    other = ref.copy()
    other["weight_after"] = other["weight_after"] + 1e-9 * 10.0 ** (other["step"] / 10)
    drift = split_fit("main", fit_steps(ref, "main"), fit_steps(other, "main"),
                      fit_steps(ref, "main"), LECTURE_START, None, None)
    assert drift.decade_steps == pytest.approx(10, rel=0.05)


def test_runs_that_start_from_different_weights_get_the_step_0_diagnosis():
    text = start_problem(frame(), frame(start=(0.9, -0.25)), DETERMINISTIC)
    assert text.startswith("the runs started from different weights")
    assert "0.4" in text and "set_weights" in text


def test_the_same_weights_with_another_batch_loss_get_the_batch_diagnosis():
    text = start_problem(frame(), frame(step_loss={1: 0.3}), DETERMINISTIC)
    assert text.startswith("the same weights gave different batch losses at step 1")
    assert "batches differ" in text
    assert start_problem(frame(), frame(), DETERMINISTIC) is None


def test_from_the_traces_alone_the_first_step_that_differs_says_what_differs_first():
    ref = frame()
    (same,) = same_start(ref, frame())
    assert same.first is None and same.identical == same.steps == 10
    assert same_start_text([same], "jax", "torch") == "1 of 1 fits bit-identical to torch's at every step"

    (update,) = same_start(ref, frame(kick=(4, 1e-3)))  # step 4 turns the same gradient otherwise
    assert (update.identical, update.first.step, update.first.first) == (3, 4, "update")
    assert update.first.local == pytest.approx(1e-3) and update.total == pytest.approx(7e-3)
    text = same_start_text([update, same], "tensorflow", "torch")
    assert text.startswith("1 of 2 fits bit-identical to torch's at every step; in the other 1, "
                           "after 3 bit-identical steps, the first step that differs does so, from "
                           "the same weights, first in its update (1 fit); tensorflow's optimizer "
                           "turns the same weights and gradient into other weights (fit 'main', "
                           "step 4: 0.001); the weights after differ by up to 0.007"), text

    bias = frame()
    bias.loc[(bias.step == 2) & (bias.variable == "dense/bias"), "gradient"] += 1e-4
    (gradient,) = same_start(ref, bias)  # the gradient differs, the weights after do not
    assert (gradient.identical, gradient.first.first) == (1, "gradient")
    assert gradient.first.gradient_variable == "dense/bias" and gradient.total == 0
    assert same_start_text([gradient], "jax", "torch").endswith(
        "first in its gradient (1 fit); the weights after stay bit-identical (what differs does "
        "not reach them)")

    (forward,) = same_start(ref, frame(step_loss={1: 1e-3}))
    assert (forward.identical, forward.first.first) == (0, "forward")
    assert "after 0 bit-identical steps" in same_start_text([forward], "jax", "torch")
    assert same_start(ref, frame(steps=10).query("step != 1")) == []  # step 1 not traced: nothing


def test_a_perturbed_start_moves_every_weight_by_one_ulp_the_same_way_for_a_seed():
    w = [np.linspace(-1, 1, 50, dtype="float32").reshape(5, 10), np.zeros(3, "float32")]
    a, b, c = perturbed(w, 1, "fit"), perturbed(w, 1, "fit"), perturbed(w, 2, "fit")
    for original, moved in zip(w, a):
        assert moved.dtype == np.float32
        up, down = np.nextafter(original, np.inf), np.nextafter(original, -np.inf)
        assert np.all((moved == up) | (moved == down))
        assert 0 < np.mean(moved == up) < 1
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c))
    assert not np.array_equal(perturbed(w, 1, "other")[0], a[0])


def test_the_envelope_is_the_largest_spread_of_the_perturbed_runs_per_step():
    ref = frame()
    runs = [frame(kick=(2, 1e-7)), frame(kick=(5, -3e-7))]
    env = measure(ref, runs, horizon=None)
    spread = dict(zip(env.steps["main"].tolist(), env.weights["main"].tolist()))
    assert spread[1] == 0 and spread[2] == pytest.approx(1e-7, rel=1e-5)
    assert spread[6] == pytest.approx(max(5e-7, 6e-7), rel=1e-5)  # 5 kicks of 1e-7, 2 of 3e-7


def test_tolerances_are_measured_where_the_envelope_moves_and_kept_where_it_cannot():
    tol = measured(LECTURE_START, {"values/a/0": 2e-6, "values/b": 0.0}, MARGIN, 3, "torch")
    assert tol.for_path("values/a/0") == (0.0, pytest.approx(2e-5), True)
    assert tol.for_path("values/b") == LECTURE_START.for_path("values/b")  # spread 0: hand-chosen
    assert "1 printed numbers judged within x10 of torch's own spread" in tol.why
    assert measured(LECTURE_START, {"values/b": 0.0}, MARGIN, 3, "torch") is LECTURE_START
