"""The optimisation slides' experiments: each claim checked as a number, on this backend.

Every experiment runs once per test module (module-scoped fixture) through runner.execute,
exactly as kclf run does.
"""

import json
import os

import numpy as np
import pandas as pd
import pytest

from kclf import functions

pytestmark = pytest.mark.backend


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from kclf import registry, runner
    from kclf.backend import select_backend

    backend = select_backend(os.environ.get("KERAS_BACKEND"))
    done = {}

    def execute(name):
        if name not in done:
            out = tmp_path_factory.mktemp(name)
            summary, code = runner.execute(registry.load(name), backend, out)
            assert code == 0, summary["error"]
            assert summary["status"] == "ok"
            for figure in summary["figures"]:
                assert (out / figure).stat().st_size > 0
            done[name] = (summary, out)
        return done[name]

    return execute


# -- gradient-based-learning ----------------------------------------------------------------
def test_gradient_based_learning_converges_from_the_slides_guess(run):
    summary, out = run("gradient-based-learning")
    r = summary["results"]
    minima = functions.local_minima()
    start = r["starts"]["50"]
    assert start["path"][0] == 50.0
    assert abs(start["final_x"] - minima[1]) < 1e-3  # the valley at 55.86
    assert abs(start["final_gradient"]) < 1e-4
    assert abs(r["starts"]["90"]["final_x"] - minima[2]) < 1e-3  # the global minimum 86.97
    # Each step is x_{t+1} = x_t − η f'(x_t) with the recorded f' equal to the derivative.
    path = np.array(start["path"])
    grads = np.array(start["gradients"])
    np.testing.assert_allclose(grads, functions.lecture_f_prime(path[:-1]), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(np.diff(path), -r["learning_rate"] * grads, rtol=1e-4, atol=1e-5)


def test_gradient_based_learning_checks_the_gradient_three_ways(run):
    r = run("gradient-based-learning")[0]["results"]
    assert r["autodiff_max_abs_error"] < 1e-6
    assert r["analytic_max_abs_error"] < 1e-6
    # The demo's fDash is a different function: its first term is 100x too small.
    x = np.array(r["grid"])
    expected = np.max(np.abs(functions.lecture_f_prime(x) - functions.lecture_fdash(x)))
    assert r["lecture_fdash_max_abs_error"] == pytest.approx(expected, abs=1e-6)
    assert r["lecture_fdash_max_abs_error"] > 0.015


# -- gradient-descent-pitfalls ----------------------------------------------------------------
def test_pitfalls_local_global_and_plateau(run):
    r = run("gradient-descent-pitfalls")[0]["results"]
    runs = r["runs"]
    assert runs["local minimum"]["outcome"] == "local minimum"
    assert runs["global minimum"]["outcome"] == "global minimum"
    assert runs["plateau"]["outcome"] == "plateau"
    assert runs["local minimum"]["final_f"] > runs["global minimum"]["final_f"] + 0.4
    plateau = np.abs(runs["plateau"]["gradients"])
    assert np.all(plateau < 1e-3) and len(plateau) == 60
    assert abs(runs["plateau"]["path"][-1] - runs["plateau"]["path"][0]) < 1.0


def test_pitfalls_learning_rates_too_small_and_too_large(run):
    r = run("gradient-descent-pitfalls")[0]["results"]
    small = r["too_small"]
    assert 0 < small["fraction_of_the_way"] < 0.5
    assert np.all(np.array(small["progress_per_step"]) > 0)
    large = r["too_large"]
    d = np.array(large["distance_to_minimum"])
    assert large["eta_times_curvature"] > 2
    assert d[1] > d[0] and d[2] > d[1]  # overshoots further at first
    assert np.all(d[2:] > 3.0)  # and never settles


# -- minibatch-noise ----------------------------------------------------------------------------
def test_minibatch_noise_escapes_more_than_full_batch(run):
    summary, _ = run("minibatch-noise")
    r = summary["results"]
    assert len(r["seeds"]) >= 20
    full, mini = r["full_batch"], r["minibatch"]
    assert full["escaped"] is False and full["escape_fraction"] == 0.0
    assert abs(full["final_theta"] - r["local_minimum"]) < 1e-3  # stays in the local minimum
    assert mini["escape_fraction"] > full["escape_fraction"]
    assert 0 < mini["escaped_count"] < len(r["seeds"])
    assert mini["escape_fraction"] == pytest.approx(np.mean(np.array(mini["final_theta"]) < r["ridge"]))
    assert summary["traces"]["mini-batch (one theta per seed)"]["steps"] == r["steps"]


# -- learning-rate-schedule ------------------------------------------------------------------------
def test_learning_rate_schedule_ends_lowest(run):
    summary, out = run("learning-rate-schedule")
    r = summary["results"]
    runs = r["runs"]
    schedule = runs["start high then reduce (0.3 to 0.003)"]["final_full_mse"]
    others = [v["final_full_mse"] for k, v in runs.items() if not k.startswith("start high") and v["final_full_mse"] != "inf"]
    assert len(others) == 3
    assert schedule < min(others)
    assert r["schedule_is_lowest"] is True
    too_high = runs["too high (1.3)"]
    assert too_high["diverged_at"] is not None and too_high["final_full_mse"] == "inf"  # JSON rule
    assert summary["traces"]["too high (1.3)"]["diverged_at"] == too_high["diverged_at"]
    high, right = runs["high (0.3)"], runs["just right (0.03)"]
    assert high["final_excess_over_optimum"] > 10 * right["final_excess_over_optimum"]  # plateaus above
    assert runs["too low (0.002)"]["final_excess_over_optimum"] > 0.5
    rates = np.array(runs["start high then reduce (0.3 to 0.003)"]["learning_rates"])
    np.testing.assert_allclose(rates, 0.3 * 0.01 ** (np.arange(200) / 200), rtol=1e-5)


# -- non-zero-derivatives ------------------------------------------------------------------------------
def test_accuracy_as_the_loss_never_moves_the_weights(run):
    from kclf.backend import active_backend

    summary, out = run("non-zero-derivatives")
    r = summary["results"]
    for name in ("threshold", "argmax"):
        acc = r["accuracy_loss"][name]
        assert acc["weights_moved"] is False
        if active_backend() == "jax":
            assert acc["steps_taken"] == 10
            assert acc["gradient_max_abs"] == 0.0
            assert np.all(np.array(acc["gradients"]) == 0.0)
        else:
            assert acc["steps_taken"] == 0
            assert acc["what_happens"].split(":")[0] in ("ValueError", "RuntimeError")
    if active_backend() == "jax":
        frame = pd.read_csv(out / "accuracy_loss_trace.csv")
        assert len(frame) > 0 and (frame["gradient"] == 0.0).all()
        assert (frame["weight_before"] == frame["weight_after"]).all()
    ce = r["cross_entropy"]
    assert ce["weights_moved"] is True
    assert ce["losses"][-1] < ce["losses"][0]
    assert ce["accuracy"] > ce["accuracy_before"]


def test_dead_relu_stays_dead_and_leaky_relu_recovers(run):
    summary, out = run("non-zero-derivatives")
    r = summary["results"]["dead_relu"]
    relu, leaky = r["relu"], r["leaky_relu"]
    assert relu["unit0_gradient_rows_all_zero"] is True
    assert relu["unit0_zero_gradient_steps"] == 100
    assert relu["unit0_weights_bit_identical"] is True
    assert relu["unit0_active_inputs_at_end"] == 0
    # The trace's rows themselves: gradient exactly 0.0, weights bit-identical, every step.
    frame = pd.read_csv(out / "trace.csv")
    dead = frame[(frame["run"] == "relu: unit 0 starts dead") & frame["variable"].str.startswith("hidden/")
                 & (frame["index"] == 0)]
    assert len(dead) == 200
    assert (dead["gradient"] == 0.0).all()
    assert (dead["weight_before"] == dead["weight_after"]).all()
    assert leaky["unit0_gradient_rows_all_zero"] is False
    assert leaky["unit0_active_inputs_at_end"] > 0
    assert leaky["final_loss"] < relu["final_loss"]


def test_too_large_a_learning_rate_kills_units(run):
    r = run("non-zero-derivatives")[0]["results"]["dead_units"]
    normal, large = r["normal (0.5)"], r["too large (10)"]
    assert normal["dead_at_start"] == 0 and large["dead_at_start"] == 0
    assert normal["dead_at_end"] == 0
    assert large["dead_at_end"] >= 3
    assert large["dead_at_end"] == large["dead_per_step"][-1]


def test_summaries_are_valid_json(run):
    for name in ("gradient-based-learning", "minibatch-noise", "non-zero-derivatives"):
        summary, out = run(name)
        json.loads((out / "summary.json").read_text())
