"""The training trace's host side, without Keras: variable lookup, step selection, storage.

A recorded step is one packed float32 row: every chosen variable's weights before the step,
then the gradients applied, then the weights after (each flattened in C order), then the
learning rate and the loss. :class:`Store` keeps the rows in the chunks they arrived in
(one per copy from the device) and joins them once when read, so memory peaks at twice the
raw records, not three times as with a doubling array.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from kclf.errors import KclfError

COLUMNS = ("step", "epoch", "batch", "variable", "index",
           "weight_before", "gradient", "weight_after", "loss", "learning_rate")
META = ("fit", "step", "epoch", "batch")


# -- which variables -------------------------------------------------------------------------


class SelectorTypeError(KclfError, TypeError):
    """``variables=`` is not a string, a collection of strings or a callable."""


class SelectorValueError(KclfError, ValueError):
    """``variables=`` names nothing, or a variable the model does not have or several."""


SELECTOR_FORMS = ("a path, a layer name or a path end such as 'dense/kernel', a list of them, "
                  "or a callable taking a variable")


def _describe(value) -> str:
    return f"{value!r} ({type(value).__name__})"


def check_selector(variables) -> tuple[str, ...] | Callable | None:
    """``variables=`` as the trace keeps it: None (all), a callable, or a tuple of names.
    A one-line SelectorTypeError for anything that is not a string, a collection of
    strings or a callable; SelectorValueError for an empty one."""
    if variables is None or (callable(variables) and not isinstance(variables, str)):
        return variables
    if isinstance(variables, str):
        names = (variables,)
    elif isinstance(variables, (bytes, bytearray)) or not hasattr(variables, "__iter__"):
        raise SelectorTypeError(f"variables is {_describe(variables)}; expected {SELECTOR_FORMS}")
    else:
        names = tuple(variables)  # once: a generator would be empty at the next fit
        for name in names:
            if not isinstance(name, str):
                hint = f" (a variable: give its path, {name.path!r})" if isinstance(
                    getattr(name, "path", None), str) else ""
                raise SelectorTypeError(f"variables holds {_describe(name)}{hint}; expected strings: "
                                        "paths, layer names or path ends such as 'dense/kernel'")
        if not names:
            raise SelectorValueError("variables is empty; expected at least one path, layer name "
                                     "or path end (or None: every trainable variable)")
    if any(not name.strip("/ ") for name in names):
        raise SelectorValueError(f"variables {list(names)} holds an empty name; expected paths, "
                                 "layer names or path ends such as 'dense/kernel'")
    return names


def _parts(path: str) -> list[str]:
    return [p for p in path.split("/") if p]


def matches(name: str, paths: Sequence[str]) -> list[str]:
    """The paths ``name`` stands for, in order: the exact path; a path prefix (a model or a
    layer with its sub-layers); a layer name or the end of a layer's path (``dense`` for
    ``sequential_3/dense/kernel``); the end of a variable's path (``dense/kernel``).
    Raises LookupError when a layer name or path end fits more than one layer or variable."""
    if name in paths:
        return [name]
    want = _parts(name)
    k = len(want)
    prefix = [p for p in paths if _parts(p)[:k] == want]
    if prefix:
        return prefix
    layer = [p for p in paths if len(_parts(p)) > k and _parts(p)[:-1][-k:] == want]
    owners = {"/".join(_parts(p)[:-1]) for p in layer}
    if len(owners) > 1:
        raise LookupError(f"{name!r} is ambiguous: it names layers {sorted(owners)}")
    if layer:
        return layer
    suffix = [p for p in paths if _parts(p)[-k:] == want]
    if len(suffix) > 1:
        raise LookupError(f"{name!r} is ambiguous: it ends {suffix}")
    return suffix


def resolve(names: str | Sequence[str], paths: Sequence[str]) -> list[str]:
    """The paths chosen by ``names`` (paths, layer names, unambiguous path ends), in model
    order; ValueError naming what is unknown or ambiguous and listing the candidates."""
    names = [names] if isinstance(names, str) else list(names)
    chosen, unknown = set(), []
    for name in names:
        try:
            found = matches(name, paths)
        except LookupError as exc:
            raise SelectorValueError(f"variables: {exc}; expected paths among {list(paths)}") from None
        if not found:
            unknown.append(name)
        chosen.update(found)
    if unknown:
        raise SelectorValueError(f"variables {unknown} not in the model; expected paths among {list(paths)}")
    return [p for p in paths if p in chosen]


def lookup(name: str, paths: Sequence[str]) -> int:
    """Index of the one recorded variable ``name`` stands for; KeyError listing candidates."""
    try:
        found = matches(name, paths)
    except LookupError as exc:
        raise KeyError(f"{exc}; recorded: {list(paths)}") from None
    if len(found) != 1:
        why = "not recorded" if not found else f"names {len(found)} variables {found}; give one"
        raise KeyError(f"{name!r} {why}; recorded: {list(paths)}")
    return list(paths).index(found[0])


# -- which steps ---------------------------------------------------------------------------------


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
