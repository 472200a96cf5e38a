"""kclf.trace_store: the trace's host side without Keras (variable lookup, step selection,
storage), and kclf._keras_api's version check."""

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from kclf.trace import store as trace_store

PATHS = ["sequential_3/dense/kernel", "sequential_3/dense/bias",
         "sequential_3/dense_1/kernel", "sequential_3/dense_1/bias"]


def test_importing_the_store_and_the_api_module_does_not_import_keras():
    code = "import sys, kclf.trace.store, kclf.trace.keras_api; print('keras' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("name, expected", [
    ("sequential_3/dense/kernel", ["sequential_3/dense/kernel"]),  # a path
    ("sequential_3", PATHS),  # a path prefix: the model
    ("sequential_3/dense_1", PATHS[2:]),  # a layer's path
    ("dense", PATHS[:2]),  # a layer name, not dense_1's
    ("dense_1", PATHS[2:]),
    ("dense/kernel", ["sequential_3/dense/kernel"]),  # the end of a path
    ("dense_1/bias", ["sequential_3/dense_1/bias"]),
    ("dens", []),
])
def test_matches_paths_prefixes_layer_names_and_path_ends(name, expected):
    assert trace_store.matches(name, PATHS) == expected


@pytest.mark.parametrize("name", ["kernel", "bias"])
def test_a_name_ending_several_paths_is_ambiguous_and_lists_them(name):
    with pytest.raises(LookupError, match="ambiguous") as error:
        trace_store.matches(name, PATHS)
    assert f"dense/{name}" in str(error.value) and f"dense_1/{name}" in str(error.value)


def test_a_layer_name_shared_by_two_layers_is_ambiguous():
    paths = ["encoder/dense/kernel", "decoder/dense/kernel"]
    with pytest.raises(LookupError, match="encoder/dense"):
        trace_store.matches("dense", paths)
    assert trace_store.matches("decoder/dense", paths) == ["decoder/dense/kernel"]


def test_resolve_keeps_model_order_and_names_the_unknown():
    assert trace_store.resolve(["dense_1/bias", "dense"], PATHS) == PATHS[:2] + PATHS[3:]
    assert trace_store.resolve("dense_1", PATHS) == PATHS[2:]
    with pytest.raises(ValueError, match=r"\['nope'\] not in the model") as error:
        trace_store.resolve(["dense", "nope"], PATHS)
    assert PATHS[0] in str(error.value)
    with pytest.raises(ValueError, match="ambiguous"):
        trace_store.resolve(["kernel"], PATHS)


@pytest.mark.parametrize("variables", [[1], [None], 42, 4.5, [b"dense"], b"dense", ["dense", 1], object()],
                         ids=repr)
def test_a_selector_that_is_not_strings_is_a_one_line_type_error(variables):  # issue 17, item 10
    from kclf.errors import KclfError

    with pytest.raises(TypeError, match="expected") as error:
        trace_store.check_selector(variables)
    assert isinstance(error.value, KclfError) and "\n" not in str(error.value)


@pytest.mark.parametrize("variables", [[], (), "", [""], ["dense", "/"]], ids=repr)
def test_a_selector_that_names_nothing_is_a_one_line_value_error(variables):  # issue 17, item 10
    from kclf.errors import KclfError

    with pytest.raises(ValueError, match="expected") as error:
        trace_store.check_selector(variables)
    assert isinstance(error.value, KclfError) and "\n" not in str(error.value)


def test_a_selector_is_kept_as_names_once_or_as_the_callable():
    assert trace_store.check_selector(None) is None
    assert trace_store.check_selector("dense") == ("dense",)
    assert trace_store.check_selector(name for name in ["dense", "dense_1"]) == ("dense", "dense_1")
    assert trace_store.check_selector({"dense"}) == ("dense",)
    chooser = lambda variable: True  # noqa: E731
    assert trace_store.check_selector(chooser) is chooser


def test_lookup_finds_one_variable_or_lists_the_candidates():
    assert trace_store.lookup("dense/kernel", PATHS) == 0
    assert trace_store.lookup("sequential_3/dense_1/bias", PATHS) == 3
    with pytest.raises(KeyError, match="give one"):
        trace_store.lookup("dense", PATHS)  # a layer: two variables
    with pytest.raises(KeyError, match="not recorded"):
        trace_store.lookup("output/kernel", PATHS)
    with pytest.raises(KeyError, match="dense_1/kernel"):
        trace_store.lookup("kernel", PATHS)


def test_select_keeps_every_kth_step_and_the_first_non_finite_one():
    steps = np.arange(1, 11)
    bad = np.zeros(10, bool)
    keep, first = trace_store.select(steps, bad, 3, stop_on_divergence=True, diverged=False)
    np.testing.assert_array_equal(steps[keep], [1, 4, 7, 10]) and first is None
    bad[4:] = True  # step 5 first
    keep, first = trace_store.select(steps, bad, 3, stop_on_divergence=True, diverged=False)
    assert first == 4
    np.testing.assert_array_equal(steps[keep], [1, 4, 5])
    keep, first = trace_store.select(steps, bad, 3, stop_on_divergence=False, diverged=False)
    np.testing.assert_array_equal(steps[keep], [1, 4, 5, 7, 10])
    keep, first = trace_store.select(steps, bad, 1, stop_on_divergence=True, diverged=True)
    assert not keep.any() and first is None  # stopping: nothing after an earlier divergence
    keep, first = trace_store.select(steps, bad, 1, stop_on_divergence=False, diverged=True)
    assert keep.all() and first is None  # reported once


def test_non_finite_looks_at_the_loss_and_the_gradients_only():
    sizes = [2, 1]  # a row: 3 before, 3 gradients, 3 after, learning rate, loss
    rows = np.zeros((4, 11), "float32")
    rows[1, 0] = np.nan  # a weight before: not a divergence of this step
    rows[2, 4] = np.inf  # a gradient
    rows[3, -1] = np.nan  # the loss
    np.testing.assert_array_equal(trace_store.non_finite(rows, sizes), [False, False, True, True])


def _rows(steps, sizes):
    width = 3 * sum(sizes) + 2
    return np.arange(len(steps) * width, dtype="float32").reshape(len(steps), width) + 1000 * np.asarray(steps)[:, None]


def test_store_joins_its_chunks_and_builds_the_frame_in_step_order():
    sizes = [2, 1]
    store = trace_store.Store(sizes)
    store.append(_rows([1, 2], sizes), 0, [1, 2], 0, [0, 1])
    store.append(_rows([3], sizes), 1, [3], 0, [0])
    assert store.n == 3
    np.testing.assert_array_equal(store.meta("step"), [1, 2, 3])
    np.testing.assert_array_equal(store.meta("fit"), [0, 0, 1])
    rows = np.concatenate([_rows([1, 2], sizes), _rows([3], sizes)])
    np.testing.assert_array_equal(store.values("before", 1), rows[:, 2:3])
    np.testing.assert_array_equal(store.values("grad", 0), rows[:, 3:5])
    np.testing.assert_array_equal(store.values("after", 1), rows[:, 8:9])
    np.testing.assert_array_equal(store.lr, rows[:, 9])
    np.testing.assert_array_equal(store.loss, rows[:, 10])

    frame = pd.DataFrame(store.frame_data(["a/kernel", "a/bias"], with_fit=True))
    assert list(frame.columns) == list(trace_store.COLUMNS) + ["fit"]
    assert frame.step.tolist() == [1, 1, 1, 2, 2, 2, 3, 3, 3]
    assert frame.variable.tolist()[:3] == ["a/kernel", "a/kernel", "a/bias"]
    assert frame["index"].tolist()[:3] == [0, 1, 0]
    assert frame.fit.tolist() == [0] * 6 + [1] * 3
    np.testing.assert_array_equal(frame.gradient[:3], rows[0, [3, 4, 5]])
    without = pd.DataFrame(store.frame_data(["a/kernel", "a/bias"], with_fit=False))
    assert list(without.columns) == list(trace_store.COLUMNS)
    assert [str(without[c].dtype) for c in ("step", "epoch", "batch", "index")] == ["int64"] * 4


def test_an_empty_store_gives_an_empty_frame_with_the_columns():
    frame = pd.DataFrame(trace_store.Store([3]).frame_data(["w"], with_fit=False))
    assert list(frame.columns) == list(trace_store.COLUMNS) and len(frame) == 0


def test_version_parsing_of_the_keras_check():
    from kclf.trace.keras_api import MIN_KERAS, _version

    assert _version("3.15.1") > _version("3.10.0") >= _version("3.4.0")
    assert _version("3.10.0rc1") == (3, 10, 0) and _version("3.3.3") < MIN_KERAS <= _version("3.15.1")
