"""kclf compare: the diff logic on synthetic traces, the run orchestration on a fake script,
and one real compare of small experiments across the three backends.

The fake script is plain Python (no keras): it writes summary.json and trace.csv into
$KCLF_OUT the documented way, and FAKE_PLAN makes one backend differ, crash or hang.
"""

import json
import math
import textwrap

import numpy as np
import pandas as pd
import pytest

from kclf import cli
from kclf.compare import runs, tolerances, verdict
from kclf.compare.diff import compare_results, compare_traces, diffs
from kclf.compare.tolerances import DETERMINISTIC, LONG_TRAINING, Tolerance
from kclf.errors import KclfError

FAKE_SCRIPT = """
    import csv, json, os, sys, time

    backend, out = os.environ["KERAS_BACKEND"], os.environ["KCLF_OUT"]
    plan = json.loads(os.environ.get("FAKE_PLAN", "{}")).get(backend, "")
    if plan == "crash":
        print("loading the data", file=sys.stderr)
        sys.exit("ValueError: weights kernel has shape (3, 1); expected (2, 1)")
    if plan == "hang":
        time.sleep(60)
    noise = {"jax": 0.0, "tensorflow": 1e-8, "torch": -1e-8}[backend]  # float32-level
    w, rows, losses = [0.9 if plan == "start" else 0.5, -0.25], [], []
    for step in range(1, 11):
        g = [0.1 * step + noise, -0.05 * step]
        if plan.startswith("differ@") and step >= int(plan[7:]):
            g[0] += 1e-3
        loss = 1.0 / step + (0.3 if plan == "batch" and step == 1 else 0.0)
        for i, name in enumerate(["dense/kernel", "dense/bias"]):
            before = w[i]
            w[i] = before - 0.1 * g[i]
            rows.append(["main", step, 0, step - 1, name, 0, before, g[i], w[i], loss, 0.1])
        losses.append(loss)
    with open(os.path.join(out, "trace.csv"), "w", newline="") as fh:
        csv.writer(fh).writerows([["run", "step", "epoch", "batch", "variable", "index", "weight_before",
                                   "gradient", "weight_after", "loss", "learning_rate"], *rows])
    timing = {"first_step_s": 0.5, "steps_per_s": 100.0, "total_s": 0.59, "steps": 10}
    if plan == "truncate":
        with open(os.path.join(out, "trace.csv"), "w") as fh:
            fh.write("")
    results = {"final_w": w, "losses": losses, "label": "setosa", "missing": None}
    if plan.startswith("result="):  # written the way kclf.jsonio writes +inf, -inf and NaN
        results["final"] = plan[7:]
    summary = {"experiment": "fake", "backend": "jax" if plan == "on-jax" else backend, "versions": {},
               "status": "ok", "error": None, "results": results,
               "figures": [], "timing": {"startup_s": None, "experiment_s": 0.6},
               "traces": {"main": {"steps": 10, "diverged_at": None, "interrupted": False, "timing": timing}}}
    with open(os.path.join(out, "summary.json"), "w") as fh:
        json.dump(summary, fh)
"""


# -- numbers and results ------------------------------------------------------------------
def test_diffs_nan_agrees_with_nan_and_differs_from_a_number():
    d, rel, bad = diffs([math.nan, math.inf, math.nan, 1.0, 0.0], [math.nan, math.inf, 1.0, 1.0 + 1e-7, 0.0],
                        rtol=1e-5, atol=1e-6)
    assert list(bad) == [False, False, True, False, False]
    assert d[0] == 0 and d[1] == 0 and np.isinf(d[2])
    assert rel[3] == pytest.approx(1e-7, rel=1e-3)


def test_diffs_inf_against_a_finite_number_is_beyond_any_tolerance():
    _, rel, bad = diffs([math.inf, -math.inf], [1e30, math.inf], rtol=1.0, atol=1.0)
    assert list(bad) == [True, True] and np.isinf(rel).all()


def test_compare_results_checks_every_leaf_with_none_as_nan_and_strings_equal():
    ref = {"y_hat": [0.5, 0.25], "nested": {"loss": None, "class": "setosa"}}
    same = {"y_hat": [0.5 + 1e-7, 0.25], "nested": {"loss": None, "class": "setosa"}}
    assert compare_results(ref, same, DETERMINISTIC).ok

    other = {"y_hat": [0.5, 0.26], "nested": {"loss": 1.0, "class": "virginica"}, "extra": 1}
    found = compare_results(ref, other, DETERMINISTIC)
    failing = {leaf.path for leaf in found.failing}
    assert failing == {"y_hat/1", "nested/loss", "nested/class", "extra"}
    assert math.isinf(found.max_abs)  # NaN against 1.0
    assert {leaf.path: leaf.abs_diff for leaf in found.failing}["y_hat/1"] == pytest.approx(0.01)


def test_long_trainings_are_judged_on_final_metrics_only():
    ref = {"test_accuracy": 0.90, "final_loss": 0.300, "weights": [1.0, 2.0], "confusion": [[5, 0]]}
    drifted = {"test_accuracy": 0.92, "final_loss": 0.3002, "weights": [1.3, 1.7], "confusion": [[4, 1]]}
    found = compare_results(ref, drifted, LONG_TRAINING)
    assert found.ok, found.failing
    assert found.judged == 2
    worse = dict(drifted, test_accuracy=0.85, final_loss=0.31)
    failing = [leaf.path for leaf in compare_results(ref, worse, LONG_TRAINING).failing]
    assert failing == ["test_accuracy", "final_loss"]
    stroke = tolerances.TOLERANCES["stroke"]
    assert not compare_results({"test_accuracy": 0.944}, {"test_accuracy": 0.947}, stroke).ok
    assert tolerances.TOLERANCES["iris"].step_by_step is False


def test_cli_tolerances_override_the_table():
    tol = tolerances.tolerance_for("iris", rtol=0.0, atol=1e-3)
    assert tol.for_path("final_loss") == (0.0, 1e-3, True)
    assert tolerances.tolerance_for("sgd").for_quantity("weights") == (1e-5, 1e-6)


# -- traces -----------------------------------------------------------------------------------
def trace(steps=5, *, bump_from=None, bump=1e-3, nan_from=None, variables=("dense/kernel", "dense/bias")):
    """A synthetic trace: two variables, w -= 0.1 g, optional bump or NaN from a step on."""
    rows, w = [], [0.5, -0.25]
    for step in range(1, steps + 1):
        g = [0.1 * step, -0.05 * step]
        if bump_from is not None and step >= bump_from:
            g[0] += bump
        loss = 1.0 / step
        if nan_from is not None and step >= nan_from:
            g[0], loss = math.nan, math.inf
        for i, name in enumerate(variables):
            before = w[i]
            w[i] = before - 0.1 * g[i]
            rows.append({"run": "main", "step": step, "epoch": 0, "batch": step - 1, "variable": name,
                         "index": "0", "weight_before": before, "gradient": g[i], "weight_after": w[i],
                         "loss": loss, "learning_rate": 0.1})
    return pd.DataFrame(rows)


def test_traces_that_agree_to_float32_precision_agree():
    noisy = trace()
    noisy["gradient"] += 1e-8
    found = compare_traces(trace(), noisy, DETERMINISTIC)
    assert found.ok and found.first is None
    assert found.quantities["gradients"].max_abs == pytest.approx(1e-8)


def test_traces_that_part_from_step_k_report_step_k_and_the_quantity():
    found = compare_traces(trace(8), trace(8, bump_from=4), DETERMINISTIC)
    assert not found.ok
    assert (found.first.step, found.first.variable) == (4, "dense/kernel")
    assert found.quantities["gradients"].first_step == 4
    assert found.quantities["loss"].first_step is None
    steps = found.per_step["main"].quantities
    assert steps["gradients"][:3] == [0, 0, 0] and steps["gradients"][3] == pytest.approx(1e-3)


def test_nan_at_the_same_place_agrees_and_on_one_side_only_differs():
    assert compare_traces(trace(nan_from=3), trace(nan_from=3), DETERMINISTIC).ok
    found = compare_traces(trace(nan_from=3), trace(nan_from=4), DETERMINISTIC)
    assert found.first.step == 3


def test_a_shorter_trace_differs_at_its_first_missing_step():
    found = compare_traces(trace(6), trace(4), DETERMINISTIC)
    assert found.missing_rows == 4
    assert found.first.step == 5 and "missing" in found.first.what


def test_variables_named_differently_are_matched_by_position():
    found = compare_traces(trace(), trace(variables=("dense_1/kernel", "dense_1/bias")), DETERMINISTIC)
    assert found.ok and found.notes


# -- orchestration on a fake script ---------------------------------------------------------------
@pytest.fixture
def fake_script(tmp_path, monkeypatch):
    path = tmp_path / "my_script.py"
    path.write_text(textwrap.dedent(FAKE_SCRIPT))
    monkeypatch.setattr("kclf.backend.is_installed", lambda name: True)
    monkeypatch.delenv("FAKE_PLAN", raising=False)
    return path


def run_compare(script, out, *extra, plan=None, monkeypatch=None):
    if plan is not None:
        monkeypatch.setenv("FAKE_PLAN", json.dumps(plan))
    code = cli.main(["compare", str(script), "--out", str(out), *extra])
    data = json.loads((out / "comparison.json").read_text())
    return code, data, data["experiments"]["my_script"]


def test_compare_agrees_and_writes_the_report(fake_script, tmp_path, capsys):
    out = tmp_path / "report"
    code, data, exp = run_compare(fake_script, out, "--jobs", "2")
    assert code == 0 and data["complete"] and exp["verdict"] == "agree"
    assert exp["runs"]["torch"]["timing"]["first_step_s"] == 0.5
    assert exp["runs"]["jax"]["timing"]["steady_steps_per_s"] == pytest.approx(9 / 0.09)
    assert {p.name for p in (out / "figures").iterdir()} == {
        "my_script-loss.png", "my_script-weights.png", "my_script-difference.png"}
    assert "INCOMPLETE" not in (out / "comparison.md").read_text()
    assert "data:image/png;base64," in (out / "report.html").read_text()
    assert "[3/3 " in capsys.readouterr().err


def test_compare_reports_where_a_backend_parts(fake_script, tmp_path, monkeypatch):
    code, data, exp = run_compare(fake_script, tmp_path / "r", plan={"tensorflow": "differ@5"},
                                  monkeypatch=monkeypatch)
    assert code == 1 and data["complete"] and exp["verdict"] == "differ"
    assert data["reference"] == "torch"  # the 2026 edition's backend
    assert exp["pairs"]["jax"]["verdict"] == "agree"
    assert exp["pairs"]["tensorflow"]["traces"]["first"]["step"] == 5
    assert "tensorflow vs torch: trace 'main' step 5" in exp["where"]


def test_a_script_whose_backends_start_from_other_weights_is_told_so(fake_script, tmp_path,
                                                                      monkeypatch):
    code, data, exp = run_compare(fake_script, tmp_path / "r", plan={"jax": "start"},
                                  monkeypatch=monkeypatch)
    assert code == 1 and exp["pairs"]["tensorflow"]["verdict"] == "agree"
    where = exp["pairs"]["jax"]["where"]
    assert where.startswith("the runs started from different weights (fit 'main': before its "
                            "first step the weights differ by up to 0.4)")
    assert "set_weights" in where and "step 1: weights" not in where
    assert exp["pairs"]["jax"]["diagnosis"]["start"] == where.split("; result")[0]
    assert "the runs started from different weights" in (tmp_path / "r" / "comparison.md").read_text()


def test_a_script_whose_batches_differ_is_told_so(fake_script, tmp_path, monkeypatch):
    code, data, exp = run_compare(fake_script, tmp_path / "r", plan={"torch": "batch"},
                                  monkeypatch=monkeypatch)
    assert code == 1
    for backend in ("jax", "tensorflow"):  # torch is the reference: both others see it
        where = exp["pairs"][backend]["where"]
        assert where.startswith("the same weights gave different batch losses at step 1 of fit "
                                "'main' (1 vs 1.3): the batches differ (order or data)"), where


def test_a_missing_backend_is_skipped_unless_named(fake_script, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("kclf.backend.is_installed", lambda name: name != "tensorflow")
    code, data, exp = run_compare(fake_script, tmp_path / "r")
    assert code == 0 and data["backends"] == ["torch", "jax"]  # the edition's backend leads
    assert data["skipped_backends"]["tensorflow"] == "not installed (pip install 'kclf[tensorflow]')"
    overview = (tmp_path / "r" / "comparison.md").read_text().split("## Overview")[1]
    assert "| torch | jax | tensorflow |" in overview
    assert "| not installed (pip install 'kclf[tensorflow]') |" in overview

    code = cli.main(["compare", str(fake_script), "--backends", "jax,tensorflow", "--out", str(tmp_path / "s")])
    assert code == 1 and "'tensorflow' is not installed" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()


def test_a_crashed_run_is_failed_with_its_stderr_and_the_others_reported(fake_script, tmp_path, monkeypatch):
    code, data, exp = run_compare(fake_script, tmp_path / "r", plan={"tensorflow": "crash"}, monkeypatch=monkeypatch)
    assert code == 1 and not data["complete"] and exp["verdict"] == "failed"
    run = exp["runs"]["tensorflow"]
    assert run["status"] == "failed" and run["returncode"] == 1
    assert run["stderr_tail"][-1].startswith("ValueError: weights kernel")
    assert exp["pairs"]["jax"]["verdict"] == "agree"  # the others are still compared
    text = (tmp_path / "r" / "comparison.md").read_text()
    assert "INCOMPLETE" in text and "loading the data" in text
    assert "class='banner'>INCOMPLETE" in (tmp_path / "r" / "report.html").read_text()


def test_a_run_past_the_timeout_is_stopped_and_failed(fake_script, tmp_path, monkeypatch):
    code, data, exp = run_compare(fake_script, tmp_path / "r", "--timeout", "2", "--jobs", "3",
                                  plan={"jax": "hang"}, monkeypatch=monkeypatch)
    assert code == 1 and exp["verdict"] == "failed"
    assert exp["runs"]["jax"]["status"] == "timeout"
    assert exp["runs"]["jax"]["timing"]["total_s"] < 10
    assert exp["pairs"]["tensorflow"]["verdict"] == "agree"


def test_an_interrupted_compare_writes_a_report_marked_incomplete(fake_script, tmp_path, monkeypatch):
    start, calls = runs.start, []

    def start_then_ctrl_c(*args):
        calls.append(args)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return start(*args)

    monkeypatch.setattr(runs, "start", start_then_ctrl_c)
    code, data, exp = run_compare(fake_script, tmp_path / "r")
    assert code == 130 and data["interrupted"] and not data["complete"]
    assert exp["verdict"] == "incomplete"
    assert exp["runs"]["torch"]["status"] == "ok"  # the reference ran first
    assert exp["runs"]["tensorflow"]["status"] == "not run"
    assert "INCOMPLETE" in (tmp_path / "r" / "comparison.md").read_text()


def test_reuse_diffs_an_earlier_compare_again_with_new_tolerances(fake_script, tmp_path, monkeypatch):
    run_compare(fake_script, tmp_path / "r", plan={"torch": "differ@5"}, monkeypatch=monkeypatch)
    code, _, exp = run_compare(fake_script, tmp_path / "r", "--reuse", "--rtol", "0.1", "--atol", "0.01")
    assert code == 0 and exp["verdict"] == "agree"


def test_unknown_names_and_bad_options_are_usage_errors(tmp_path, capsys):
    assert cli.main(["compare", "no-such-experiment", "--out", str(tmp_path)]) == 2
    assert "unknown experiment 'no-such-experiment'" in capsys.readouterr().err
    assert cli.main(["compare", "logistic-forward", "--jobs", "0", "--out", str(tmp_path)]) == 2
    assert cli.main(["compare", "logistic-forward", "--backends", "theano", "--out", str(tmp_path)]) == 2
    assert not (tmp_path / "comparison.json").exists()


def test_experiment_tolerances_are_in_the_table():
    assert tolerances.tolerance_for("learning-rates") is DETERMINISTIC
    assert tolerances.tolerance_for("a-users-script") is DETERMINISTIC
    assert isinstance(tolerances.TOLERANCES["stroke"], Tolerance)


# -- the real thing ---------------------------------------------------------------------------------
def test_small_experiments_agree_across_the_three_backends(tmp_path):
    """One end-to-end compare: each (experiment, backend) is its own keras process."""
    out = tmp_path / "compare"
    names = ["logistic-forward", "sgd"]
    code = cli.main(["compare", *names, "--backends", "jax,tensorflow,torch", "--jobs", "2", "--out", str(out)])
    data = json.loads((out / "comparison.json").read_text())
    assert code == 0, {n: e["where"] for n, e in data["experiments"].items()}
    assert data["complete"]
    for exp in data["experiments"].values():
        assert exp["verdict"] == "agree"
        assert [r["status"] for r in exp["runs"].values()] == ["ok"] * 3
        assert all(r["batched"] for r in exp["runs"].values())  # one process per backend
    assert data["experiments"]["sgd"]["pairs"]["torch"]["traces"]["ok"]
    assert (out / "figures" / "sgd-difference.png").is_file()


STATES_SCRIPT = """
    import os
    from pathlib import Path

    import keras
    import numpy as np

    import kclf.runner
    from kclf.callbacks import TrainingTrace
    from kclf.trace.states import StepStates

    rng = np.random.default_rng(0)
    x = rng.normal(size=(48, 3)).astype("float32")
    y = (x[:, :1] - x[:, 1:2] > 0).astype("float32")
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(8, activation="tanh"),
                              keras.layers.Dense(1, activation="sigmoid")])
    model.set_weights([rng.normal(size=w.shape).astype("float32") for w in model.get_weights()])
    model.compile("adam", "binary_crossentropy")
    states = StepStates(1, rows=lambda step: np.arange(16) + 16 * ((step - 1) % 3))
    trace = TrainingTrace()
    model.fit(x, y, batch_size=16, epochs=4, shuffle=False, verbose=0, callbacks=[states, trace])
    out = kclf.runner.save({"loss": float(trace.losses()[-1])}, trace)
    states.save(Path(out) / "states", "main", model, x, y)
"""


def test_the_drift_phase_replays_each_backends_steps_from_the_references_state(tmp_path):
    """A script that records its states gets the replay: each backend's local error, its
    parts, and checks that the replay reproduces the backends' own steps bit for bit."""
    script = tmp_path / "adam_states.py"
    script.write_text(textwrap.dedent(STATES_SCRIPT))
    out = tmp_path / "compare"
    cli.main(["compare", str(script), "--backends", "torch,jax", "--out", str(out)])
    exp = json.loads((out / "comparison.json").read_text())["experiments"]["adam_states"]
    assert [r["status"] for r in exp["runs"].values()] == ["ok", "ok"]
    diag = exp["pairs"]["jax"]["diagnosis"]
    fit = diag["fits"]["main"]
    assert fit["steps"] == list(range(1, 13)) and fit["recorded"] == 12
    assert 0 <= fit["local_max"] < 1e-6 and fit["carried"][0] == 0  # step 1: the same state
    assert "reproduces its own first step in 1 of 1 fits bit for bit" in diag["self_check"]
    assert "reproduces 3 of 3 of torch's own recorded steps bit for bit" in diag["self_check"]
    assert diag["text"].startswith("jax's own steps from torch's state agree with torch's to ")
    assert (out / "figures" / "adam_states-drift.png").is_file()
    assert "Where and why the backends part from torch" in (out / "comparison.md").read_text()


# -- robustness -------------------------------------------------------------------------
def test_a_run_on_another_backend_than_asked_fails(fake_script, tmp_path, monkeypatch):
    code, data, exp = run_compare(fake_script, tmp_path / "r", plan={"torch": "on-jax"}, monkeypatch=monkeypatch)
    assert code == 1 and exp["verdict"] == "failed"
    assert exp["runs"]["torch"]["status"] == "failed"
    assert "ran on 'jax', not on 'torch'" in exp["runs"]["torch"]["error"]
    assert "torch" not in exp["pairs"]


@pytest.mark.parametrize("a, b", [("inf", "-inf"), ("nan", "inf"), ("-inf", "nan")])
def test_infinities_and_nan_stay_distinct(fake_script, tmp_path, monkeypatch, a, b):
    plan = {"torch": f"result={a}", "jax": f"result={a}", "tensorflow": f"result={b}"}
    code, data, exp = run_compare(fake_script, tmp_path / "r", plan=plan, monkeypatch=monkeypatch)
    assert code == 1 and exp["verdict"] == "differ"
    assert exp["pairs"]["jax"]["verdict"] == "agree"  # the same non-finite value agrees
    assert "result final" in exp["pairs"]["tensorflow"]["where"]


def test_compare_results_reads_the_json_rule():
    assert not compare_results({"x": "inf"}, {"x": "-inf"}, DETERMINISTIC).ok
    assert compare_results({"x": "-inf"}, {"x": "-inf"}, DETERMINISTIC).ok
    assert not compare_results({"x": "nan"}, {"x": 1.0}, DETERMINISTIC).ok
    assert compare_results({"x": None}, {"x": "nan"}, DETERMINISTIC).ok  # older files: null was NaN


def test_a_second_compare_into_the_same_out_is_refused_while_the_first_runs(fake_script, tmp_path, capsys):  # 8
    from kclf.fsio import FolderLock

    out = tmp_path / "r"
    with FolderLock(out, "kclf compare"):
        assert cli.main(["compare", str(fake_script), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "is writing there now" in err and f"pid {__import__('os').getpid()}" in err
    assert not (out / "runs").exists() and not (out / "report.html").exists()
    assert cli.main(["compare", str(fake_script), "--out", str(out)]) == 0  # the lock is released


def test_reuse_of_names_not_in_the_folder_keeps_the_report(fake_script, tmp_path, capsys):
    out = tmp_path / "r"
    assert cli.main(["compare", str(fake_script), "--out", str(out)]) == 0
    page = (out / "report.html").read_text()
    assert cli.main(["compare", "sgd", "--reuse", "--out", str(out)]) == 2
    assert "--reuse: no runs of sgd in" in capsys.readouterr().err
    assert (out / "report.html").read_text() == page


def test_a_truncated_trace_fails_its_run_naming_the_file(fake_script, tmp_path, monkeypatch):
    code, data, exp = run_compare(fake_script, tmp_path / "r", plan={"jax": "truncate"}, monkeypatch=monkeypatch)
    assert code == 1 and exp["verdict"] == "failed"
    error = exp["runs"]["jax"]["error"]
    assert error.startswith(str(tmp_path / "r" / "runs" / "my_script" / "jax" / "trace.csv"))
    assert "not a readable trace" in error
    assert exp["pairs"]["tensorflow"]["verdict"] == "agree"


def exit_code(argv: list[str]) -> int:
    """cli.main's exit code, also when argparse exits (its usage errors)."""
    try:
        return cli.main(argv)
    except SystemExit as exc:
        return exc.code


def test_bad_backends_are_usage_errors_in_compare_and_bench(tmp_path, capsys):
    for argv in (["compare", "sgd", "--backends", "theano"], ["compare", "sgd", "--backends", ","],
                 ["bench", "--backends", "theano"], ["bench", "--backends", ""]):
        assert exit_code([*argv, "--out", str(tmp_path / "o")]) == 2, argv
        assert "theano" in capsys.readouterr().err or "theano" not in argv
    assert not (tmp_path / "o").exists()


def test_data_for_an_experiment_that_reads_none_is_a_usage_error(tmp_path, capsys):
    data = tmp_path / "x.csv"
    data.write_text("a\n1\n")
    assert cli.main(["compare", "sgd", "--data", str(data), "--out", str(tmp_path / "o")]) == 2
    assert "sgd reads no data file; expected an experiment that does (lecture, stroke)" in capsys.readouterr().err
    assert cli.main(["compare", "stroke", "--data", str(tmp_path / "absent.csv"), "--out", str(tmp_path / "o")]) == 2
    assert not (tmp_path / "o").exists()


def test_runs_start_longest_first_and_progress_shows_the_time_left(fake_script, tmp_path, monkeypatch, capsys):
    out = tmp_path / "r"
    assert cli.main(["compare", str(fake_script), "--out", str(out), "--backends", "jax,tensorflow,torch"]) == 0
    for backend, wall in (("jax", 1.0), ("tensorflow", 3.0), ("torch", 2.0)):  # as if measured last time
        path = out / "runs" / "my_script" / f"{backend}.outcome.json"
        path.write_text(json.dumps(dict(json.loads(path.read_text()), wall_s=wall)))
    started, start = [], runs.start
    monkeypatch.setattr(runs, "start", lambda t, b, *a: started.append(b) or start(t, b, *a))
    capsys.readouterr()
    assert cli.main(["compare", str(fake_script), "--out", str(out), "--backends", "jax,tensorflow,torch"]) == 0
    assert started == ["tensorflow", "torch", "jax"]
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("[")]
    assert "left]" in lines[0] and "left]" not in lines[-1]


def test_every_experiment_declares_a_known_tolerance_under_every_start():
    from kclf import registry

    for name, info in registry.discover().items():
        for start in info.starts or tolerances.START_MODES:  # the lecture offers no numpy start
            assert isinstance(tolerances.tolerance_for(name, start=start), Tolerance)


def test_a_missing_declaration_is_an_error(tmp_path, monkeypatch, capsys):
    (tmp_path / "mine.py").write_text('NAME = "mine"\nPOSITION = 1\n')
    monkeypatch.setenv("KCLF_EXPERIMENTS", str(tmp_path))
    assert cli.main(["list"]) == 1
    assert "mine.py: no TOLERANCE next to NAME" in capsys.readouterr().err
    (tmp_path / "mine.py").write_text('NAME = "mine"\nPOSITION = 1\nTOLERANCE = "loose"\n')
    assert cli.main(["compare", "mine", "--out", str(tmp_path / "o")]) == 1
    assert "TOLERANCE 'loose' under --start torch-2026: expected one of deterministic" in capsys.readouterr().err


# -- one process per backend for the short experiments --------------------------------------------
BATCHED = {
    "first.py": 'NAME = "first"\nPOSITION = 1\nTOLERANCE = "deterministic"\n'
                'def run(ctx):\n    ctx.print("first ran")\n    return {"x": 1.5, "low": float("-inf")}\n',
    "crashes.py": 'NAME = "crashes"\nPOSITION = 2\nTOLERANCE = "deterministic"\n'
                  'def run(ctx):\n    raise ValueError("weights kernel has shape (3, 1); expected (2, 1)")\n',
    "hangs.py": 'NAME = "hangs"\nPOSITION = 3\nTOLERANCE = "deterministic"\n'
                'import time\ndef run(ctx):\n    time.sleep(60)\n',
    "last.py": 'NAME = "last"\nPOSITION = 4\nTOLERANCE = "deterministic"\n'
               'def run(ctx):\n    return {"y": 2}\n',
}


def test_short_experiments_share_a_process_per_backend_and_keep_their_own_outcomes(tmp_path, monkeypatch):
    folder = tmp_path / "experiments"
    folder.mkdir()
    for filename, text in BATCHED.items():
        (folder / filename).write_text(text)
    monkeypatch.setenv("KCLF_EXPERIMENTS", str(folder))
    out = tmp_path / "r"
    code = cli.main(["compare", "all", "--backends", "jax,torch", "--timeout", "4", "--jobs", "2",
                     "--out", str(out)])
    data = json.loads((out / "comparison.json").read_text())
    assert code == 1
    verdicts = {name: exp["verdict"] for name, exp in data["experiments"].items()}
    assert verdicts == {"first": "agree", "crashes": "failed", "hangs": "failed", "last": "agree"}
    runs_of = {name: exp["runs"] for name, exp in data["experiments"].items()}
    assert all(run["batched"] for run in runs_of["first"].values())
    assert runs_of["crashes"]["jax"]["error"] == "exit 1: ValueError: weights kernel has shape (3, 1); expected (2, 1)"
    assert runs_of["hangs"]["torch"]["status"] == "timeout"
    assert not runs_of["last"]["jax"]["batched"]  # the timeout ended the batch: it ran alone after
    assert "first ran" in (out / "runs" / "first" / "jax.stdout.log").read_text()
    assert "first ran" not in (out / "runs" / "last" / "jax.stdout.log").read_text()
    summary = json.loads((out / "runs" / "first" / "torch" / "summary.json").read_text())
    assert summary["results"] == {"x": 1.5, "low": "-inf"} and summary["backend"] == "torch"


def test_an_out_that_cannot_be_a_folder_is_a_usage_error_before_any_run(fake_script, tmp_path, capsys):  # 6
    a_file = tmp_path / "a_file"
    a_file.write_text("mine\n")
    assert cli.main(["compare", str(fake_script), "--out", str(a_file)]) == 2
    assert f"--out {a_file} is a file, not a folder" in capsys.readouterr().err
    assert cli.main(["compare", str(fake_script), "--out", "/proc/x"]) == 2
    assert "--out /proc/x cannot be written" in capsys.readouterr().err
    assert a_file.read_text() == "mine\n"


def test_separate_gives_every_run_its_own_process(tmp_path, monkeypatch):
    folder = tmp_path / "experiments"
    folder.mkdir()
    for filename in ("first.py", "last.py"):
        (folder / filename).write_text(BATCHED[filename])
    monkeypatch.setenv("KCLF_EXPERIMENTS", str(folder))
    out = tmp_path / "r"
    assert cli.main(["compare", "all", "--separate", "--backends", "jax,torch", "--out", str(out)]) == 0
    data = json.loads((out / "comparison.json").read_text())
    assert not any(run["batched"] for exp in data["experiments"].values() for run in exp["runs"].values())


# -- --devices N ------------------------------------------------------------------------
def test_data_parallel_agrees_on_4_devices_and_torch_is_skipped_in_one_line(tmp_path, capsys):
    """kclf compare --devices 4: every child starts with 4 CPU devices (JAX: DataParallel,
    TensorFlow: MirroredStrategy over 4 logical CPUs); keras 3.15's torch has no DataParallel."""
    import os

    from kclf import devices

    out = tmp_path / "compare"
    before = dict(os.environ)
    code = cli.main(["compare", "data-parallel", "--backends", "jax,tensorflow,torch", "--devices", "4",
                     "--out", str(out)])
    assert dict(os.environ) == before  # the children's environment only
    data = json.loads((out / "comparison.json").read_text())
    exp = data["experiments"]["data-parallel"]
    assert code == 0 and exp["verdict"] == "agree", exp["where"]
    err = capsys.readouterr().err
    if not devices.torch_has_data_parallel():
        (line,) = [ln for ln in err.splitlines() if "skipping torch" in ln]
        assert "torch backend has no DataParallel" in line and "Keras 3.16" in line
    for backend in ("jax", "tensorflow"):
        summary = json.loads((out / "runs" / "data-parallel" / backend / "summary.json").read_text())
        results = summary["results"]
        assert results["devices"] == 4
        for label in ("iris classifier", "logistic regression"):
            assert results[label]["agree"] is True and results[label]["steps_on_n_devices"] == 21, backend


# -- reliability --------------------------------------------------------------------------
def test_a_differ_line_gives_the_values_in_the_order_it_names_the_backends(fake_script, tmp_path,
                                                                             monkeypatch):
    code, data, exp = run_compare(fake_script, tmp_path / "r", plan={"tensorflow": "differ@5"},
                                  monkeypatch=monkeypatch)
    runs_dir = tmp_path / "r" / "runs" / "my_script"
    step5 = {b: pd.read_csv(runs_dir / b / "trace.csv").query("step == 5 and variable == 'dense/kernel'")
             ["weight_after"].item() for b in ("tensorflow", "torch")}
    final = {b: json.loads((runs_dir / b / "summary.json").read_text())["results"]["final_w"][0]
             for b in ("tensorflow", "torch")}
    assert step5["tensorflow"] != step5["torch"] and final["tensorflow"] != final["torch"]
    where = exp["pairs"]["tensorflow"]["where"]
    assert f"weight_after {step5['tensorflow']:.7g} vs {step5['torch']:.7g}" in where
    assert f"result final_w/0: {final['tensorflow']!r} vs {final['torch']!r}" in where
    assert exp["where"].startswith("tensorflow vs torch: ")


EXITS_3 = """
    import sys
    print("loss went NaN at step 4, giving up", file=sys.stderr)
    sys.exit(3)
"""
DIVERGES = '''NAME = "diverges"
POSITION = 1
TOLERANCE = "deterministic"


from kclf.callbacks import TrainingTrace


class Trace(TrainingTrace):
    """What kclf.runner reads from a TrainingTrace whose loss became inf at step 2."""

    steps_recorded = 2

    def __init__(self):
        super().__init__()
        self.diverged_at = 2

    def timing(self):
        return {}

    def to_frame(self):
        import pandas as pd

        return pd.DataFrame({"step": [1, 2], "epoch": [0, 0], "batch": [0, 1], "variable": ["w"] * 2,
                             "index": ["0"] * 2, "weight_before": [1.0, 0.5], "gradient": [5.0, 1e9],
                             "weight_after": [0.5, -1e8], "loss": [2.0, float("inf")],
                             "learning_rate": [0.1, 0.1]})


def run(ctx):
    ctx.attach(Trace())
    return {"steps": 2}
'''


def test_a_script_that_exits_3_failed_with_its_stderr(tmp_path, monkeypatch):
    script = tmp_path / "exits_3.py"
    script.write_text(textwrap.dedent(EXITS_3))
    monkeypatch.setattr("kclf.backend.is_installed", lambda name: True)
    out = tmp_path / "r"
    assert cli.main(["compare", str(script), "--backends", "jax,torch", "--out", str(out)]) == 1
    exp = json.loads((out / "comparison.json").read_text())["experiments"]["exits_3"]
    assert exp["verdict"] == "failed"
    for run in exp["runs"].values():
        assert (run["status"], run["returncode"]) == ("failed", 3)
        assert run["error"] == "exit 3: loss went NaN at step 4, giving up"
        assert run["stderr_tail"] == ["loss went NaN at step 4, giving up"]
    assert "diverged" not in (out / "comparison.md").read_text()


@pytest.mark.parametrize("separate", [False, True])
def test_a_kclf_run_that_diverged_is_diverged(tmp_path, monkeypatch, separate):
    folder = tmp_path / "experiments"
    folder.mkdir()
    (folder / "diverges.py").write_text(DIVERGES)
    (folder / "first.py").write_text(BATCHED["first.py"].replace("POSITION = 1", "POSITION = 2"))
    monkeypatch.setenv("KCLF_EXPERIMENTS", str(folder))
    out = tmp_path / "r"
    argv = ["compare", "all", "--backends", "jax,torch", "--out", str(out)]
    assert cli.main(argv + ["--separate"] * separate) == 1
    exp = json.loads((out / "comparison.json").read_text())["experiments"]["diverges"]
    assert exp["verdict"] == "failed"
    for run in exp["runs"].values():
        assert (run["status"], run["returncode"], run["batched"]) == ("diverged", 3, not separate)
        assert run["error"].startswith("training run 'main' diverged at step 2")


def test_a_script_named_like_an_experiment_or_another_script_is_refused(fake_script, tmp_path,
                                                                        capsys):
    from kclf import registry

    mine = tmp_path / "my" / "sgd.py"
    mine.parent.mkdir()
    mine.write_text(fake_script.read_text())
    out = tmp_path / "r"
    assert cli.main(["compare", "sgd", str(mine), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"script {mine}: named 'sgd' like the experiment 'sgd' ({registry.get('sgd').path})" in err
    assert err.count("\n") == 1
    other = tmp_path / "other" / "my_script.py"
    other.parent.mkdir()
    other.write_text(fake_script.read_text())
    assert cli.main(["compare", str(fake_script), str(other), "--out", str(out)]) == 2
    assert f"script {other}: named 'my_script' like the script {fake_script}" in capsys.readouterr().err
    assert not out.exists()
    # The same script twice is one target; an experiment's own file is that experiment.
    assert runs.resolve_targets([str(fake_script), str(fake_script)]) == [
        runs.Target("my_script", fake_script.resolve())]
    assert runs.resolve_targets([str(registry.get("sgd").path), "sgd"]) == [runs.Target("sgd")]


def test_a_script_is_judged_by_its_own_tolerance_whatever_its_name(fake_script, tmp_path,
                                                                   monkeypatch):
    iris = tmp_path / "iris.py"
    iris.write_text(fake_script.read_text())
    monkeypatch.setenv("FAKE_PLAN", json.dumps({"jax": "differ@5"}))
    assert cli.main(["compare", str(iris), "--out", str(tmp_path / "r")]) == 1
    exp = json.loads((tmp_path / "r" / "comparison.json").read_text())["experiments"]["iris"]
    assert exp["verdict"] == "differ" and exp["tolerance"]["why"] == DETERMINISTIC.why
    assert exp["pairs"]["jax"]["results"]["judged"] == exp["pairs"]["jax"]["results"]["leaves"]

    declares = tmp_path / "declares.py"
    for declaration, start, expected in (('"iris"', "torch-2026", tolerances.IRIS),
                                         ('{"numpy": "iris", "default": "own-draws"}', "numpy",
                                          tolerances.IRIS),
                                         ('{"numpy": "iris", "default": "own-draws"}', "lecture",
                                          tolerances.OWN_DRAWS),
                                         ('{"tensorflow": "lecture-start", "default": "iris"}',
                                          "tensorflow-2025", tolerances.LECTURE_START)):
        declares.write_text(f"TOLERANCE = {declaration}\n")
        assert tolerances.tolerance_for("iris", start=start, script=declares) is expected, declaration
    declares.write_text("TOLERANCE = 1e-3  # the script's own constant, not a declaration\n")
    with pytest.raises(KclfError, match=f"^{declares}: TOLERANCE 0.001; expected a tolerance name"):
        tolerances.tolerance_for("declares", script=declares)


def test_a_declaration_without_the_start_says_so(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("KCLF_EXPERIMENTS", str(tmp_path))
    mini = tmp_path / "mini.py"
    mini.write_text('NAME = "mini"\nPOSITION = 1\nTOLERANCE = {"numpy": "deterministic"}\n')
    assert cli.main(["compare", "mini", "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert err == ("kclf: error: experiment 'mini': TOLERANCE has no entry for --start torch-2026 "
                   '(only for numpy); expected one for each start it is compared under, or a '
                   '"default"\n')
    assert cli.main(["compare", "mini", "--start", "tensorflow", "--out", str(tmp_path / "o")]) == 1
    assert "no entry for --start tensorflow-2025 (only for numpy)" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
    # An alias is the mode it names; "default" covers the rest.
    mini.write_text('NAME = "mini"\nPOSITION = 1\nTOLERANCE = {"tensorflow": "iris", "default": '
                    '"deterministic"}\n')
    assert tolerances.tolerance_for("mini", start="tensorflow-2025") is tolerances.IRIS
    assert tolerances.tolerance_for("mini", start="torch-2026") is DETERMINISTIC
    # Found when the experiments are read: a key that is no start, a start it offers left out.
    mini.write_text('NAME = "mini"\nPOSITION = 1\nTOLERANCE = {"nmupy": "deterministic"}\n')
    assert cli.main(["list"]) == 1
    assert "TOLERANCE has an entry for 'nmupy', which is no --start mode" in capsys.readouterr().err
    mini.write_text('NAME = "mini"\nPOSITION = 1\nSTART_MODES = ("numpy", "lecture")\n'
                    'TOLERANCE = {"numpy": "deterministic"}\n')
    assert cli.main(["list"]) == 1
    assert "TOLERANCE has no entry for --start lecture, one of its START_MODES" in capsys.readouterr().err


def test_a_start_or_edition_an_experiment_does_not_offer_is_a_usage_error(tmp_path, capsys):
    out = tmp_path / "o"
    assert cli.main(["compare", "lecture", "--start", "numpy", "--out", str(out)]) == 2
    assert ("--start numpy: experiment 'lecture' takes one of: lecture, torch-2026, tensorflow-2025"
            in capsys.readouterr().err)
    assert not out.exists()


STARTS = '''NAME = "starts"
POSITION = 1
START_MODES = ("torch-2026", "numpy")
TOLERANCE = {"numpy": "iris", "torch-2026": "lecture-start"}


def run(ctx):
    return {"final_loss": 0.5, "values": {"printed": 1.25}}
'''


def reused(out, *argv):
    """cli.main's exit code and comparison.json's experiments after a compare into ``out``."""
    code = cli.main(["compare", *argv, "--out", str(out)])
    return code, json.loads((out / "comparison.json").read_text())


def test_reuse_refuses_a_run_made_in_another_start_mode(tmp_path, monkeypatch):
    monkeypatch.setenv("KCLF_EXPERIMENTS", str(tmp_path / "experiments"))
    (tmp_path / "experiments").mkdir()
    (tmp_path / "experiments" / "starts.py").write_text(STARTS)
    out = tmp_path / "r"
    code, data = reused(out, "starts", "--start", "numpy", "--backends", "jax,torch")
    assert code == 0 and data["experiments"]["starts"]["verdict"] == "agree"
    summary = out / "runs" / "starts" / "jax" / "summary.json"
    edited = json.loads(summary.read_text())
    assert edited["settings"]["start"] == "numpy"
    edited["results"]["final_loss"] = 0.9  # judged under numpy, not under torch-2026
    summary.write_text(json.dumps(edited))

    code, data = reused(out, "starts", "--reuse", "--backends", "jax,torch")  # --start torch-2026
    exp = data["experiments"]["starts"]
    assert code == 1 and not data["complete"] and exp["verdict"] == "incomplete"
    for backend in ("jax", "torch"):
        run = exp["runs"][backend]
        assert run["status"] == "not run"
        assert run["error"].startswith("--reuse: made with --start numpy, not torch-2026; expected a run")
        assert run["made"]["start"] == "numpy"
    assert "jax: not run (--reuse: made with --start numpy, not torch-2026" in exp["where"]
    assert "INCOMPLETE" in (out / "comparison.md").read_text()

    code, data = reused(out, "starts", "--reuse", "--start", "numpy", "--backends", "jax,torch")
    assert code == 1 and data["experiments"]["starts"]["verdict"] == "differ"  # the edit, judged

    # What the run says it ran with counts too: its summary.json against its outcome.
    edited["settings"]["start"] = "torch-2026"
    summary.write_text(json.dumps(edited))
    code, data = reused(out, "starts", "--reuse", "--start", "numpy", "--backends", "jax,torch")
    assert code == 1 and "--start torch-2026 (says its summary.json), not numpy" in (
        data["experiments"]["starts"]["runs"]["jax"]["error"])


def test_reuse_refuses_runs_made_with_other_data_devices_or_versions(fake_script, tmp_path,
                                                                    monkeypatch):
    import kclf

    first, same, other = (tmp_path / name for name in ("a.csv", "same.csv", "b.csv"))
    first.write_text("x\n1\n")
    same.write_text("x\n1\n")
    other.write_text("x\n2\n")
    out = tmp_path / "r"
    argv = [str(fake_script), "--backends", "jax,tensorflow"]
    assert reused(out, *argv, "--data", str(first), "--devices", "2")[0] == 0

    code, data = reused(out, *argv, "--reuse", "--data", str(same), "--devices", "2")
    assert code == 0  # the same rows under another name are the same data

    code, data = reused(out, *argv, "--reuse", "--data", str(other))
    error = data["experiments"]["my_script"]["runs"]["jax"]["error"]
    assert code == 1 and error.startswith(f"--reuse: made with --devices 2, not 1; --data {first} "
                                          "(sha256 ")
    assert f", not {other} (sha256 " in error

    monkeypatch.setattr(kclf, "__version__", "99.0")
    monkeypatch.setattr("kclf.backend.package_version", lambda name: "0.0-other")
    code, data = reused(out, *argv, "--reuse", "--data", str(first), "--devices", "2")
    error = data["experiments"]["my_script"]["runs"]["tensorflow"]["error"]
    assert code == 1 and error.startswith("--reuse: made with kclf 0.1.0, not 99.0; keras ")
    assert ", not 0.0-other; tensorflow " in error


def test_reuse_of_a_missing_or_unreadable_run_is_incomplete(fake_script, tmp_path):
    out = tmp_path / "r"
    runs_dir = out / "runs" / "my_script"
    argv = [str(fake_script), "--backends", "torch,jax,tensorflow"]
    assert reused(out, *argv)[0] == 0

    (runs_dir / "jax" / "summary.json").unlink()
    import shutil

    shutil.rmtree(runs_dir / "tensorflow")
    code, data = reused(out, *argv, "--reuse")
    exp = data["experiments"]["my_script"]
    assert code == 1 and not data["complete"] and exp["verdict"] == "incomplete"
    assert exp["runs"]["jax"]["status"] == exp["runs"]["tensorflow"]["status"] == "not run"
    assert exp["runs"]["jax"]["error"].startswith(f"{runs_dir / 'jax' / 'summary.json'}: missing; "
                                                  "expected the files the run wrote")
    assert exp["runs"]["tensorflow"]["error"].startswith(f"{runs_dir / 'tensorflow' / 'summary.json'}: "
                                                         "missing")
    assert data["runs_ok"] == 1

    assert reused(out, *argv)[0] == 0
    (runs_dir / "jax" / "trace.csv").unlink()
    (runs_dir / "tensorflow" / "summary.json").write_text('{"backend": "tenso')
    (runs_dir / "tensorflow.outcome.json").unlink()
    code, data = reused(out, *argv, "--reuse")
    exp = data["experiments"]["my_script"]
    assert code == 1 and exp["verdict"] == "incomplete"
    assert exp["runs"]["jax"]["error"].startswith(
        f"{runs_dir / 'jax' / 'trace.csv'}: missing (its summary.json lists traces)")
    assert exp["runs"]["tensorflow"]["error"] == ("nothing to --reuse: no tensorflow.outcome.json "
                                                  f"in {runs_dir}")


@pytest.mark.parametrize("text, problem", [
    ("{garbage", "not JSON (Expecting property name enclosed in double quotes"),
    ('["ok"]', "a JSON list, not an object"),
    ("colour", "unknown field 'colour'"),
    ("wall_s", "field 'wall_s' is 'fast'"),
    ("backend", "the outcome of 'my_script' on jax, not of 'my_script' on torch"),
])
def test_reuse_names_an_unreadable_outcome(fake_script, tmp_path, text, problem):
    out = tmp_path / "r"
    runs_dir = out / "runs" / "my_script"
    argv = [str(fake_script), "--backends", "jax,torch"]
    assert reused(out, *argv)[0] == 0
    record = runs_dir / "torch.outcome.json"
    fields = json.loads(record.read_text())
    if text == "colour":
        text = json.dumps({**fields, "colour": "blue"})
    elif text == "wall_s":
        text = json.dumps({**fields, "wall_s": "fast"})
    elif text == "backend":
        text = (runs_dir / "jax.outcome.json").read_text()
    record.write_text(text)
    code, data = reused(out, *argv, "--reuse")
    exp = data["experiments"]["my_script"]
    assert code == 1 and exp["verdict"] == "incomplete"
    assert exp["runs"]["torch"]["error"].startswith(f"{record}: {problem}")
    assert exp["runs"]["torch"]["error"].endswith("; expected the outcome an earlier kclf compare "
                                                  "wrote (run it again without --reuse)")
    assert "not run (not run" not in exp["where"]


def test_reuse_refuses_an_outcome_that_recorded_no_settings(fake_script, tmp_path):
    out = tmp_path / "r"
    argv = [str(fake_script), "--backends", "jax,torch"]
    assert reused(out, *argv)[0] == 0
    record = out / "runs" / "my_script" / "torch.outcome.json"
    record.write_text(json.dumps({k: v for k, v in json.loads(record.read_text()).items() if k != "made"}))
    code, data = reused(out, *argv, "--reuse")
    assert code == 1 and data["experiments"]["my_script"]["runs"]["torch"]["error"].startswith(
        "--reuse: made with settings it did not record (an earlier kclf)")


@pytest.mark.parametrize("stop", ["ctrl-c", "timeout"])
def test_a_stopped_run_leaves_no_unfinished_folder(tmp_path, monkeypatch, stop):
    from kclf.compare import schedule

    folder = tmp_path / "experiments"
    folder.mkdir()
    (folder / "hangs.py").write_text(BATCHED["hangs.py"])
    monkeypatch.setenv("KCLF_EXPERIMENTS", str(folder))
    out = tmp_path / "r"
    seen, step = [], schedule._step

    def step_until_staged(running, timeout):
        run = running.folder
        if list(run.parent.glob(f".{run.name}.new-*")):  # kclf run made its fresh folder
            seen.append(run.name)
            if stop == "ctrl-c":
                raise KeyboardInterrupt
            timeout = 0.0
        return step(running, timeout)

    monkeypatch.setattr(schedule, "_step", step_until_staged)
    code = cli.main(["compare", "hangs", "--separate", "--backends", "jax", "--timeout", "60",
                     "--out", str(out)])
    assert code == (130 if stop == "ctrl-c" else 1) and seen
    assert [p.name for p in (out / "runs" / "hangs").iterdir() if p.name.startswith(".")] == []
    status = json.loads((out / "runs" / "hangs" / "jax.outcome.json").read_text())["status"]
    assert status == ("interrupted" if stop == "ctrl-c" else "timeout")


def test_a_device_count_past_the_maximum_is_one_line(tmp_path, capsys, monkeypatch):
    from kclf import devices

    huge = "100000000000000000000"
    out = tmp_path / "o"
    assert exit_code(["compare", "sgd", "--devices", huge, "--backends", "jax,tensorflow",
                      "--out", str(out)]) == 2
    assert capsys.readouterr().err == (f"kclf: error: --devices {huge}: expected a positive number "
                                       f"of devices, at most {devices.MAX_DEVICES}\n")
    assert not out.exists()
    with pytest.raises(KclfError, match=f"at most {devices.MAX_DEVICES}$"):
        devices.environment(int(huge))
    monkeypatch.setenv(devices.ENV, huge)
    with pytest.raises(KclfError, match=f"^KCLF_DEVICES='{huge}' is not a device count"):
        devices.requested()


def test_devices_on_torch_alone_says_torch_has_no_data_parallelism(tmp_path, capsys):
    from kclf import devices

    if devices.torch_has_data_parallel():
        pytest.skip("this Keras gives torch DataParallel")
    out = tmp_path / "o"
    assert exit_code(["compare", "sgd", "--devices", "2", "--backends", "torch", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("kclf: error: --devices 2: keras 3.") and err.count("\n") == 1
    assert ("'s torch backend has no DataParallel (it comes with Keras 3.16) and no other backend is "
            "named in --backends; expected jax or tensorflow for 2 devices (or --devices 1)") in err
    assert not out.exists()


HANGS_WITH_PID = '''NAME = "hangs"
POSITION = 3
TOLERANCE = "deterministic"
import os, time


def run(ctx):
    with open(os.environ["HANG_PID_FILE"], "w") as fh:
        fh.write(str(os.getpid()))
    time.sleep(60)
'''


def test_a_killed_compare_stops_its_runs_and_writes_its_report(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    folder = tmp_path / "experiments"
    folder.mkdir()
    (folder / "hangs.py").write_text(HANGS_WITH_PID)
    pid_file, out = tmp_path / "pid", tmp_path / "r"
    env = dict(os.environ, KCLF_EXPERIMENTS=str(folder), HANG_PID_FILE=str(pid_file))
    proc = subprocess.Popen([sys.executable, "-m", "kclf", "compare", "hangs", "--backends", "jax",
                             "--out", str(out)], env=env, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not pid_file.is_file() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.1)
    time.sleep(0.2)  # the pid is written whole
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    with pytest.raises(ProcessLookupError):  # the run is stopped, not left running on its own
        os.kill(int(pid_file.read_text()), 0)
    data = json.loads((out / "comparison.json").read_text())
    assert data["interrupted"] and data["experiments"]["hangs"]["runs"]["jax"]["status"] == "interrupted"
    assert [p.name for p in (out / "runs" / "hangs").iterdir() if p.name.startswith(".")] == []


@pytest.mark.parametrize("summary, problem", [
    ("[1, 2]", "a JSON list, not an object"),
    ('{"backend": "BACKEND", "status": "fine"}', "status 'fine', not one of ok, diverged"),
    ('{"backend": "BACKEND", "results": [0.5]}', "field 'results' is a list, not an object"),
    ('{"backend": "BACKEND", "traces": {"main": 3}}', "trace 'main' is not an object"),
])
def test_a_summary_kclf_cannot_read_fails_its_run_naming_the_file(tmp_path, monkeypatch, summary,
                                                                  problem):
    script = tmp_path / "writes.py"
    script.write_text("import os\nwith open(os.path.join(os.environ['KCLF_OUT'], 'summary.json'), 'w') "
                      "as fh:\n    fh.write(os.environ['SUMMARY'].replace('BACKEND', "
                      "os.environ['KERAS_BACKEND']) if os.environ['KERAS_BACKEND'] == 'torch' else "
                      "'{\"backend\": \"%s\", \"results\": {}}' % os.environ['KERAS_BACKEND'])\n")
    monkeypatch.setenv("SUMMARY", summary)
    monkeypatch.setattr("kclf.backend.is_installed", lambda name: True)
    code, data = reused(tmp_path / "r", str(script))
    exp = data["experiments"]["writes"]
    assert code == 1 and exp["verdict"] == "failed" and exp["pairs"]["tensorflow"]["verdict"] == "agree"
    error = exp["runs"]["torch"]["error"]
    assert error.startswith(f"{tmp_path / 'r' / 'runs' / 'writes' / 'torch' / 'summary.json'}: {problem}")


def test_results_with_histories_of_another_shape_are_diffed_as_results():

    ref = {"histories": [0.5, 0.25], "values": {"a": 1}}
    assert verdict.where_they_part(ref, ref, None, None, DETERMINISTIC).histories == []
    odd = {"histories": {"fit": {"loss": ["nan", 0.5], "note": ["x"]}}}
    other = {"histories": {"fit": {"loss": [0.25, 0.5], "note": ["y"]}}}
    part = verdict.where_they_part(odd, other, None, None, DETERMINISTIC)
    assert part.histories == [verdict.HistoryParting("fit", "loss", 1, reference=pytest.approx(
        math.nan, nan_ok=True), backend=0.25)]
    assert "history fit/loss from epoch 1 (0.25 vs nan)" in verdict.parting_text(part)
