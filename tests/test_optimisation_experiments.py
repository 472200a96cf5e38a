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

    def execute(name, edition=None):
        """Run ``name`` as kclf run does (``edition``: --edition, None for the default)."""
        if (name, edition) not in done:
            out = tmp_path_factory.mktemp(name)
            settings = {"edition": edition} if edition else None
            summary, code = runner.execute(registry.load(name), backend, out, settings=settings)
            assert code == 0, summary["error"]
            assert summary["status"] == "ok"
            for figure in summary["figures"]:
                assert (out / figure).stat().st_size > 0
            done[name, edition] = (summary, out)
        return done[name, edition]

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


# -- gradient-descent-pitfalls, 2026: the slides' piecewise function ---------------------------
def _check_steps(r):
    """Each recorded gradient is f'(θ) at the step's θ (the NumPy reference), and each step is
    θ_{t+1} = θ_t − η f'(θ_t)."""
    path, grads = np.array(r["path"]), np.array(r["gradients"])
    np.testing.assert_allclose(grads, functions.piecewise_f_prime(path[:-1]), rtol=1e-5, atol=2e-5)
    np.testing.assert_allclose(np.diff(path), -r["learning_rate"] * grads, rtol=1e-5, atol=2e-6)


def test_pitfalls_2026_is_the_default_edition(run):
    summary, _ = run("gradient-descent-pitfalls")
    assert summary["settings"]["edition"] == "2026"
    assert summary["results"]["edition"] == "2026"
    assert summary["traces"]["plateau (start 2)"]["steps"] == 200


def test_pitfalls_2026_local_global_minimum_and_plateau(run):
    r = run("gradient-descent-pitfalls")[0]["results"]
    runs = r["runs"]
    for label, r_ in runs.items():
        assert r_["path"][0] == pytest.approx(r_["start"]), label
        _check_steps(r_)
    # The slide's bullets: where it starts decides where it ends, at the exact minima.
    local, best = runs["local minimum"], runs["global minimum"]
    assert local["ends_in"] == "local minimum" and best["ends_in"] == "global minimum"
    assert local["final_theta"] == pytest.approx(-1 - np.sqrt(4 / 3), abs=1e-5)
    assert local["final_loss"] == pytest.approx(22 / 15, abs=1e-9)
    assert best["final_theta"] == pytest.approx(5.0, abs=2e-5)
    assert best["final_loss"] == pytest.approx(-5.0, abs=1e-9)
    # The plateau and the hilltop: gradient exactly 0.0 at every step, θ never moves.
    for label in ("plateau", "hilltop"):
        assert runs[label]["ends_in"] == f"{label}: never moved"
        assert np.all(np.array(runs[label]["gradients"]) == 0.0)
        assert np.all(np.array(runs[label]["path"]) == runs[label]["start"])
    # A small gradient to start with: the same minimum, slower.
    small = runs["small gradient"]
    assert abs(small["first_gradient"]) < 0.002
    assert small["ends_in"] == "local minimum"
    assert small["steps_to_minimum"] > 2 * local["steps_to_minimum"]
    # The unmarked twin of the local minimum, at the same loss.
    twin = runs["twin minimum"]
    assert twin["ends_in"] == "twin minimum"
    assert twin["final_theta"] == pytest.approx(-1 + np.sqrt(4 / 3), abs=1e-5)
    assert twin["final_loss"] == pytest.approx(local["final_loss"], abs=1e-9)


def test_pitfalls_2026_the_walls(run):
    r = run("gradient-descent-pitfalls")[0]["results"]
    assert r["walls_f"]["left"] == pytest.approx(8.71875) and r["walls_f"]["right"] == pytest.approx(3.4375)
    walls = r["walls"]
    for w in walls.values():
        _check_steps(w)
    # The edges belong to the plateau: gradient 0.0, never move.
    for label, edge in (("left edge", 1.5), ("right edge", 2.5)):
        assert walls[label]["start"] == edge
        assert walls[label]["ends_in"] == "plateau: never moved"
        assert np.all(np.array(walls[label]["gradients"]) == 0.0)
    # One float32 step outside, the piece's slope points away from the pit.
    left, right = walls["just left of it"], walls["just right of it"]
    assert left["start"] == float(np.nextafter(np.float32(1.5), np.float32(0)))
    assert left["first_gradient"] == pytest.approx(14.75, rel=1e-5)
    assert left["first_step_to"] < -1.0  # thrown over the hilltop
    assert left["ends_in"] == "local minimum"
    assert right["first_gradient"] == pytest.approx(-13.0, rel=1e-5)
    assert right["ends_in"] == "global minimum"
    # A step that lands inside stops dead, even when the loss went up.
    for label, start in (("into the pit from the right", 7.0), ("into the pit from the left", -3.0)):
        jump = walls[label]
        path, grads = np.array(jump["path"]), np.array(jump["gradients"])
        assert path[0] == start and 1.5 <= path[1] <= 2.5
        assert np.all(grads[1:] == 0.0) and np.all(path[1:] == path[1])
        assert jump["final_loss"] == 1.5
        assert jump["ends_in"] == "plateau: stopped dead after step 1"
    assert walls["into the pit from the right"]["loss_start"] == pytest.approx(-1.4)  # up to 1.5


def test_pitfalls_2026_learning_rates(run):
    rates = run("gradient-descent-pitfalls")[0]["results"]["learning_rates"]
    small, right, large = rates["too small"], rates["just right"], rates["too large"]
    assert small["ends_in"].startswith("still moving") and 5.1 < small["final_theta"] < 7.0
    assert np.all(np.diff(small["path"]) < 0)  # every step downhill, just short
    assert right["ends_in"] == "global minimum"
    assert large["ends_in"].startswith("plateau: stopped dead")
    assert large["loss_after_first_step"] > large["loss_start"]  # the loss increased
    for r in rates.values():
        _check_steps(r)


# -- gradient-descent-pitfalls, 2025 (--edition 2025): the demo's function ----------------------
def test_pitfalls_local_global_and_plateau(run):
    summary, _ = run("gradient-descent-pitfalls", "2025")
    assert summary["settings"]["edition"] == "2025"
    r = summary["results"]
    runs = r["runs"]
    assert runs["local minimum"]["outcome"] == "local minimum"
    assert runs["global minimum"]["outcome"] == "global minimum"
    assert runs["plateau"]["outcome"] == "plateau"
    assert runs["local minimum"]["final_f"] > runs["global minimum"]["final_f"] + 0.4
    plateau = np.abs(runs["plateau"]["gradients"])
    assert np.all(plateau < 1e-3) and len(plateau) == 60
    assert abs(runs["plateau"]["path"][-1] - runs["plateau"]["path"][0]) < 1.0
    # Today's numbers (before the 2026 edition), to float32 precision.
    assert runs["local minimum"]["final_x"] == pytest.approx(55.8635216, rel=1e-6)
    assert runs["global minimum"]["final_x"] == pytest.approx(86.9662170, rel=1e-6)
    assert runs["plateau"]["final_x"] == pytest.approx(2.50230694, rel=1e-5)


def test_pitfalls_learning_rates_too_small_and_too_large(run):
    r = run("gradient-descent-pitfalls", "2025")[0]["results"]
    small = r["too_small"]
    assert 0 < small["fraction_of_the_way"] < 0.5
    assert np.all(np.array(small["progress_per_step"]) > 0)
    assert small["fraction_of_the_way"] == pytest.approx(0.3037547, rel=1e-5)
    large = r["too_large"]
    d = np.array(large["distance_to_minimum"])
    assert large["eta_times_curvature"] > 2
    assert d[1] > d[0] and d[2] > d[1]  # overshoots further at first
    assert np.all(d[2:] > 3.0)  # and never settles


# -- minibatch-noise, 2026 --------------------------------------------------------------------
def test_minibatch_noise_2026_full_batch_stays_minibatch_escapes(run):
    summary, _ = run("minibatch-noise")
    r = summary["results"]
    assert r["edition"] == "2026" and len(r["seeds"]) >= 20
    assert r["tilts"]["sum"] == 0.0
    local = r["starts"]["local minimum"]
    full, mini = local["full_batch"], local["minibatch"]
    assert full["ends_in"] == "local minimum" and full["escaped"] is False
    assert full["final_theta"] == pytest.approx(-1 - np.sqrt(4 / 3), abs=1e-5)
    final = np.array(mini["final_theta"])
    assert 0 < mini["escaped_count"] < len(r["seeds"])
    assert mini["escape_fraction"] == pytest.approx(np.mean(final > -1.0))
    assert mini["ever_left_count"] >= mini["escaped_count"]
    assert mini["ends_in_counts"]["global minimum"] == 0  # the wall keeps them out
    # From the plateau: the full batch's gradient is exactly 0.0 (the tilts sum to 0); the
    # batches' is their mean tilt, and the seeds walk off both edges.
    plateau = r["starts"]["plateau"]
    assert np.all(np.array(plateau["full_batch"]["gradients"]) == 0.0)
    assert np.all(np.array(plateau["full_batch"]["path"]) == 2.0)
    pm = plateau["minibatch"]
    assert pm["ever_left_count"] == len(r["seeds"])
    assert pm["first_left_by"]["right"] > 0 and pm["first_left_by"]["left"] > 0
    assert pm["ends_in_counts"]["global minimum"] > 0
    assert summary["traces"]["mini-batch from -3 (one theta per seed)"]["steps"] == r["steps"]


def test_minibatch_noise_2026_gradients_are_f_prime_plus_the_batch_mean_tilt(run):
    from kclf import registry

    summary, out = run("minibatch-noise")
    r = summary["results"]
    module = registry.load("minibatch-noise")
    columns = module.batches(module.tilts(), module.EPOCHS).astype("float64")
    batch = r["batch_size"]
    mean_tilt = columns.reshape(r["steps"], batch, -1).mean(axis=1)  # (steps, seeds)
    frame = pd.read_csv(out / "trace.csv")
    for start in (-3, 2):
        rows = frame[frame["run"] == f"mini-batch from {start} (one theta per seed)"]
        step, seed = rows["step"].to_numpy() - 1, rows["index"].to_numpy()
        expected = functions.piecewise_f_prime(rows["weight_before"].to_numpy()) + mean_tilt[step, seed]
        np.testing.assert_allclose(rows["gradient"].to_numpy(), expected, rtol=1e-5, atol=2e-5)


# -- minibatch-noise, 2025 (--edition 2025) ---------------------------------------------------------
def test_minibatch_noise_escapes_more_than_full_batch(run):
    summary, _ = run("minibatch-noise", "2025")
    r = summary["results"]
    assert len(r["seeds"]) >= 20
    full, mini = r["full_batch"], r["minibatch"]
    assert full["escaped"] is False and full["escape_fraction"] == 0.0
    assert abs(full["final_theta"] - r["local_minimum"]) < 1e-3  # stays in the local minimum
    assert mini["escape_fraction"] > full["escape_fraction"]
    assert 0 < mini["escaped_count"] < len(r["seeds"])
    assert mini["escape_fraction"] == pytest.approx(np.mean(np.array(mini["final_theta"]) < r["ridge"]))
    assert summary["traces"]["mini-batch (one theta per seed)"]["steps"] == r["steps"]
    # Today's numbers (before the 2026 edition).
    assert mini["escaped_count"] == 7 and mini["ever_crossed_count"] == 15
    assert full["final_theta"] == pytest.approx(0.83756554, rel=1e-6)
    assert r["example_seed"] == 13


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


def test_summaries_are_strict_json_holding_the_results(run):
    """Strict JSON (no NaN or Infinity tokens: kclf.jsonio writes them as strings) that reads
    back to the results the run returned."""
    def refuse(token):
        raise AssertionError(f"summary.json holds the non-JSON token {token}")

    for name in ("gradient-based-learning", "minibatch-noise", "non-zero-derivatives"):
        summary, out = run(name)
        written = json.loads((out / "summary.json").read_text(), parse_constant=refuse)
        assert written["results"] == summary["results"] and written["experiment"] == name
