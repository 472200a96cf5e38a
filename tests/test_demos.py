"""The classification demos' NumPy-seeded runs (--start numpy) and cross-entropy-vs-mse run
on this backend, write their figures and summary, and repeat themselves exactly; stroke's bad
inputs fail cleanly. (The lecture's own runs: test_lecture_demos.py.)

They run in quick mode (KCLF_QUICK=1: 30 epochs, patience 5) so the file stays fast.
"""

import contextlib
import io
import os
import subprocess

import numpy as np
import pytest

from kclf import registry, runner
from kclf.backend import select_backend
from kclf.demo_data import synthetic_stroke, write_stroke_csv

pytestmark = pytest.mark.backend


@pytest.fixture(autouse=True)
def quick(monkeypatch):
    monkeypatch.setenv("KCLF_QUICK", "1")


def execute(name, out, *, start="numpy", data=None):
    """Run an experiment in this process (--start numpy unless ``start``); return its summary,
    exit code and printed text."""
    backend = select_backend(os.environ.get("KERAS_BACKEND"))
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        summary, code = runner.execute(registry.load(name), backend, out,
                                       settings={"start": start, "data": data})
    return summary, code, printed.getvalue()


@pytest.fixture(scope="module")
def iris_run(tmp_path_factory):
    """One quick iris run shared by the tests below (each run trains four models)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KCLF_QUICK", "1")
        out = tmp_path_factory.mktemp("iris")
        return (*execute("iris", out), out)


def test_iris_runs_writes_figures_and_names_the_predictions(iris_run):
    summary, code, printed, out = iris_run
    assert code == 0 and summary["status"] == "ok"
    assert summary["figures"] == ["learning_curves.png", "confusion_matrix.png"]
    for name in summary["figures"] + ["summary.json", "trace.csv"]:
        assert (out / name).stat().st_size > 0
    results = summary["results"]
    assert set(results["first_predictions"]) <= {"setosa", "versicolor", "virginica"}
    assert len(results["first_predictions"]) == 5
    early = results["early_stopping"]
    assert 1 <= early["best_epoch"] <= early["stopped_epoch"] <= 30
    assert summary["traces"]["plain"]["steps"] > 0
    assert "quick mode" in printed


def test_iris_onehot_and_logits_variants_match_the_plain_run(iris_run):
    # One-hot targets with categorical cross-entropy are the same loss as sparse labels,
    # and from_logits only moves the softmax into the loss: same start, same numbers.
    results = iris_run[0]["results"]
    for variant in ("onehot", "from_logits"):
        assert results[variant]["test_loss"] == pytest.approx(results["test_loss"], rel=1e-4)
        assert results[variant]["test_accuracy"] == results["test_accuracy"]


def test_iris_rerun_is_identical(iris_run, tmp_path):
    again, _, _ = execute("iris", tmp_path)
    assert again["results"] == iris_run[0]["results"]


def test_stroke_synthetic_says_so_everywhere(tmp_path):
    summary, code, printed = execute("stroke", tmp_path)
    assert code == 0 and summary["status"] == "ok"
    results = summary["results"]
    assert results["synthetic"] is True and results["n_rows"] == 5110
    for run in ("plain", "class_weight"):
        for split in ("val", "test"):
            assert set(results[run][split]) == {"loss", "pr_auc", "auc", "accuracy"}
            assert 0 <= results[run][split]["pr_auc"] <= 1
        counts = results[run]["thresholds"]["0.3"]
        assert sum(counts.values()) == 1022
    # Weighting strokes 10 times makes the model call more of them at 0.5.
    tp = {run: results[run]["thresholds"]["0.5"]["tp"] for run in ("plain", "class_weight")}
    assert tp["class_weight"] >= tp["plain"]
    headers = [line for line in printed.splitlines() if line.startswith("## ")]
    assert headers and all("(synthetic data)" in line for line in headers)
    assert summary["figures"] == ["roc_pr_curves.png", "confusion_matrices.png"]
    for name in summary["figures"]:
        assert (tmp_path / name).stat().st_size > 0


def test_stroke_reads_a_csv_in_the_kaggle_schema(tmp_path):
    path = write_stroke_csv(synthetic_stroke(n=600, seed=5), tmp_path / "stroke.csv")
    summary, code, printed = execute("stroke", tmp_path / "out", data=path)
    assert code == 0 and summary["status"] == "ok"
    assert summary["results"]["synthetic"] is False and summary["results"]["n_rows"] == 600
    assert "synthetic data" not in printed and f"source: {path}" in printed


@pytest.mark.parametrize("start", ["numpy", "lecture"])
def test_stroke_bad_file_fails_in_one_line_and_writes_no_figures(start, tmp_path):
    bad = tmp_path / "bad.csv"
    write_stroke_csv(synthetic_stroke(n=50), bad)
    bad.write_text(bad.read_text().replace("id,", "patient,", 1))
    out = tmp_path / "out"
    summary, code, _ = execute("stroke", out, start=start, data=bad)
    assert code == 1 and summary["status"] == "failed"
    assert summary["error"] == (
        f"file {bad}: column 'id': missing; expected the Kaggle stroke CSV with columns "
        "id, gender, age, hypertension, heart_disease, ever_married, work_type, "
        "Residence_type, avg_glucose_level, bmi, smoking_status, stroke"
    )
    assert sorted(p.name for p in out.iterdir()) == ["summary.json"]


def test_kclf_run_stroke_missing_file_is_one_line(backend_name, tmp_path, kclf_cmd):
    missing = tmp_path / "nope.csv"
    done = subprocess.run(
        kclf_cmd + ["run", "stroke", "--backend", backend_name, "--data", str(missing),
                    "--out", str(tmp_path / "out"), "--json"],
        capture_output=True, text=True,
    )
    assert done.returncode == 2  # a usage error, caught before anything runs
    errors = [line for line in done.stderr.splitlines() if line.startswith("kclf: error:")]
    assert errors == [f"kclf: error: --data: file {missing}: not found; expected the Kaggle stroke "
                      "CSV with columns id, gender, age, hypertension, heart_disease, ever_married, "
                      "work_type, Residence_type, avg_glucose_level, bmi, smoking_status, stroke"]
    assert done.stdout == "" and not (tmp_path / "out").exists()


def test_cross_entropy_vs_mse_matches_the_formulas(tmp_path):
    summary, code, printed = execute("cross-entropy-vs-mse", tmp_path)
    assert code == 0 and summary["figures"] == ["cross_entropy_vs_mse.png"]
    r = {k: np.array(v) for k, v in summary["results"].items()}
    np.testing.assert_allclose(r["keras_mse"], (1 - r["p"]) ** 2, atol=1e-6)
    np.testing.assert_allclose(r["keras_binary_crossentropy"], -np.log(r["p"]), atol=1e-5)
    assert "negative log-likelihood" in printed
