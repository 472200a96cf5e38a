"""The lecture's demos, cell by cell: on TensorFlow every published number to rtol 1e-6; on
JAX and PyTorch the same cells with the table and the reason they differ; from TensorFlow's
start (--start tensorflow) every backend replays TensorFlow's weights and batch order.

The iris runs take 15-60 s a backend. Stroke needs the Kaggle file (KCLF_STROKE_CSV; .ci/run
sets it when ../shared/data has it) and runs on TensorFlow only (about a minute).
The TensorFlow capture for --start tensorflow is cached in .pytest_cache/kclf-cache, so the
backends' test processes share one capture.
"""

import contextlib
import io
import os
from pathlib import Path

import numpy as np
import pytest

from kclf import registry, runner
from kclf.demos import cache, published, start

pytestmark = pytest.mark.backend

ROOT = Path(__file__).resolve().parent.parent
STROKE_CSV = os.environ.get("KCLF_STROKE_CSV")


CACHE = ROOT / ".pytest_cache" / "kclf-cache"


def backend():
    from kclf.backend import select_backend

    return select_backend(os.environ.get("KERAS_BACKEND"))


def execute(name, out, backend, *, start="lecture", edition="2025", data=None):
    """Run ``name`` in this process as ``kclf run`` would with these settings."""
    printed = io.StringIO()
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("KCLF_QUICK", raising=False)
        patch.setenv("KCLF_CACHE", str(CACHE))
        with contextlib.redirect_stdout(printed):
            summary, code = runner.execute(registry.load(name), backend, out, settings={
                "start": start, "edition": edition, "data": data})
    assert code == 0, summary["error"]
    return summary, printed.getvalue()


@pytest.fixture(scope="module")
def iris_lecture(tmp_path_factory):
    out = tmp_path_factory.mktemp("iris-lecture")
    return (*execute("iris", out, backend()), out)


def test_iris_lecture_run_prints_every_number_beside_the_lecture(iris_lecture, backend_name):
    summary, printed, out = iris_lecture
    results = summary["results"]
    assert results["start"] == "lecture" and results["lecture_total"] == len(published.IRIS) == 13
    assert results["edition"] == "2025"
    assert "13 agree" in printed or f"{results['lecture_agree']} of 13 agree" in printed
    assert "Stopped after" in printed and "model.evaluate(X_test, y_test_oh)" in printed
    assert summary["figures"] == ["fitting_metrics.png"]
    assert (out / "fitting_metrics.png").stat().st_size > 0
    values = results["values"]
    assert values["softmax"]["numpy"] == [0.269, 0.001, 0.731]
    assert values["predict"]["y_test"] == [[2], [2], [1], [1]]
    assert values["predict"]["names"] == [["setosa", "versicolor", "virginica"][i]
                                          for i in values["predict"]["argmax"]]
    if backend_name == "tensorflow":
        return
    assert "Why the numbers differ on " + backend_name in printed
    assert "--start tensorflow-2025" in printed


@pytest.mark.skipif(os.environ.get("KERAS_BACKEND", "tensorflow") != "tensorflow",
                    reason="the lecture's numbers come from the TensorFlow backend")
def test_iris_lecture_numbers_on_tensorflow(iris_lecture):
    results = iris_lecture[0]["results"]
    values = results["values"]
    failing = [r["path"] for r in results["lecture"] if not r["agrees"]]
    assert failing == [] and results["lecture_agree"] == 13
    # The published values themselves, to rtol 1e-6 (the table's rule, checked directly).
    np.testing.assert_allclose(values["fit_500_epochs"]["evaluate"],
                               [0.09586219489574432, 0.9736841917037964], rtol=1e-6)
    np.testing.assert_allclose(values["early_stopping"]["evaluate"],
                               [0.9856260418891907, 0.5263158082962036], rtol=1e-6)
    assert values["early_stopping"]["epochs"] == 68
    np.testing.assert_allclose(values["one_hot"]["evaluate"],
                               [0.3470938205718994, 0.9473684430122375], rtol=1e-6)
    np.testing.assert_allclose(values["predict"]["probabilities"][0],
                               [0.1397096, 0.5175301, 0.34276026], rtol=1e-6)
    assert np.round(values["fit_5_epochs"]["loss"], 4).tolist() == [
        1.3502, 1.2852, 1.2337, 1.1915, 1.1556]


@pytest.mark.skipif(not STROKE_CSV, reason="KCLF_STROKE_CSV is not set (the Kaggle stroke CSV)")
@pytest.mark.skipif(os.environ.get("KERAS_BACKEND", "tensorflow") != "tensorflow",
                    reason="the lecture's numbers come from the TensorFlow backend")
def test_stroke_lecture_numbers_on_tensorflow(tmp_path):
    summary, printed = execute("stroke", tmp_path, "tensorflow", data=STROKE_CSV)
    results = summary["results"]
    failing = [(r["path"], r["value"]) for r in results["lecture"] if not r["agrees"]]
    assert failing == [] and results["lecture_agree"] == len(published.STROKE) == 18
    values = results["values"]
    assert values["confusion"] == {"0.5": [[792, 180], [22, 28]], "0.3": [[662, 310], [10, 40]]}
    assert (values["plain"]["stopped_epoch"], values["class_weight"]["stopped_epoch"]) == (65, 74)
    np.testing.assert_allclose(values["class_weight"]["evaluate_test"],
                               [0.3590189516544342, 0.1449822038412094, 0.8023483157157898,
                                0.7915638089179993], rtol=1e-6)
    assert "Epoch 65: early stopping" in printed and "Total params: 1,217" in printed
    assert summary["figures"] == ["roc_pr_curves.png"]


@pytest.fixture(scope="module")
def iris_replay(tmp_path_factory):
    out = tmp_path_factory.mktemp("iris-replay")
    summary, printed = execute("iris", out, backend(), start="tensorflow-2025")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KCLF_CACHE", str(CACHE))
        fits, captured = cache.load(cache.ensure("iris", None, "2025"))
    return summary, printed, out, fits, captured


def test_replay_starts_from_tensorflows_weights_and_order(iris_replay):
    import pandas as pd

    summary, printed, out, fits, _ = iris_replay
    assert summary["results"]["start"] == "tensorflow-2025"
    assert [f.label for f in fits] == list(summary["traces"]) == [
        "fit_5_epochs", "fit_5_epochs_accuracy", "fit_500_epochs", "early_stopping", "one_hot"]
    # Every epoch of every fit is a permutation of its training rows (84 with the split).
    for fit in fits:
        rows = 84 if fit.label in ("fit_500_epochs", "early_stopping") else 112
        assert fit.orders.shape[1] == rows
        assert (np.sort(fit.orders, axis=1) == np.arange(rows)).all()
    trace = pd.read_csv(out / "trace.csv")
    for fit in fits:  # step 1's weights before the update are TensorFlow's, bit for bit
        first = trace[(trace["run"] == fit.label) & (trace["step"] == 1)]
        recorded = np.concatenate([first[first["variable"] == v]["weight_before"].to_numpy("float32")
                                   for v in dict.fromkeys(first["variable"])])
        assert np.array_equal(recorded, np.concatenate([w.ravel() for w in fit.weights]))
    steps = summary["traces"]
    assert steps["fit_5_epochs"]["steps"] == 20  # 4 batches x 5 epochs, every step recorded
    assert "only arithmetic" in printed or "What can still differ is float32 arithmetic" in printed


def test_replay_agrees_with_tensorflows_lecture_run(iris_replay, backend_name):
    """The capture's own TensorFlow values against this backend's replay, at the tolerance
    kclf compare judges them by (kclf.compare.tolerances.LECTURE_START: 3e-5, 10x the measured)."""
    from kclf.compare.tolerances import LECTURE_START

    summary, _, _, _, captured = iris_replay
    values = summary["results"]["values"]
    rtol, atol, judged = LECTURE_START.for_path("values/fit_500_epochs/evaluate/0")
    assert judged
    for path in ("fit_5_epochs/loss", "fit_500_epochs/evaluate", "early_stopping/evaluate",
                 "predict/probabilities", "one_hot/evaluate"):
        np.testing.assert_allclose(published.lookup(values, path),
                                   published.lookup(captured["values"], path), rtol=rtol, atol=atol)
    assert values["early_stopping"]["epochs"] == captured["values"]["early_stopping"]["epochs"] == 68
    if backend_name == "tensorflow":  # replaying TensorFlow on TensorFlow: the lecture, exactly
        assert summary["results"]["lecture_agree"] == 13


@pytest.mark.skipif(os.environ.get("KERAS_BACKEND", "tensorflow") != "tensorflow",
                    reason="the capture records TensorFlow's own data pipeline")
def test_a_captured_fit_replays_bit_for_bit_on_tensorflow(tmp_path):
    """Capture records the initial weights and each epoch's row order (also the epochs an
    early stop skipped); Replay, fed those, repeats the fit exactly, with a trace on."""
    import keras

    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 3))
    y = (x[:, :1] + x[:, 1:2] > 0).astype("int64")

    def fit(starter):
        keras.utils.set_random_seed(3)
        model = keras.Sequential([keras.layers.Dense(4, activation="relu"),
                                  keras.layers.Dense(2, activation="softmax")])
        model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
        stop = keras.callbacks.EarlyStopping(monitor="val_accuracy", patience=2)
        return starter.fit("small", model, x, y, epochs=12, batch_size=8, validation_split=0.2,
                           callbacks=[stop], verbose=0).history

    capture = start.Capture()
    captured = fit(capture)
    orders = capture.fits[0].orders
    assert orders.shape == (12, 40)  # 12 epochs of the 40 training rows, however many ran
    assert (np.sort(orders, axis=1) == np.arange(40)).all()
    path = tmp_path / "small.npz"
    cache.save(path, capture.fits, {"history": captured})
    fits, saved = cache.load(path)
    assert saved["history"]["loss"] == captured["loss"]
    replay = start.Replay(fits)
    replayed = fit(replay)
    assert replayed == captured
    assert replay.traces["small"].steps_recorded == 5 * len(captured["loss"])
