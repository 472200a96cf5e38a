"""The lecture's published numbers and the table that sets a run's values beside them
(kclf.demos.published), the start modes' one-line errors, and where compare says two runs
part (kclf.compare.verdict.where_they_part). No keras here."""

import copy

import numpy as np
import pytest
from _pins import skip_unless_pinned

from kclf.compare import diff, tolerances, verdict
from kclf.compare.verdict import HistoryParting, StepParting
from kclf.demos import cache, published
from kclf.errors import KclfError


def values_from_the_lecture(entries):
    values = {}
    for path, _, value in entries:
        node = values
        *parents, leaf = path.split("/")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = copy.deepcopy(value)
    return values


@pytest.mark.parametrize("demo, edition", [("iris", "2025"), ("stroke", "2025"),
                                           ("iris", "2026"), ("stroke", "2026")])
def test_the_lecture_agrees_with_itself_and_a_changed_number_does_not(demo, edition):
    entries, _, rtol = published.PUBLISHED[(demo, edition)]
    assert rtol == {"2025": 1e-6, "2026": 2e-6}[edition]
    values = values_from_the_lecture(entries)
    if (demo, edition) == ("iris", "2026"):  # printed rounded; the run holds the full values
        values["softmax"]["numpy"] = [0.269, 0.001, 0.731]
    rows = published.check(demo, values, edition)
    assert all(r["agrees"] for r in rows) and len(rows) == len(entries)
    path = "fit_500_epochs/evaluate" if demo == "iris" else "class_weight/evaluate_test"
    changed = published.lookup(values, path)
    changed[0] *= 1 + 2 * rtol  # twice the tolerance
    row = next(r for r in published.check(demo, values, edition) if r["path"] == path)
    assert not row["agrees"] and row["max_rel_diff"] == pytest.approx(2 * rtol, rel=1e-3)
    assert f"✗ differs by {2 * rtol:g}" in published.table([row])


def test_2026_counts_are_compared_whole_and_numpy_printouts_as_printed():
    values = values_from_the_lecture(published.STROKE_2026)
    values["value_counts"]["work_type"]["Never_worked"] = 14
    rows = {r["path"]: r for r in published.check("stroke", values, "2026")}
    assert not rows["value_counts/work_type"]["agrees"]
    assert rows["value_counts/gender"]["agrees"] and rows["val_gender"]["agrees"]
    iris = values_from_the_lecture(published.IRIS_2026)
    iris["softmax"]["numpy"] = [0.269, 0.001, 0.731]  # NumPy prints [0.27 0.   0.73]
    iris["predict"]["probabilities"][0] = [2.0199363e-06, 7.6368824e-02, 9.2362916e-01]
    rows = {r["path"]: r for r in published.check("iris", iris, "2026")}
    assert rows["softmax/numpy"]["agrees"] and rows["predict/probabilities"]["agrees"]
    iris["predict"]["probabilities"][0][0] = 2.0251e-06  # prints 2.03e-06
    rows = {r["path"]: r for r in published.check("iris", iris, "2026")}
    assert not rows["predict/probabilities"]["agrees"]


def test_printed_decimals_missing_values_and_strings():
    values = values_from_the_lecture(published.IRIS)
    values["fit_5_epochs"]["loss"] = [1.35018, 1.28524, 1.23366, 1.19150, 1.15561]
    values["predict"]["names"] = ["versicolor"] * 3 + ["virginica"]
    del values["one_hot"]
    rows = {r["path"]: r for r in published.check("iris", values, "2025")}
    assert rows["fit_5_epochs/loss"]["agrees"]  # the cell prints 4 decimals
    assert not rows["predict/names"]["agrees"]
    assert not rows["one_hot/evaluate"]["agrees"] and rows["one_hot/evaluate"]["value"] is None
    assert published.RTOL == 1e-6


def test_tensorflow_start_without_tensorflow_says_so_in_one_line(monkeypatch, tmp_path):
    import kclf.backend

    monkeypatch.setenv("KCLF_CACHE", str(tmp_path))
    monkeypatch.setattr(kclf.backend, "is_installed", lambda name: name != "tensorflow")
    other = tmp_path / "my-stroke.csv"  # no capture is shipped or cached for this file
    other.write_text("id,stroke\n")
    with pytest.raises(KclfError) as err:
        cache.ensure("stroke", other, "2025")
    message = str(err.value)
    assert "\n" not in message and "needs tensorflow" in message
    assert "pip install 'kclf[tensorflow]'" in message


def test_where_they_part_names_the_step_epoch_and_early_stopping():
    import pandas as pd

    ref = {"values": {"es": {"epochs": 68, "best_epoch": 18}},
           "histories": {"fit": {"loss": [1.0, 0.5, 0.25, 0.125]}}}
    other = {"values": {"es": {"epochs": 70, "best_epoch": 18}},
             "histories": {"fit": {"loss": [1.0, 0.5, 0.2501, 0.13]}}}
    first = diff.QuantityDiff(1e-3, 1e-3, first_step=7, first_run="fit", rtol=3e-5, atol=1e-6)
    traces = diff.TraceDiff({"weights": first})
    frame = pd.DataFrame({"run": ["fit"] * 2, "step": [6, 7], "epoch": [1, 2]})
    part = verdict.where_they_part(ref, other, traces, frame, tolerances.LECTURE_START)
    assert part.steps["weights"] == StepParting(run="fit", step=7, epoch=3)
    assert part.histories == [HistoryParting(fit="fit", metric="loss", epoch=3, reference=0.25,
                                             backend=0.2501)]
    text = verdict.parting_text(part)
    assert "weights from fit 'fit' step 7 (epoch 3)" in text
    assert "early stopping decides otherwise: es/epochs 70 vs 68" in text  # backend vs reference
    same = verdict.where_they_part(ref, ref, diff.TraceDiff({}), frame, tolerances.LECTURE_START)
    assert verdict.parting_text(same).startswith("never beyond tolerance; early stopping decides the same")


def test_demo_tolerance_depends_on_the_start():
    assert tolerances.tolerance_for("iris", start="tensorflow-2025") is tolerances.LECTURE_START
    assert tolerances.tolerance_for("iris", start="torch-2026") is tolerances.LECTURE_START
    assert tolerances.tolerance_for("iris", start="numpy") is tolerances.IRIS
    assert tolerances.tolerance_for("stroke", start="lecture") is tolerances.OWN_DRAWS
    assert tolerances.tolerance_for("sgd", start="tensorflow-2025") is tolerances.DETERMINISTIC
    tol = tolerances.LECTURE_START
    ok = diff.compare_results({"values": {"a": 0.0958622}}, {"values": {"a": 0.0958625}}, tol)
    bad = diff.compare_results({"values": {"a": 0.0958622}}, {"values": {"a": 0.0958822}}, tol)
    assert ok.ok and not bad.ok
    assert not diff.compare_results({"values": {"epochs": 68}}, {"values": {"epochs": 69}},
                                       tol).ok
    assert np.isclose(tol.for_path("values/x")[0], 3e-5)


def test_shipped_captures_are_small_and_found_first(monkeypatch, tmp_path):
    skip_unless_pinned(("keras", "keras"), ("tensorflow", "tensorflow-cpu"))
    monkeypatch.setenv("KCLF_CACHE", str(tmp_path))
    shipped = sorted(cache.FIXTURES.glob("*.npz"))
    assert sum(p.stat().st_size for p in shipped) < 1_000_000
    iris = cache.ensure("iris", None, "2025")  # found without TensorFlow and without a cache
    assert iris.parent == cache.FIXTURES and iris in shipped
    fits, results = cache.load(iris)
    assert [f.label for f in fits][:2] == ["fit_5_epochs", "fit_5_epochs_accuracy"]
    assert results["values"]["early_stopping"]["epochs"] == 68


@pytest.mark.parametrize("damage", ["random bytes", "truncated", "empty", "missing an array",
                                    "pickled"])
def test_a_damaged_capture_is_named_never_unpickled_and_captured_again(damage, tmp_path,
                                                                       monkeypatch):
    import io
    import json

    monkeypatch.setenv("KCLF_CACHE", str(tmp_path / "cache"))
    data = tmp_path / "my-stroke.csv"  # nothing is shipped for it
    data.write_text("id,stroke\n")
    path = cache.cache_path("stroke", data, "2025")
    path.parent.mkdir(parents=True)
    good = io.BytesIO()
    np.savez(good, meta=np.array(json.dumps({"fits": [{"label": "plain", "weights": 2,
                                                        "batch_size": 32, "rows": 4}],
                                              "results": {}})),
             order0=np.zeros((1, 4), "int32"), w0_0=np.zeros(3))
    files = {"random bytes": np.random.default_rng(0).bytes(500),
             "truncated": good.getvalue()[:200], "empty": b"",
             "missing an array": good.getvalue()}
    if damage == "pickled":
        pickled = io.BytesIO()
        np.savez(pickled, meta=np.array([{"fits": []}], dtype=object))
        files[damage] = pickled.getvalue()
    path.write_bytes(files[damage])
    with pytest.raises(cache.DamagedCapture) as err:
        cache.load(path)
    message = str(err.value)
    assert "\n" not in message and str(path) in message and "damaged" in message
    captured = []
    monkeypatch.setattr(cache, "_capture", lambda *args: captured.append(args) or args[2])
    assert cache.ensure("stroke", data, "2025") == path and len(captured) == 1  # made again


@pytest.mark.parametrize("kind", ["a plain file", "not writable"])
def test_an_unusable_cache_folder_is_one_line_naming_kclf_cache(kind, tmp_path, monkeypatch):
    if kind == "a plain file":
        target = tmp_path / "file"
        target.write_text("not a folder")
    else:  # a read-only folder is writable for root: /sys refuses everyone
        target = "/sys/kclf-cache"
    data = tmp_path / "my-stroke.csv"  # nothing is shipped for it
    data.write_text("id,stroke\n")
    monkeypatch.setenv("KCLF_CACHE", str(target))
    with pytest.raises(KclfError) as err:
        cache.ensure("stroke", data, "2026")
    message = str(err.value)
    assert message.startswith("KCLF_CACHE: cannot write captures into") and "\n" not in message
    assert "expected a writable folder" in message
