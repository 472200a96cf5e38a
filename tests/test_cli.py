"""The kclf command, as a user runs it: ``python -m kclf`` in a subprocess.

Only four of these subprocesses import keras (logistic-forward once per backend and
softmax-forward once); the error paths and the runner's output handling use small
experiments written into a temporary folder (KCLF_EXPERIMENTS) that never import keras.
"""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from kclf import reference
from kclf.data import SLIDES_X

SLIDES_Z = [-5.0, 1.0, 7.0]
SLIDES_Y_HAT = [0.0066929, 0.7310586, 0.9990889]  # σ(z) to 7 decimals
SIGMOID_Z = [0.006692850924, 0.7310585786300, 0.9990889488056]  # σ(−5), σ(1), σ(7)
JSON_KEYS = {"experiment", "backend", "versions", "results", "trace"}


def kclf(*args: str, cwd: Path | None = None, **env: str) -> subprocess.CompletedProcess:
    """Run ``python -m kclf ARGS``; KERAS_BACKEND is cleared unless given."""
    environ = {k: v for k, v in os.environ.items() if k not in ("KERAS_BACKEND", "KCLF_EXPERIMENTS")}
    environ.update(env)
    return subprocess.run(
        [sys.executable, "-m", "kclf", *args],
        capture_output=True,
        text=True,
        env=environ,
        cwd=cwd,
        timeout=300,
    )


def assert_one_line_error(done: subprocess.CompletedProcess) -> str:
    assert "Traceback" not in done.stderr, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("kclf: error: ")
    return lines[0]


@pytest.fixture
def fake_experiments(tmp_path):
    """A KCLF_EXPERIMENTS folder with experiments that exercise the runner without keras."""
    folder = tmp_path / "experiments"
    folder.mkdir()
    scripts = {
        "chatty.py": """
            import math
            NAME = "chatty"
            POSITION = 1
            TOLERANCE = "deterministic"
            DESCRIPTION = "prints through ctx and print(), returns a NaN"
            def run(ctx):
                ctx.print("through ctx")
                print("through print")
                return {"value": 1.5, "missing": math.nan, "items": (1, 2)}
            """,
        "refuses.py": """
            from kclf.errors import KclfError
            NAME = "refuses"
            POSITION = 2
            TOLERANCE = "deterministic"
            DESCRIPTION = "raises a KclfError"
            def run(ctx):
                ctx.print("started")
                raise KclfError("data file not found; expected --data PATH")
            """,
        "crashes.py": """
            NAME = "crashes"
            POSITION = 3
            TOLERANCE = "deterministic"
            DESCRIPTION = "raises an error that is not a KclfError"
            def run(ctx):
                raise ValueError("weights kernel has shape (3, 1); expected (2, 1)")
            """,
        "_helper.py": 'NAME = "hidden"\n',
        "no_name.py": "x = 1\n",
    }
    for filename, text in scripts.items():
        (folder / filename).write_text(textwrap.dedent(text))
    return folder


# --- list and info -------------------------------------------------------------


def test_list_shows_the_experiments_with_descriptions():
    done = kclf("list")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    by_name = {line.split()[0]: line for line in lines}
    names = list(by_name)
    assert names.index("logistic-forward") < names.index("softmax-forward")  # the slides' order
    assert "Dense+sigmoid forward pass" in by_name["logistic-forward"]
    assert "Dense+softmax forward pass" in by_name["softmax-forward"]


def test_list_names_and_the_experiments_folder_variable(fake_experiments):
    done = kclf("list", "--names", KCLF_EXPERIMENTS=str(fake_experiments))
    assert done.returncode == 0, done.stderr
    # Scripts starting with _ and scripts without NAME are not experiments.
    assert done.stdout.split() == ["chatty", "refuses", "crashes"]  # by POSITION


def test_list_and_info_do_not_import_keras():
    code = ("import sys, contextlib, io\n"
            "from kclf.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()) as out:\n"
            "    codes = main(['list']), main(['info'])\n"
            "print(codes, 'logistic-forward' in out.getvalue(), 'keras' in sys.modules)")
    environ = {k: v for k, v in os.environ.items() if k not in ("KERAS_BACKEND", "KCLF_EXPERIMENTS")}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environ,
                          timeout=120)
    assert done.stdout.split() == ["(0,", "0)", "True", "False"], done.stderr


def test_info_lists_the_three_backends():
    done = kclf("info")
    assert done.returncode == 0, done.stderr
    rows = {line.split()[0]: line.split()[1] for line in done.stdout.splitlines()}
    assert {"kclf", "python", "keras", "jax", "tensorflow", "torch"} <= set(rows)
    for name in ("jax", "tensorflow", "torch"):
        assert rows[name][0].isdigit(), done.stdout


# --- usage errors: one line on stderr, never a traceback ------------------------


def test_unknown_experiment_exits_2_with_one_line():
    done = kclf("run", "no-such-experiment", "--backend", "jax")
    assert done.returncode == 2
    line = assert_one_line_error(done)
    assert "'no-such-experiment'" in line
    assert "logistic-forward" in line and "softmax-forward" in line
    assert done.stdout == ""


def test_unknown_backend_exits_nonzero_with_one_line():
    done = kclf("run", "logistic-forward", "--backend", "mxnet")
    assert done.returncode != 0
    line = assert_one_line_error(done)
    assert "'mxnet'" in line and "jax, tensorflow, torch" in line


def test_unknown_option_exits_2_with_one_line():
    done = kclf("run", "logistic-forward", "--no-such-option")
    assert done.returncode == 2
    assert "--no-such-option" in assert_one_line_error(done)


def test_missing_experiments_folder_is_one_line(tmp_path):
    done = kclf("list", KCLF_EXPERIMENTS=str(tmp_path / "absent"))
    assert done.returncode == 1
    assert "KCLF_EXPERIMENTS" in assert_one_line_error(done)


def test_no_command_prints_help_and_exits_2():
    done = kclf()
    assert done.returncode == 2
    assert "usage: kclf" in done.stdout


# --- what run writes (the runner, through the CLI, without keras) ---------------


def test_json_mode_keeps_stdout_to_one_json_object(fake_experiments, tmp_path):
    out = tmp_path / "out"
    done = kclf(
        "run", "chatty", "--backend", "jax", "--json", "--out", str(out),
        KCLF_EXPERIMENTS=str(fake_experiments),
    )
    assert done.returncode == 0, done.stderr
    payload = json.loads(done.stdout)
    assert payload["results"] == {"value": 1.5, "missing": "nan", "items": [1, 2]}
    assert payload["status"] == "ok" and "error" not in payload
    assert "through ctx" in done.stderr and "through print" in done.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["results"] == payload["results"]
    assert summary["experiment"] == "chatty" and summary["backend"] == "jax"


def test_run_writes_into_results_name_backend_by_default(fake_experiments, tmp_path):
    done = kclf(
        "run", "chatty", "--backend", "pytorch", cwd=tmp_path,
        KCLF_EXPERIMENTS=str(fake_experiments),
    )
    assert done.returncode == 0, done.stderr
    assert "# chatty — prints through ctx and print(), returns a NaN" in done.stdout
    assert "through ctx" in done.stdout
    summary = json.loads((tmp_path / "results" / "chatty" / "torch" / "summary.json").read_text())
    assert summary["backend"] == "torch"
    assert summary["status"] == "ok" and summary["error"] is None
    assert set(summary["timing"]) == {"startup_s", "experiment_s"}


def test_experiment_error_is_one_line_and_the_summary_is_still_written(fake_experiments, tmp_path):
    out = tmp_path / "out"
    done = kclf(
        "run", "refuses", "--backend", "jax", "--out", str(out),
        KCLF_EXPERIMENTS=str(fake_experiments),
    )
    assert done.returncode == 1
    line = assert_one_line_error(done)
    assert "data file not found" in line
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "failed"
    assert summary["error"] == "data file not found; expected --data PATH"


def test_experiment_crash_is_one_line_and_the_summary_is_still_written(fake_experiments, tmp_path):
    out = tmp_path / "out"
    done = kclf(
        "run", "crashes", "--backend", "jax", "--out", str(out),
        KCLF_EXPERIMENTS=str(fake_experiments),
    )
    assert done.returncode == 1
    assert "expected (2, 1)" in assert_one_line_error(done)
    assert json.loads((out / "summary.json").read_text())["status"] == "failed"


# --- the forward experiments on each backend (these import keras) ---------------


@pytest.mark.parametrize("backend", ["jax", "tensorflow", "torch"])
def test_run_logistic_forward_json(backend, tmp_path):
    done = kclf("run", "logistic-forward", "--backend", backend, "--json", "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr
    payload = json.loads(done.stdout)  # the whole of stdout is one JSON object
    assert JSON_KEYS <= set(payload)
    assert payload["experiment"] == "logistic-forward"
    assert payload["backend"] == backend
    assert payload["status"] == "ok"
    assert backend in payload["versions"] and "keras" in payload["versions"]
    assert payload["trace"] == []
    results = payload["results"]
    np.testing.assert_allclose(results["z"], SLIDES_Z, rtol=1e-6)
    np.testing.assert_allclose(results["y_hat"], SIGMOID_Z, rtol=1e-6)  # float32 precision
    np.testing.assert_allclose(results["y_hat"], SLIDES_Y_HAT, rtol=1e-6, atol=5e-8)
    expected = reference.sigmoid(reference.linear(SLIDES_X, [[1.0], [2.0]], [-10.0])).ravel()
    np.testing.assert_allclose(results["y_hat"], expected, rtol=1e-6, atol=1e-7)
    assert (tmp_path / "sigmoid.png").stat().st_size > 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["results"] == results
    assert summary["figures"] == ["sigmoid.png"]


def test_run_softmax_forward_prints_the_slides_table(tmp_path):
    done = kclf("run", "softmax-forward", "--backend", "jax", "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert "# softmax-forward" in done.stdout
    assert "# backend: jax" in done.stdout
    assert "6.14e-06" in done.stdout
    summary = json.loads((tmp_path / "summary.json").read_text())
    np.testing.assert_allclose(
        summary["results"]["A"], [[0.982, 0.018], [0.018, 0.982], [6.14e-06, 1.0]], rtol=2e-3
    )
    assert (tmp_path / "softmax.png").stat().st_size > 0


# --- arguments checked before anything runs; one run's files per folder ---------


def test_a_run_replaces_its_folder_whole(fake_experiments, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    for name in ("summary.json", "trace.csv", "old.png"):  # an earlier run's files
        (out / name).write_text("from an earlier run\n")
    done = kclf("run", "refuses", "--backend", "jax", "--out", str(out), KCLF_EXPERIMENTS=str(fake_experiments))
    assert done.returncode == 1
    assert sorted(p.name for p in out.iterdir()) == ["summary.json"]  # nothing of the older run
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no staging left


def test_out_is_checked_before_anything_runs(fake_experiments, tmp_path):
    a_file = tmp_path / "a_file"
    a_file.write_text("mine\n")
    for out, says in ((a_file, f"{a_file} is a file, not a folder"),
                      (a_file / "sub", f"{a_file / 'sub'}: {a_file} is a file, not a folder"),
                      (Path("/proc/x"), "/proc/x: /proc cannot be written")):
        done = kclf("run", "chatty", "--backend", "jax", "--out", str(out), KCLF_EXPERIMENTS=str(fake_experiments))
        assert done.returncode == 2, done.stderr
        line = assert_one_line_error(done)
        assert f"--out {says}" in line and "expected a folder" in line
        assert "through ctx" not in done.stdout
    assert a_file.read_text() == "mine\n"


def test_an_empty_backend_is_a_usage_error(fake_experiments):
    done = kclf("run", "chatty", "--backend", "", KCLF_EXPERIMENTS=str(fake_experiments), KERAS_BACKEND="jax")
    assert done.returncode == 2
    assert "unknown backend ''" in assert_one_line_error(done)
    done = kclf("run", "chatty", "--backend", "mxnet", KCLF_EXPERIMENTS=str(fake_experiments))
    assert done.returncode == 2


def test_data_for_an_experiment_that_reads_none_is_a_usage_error(fake_experiments, tmp_path):
    data = tmp_path / "x.csv"
    data.write_text("a\n1\n")
    done = kclf("run", "chatty", "--data", str(data), "--out", str(tmp_path / "o"),
                KCLF_EXPERIMENTS=str(fake_experiments))
    assert done.returncode == 2
    assert f"--data {data}: chatty reads no data file" in assert_one_line_error(done)
    assert not (tmp_path / "o").exists()


def test_a_bad_stroke_csv_fails_before_training_and_keeps_the_folder(tmp_path):
    from kclf.demo_data import synthetic_stroke, write_stroke_csv

    frame = synthetic_stroke(50)
    frame["bmi"] = np.nan  # every bmi "N/A": the feature would silently vanish
    data = write_stroke_csv(frame, tmp_path / "no_bmi.csv")
    out = tmp_path / "good"
    out.mkdir()
    for name in ("summary.json", "trace.csv", "roc.png"):
        (out / name).write_text("a good run\n")
    done = kclf("run", "stroke", "--backend", "jax", "--data", str(data), "--out", str(out))
    assert done.returncode == 2
    line = assert_one_line_error(done)
    assert "column 'bmi': no values at all" in line and str(data) in line
    assert done.stdout == ""  # nothing ran
    assert sorted(p.name for p in out.iterdir()) == ["roc.png", "summary.json", "trace.csv"]
    assert (out / "summary.json").read_text() == "a good run\n"


def test_results_json_cannot_hold_fail_the_run_in_one_line(tmp_path):  # through kclf run
    folder = tmp_path / "experiments"
    folder.mkdir()
    (folder / "odd.py").write_text(textwrap.dedent("""
        NAME = "odd"
        POSITION = 1
        TOLERANCE = "deterministic"
        def run(ctx):
            return {"ids": {3, 1, 2}, "inf": float("inf"), "object": object()}
        """))
    out = tmp_path / "out"
    done = kclf("run", "odd", "--backend", "jax", "--out", str(out), KCLF_EXPERIMENTS=str(folder))
    assert done.returncode == 1
    assert "results/object: a object cannot be written as JSON" in assert_one_line_error(done)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "failed" and summary["results"] == {}


def test_a_folder_no_run_wrote_is_never_replaced(fake_experiments, tmp_path):  # the folder contract
    mine = tmp_path / "project"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine\n")
    for out, cwd, says in ((mine, tmp_path, "holds files no kclf run wrote (no summary.json)"),
                           (Path("."), mine, "holds the current folder")):
        done = kclf("run", "chatty", "--backend", "jax", "--out", str(out), cwd=cwd,
                    KCLF_EXPERIMENTS=str(fake_experiments))
        assert done.returncode == 2
        assert says in assert_one_line_error(done)
    assert sorted(p.name for p in mine.iterdir()) == ["notes.txt"]


def test_editions_pick_the_edition_backend_for_the_demos_only():
    """--edition: the demos default to the edition's backend; the optimisation experiments,
    whose functions belong to no backend, keep $KERAS_BACKEND's default."""
    from argparse import Namespace

    from kclf import registry
    from kclf.cli import _settings

    def settings(name, edition=None):
        return _settings(registry.get(name), Namespace(start=None, edition=edition, data=None))

    for name in ("gradient-descent-pitfalls", "minibatch-noise"):
        assert settings(name) == ({"start": "lecture", "edition": "2026", "data": None}, None)
        assert settings(name, "2025")[0]["edition"] == "2025"
        assert settings(name, "2025")[1] is None
    assert settings("iris")[1] == "torch" and settings("iris", "2025")[1] == "tensorflow"
