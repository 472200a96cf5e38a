"""kclf.trace.store: the trace's host side without Keras: which steps a copy from the device
holds and which to keep, and the records."""

import subprocess
import sys

import numpy as np
import pandas as pd

from kclf.trace import store


def test_the_traces_host_side_imports_no_keras():
    code = ("import sys, kclf.trace, kclf.trace.store, kclf.trace.variables, kclf.trace.keras_api, "
            "kclf.trace.refusals, kclf.trace.interrupt; print('keras' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_applied_steps_numbers_the_rows_and_puts_each_steps_loss_in_place():
    width = 3  # a row: one weight, the gradient, and the skipped-step count (the loss's place)
    ring, start = 4, 6  # the fit began at iteration 6: its first row is in slot 6 % 4 = 2
    rows = np.zeros((ring, width), "float32")
    losses = np.zeros(ring, "float32")
    # Updates 0, 1, 2 of the fit: a loss-scale optimizer skipped one step before update 2.
    for update, skipped in enumerate([0, 0, 1]):
        rows[(start + update) % ring] = [10 + update, 20 + update, skipped]
    for step in (1, 2, 3, 4):  # the loss ring counts every step run, a skipped one too
        losses[(start + step - 1) % ring] = step / 8
    block, steps = store.applied_steps(rows, losses, ring=ring, start=start, copied=1, applied=3)
    np.testing.assert_array_equal(steps, [2, 4])  # update 1 is step 2; update 2, after a skip, step 4
    np.testing.assert_array_equal(block, [[11, 21, 2 / 8], [12, 22, 4 / 8]])
    assert rows[(start + 1) % ring, -1] == 0  # the device's rows are not written
    empty, none = store.applied_steps(rows, losses, ring=ring, start=start, copied=3, applied=3)
    assert empty.shape == (0, width) and none.size == 0


def test_select_keeps_every_kth_step_and_the_first_non_finite_one():
    steps = np.arange(1, 11)
    bad = np.zeros(10, bool)
    keep, first = store.select(steps, bad, 3, stop_on_divergence=True, diverged=False)
    np.testing.assert_array_equal(steps[keep], [1, 4, 7, 10])
    assert first is None
    bad[4:] = True  # step 5 first
    keep, first = store.select(steps, bad, 3, stop_on_divergence=True, diverged=False)
    assert first == 4
    np.testing.assert_array_equal(steps[keep], [1, 4, 5])
    keep, first = store.select(steps, bad, 3, stop_on_divergence=False, diverged=False)
    np.testing.assert_array_equal(steps[keep], [1, 4, 5, 7, 10])
    keep, first = store.select(steps, bad, 1, stop_on_divergence=True, diverged=True)
    assert not keep.any() and first is None  # stopping: nothing after an earlier divergence
    keep, first = store.select(steps, bad, 1, stop_on_divergence=False, diverged=True)
    assert keep.all() and first is None  # reported once


def test_non_finite_looks_at_the_loss_and_the_gradients_only():
    sizes = [2, 1]  # a row: 3 before, 3 gradients, 3 after, learning rate, loss
    rows = np.zeros((4, 11), "float32")
    rows[1, 0] = np.nan  # a weight before: not a divergence of this step
    rows[2, 4] = np.inf  # a gradient
    rows[3, -1] = np.nan  # the loss
    np.testing.assert_array_equal(store.non_finite(rows, sizes), [False, False, True, True])


def _rows(steps, sizes):
    width = 3 * sum(sizes) + 2
    return np.arange(len(steps) * width, dtype="float32").reshape(len(steps), width) + 1000 * np.asarray(steps)[:, None]


def test_store_joins_its_chunks_and_builds_the_frame_in_step_order():
    sizes = [2, 1]
    records = store.Store(sizes)
    records.append(_rows([1, 2], sizes), 0, [1, 2], 0, [0, 1])
    records.append(_rows([3], sizes), 1, [3], 0, [0])
    assert records.n == 3
    np.testing.assert_array_equal(records.meta("step"), [1, 2, 3])
    np.testing.assert_array_equal(records.meta("fit"), [0, 0, 1])
    rows = np.concatenate([_rows([1, 2], sizes), _rows([3], sizes)])
    np.testing.assert_array_equal(records.values("before", 1), rows[:, 2:3])
    np.testing.assert_array_equal(records.values("grad", 0), rows[:, 3:5])
    np.testing.assert_array_equal(records.values("after", 1), rows[:, 8:9])
    np.testing.assert_array_equal(records.lr, rows[:, 9])
    np.testing.assert_array_equal(records.loss, rows[:, 10])

    frame = pd.DataFrame(records.frame_data(["a/kernel", "a/bias"], with_fit=True))
    assert list(frame.columns) == list(store.COLUMNS) + ["fit"]
    assert frame.step.tolist() == [1, 1, 1, 2, 2, 2, 3, 3, 3]
    assert frame.variable.tolist()[:3] == ["a/kernel", "a/kernel", "a/bias"]
    assert frame["index"].tolist()[:3] == [0, 1, 0]
    assert frame.fit.tolist() == [0] * 6 + [1] * 3
    np.testing.assert_array_equal(frame.gradient[:3], rows[0, [3, 4, 5]])
    without = pd.DataFrame(records.frame_data(["a/kernel", "a/bias"], with_fit=False))
    assert list(without.columns) == list(store.COLUMNS)
    assert [str(without[c].dtype) for c in ("step", "epoch", "batch", "index")] == ["int64"] * 4


def test_an_empty_store_gives_an_empty_frame_with_the_columns():
    frame = pd.DataFrame(store.Store([3]).frame_data(["w"], with_fit=False))
    assert list(frame.columns) == list(store.COLUMNS) and len(frame) == 0
