"""experiments/logistic_forward.py and softmax_forward.py, in-process on each backend.

Keras computes the forward pass; kclf.reference (float64 NumPy) and the slides' rounded
numbers check it to float32 precision.
"""

import json

import numpy as np
import pytest

from kclf import reference
from kclf.data import SLIDES_X

pytestmark = pytest.mark.backend

FLOAT32 = {"rtol": 1e-6, "atol": 1e-7}


@pytest.fixture
def execute(backend_name, tmp_path, capsys):
    """Run an experiment by name; return (summary, exit code, printed text, output folder)."""
    from kclf import registry, runner

    def run(name: str, *, json_mode: bool = False):
        module = registry.load(name)
        summary, code = runner.execute(module, backend_name, tmp_path, json_mode=json_mode)
        return summary, code, capsys.readouterr(), tmp_path

    return run


def assert_summary_on_disk(summary: dict, out) -> None:
    on_disk = json.loads((out / "summary.json").read_text())
    assert on_disk == {k: v for k, v in summary.items() if k != "trace"}
    assert not (out / "trace.csv").exists()  # forward passes record no training trace


def test_logistic_forward_matches_the_reference_and_the_slides(execute, backend_name):
    summary, code, printed, out = execute("logistic-forward")
    assert code == 0
    assert summary["status"] == "ok" and summary["error"] is None
    assert summary["experiment"] == "logistic-forward"
    assert summary["backend"] == backend_name
    results = summary["results"]

    ref_z = reference.linear(SLIDES_X, [[1.0], [2.0]], [-10.0]).ravel()
    np.testing.assert_array_equal(results["z"], [-5.0, 1.0, 7.0])  # exact in float32
    np.testing.assert_allclose(results["y_hat"], reference.sigmoid(ref_z), **FLOAT32)
    np.testing.assert_allclose(results["reference"]["y_hat"], reference.sigmoid(ref_z), rtol=1e-15)
    # The slides: σ(z) ≈ (0.0067, 0.731, 0.9991); printed rounded to 2 decimals.
    np.testing.assert_array_equal(np.round(results["y_hat"], 4), [0.0067, 0.7311, 0.9991])
    np.testing.assert_array_equal(np.round(results["y_hat"], 2), [0.01, 0.73, 1.0])

    assert (out / "sigmoid.png").stat().st_size > 0
    assert summary["figures"] == ["sigmoid.png"]
    assert_summary_on_disk(summary, out)
    for column in ("x_1", "x_2", "y", "z", "y_hat", "reference y_hat", "|diff|"):
        assert column in printed.out


def test_softmax_forward_matches_the_reference_and_the_slides(execute, backend_name):
    summary, code, printed, out = execute("softmax-forward")
    assert code == 0
    assert summary["status"] == "ok"
    assert summary["backend"] == backend_name
    results = summary["results"]

    ref_Z = reference.linear(SLIDES_X, [[1.0, 3.0], [2.0, 4.0]], [-10.0, -20.0])
    np.testing.assert_array_equal(results["Z"], [[-5.0, -9.0], [1.0, 5.0], [7.0, 19.0]])
    np.testing.assert_allclose(results["A"], reference.softmax(ref_Z), **FLOAT32)
    np.testing.assert_allclose(np.sum(results["A"], axis=1), 1.0, rtol=1e-6)
    # The slides: [[9.82e-01, 1.80e-02], [1.80e-02, 9.82e-01], [6.14e-06, 1.00e+00]].
    slides = [["9.82e-01", "1.80e-02"], ["1.80e-02", "9.82e-01"], ["6.14e-06", "1.00e+00"]]
    assert [[f"{a:.2e}" for a in row] for row in results["A"]] == slides
    assert "6.14e-06" in printed.out
    # The slide's data table: one-hot targets y_1, y_2 = (1, 0), (0, 1), (0, 1).
    header = next(line for line in printed.out.splitlines() if "x_1" in line)
    assert header.split() == ["x_1", "x_2", "y_1", "y_2"]
    rows = [line.split() for line in printed.out.splitlines()[printed.out.splitlines().index(header) + 1:][:3]]
    assert rows == [["0", "1", "2", "1", "0"], ["1", "3", "4", "0", "1"], ["2", "5", "6", "0", "1"]]

    assert (out / "softmax.png").stat().st_size > 0
    assert summary["figures"] == ["softmax.png"]
    assert_summary_on_disk(summary, out)


def test_json_mode_prints_nothing_on_stdout(execute):
    summary, code, printed, out = execute("logistic-forward", json_mode=True)
    assert code == 0
    assert printed.out == ""
    assert "y_hat" in printed.err  # the tables went to stderr instead
    assert summary["trace"] == []
    json.dumps(summary, allow_nan=False)  # what kclf run --json prints
