"""Where a demo's models start, and in which order each epoch sees the training rows.

Three modes, chosen with ``kclf run iris --start MODE`` (KCLF_START):

- ``lecture`` (default): the lecture's own code and seeding. Keras draws the initial
  weights and shuffles the rows with the backend's own random generators, so TensorFlow
  (the lecture's backend) reprints the lecture's numbers and JAX and PyTorch print others.
- ``tensorflow``: every backend starts from the TensorFlow lecture run's initial weights and
  sees its rows in TensorFlow's order, epoch by epoch, with a TrainingTrace on. What is left
  to differ is arithmetic, which ``kclf compare`` diffs step by step. The weights and orders
  come from one TensorFlow process running the lecture's cells (:class:`Capture`): shipped
  in ``fixtures/`` for the pinned versions (iris; stroke on the Kaggle file), otherwise made
  once and cached in ``$KCLF_CACHE`` (default ``~/.cache/kclf``) per data file and versions.
- ``numpy``: kclf's deterministic runs (NumPy-seeded weights, no shuffling).

How the order is captured: Keras's TensorFlow trainer turns the arrays into a tf.data
pipeline that permutes the row indices (``tf.random.shuffle``) and gathers each batch.
:class:`Capture` threads an index column through that same pipeline and records it, so
the recorded order is the one the model trained on, not a recomputation. Epochs after an
early stop are read from the same pipeline, as Keras would have started them.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import math
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kclf.errors import KclfError

MODES = ("lecture", "tensorflow", "numpy")
# Captures shipped with kclf (well under 1 MB): iris, and stroke on the Kaggle file, for the
# pinned keras and TensorFlow (constraints.txt). Remade by `make fixtures`.
FIXTURES = Path(__file__).resolve().parent / "fixtures"
START_ENV = "KCLF_START"
CACHE_ENV = "KCLF_CACHE"
FORMAT = 1  # bump when what a capture holds changes


def mode(default: str = "lecture") -> str:
    chosen = os.environ.get(START_ENV) or default
    if chosen not in MODES:
        raise KclfError(f"unknown start {chosen!r}; expected one of: {', '.join(MODES)}")
    return chosen


def lecture_preamble() -> None:
    """The lecture's preamble: ``random.seed(1234)``, then ``keras.utils.set_random_seed(1)``
    (Python, NumPy and the backend's generators)."""
    import random

    import keras

    random.seed(1234)
    keras.utils.set_random_seed(1)


# -- what one fit needs to start where TensorFlow started ----------------------------------
@dataclass
class FitStart:
    label: str
    weights: list[np.ndarray]  # model.get_weights() before the first step
    orders: np.ndarray  # (epochs, rows): the training rows' order in each epoch
    batch_size: int


def _build(model, input_dim: int) -> None:
    if not model.built:
        model.build((None, input_dim))


class Lecture:
    """The lecture's own fit: Keras shuffles with the backend's generator."""

    mode = "lecture"

    def __init__(self):
        self.traces: dict = {}

    def fit(self, label, model, x, y, **kwargs):
        return model.fit(x, y, **kwargs)


class Capture(Lecture):
    """TensorFlow only: the lecture's fit, recording the initial weights and the order."""

    mode = "capture"

    def __init__(self):
        super().__init__()
        self.fits: list[FitStart] = []

    def fit(self, label, model, x, y, *, epochs, batch_size=32, **kwargs):
        import tensorflow as tf
        from keras.src.trainers.data_adapters import array_data_adapter as ada

        _build(model, np.shape(x)[1])
        weights = [np.array(w) for w in model.get_weights()]
        sink, pipelines, rows = [[]], [], []  # sink: a list, so record() can append to it
        original = ada.ArrayDataAdapter.get_tf_dataset

        def get_tf_dataset(adapter):
            if not adapter._shuffle:  # validation and evaluation: nothing to record
                return original(adapter)
            inputs = adapter._inputs
            adapter._inputs = (inputs, np.arange(adapter._num_samples, dtype="int64"))
            try:
                dataset = original(adapter)
            finally:
                adapter._inputs = inputs

            def record(index):
                sink[0].append(index.numpy())
                return []

            def strip(data, index):
                done = tf.py_function(record, [index], Tout=[])
                with tf.control_dependencies([done] if done is not None else []):
                    return tf.nest.map_structure(tf.identity, data)

            rows.append(adapter._num_samples)
            pipelines.append(dataset)
            return dataset.map(strip)

        ada.ArrayDataAdapter.get_tf_dataset = get_tf_dataset
        try:
            history = model.fit(x, y, epochs=epochs, batch_size=batch_size, **kwargs)
        finally:
            ada.ArrayDataAdapter.get_tf_dataset = original
        if len(pipelines) != 1:
            raise KclfError(f"fit {label!r}: expected one shuffled training pipeline, "
                            f"found {len(pipelines)}")
        steps = math.ceil(rows[0] / batch_size)
        ran = len(history.history.get("loss", []))
        batches = [b.astype("int32") for b in sink[0][: ran * steps]]
        seen = np.concatenate(batches).reshape(ran, -1) if batches else np.zeros((0, rows[0]))
        # Epochs an early stop skipped: Keras starts each epoch as a new iterator over the
        # same pipeline, so a new iterator over it gives the order it would have used. Keras
        # 3.15 on TensorFlow gives the same order in every epoch (each iterator reseeds the
        # shuffle); then one new iterator confirms it and the order repeats, else each
        # skipped epoch is read from its own iterator.
        indices = pipelines[0].map(lambda data, index: index)
        repeats = ran > 0 and bool((seen == seen[0]).all())
        for _ in range(epochs - ran):
            batches.extend(b.numpy().astype("int32") for b in indices)
            if repeats:
                if (np.concatenate(batches[-steps:]) == seen[0]).all():
                    batches.extend(batches[:steps] * (epochs - ran - 1))
                    break
                repeats = False
        orders = np.concatenate(batches) if batches else np.zeros(0, "int32")
        if orders.size != epochs * rows[0]:
            raise KclfError(f"fit {label!r}: recorded {orders.size} row indices, expected "
                            f"{epochs} epochs x {rows[0]} rows")
        orders = orders.reshape(epochs, rows[0])
        if not (np.sort(orders, axis=1) == np.arange(rows[0])).all():
            raise KclfError(f"fit {label!r}: a recorded epoch is not a permutation of the rows")
        self.fits.append(FitStart(label, weights, orders, batch_size))
        return history


class ReplayData:
    """A keras.utils.PyDataset that yields the captured batches, epoch after epoch.

    Batch ``i`` of the whole fit is epoch ``i // steps``, step ``i % steps``; fit runs it
    with ``steps_per_epoch=steps``, so no epoch counter can race a prefetching pipeline.
    """

    def __new__(cls, x, y, start: FitStart):
        import keras

        class _Replay(keras.utils.PyDataset):
            def __init__(self):
                super().__init__()
                self.steps = math.ceil(start.orders.shape[1] / start.batch_size)

            def __len__(self):
                return self.steps * len(start.orders)

            def __getitem__(self, i):
                epoch, step = divmod(i, self.steps)
                rows = start.orders[epoch, step * start.batch_size:(step + 1) * start.batch_size]
                return x[rows], y[rows]

        return _Replay()


class Replay(Lecture):
    """Start from the captured weights and order, with a TrainingTrace on every fit."""

    mode = "tensorflow"

    def __init__(self, fits: list[FitStart], every: dict[str, int] | None = None):
        super().__init__()
        self.starts = {f.label: f for f in fits}
        self.every = every or {}

    def fit(self, label, model, x, y, *, epochs, batch_size=32, validation_split=None,
            callbacks=(), shuffle=True, **kwargs):
        from kclf.callbacks import TrainingTrace

        if label not in self.starts:
            raise KclfError(f"the captured TensorFlow start has no fit {label!r}; expected "
                            f"one of {sorted(self.starts)} (delete the cache and rerun)")
        start = self.starts[label]
        x, y = np.asarray(x), np.asarray(y)
        if validation_split:  # as Keras splits: the first rows train, the last validate
            split = int(math.floor(len(x) * (1.0 - validation_split)))
            kwargs["validation_data"] = (x[split:], y[split:])
            x, y = x[:split], y[:split]
        if start.orders.shape[1] != len(x) or start.batch_size != batch_size:
            raise KclfError(f"fit {label!r}: the captured order is for {start.orders.shape[1]} "
                            f"rows in batches of {start.batch_size}; this fit has {len(x)} rows "
                            f"in batches of {batch_size}")
        _build(model, x.shape[1])
        model.set_weights(start.weights)
        trace = TrainingTrace(every=self.every.get(label, 1))
        self.traces[label] = trace
        data = ReplayData(x, y, start)
        return model.fit(data, epochs=min(epochs, len(start.orders)), steps_per_epoch=data.steps,
                         shuffle=False, callbacks=[*callbacks, trace], **kwargs)


# -- the cache and the TensorFlow process that fills it --------------------------------------
def cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "kclf") / "lecture-start"


def cache_path(demo: str, data: Path | None) -> Path:
    from kclf.backend import package_version

    key = hashlib.sha256()
    key.update(f"{demo} {FORMAT} keras {package_version('keras')} "
               f"tensorflow {package_version('tensorflow')}".encode())
    if data is not None:
        key.update(Path(data).read_bytes())
    return cache_dir() / f"{demo}-{key.hexdigest()[:16]}.npz"


def save(path: Path, fits: list[FitStart], results: dict) -> None:
    from kclf.runner import atomic_write, to_jsonable

    arrays = {}
    meta = {"fits": [], "results": to_jsonable(results)}
    for i, fit in enumerate(fits):
        arrays[f"order{i}"] = fit.orders
        for j, w in enumerate(fit.weights):
            arrays[f"w{i}_{j}"] = w
        meta["fits"].append({"label": fit.label, "weights": len(fit.weights),
                             "batch_size": fit.batch_size})
    import io

    buf = io.BytesIO()
    np.savez_compressed(buf, meta=np.array(json.dumps(meta)), **arrays)
    atomic_write(path, buf.getvalue())


def load(path: Path) -> tuple[list[FitStart], dict]:
    with np.load(path) as npz:
        meta = json.loads(str(npz["meta"]))
        fits = [FitStart(f["label"], [npz[f"w{i}_{j}"] for j in range(f["weights"])],
                         npz[f"order{i}"], f["batch_size"])
                for i, f in enumerate(meta["fits"])]
    return fits, meta["results"]


def ensure(demo: str, data: Path | None, *, quiet: bool = False) -> Path:
    """The capture for ``demo`` (and data file): shipped with kclf for the pinned versions
    (iris; stroke on the Kaggle file), else cached, else made by a TensorFlow process."""
    path = cache_path(demo, data)
    shipped = FIXTURES / path.name
    if shipped.exists():
        return shipped
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "w") as lock:  # parallel runs wait for one capture
        fcntl.flock(lock, fcntl.LOCK_EX)
        if path.exists():
            return path
        return _capture(demo, data, path, quiet)


def _capture(demo: str, data: Path | None, path: Path, quiet: bool) -> Path:
    from kclf.backend import is_installed, pip_extra

    if not is_installed("tensorflow"):
        raise KclfError(f"--start tensorflow needs TensorFlow to capture the lecture run's start "
                        f"(no cached capture at {path}); install it with "
                        f"pip install '{pip_extra('tensorflow')}'")
    if not quiet:
        print(f"capturing the TensorFlow lecture run's initial weights and batch order "
              f"({demo}, one TensorFlow process, about a minute) → {path}", file=sys.stderr)
    command = [sys.executable, "-m", "kclf.demos.start", demo, str(path)]
    if data is not None:
        command.append(str(data))
    env = dict(os.environ, KERAS_BACKEND="tensorflow", KCLF_START="lecture")
    proc = subprocess.run(command, env=env, capture_output=True, text=True)
    if proc.returncode != 0 or not path.exists():
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise KclfError(f"capturing the TensorFlow start for {demo} failed: {last}")
    return path


def _capture_main(argv: list[str]) -> int:
    """python -m kclf.demos.start DEMO OUT.npz [DATA]: run the demo's cells on TensorFlow.
    python -m kclf.demos.start --ship STROKE_CSV: remake the captures shipped with kclf."""
    from kclf.backend import select_backend

    if argv and argv[0] == "--ship":
        if len(argv) != 2 or not Path(argv[1]).is_file():
            print("usage: python -m kclf.demos.start --ship healthcare-dataset-stroke-data.csv",
                  file=sys.stderr)
            return 2
        for old in FIXTURES.glob("*.npz"):
            old.unlink()
        for demo, data in (("iris", None), ("stroke", Path(argv[1]))):
            _capture(demo, data, FIXTURES / cache_path(demo, data).name, quiet=False)
        return 0
    demo, out = argv[0], Path(argv[1])
    data = Path(argv[2]) if len(argv) > 2 else None
    select_backend("tensorflow")
    from kclf.demos import lecture_cells
    from kclf.runner import Run

    capture = Capture()
    ctx = Run(demo, "tensorflow", out.parent, json_mode=True)
    ctx.print = lambda *a, **k: None
    ctx.figure = lambda fig, name: __import__("matplotlib.pyplot").pyplot.close(fig)
    results = lecture_cells(demo)(ctx, capture, data)
    save(out, capture.fits, results)
    return 0


if __name__ == "__main__":
    sys.exit(_capture_main(sys.argv[1:]))
