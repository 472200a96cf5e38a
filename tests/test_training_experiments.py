"""The training experiments give the slides' numbers on this backend, and agree with
kclf.reference step by step."""

import numpy as np
import pytest

from kclf import reference, registry, runner
from kclf.data import bgd_data

pytestmark = pytest.mark.backend


def run_experiment(name, backend_name, tmp_path):
    summary, code = runner.execute(registry.load(name), backend_name, tmp_path / name)
    assert code == 0, summary["error"]
    assert (tmp_path / name / "summary.json").exists()
    assert (tmp_path / name / "trace.csv").exists()
    return summary


def test_sgd_gives_the_slides_thetas(backend_name, tmp_path):
    results = run_experiment("sgd", backend_name, tmp_path)["results"]
    np.testing.assert_allclose(results["theta"], [[0, 0], [0.5, 0.1], [2.732, 0.348]], atol=1e-5)
    np.testing.assert_allclose(results["gradients"], [[-50, -10], [-223.2, -24.8]], rtol=1e-5)
    np.testing.assert_allclose(results["losses"], [25, 153.76], rtol=1e-5)


def test_bgd_tables_and_thetas_match_the_reference(backend_name, tmp_path):
    results = run_experiment("bgd", backend_name, tmp_path)["results"]
    x, y = bgd_data()
    theta = np.zeros(2)
    expected = [theta]
    for _ in range(2):
        _, _, dldw, dldb = reference.per_observation_mse_gradients(x, y, *theta)
        theta = reference.sgd_step(theta, [dldw.mean(), dldb.mean()], 0.1)
        expected.append(theta)
    np.testing.assert_allclose(results["theta"], expected, rtol=1e-5, atol=1e-6)
    # The gradient Keras applied is the mean of the table's derivative columns.
    np.testing.assert_allclose(results["keras_gradient"], results["nabla"], rtol=1e-5)
    first = results["tables"][0]
    assert np.round(first["loss"], 2).tolist() == [0.98, 9.02, 25.15]
    assert np.round(first["dL/dw"], 2).tolist() == [-1.98, -12.02, -30.09]
    assert np.round(first["dL/db"], 2).tolist() == [-1.98, -6.01, -10.03]
    second = results["tables"][1]
    assert np.round(second["y_hat"], 2).tolist() == [2.07, 3.54, 5.01]
    assert np.round(second["dL/dw"], 2).tolist() == [2.16, 2.14, -0.04]


def test_learning_rates_too_large_diverges_and_schedule_is_recorded(backend_name, tmp_path):
    summary = run_experiment("learning-rates", backend_name, tmp_path)
    results = summary["results"]
    too_large = results["too large (0.08)"]
    assert too_large["diverged_at"] is not None and too_large["steps"] == too_large["diverged_at"]
    assert summary["traces"]["too large (0.08)"]["diverged_at"] == too_large["diverged_at"]
    for label in ("too small (0.0001)", "about right (0.005)"):
        assert results[label]["diverged_at"] is None and results[label]["steps"] == 200
    schedule = results["schedule (0.025 x 0.2^(step/200))"]
    rates = np.array(schedule["learning_rates"])
    np.testing.assert_allclose(rates, 0.025 * 0.2 ** (np.arange(200) / 200), rtol=1e-5)
    assert results["about right (0.005)"]["losses"][-1] < results["too small (0.0001)"]["losses"][-1]
    # The schedule ends lowest on all the data (it used to lose: 1.135 against 1.129).
    assert schedule["final_full_mse"] < results["about right (0.005)"]["final_full_mse"] - 0.05
    assert schedule["final_full_mse"] < results["too small (0.0001)"]["final_full_mse"]
    assert results["too large (0.08)"]["final_full_mse"] is None


def test_minibatch_runs_take_one_step_per_batch(backend_name, tmp_path):
    results = run_experiment("minibatch", backend_name, tmp_path)["results"]
    steps = {label: r["steps"] for label, r in results.items()}
    assert steps == {"SGD (batch 1)": 1000, "mini-batch (10)": 100, "BGD (batch 100)": 10}
    for r in results.values():
        assert r["final_full_mse"] < 2.0  # all three approach the minimum (noise variance 1)


# -- what an interrupted or failing save keeps -------------------------------------------
def test_minibatch_keeps_the_steps_of_a_fit_interrupted_by_ctrl_c(backend_name, tmp_path, monkeypatch):  # 4
    import keras
    import pandas as pd

    fit = keras.Model.fit

    def fit_then_ctrl_c(self, *args, **kwargs):  # the first fit runs whole, then Ctrl-C
        fit(self, *args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(keras.Model, "fit", fit_then_ctrl_c)
    out = tmp_path / "minibatch"
    summary, code = runner.execute(registry.load("minibatch"), backend_name, out)
    assert code == 130 and summary["status"] == "interrupted"
    trace = pd.read_csv(out / "trace.csv")
    assert set(trace["run"]) == {"SGD (batch 1)"} and trace["step"].max() == 1000  # 100 points x 10 epochs


def test_save_writes_nothing_unless_everything_can_be_written(backend_name, tmp_path):
    import json

    from kclf.jsonio import NotJsonable

    out = tmp_path / "mine"
    runner.save({"ids": {2, 1}, "low": -np.inf}, out=out, name="mine")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["results"] == {"ids": [1, 2], "low": "-inf"} and summary["backend"] == backend_name
    before = (out / "summary.json").read_text()
    with pytest.raises(NotJsonable, match="results/s/0: a set of mixed types cannot be written as JSON"):
        runner.save({"s": [{1, "a"}]}, out=out, name="mine")
    assert (out / "summary.json").read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"]  # no half-written folder beside it
