"""The training trace's host side, without Keras: which steps to keep, and the records.

A recorded step is one packed float32 row: every chosen variable's weights before the step,
then the gradients applied, then the weights after (each flattened in C order), then the
learning rate and the loss. :class:`Store` keeps the rows in the chunks they arrived in
(one per copy from the device) and joins them once when read, so memory peaks at twice the
raw records, not three times as with a doubling array.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

COLUMNS = ("step", "epoch", "batch", "variable", "index",
           "weight_before", "gradient", "weight_after", "loss", "learning_rate")
META = ("fit", "step", "epoch", "batch")


# -- which steps ---------------------------------------------------------------------------------


def applied_steps(rows: np.ndarray, losses: np.ndarray, *, ring: int, start: int, copied: int,
                  applied: int) -> tuple[np.ndarray, np.ndarray]:
    """A fit's updates ``copied`` to ``applied - 1`` (counted from 0) out of the device's
    rings: their rows, each with its step's loss in the last column, and their step numbers
    in the fit (1-based).

    Both rings count from ``start``, the optimizer's iteration count when the fit began: the
    row ring by updates applied, the loss ring by steps run. A loss-scale optimizer skips a
    step whose scaled gradients overflow: it applies nothing, so it has no row, and a row's
    last column says how many steps had been skipped by then. Here step 2 was skipped:

    >>> rows = np.array([[10, 0], [11, 1], [0, 0], [0, 0]], "float32")  # a value, skipped
    >>> losses = np.array([0.5, 0.75, 0.25, 0], "float32")
    >>> block, steps = applied_steps(rows, losses, ring=4, start=0, copied=0, applied=2)
    >>> steps.tolist(), block.tolist()
    ([1, 3], [[10.0, 0.5], [11.0, 0.25]])
    """
    updates = np.arange(copied, applied)
    block = rows[(start + updates) % ring]
    steps = updates + block[:, -1].astype("int64") + 1
    block[:, -1] = losses[(start + steps - 1) % ring]
    return block, steps


def select(steps: np.ndarray, bad: np.ndarray, every: int, *, stop_on_divergence: bool,
           diverged: bool) -> tuple[np.ndarray, int | None]:
    """Which of ``steps`` (1-based, increasing) to keep: 1, 1 + every, 1 + 2 every, ...;
    the first step whose loss or gradient is not finite (``bad``) is always kept, and with
    ``stop_on_divergence`` nothing after it. ``diverged``: an earlier step already was.
    Returns (mask, index of the first non-finite step or None)."""
    keep = (np.asarray(steps) - 1) % every == 0
    if diverged and stop_on_divergence:
        return np.zeros(len(keep), bool), None
    first = int(np.argmax(bad)) if (not diverged and np.any(bad)) else None
    if first is not None:
        keep[first] = True
        if stop_on_divergence:
            keep[first + 1:] = False
    return keep, first


def non_finite(rows: np.ndarray, sizes: Sequence[int]) -> np.ndarray:
    """Per row: is the loss or any gradient NaN/inf."""
    total = sum(sizes)
    grads = rows[:, total:2 * total]
    return ~np.isfinite(rows[:, -1]) | ~np.isfinite(grads).all(axis=1)


# -- storage ---------------------------------------------------------------------------------------


class Store:
    """Recorded rows and their (fit, step, epoch, batch), appended chunk by chunk."""

    def __init__(self, sizes: Sequence[int]):
        self.sizes = [int(s) for s in sizes]
        self.width = 3 * sum(self.sizes) + 2
        self._rows: list[np.ndarray] = []
        self._meta: list[np.ndarray] = []  # int64 (k, 4): fit, step, epoch, batch
        self.n = 0

    def append(self, rows: np.ndarray, fit: int, steps, epochs, batches) -> None:
        rows = np.asarray(rows, "float32").reshape(-1, self.width)
        k = len(rows)
        if not k:
            return
        meta = np.empty((k, 4), "int64")
        meta[:, 0], meta[:, 1], meta[:, 2], meta[:, 3] = fit, steps, epochs, batches
        self._rows.append(rows)
        self._meta.append(meta)
        self.n += k

    def _join(self) -> tuple[np.ndarray, np.ndarray]:
        if len(self._rows) != 1:
            self._rows = [np.concatenate(self._rows) if self._rows else np.zeros((0, self.width), "float32")]
            self._meta = [np.concatenate(self._meta) if self._meta else np.zeros((0, 4), "int64")]
        return self._rows[0], self._meta[0]

    @property
    def rows(self) -> np.ndarray:
        return self._join()[0]

    def meta(self, key: str) -> np.ndarray:
        return self._join()[1][:, META.index(key)]

    @property
    def loss(self) -> np.ndarray:
        return self.rows[:, -1]

    @property
    def lr(self) -> np.ndarray:
        return self.rows[:, -2]

    def values(self, which: str, i: int) -> np.ndarray:
        """(n, size) of variable i: which is "before", "grad" or "after"."""
        total = sum(self.sizes)
        start = {"before": 0, "grad": total, "after": 2 * total}[which] + sum(self.sizes[:i])
        return self.rows[:, start:start + self.sizes[i]]

    def frame_data(self, paths: Sequence[str], *, with_fit: bool) -> dict[str, np.ndarray]:
        """to_frame()'s columns: one row per (step, variable, element), in step order."""
        rows, meta = self._join()
        n, data = len(rows), {}
        parts: dict[str, list] = {k: [] for k in COLUMNS + ("fit",)}
        for i, (path, size) in enumerate(zip(paths, self.sizes)):
            for j, key in enumerate(META):
                parts[key].append(np.repeat(meta[:, j], size))
            parts["variable"].append(np.full(n * size, path, dtype=object))
            parts["index"].append(np.tile(np.arange(size), n))
            parts["weight_before"].append(self.values("before", i).reshape(-1))
            parts["gradient"].append(self.values("grad", i).reshape(-1))
            parts["weight_after"].append(self.values("after", i).reshape(-1))
            parts["loss"].append(np.repeat(rows[:, -1], size))
            parts["learning_rate"].append(np.repeat(rows[:, -2], size))
        for key in COLUMNS + (("fit",) if with_fit else ()):
            data[key] = np.concatenate(parts[key]) if parts[key] else np.zeros(0)
        if n:  # variable-major as built; step-major (stable) as shown
            order = np.argsort(data["step"], kind="stable")
            data = {k: v[order] for k, v in data.items()}
        for key in ("step", "epoch", "batch", "index") + (("fit",) if with_fit else ()):
            data[key] = data[key].astype("int64")
        return data
