"""Where a demo's models start, and in which order each epoch sees the training rows.

The start modes (kclf.editions, ``kclf run iris --start MODE``):

- ``lecture`` (default): the lecture's own code and seeding (:func:`preamble`). Keras draws
  the initial weights and shuffles the rows with the backend's own random generators, so the
  edition's own backend (torch for 2026, TensorFlow for 2025) reprints its numbers and the
  other backends print others.
- ``torch-2026`` / ``tensorflow-2025``: every backend starts from that edition's run's initial
  weights and sees its rows in that run's order, epoch by epoch, with a TrainingTrace on.
  What is left to differ is arithmetic, which ``kclf compare`` diffs step by step. The weights
  and orders come from one process running the lecture's cells on the edition's backend
  (:class:`Capture` on TensorFlow, :class:`TorchCapture` on torch): shipped with kclf for the
  pinned versions, otherwise made once and cached (kclf.demos.cache).
- ``numpy``: kclf's deterministic runs (NumPy-seeded weights, no shuffling).

How the order is captured. TensorFlow: Keras's trainer turns the arrays into a tf.data
pipeline that permutes the row indices (``tf.random.shuffle``) and gathers each batch;
:class:`Capture` threads an index column through that same pipeline and records it, so the
recorded order is the one the model trained on, not a recomputation. Torch: each epoch,
Keras's DataLoader draws its order from a ``RandomSampler``, which takes one seed from
torch's global generator and permutes the rows with ``torch.randperm``; :class:`TorchCapture`
records the indices the sampler yields and the seed that reproduces them (checked), so a
capture holds one integer per epoch.
"""

from __future__ import annotations

import math
import random
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from kclf.errors import KclfError
from kclf.progress import fit_progress, with_progress
from kclf.trace import keras_api as api


@contextmanager
def preamble(edition: str, backend: str):
    """The lecture's preamble for ``edition``, around the cells that follow it.

    2026 (``setup.py``): ``torch.manual_seed(42)`` and deterministic algorithms (on the torch
    backend: elsewhere torch plays no part), ``numpy.random.seed(123)``,
    ``keras.utils.set_random_seed(1)``, ``random.seed(1234)``. 2025: ``random.seed(1234)``,
    then ``keras.utils.set_random_seed(1)``. Torch's deterministic-algorithms switch is
    process-wide: it is put back as it was when the cells end.
    """
    import keras

    restore = None
    if edition == "2026":
        if backend == "torch":
            import torch

            torch.manual_seed(42)
            restore = torch.are_deterministic_algorithms_enabled()
            torch.use_deterministic_algorithms(True)
        np.random.seed(123)
        keras.utils.set_random_seed(1)
        random.seed(1234)
    else:
        random.seed(1234)
        keras.utils.set_random_seed(1)
    try:
        yield
    finally:
        if restore is not None:
            import torch

            torch.use_deterministic_algorithms(restore)


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

    def __init__(self):
        self.traces: dict = {}

    def fit(self, label, model, x, y, **kwargs):
        return model.fit(x, y, **with_progress(label, kwargs))


class Capture(Lecture):
    """TensorFlow only: the lecture's fit, recording the initial weights and the order."""

    def __init__(self):
        super().__init__()
        self.fits: list[FitStart] = []

    def fit(self, label, model, x, y, *, epochs, batch_size=32, **kwargs):
        import tensorflow as tf

        api.check_supported(api.CAPTURE)
        _build(model, np.shape(x)[1])
        weights = [np.array(w) for w in model.get_weights()]
        sink, pipelines, rows = [[]], [], []  # sink: a list, so record() can append to it

        def record(index):
            sink[0].append(index.numpy())
            return []

        def strip(data, index):
            done = tf.py_function(record, [index], Tout=[])
            with tf.control_dependencies([done] if done is not None else []):
                return tf.nest.map_structure(tf.identity, data)

        def recorded(dataset, n_rows):  # the shuffled training pipeline, with its row indices
            rows.append(n_rows)
            pipelines.append(dataset)
            return dataset.map(strip)

        with api.shuffled_array_pipelines(recorded):
            history = model.fit(x, y, epochs=epochs, batch_size=batch_size,
                                **with_progress(label, kwargs))
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


class TorchCapture(Lecture):
    """Torch only: the lecture's fit, recording the initial weights and each epoch's order.

    Keras's torch trainer makes a new DataLoader for every epoch; its ``RandomSampler`` takes
    one seed from torch's global generator and yields ``torch.randperm(rows)`` under it. The
    sampler is watched while the fit runs: the indices it yields are recorded, and the seed
    it drew is read from a copy of the generator's state taken just before (the state is put
    back, so torch draws it itself, as in a plain fit). Each recorded epoch is checked against
    ``randperm(rows, seed)``; the capture keeps the seeds. Epochs after an early stop, which
    the run never drew, continue the generator from where the fit left it, in a copy of its
    state: a replay reaches them only if it trains past the lecture's stop.
    """

    def __init__(self):
        super().__init__()
        self.fits: list[FitStart] = []
        self.seeds: dict[str, np.ndarray] = {}

    def fit(self, label, model, x, y, *, epochs, batch_size=32, **kwargs):
        import torch
        from torch.utils.data import RandomSampler

        _build(model, np.shape(x)[1])
        weights = [np.array(w) for w in model.get_weights()]
        drawn: list[tuple[int, list[int]]] = []
        original = RandomSampler.__iter__

        def watched(sampler):
            if sampler.generator is not None or sampler.replacement:
                yield from original(sampler)
                return
            state = torch.get_rng_state()
            seed = int(torch.empty((), dtype=torch.int64).random_().item())
            torch.set_rng_state(state)
            order: list[int] = []
            drawn.append((seed, order))
            for index in original(sampler):
                order.append(int(index))
                yield index

        RandomSampler.__iter__ = watched
        try:
            history = model.fit(x, y, epochs=epochs, batch_size=batch_size,
                                **with_progress(label, kwargs))
        finally:
            RandomSampler.__iter__ = original
        ran = len(history.history.get("loss", []))
        rows = len(x) - (int(math.floor(len(x) * kwargs["validation_split"]))
                         if kwargs.get("validation_split") else 0)
        # Before the first epoch Keras takes one batch from an order of its own to build the
        # optimizer and metrics (Trainer._symbolic_build); the epochs it trained on are the
        # last ``ran`` orders it read to the end.
        complete = [(seed, order) for seed, order in drawn if len(order) == rows]
        if len(complete) < ran:
            raise KclfError(f"fit {label!r}: the sampler drew {len(complete)} whole epoch orders "
                            f"for {ran} epochs; expected one per epoch")
        epochs_seen = complete[len(complete) - ran:]
        for seed, order in epochs_seen:
            if order != torch_order(seed, rows):
                raise KclfError(f"fit {label!r}: torch's RandomSampler did not yield "
                                "randperm(rows, seed): this torch draws its order another way")
        seeds = [seed for seed, _ in epochs_seen]
        state = torch.get_rng_state()
        try:  # the epochs after an early stop: continue the generator in a copy of its state
            seeds += [int(torch.empty((), dtype=torch.int64).random_().item())
                      for _ in range(epochs - ran)]
        finally:
            torch.set_rng_state(state)
        self.seeds[label] = np.array(seeds, dtype="int64")
        orders = np.array([order for _, order in epochs_seen], dtype="int32").reshape(ran, rows)
        self.fits.append(FitStart(label, weights, orders, batch_size))
        return history


def torch_order(seed: int, rows: int) -> list[int]:
    """The order torch's RandomSampler yields for ``rows`` rows after drawing ``seed``."""
    import torch

    generator = torch.Generator()
    generator.manual_seed(seed)
    return torch.randperm(rows, generator=generator).tolist()


def torch_orders(seeds, rows: int) -> np.ndarray:
    """(epochs, rows): each epoch's order from its seed."""
    return np.array([torch_order(int(s), rows) for s in seeds], dtype="int32").reshape(-1, rows)


def replay_data(x, y, start: FitStart):
    """A keras.utils.PyDataset that yields the captured batches, epoch after epoch.

    Batch ``i`` of the whole fit is epoch ``i // steps``, step ``i % steps``; fit runs it
    with ``steps_per_epoch=steps``, so no epoch counter can race a prefetching pipeline.
    """
    import keras

    class Batches(keras.utils.PyDataset):
        def __init__(self):
            super().__init__()
            self.steps = math.ceil(start.orders.shape[1] / start.batch_size)

        def __len__(self):
            return self.steps * len(start.orders)

        def __getitem__(self, i):
            epoch, step = divmod(i, self.steps)
            rows = start.orders[epoch, step * start.batch_size:(step + 1) * start.batch_size]
            return x[rows], y[rows]

    return Batches()


class Replay(Lecture):
    """Start from the captured weights and order, with a TrainingTrace on every fit.

    ``states``: a folder where each fit's states before its traced steps go
    (kclf.trace.states: what ``kclf compare`` replays one step at a time), under the fit's
    label with ``prefix``. ``perturb``: start every fit from its weights moved by one ulp
    (seeded; kclf.compare.envelope); ``horizon``: stop every fit after that many steps.
    """

    def __init__(self, fits: list[FitStart], every: dict[str, int] | None = None, *,
                 states=None, prefix: str = "", perturb: int | None = None,
                 horizon: int | None = None):
        super().__init__()
        self.starts = {f.label: f for f in fits}
        self.every = every or {}
        self.states, self.prefix = states, prefix
        self.perturb, self.horizon = perturb, horizon

    def fit(self, label, model, x, y, *, epochs, batch_size=32, validation_split=None,
            callbacks=(), shuffle=True, **kwargs):
        from kclf.trace.callback import TrainingTrace

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
        weights = start.weights
        if self.perturb is not None:
            from kclf.compare.envelope import perturbed

            weights = perturbed(weights, self.perturb, self.prefix + label)
        model.set_weights(weights)
        every = self.every.get(label, 1)
        trace = TrainingTrace(every=every)
        self.traces[label] = trace
        data = replay_data(x, y, start)
        extra = [trace, fit_progress(label)]
        if self.horizon is not None:
            extra.append(_stop_after(self.horizon))
        states = None
        if self.states is not None:
            from kclf.trace.states import StepStates

            states = StepStates(every, rows=lambda step: batch_rows(start, step))
            extra.insert(0, states)
        # validation in batches of the fit's size, as model.fit(x, y, batch_size) validates
        kwargs.setdefault("validation_batch_size", batch_size)
        history = model.fit(data, epochs=min(epochs, len(start.orders)), steps_per_epoch=data.steps,
                            shuffle=False, callbacks=[*callbacks, *extra], **kwargs)
        if states is not None:
            states.save(self.states, self.prefix + label, model, x, y, kwargs.get("class_weight"))
        return history


def batch_rows(start: FitStart, step: int) -> np.ndarray:
    """The rows step ``step`` (1-based, over the whole fit) trains on, as replay_data feeds them."""
    steps = math.ceil(start.orders.shape[1] / start.batch_size)
    epoch, i = divmod(step - 1, steps)
    return start.orders[epoch, i * start.batch_size:(i + 1) * start.batch_size]


def _stop_after(steps: int):
    """A callback that ends the fit after ``steps`` steps (a perturbed run's horizon)."""
    import keras

    class StopAfter(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.done = 0

        def on_train_batch_end(self, batch, logs=None):
            self.done += 1
            if self.done >= steps:
                self.model.stop_training = True

    return StopAfter()
