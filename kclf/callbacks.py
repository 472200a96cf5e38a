"""TrainingTrace: record every optimizer step's weights, loss and applied gradients.

    trace = TrainingTrace()
    model.fit(x, y, batch_size=1, callbacks=[trace])
    trace.to_frame()      # one row per (step, variable, element)

What is recorded is what the model's own train step computed and applied, not a
recomputation: the trace hooks the optimizer's update step (the gradients after
clipping, the learning rate it used, the weights before and after) and the
training loss. Values are written into small ring buffers that the optimizer and
a hidden metric own, so they travel through JAX's stateless step like any other
state and are recorded inside the compiled step on every backend. The callback
copies the buffers to host memory once per ring, not once per step, which keeps
the overhead low and lets it record every step when Keras runs several steps
per call (steps_per_execution > 1).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence

import numpy as np

from kclf._state import StateReader, write_slot
from kclf.backend import select_backend
from kclf.errors import KclfError

select_backend()
import keras  # noqa: E402
from keras import ops  # noqa: E402

# Elements kept on the device between host reads: small enough for any model we trace.
_RING_ELEMENTS = 1 << 20
_MAX_RING = 64


class _LossRecorder(keras.metrics.Metric):
    """Keeps the last ``ring`` training losses; a metric so JAX carries it as state."""

    def __init__(self, ring: int):
        super().__init__(name="kclf_trace_loss")
        self.ring = ring
        self.losses = self.add_variable(shape=(ring,), initializer="zeros", name="losses")
        self.count = self.add_variable(shape=(), initializer="zeros", dtype="int32", name="count")

    def update_state(self, loss):
        slot = ops.mod(self.count.value, self.ring) if self.ring > 1 else None
        write_slot(self.losses, slot, ops.stop_gradient(loss))
        self.count.assign_add(1)

    def reset_state(self):
        # Keras resets metrics every epoch; the ring must survive that.
        pass

    def result(self):
        return {}  # nothing for the progress bar or the logs


class _Store:
    """Host-side storage: preallocated arrays, grown geometrically."""

    def __init__(self, sizes: Sequence[int]):
        self.n = 0
        self._cap = 0
        self.sizes = list(sizes)
        self.meta = {k: np.zeros(0, "int64") for k in ("step", "epoch", "batch")}
        self.loss = np.zeros(0, "float32")
        self.lr = np.zeros(0, "float32")
        self.before = [np.zeros((0, s), "float32") for s in self.sizes]
        self.grad = [np.zeros((0, s), "float32") for s in self.sizes]
        self.after = [np.zeros((0, s), "float32") for s in self.sizes]

    def _grow(self, need: int) -> None:
        cap = max(need, 2 * self._cap, 16)

        def grown(a):
            out = np.zeros((cap,) + a.shape[1:], a.dtype)
            out[: self.n] = a[: self.n]
            return out

        self.meta = {k: grown(v) for k, v in self.meta.items()}
        self.loss, self.lr = grown(self.loss), grown(self.lr)
        self.before = [grown(a) for a in self.before]
        self.grad = [grown(a) for a in self.grad]
        self.after = [grown(a) for a in self.after]
        self._cap = cap

    def append(self, steps, epochs, batches, loss, lr, before, grad, after) -> None:
        k = len(steps)
        if self.n + k > self._cap:
            self._grow(self.n + k)
        sl = slice(self.n, self.n + k)
        self.meta["step"][sl], self.meta["epoch"][sl], self.meta["batch"][sl] = steps, epochs, batches
        self.loss[sl], self.lr[sl] = loss, lr
        for dst, src in ((self.before, before), (self.grad, grad), (self.after, after)):
            for d, s in zip(dst, src):
                d[sl] = s
        self.n += k

    def truncate(self, n: int) -> None:
        self.n = min(self.n, n)


class TrainingTrace(keras.callbacks.Callback):
    """Record, for every optimizer step, the weights before and after, the applied
    gradient, the step's own batch loss and the learning rate.

    Args:
        every: record every k-th step only (steps 1, 1 + k, 1 + 2k, ...).
        variables: record only these variables: Keras paths ("dense/kernel") or
            layer names ("dense"); a callable taking the variable also works.
        stop_on_divergence: stop training when the loss or a gradient is NaN/inf;
            the trace keeps every step up to and including that one. With False,
            training goes on, every step is kept and ``diverged_at`` names the first.
        verbose: print the divergence message on stderr.
    """

    def __init__(
        self,
        every: int = 1,
        variables: Sequence[str] | Callable | None = None,
        *,
        stop_on_divergence: bool = True,
        verbose: bool = True,
    ):
        super().__init__()
        if not isinstance(every, int) or isinstance(every, bool) or every < 1:
            raise ValueError(f"every must be a positive integer; received {every!r}")
        self.every = every
        self.variable_filter = variables
        self.stop_on_divergence = stop_on_divergence
        self.verbose = verbose
        self._hooks = None
        self._reset()

    # -- state ------------------------------------------------------------------
    def _reset(self) -> None:
        self.diverged_at: int | None = None
        self._interrupted = False
        self.variable_paths: list[str] = []
        self.variable_shapes: list[tuple] = []
        self._store = _Store([])
        self._pending: list[tuple[int, int, int]] = []
        self._step = 0
        self._epoch = 0
        self._begin = 0
        self._times: list[float] = []
        self._t0 = None
        self._running = False

    # -- installing the recording hooks -------------------------------------------
    def _select(self, variables):
        chosen = self.variable_filter
        if chosen is None:
            return list(variables)
        if callable(chosen):
            return [v for v in variables if chosen(v)]
        names = [chosen] if isinstance(chosen, str) else list(chosen)
        picked = [v for v in variables if any(v.path == n or v.path.startswith(n + "/") for n in names)]
        unknown = [n for n in names if not any(v.path == n or v.path.startswith(n + "/") for v in variables)]
        if unknown:
            raise ValueError(
                f"variables {unknown} not in the model; expected paths among "
                f"{[v.path for v in variables]}"
            )
        return picked

    def set_model(self, model):
        super().set_model(model)
        _uninstall(model)
        optimizer = getattr(model, "optimizer", None)
        if optimizer is None:
            raise KclfError("TrainingTrace needs a compiled model (model.compile(optimizer=..., loss=...))")
        if getattr(optimizer, "gradient_accumulation_steps", None):
            raise KclfError(
                "TrainingTrace does not support gradient_accumulation_steps "
                f"(= {optimizer.gradient_accumulation_steps}); expected None: "
                "the optimizer applies one update per several steps"
            )
        if not optimizer.built:
            optimizer.build(model.trainable_variables)
        self._hooks = _install(model, self._select(model.trainable_variables), self)

    def _finish(self, *, interrupted: bool = False) -> None:
        """Copy what the device still holds, then remove the hooks (idempotent)."""
        if self._hooks is None:
            return
        if self._running and interrupted:
            self._interrupted = True
        try:
            self._flush()
        finally:
            _uninstall(self.model)
            self._hooks = None
            self._running = False

    # -- callback methods -----------------------------------------------------------
    def on_train_begin(self, logs=None):
        if self._hooks is None:  # reused after on_train_end: reinstall
            self.set_model(self.model)
        self._reset()
        hooks = self._hooks
        self.variable_paths = [v.path for v in hooks.variables]
        self.variable_shapes = [tuple(v.shape) for v in hooks.variables]
        self._store = _Store([int(np.prod(s)) for s in self.variable_shapes])
        # Both rings start from the optimizer's iteration count, so one slot index serves both.
        self._iteration0 = int(ops.convert_to_numpy(self.model.optimizer.iterations))
        hooks.loss.count.assign(self._iteration0)
        self._t0 = time.perf_counter()
        self._running = True

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_begin(self, batch, logs=None):
        self._begin = batch

    def on_train_batch_end(self, batch, logs=None):
        # Keras reports the last execution of an epoch as if it ran steps_per_execution
        # steps; cap it at the epoch's batch count (the flush re-checks with the device).
        last = (self.params or {}).get("steps")
        if last:
            batch = min(batch, last - 1)
        for b in range(self._begin, batch + 1):
            self._step += 1
            self._pending.append((self._step, self._epoch, b))
        self._times.append(time.perf_counter())
        # Read before the next execution could overwrite slots not yet copied.
        if len(self._pending) + self._hooks.steps_per_call > self._hooks.ring:
            self._flush()

    def on_epoch_end(self, epoch, logs=None):
        self._flush()

    def on_train_end(self, logs=None):
        self._finish()

    # -- copying from the device ---------------------------------------------------------
    def _flush(self) -> None:
        if not self._pending or self._hooks is None:
            return
        pending, self._pending = self._pending, []
        hooks = self._hooks
        values = hooks.reader.read()
        n_vars = len(hooks.variables)
        before, grad, after = values[:n_vars], values[n_vars : 2 * n_vars], values[2 * n_vars : 3 * n_vars]
        lr, loss, count = values[3 * n_vars], values[3 * n_vars + 1], int(values[3 * n_vars + 2])
        # The device's own step count is the truth: drop steps Keras reported but never ran.
        executed = count - self._iteration0
        if pending[-1][0] > executed:
            pending = [p for p in pending if p[0] <= executed]
            self._step = executed
        if self.diverged_at is not None and self.stop_on_divergence:
            pending = []  # steps run after the divergence, before training stopped
        if not pending:
            return

        steps = np.array([p[0] for p in pending])
        keep = (steps - 1) % self.every == 0
        slots = (self._iteration0 + steps - 1) % hooks.ring
        losses, grads_flat = loss[slots], [g.reshape(hooks.ring, -1)[slots] for g in grad]
        bad = ~np.isfinite(losses)
        for g in grads_flat:
            bad |= ~np.all(np.isfinite(g), axis=1)
        first_bad = int(np.argmax(bad)) if bad.any() else None
        if first_bad is not None and self.diverged_at is None:
            keep[first_bad] = True  # the divergent step is always kept
            if self.stop_on_divergence:
                keep[first_bad + 1 :] = False
        if keep.any():
            s = slots[keep]
            self._store.append(
                steps[keep],
                np.array([p[1] for p in pending])[keep],
                np.array([p[2] for p in pending])[keep],
                losses[keep],
                lr[s],
                [b.reshape(hooks.ring, -1)[s] for b in before],
                [g[keep] for g in grads_flat],
                [a.reshape(hooks.ring, -1)[s] for a in after],
            )
        if first_bad is not None and self.diverged_at is None:
            self.diverged_at = int(steps[first_bad])
            if self.verbose:
                print(
                    f"TrainingTrace: loss or gradient is NaN/inf at step {self.diverged_at}"
                    + ("; stopping training" if self.stop_on_divergence else ""),
                    file=sys.stderr,
                )
            if self.stop_on_divergence and self.model is not None:
                self.model.stop_training = True

    # -- results ---------------------------------------------------------------------------
    def _settle(self) -> None:
        """Copy what the device holds; after an interrupted fit (no on_train_end) also
        remove the hooks. Read from another callback during fit, training goes on."""
        if not self._running:
            return
        if _inside_fit(self.model):
            self._flush()
        else:
            self._finish(interrupted=True)

    @property
    def interrupted(self) -> bool:
        """True when fit ended by an exception (Ctrl-C) before on_train_end."""
        if self._running and not _inside_fit(self.model):
            self._finish(interrupted=True)
        return self._interrupted

    @property
    def steps_recorded(self) -> int:
        self._settle()
        return self._store.n

    def to_frame(self):
        """One row per (step, variable, element): step, epoch, batch, variable, index,
        weight_before, gradient, weight_after, loss, learning_rate."""
        import pandas as pd

        self._settle()
        st, n = self._store, self._store.n
        columns = {k: [] for k in ("step", "epoch", "batch", "variable", "index")}
        values = {k: [] for k in ("weight_before", "gradient", "weight_after", "loss", "learning_rate")}
        for path, size, b, g, a in zip(self.variable_paths, st.sizes, st.before, st.grad, st.after):
            for key in ("step", "epoch", "batch"):
                columns[key].append(np.repeat(st.meta[key][:n], size))
            columns["variable"].append(np.full(n * size, path, dtype=object))
            columns["index"].append(np.tile(np.arange(size), n))
            values["weight_before"].append(b[:n].reshape(-1))
            values["gradient"].append(g[:n].reshape(-1))
            values["weight_after"].append(a[:n].reshape(-1))
            values["loss"].append(np.repeat(st.loss[:n], size))
            values["learning_rate"].append(np.repeat(st.lr[:n], size))
        data = {k: (np.concatenate(v) if v else np.zeros(0)) for k, v in {**columns, **values}.items()}
        frame = pd.DataFrame(data)
        if len(frame):
            frame = frame.sort_values(["step"], kind="stable").reset_index(drop=True)
        for key in ("step", "epoch", "batch", "index"):
            frame[key] = frame[key].astype("int64")
        return frame

    def to_csv(self, path) -> None:
        self.to_frame().to_csv(path, index=False)

    def losses(self) -> np.ndarray:
        """The recorded steps' losses, in step order."""
        self._settle()
        return self._store.loss[: self._store.n].copy()

    def steps(self) -> np.ndarray:
        self._settle()
        return self._store.meta["step"][: self._store.n].copy()

    def learning_rates(self) -> np.ndarray:
        self._settle()
        return self._store.lr[: self._store.n].copy()

    def _series(self, which: str, variable: str) -> np.ndarray:
        self._settle()
        if variable not in self.variable_paths:
            raise KeyError(f"{variable!r} not recorded; recorded: {self.variable_paths}")
        i = self.variable_paths.index(variable)
        arrays = getattr(self._store, which)[i][: self._store.n]
        return arrays.reshape((self._store.n,) + self.variable_shapes[i]).copy()

    def weights_before(self, variable: str) -> np.ndarray:
        """Array (steps, *variable shape) of the values each recorded step started from."""
        return self._series("before", variable)

    def weights_after(self, variable: str) -> np.ndarray:
        return self._series("after", variable)

    def gradients(self, variable: str) -> np.ndarray:
        return self._series("grad", variable)

    def timing(self) -> dict:
        """Wall time: until the first step returned, steady-state steps/s after it, total."""
        times = self._times
        if not times or self._t0 is None:
            return {"steps": 0, "first_step_s": None, "steps_per_s": None, "total_s": None}
        steps = self._step
        first = times[0] - self._t0
        per_call = steps / len(times)
        rate = (len(times) - 1) * per_call / (times[-1] - times[0]) if len(times) > 1 and times[-1] > times[0] else None
        return {"steps": steps, "first_step_s": first, "steps_per_s": rate, "total_s": times[-1] - self._t0}


def _inside_fit(model) -> bool:
    """Whether this call comes from within ``model.fit`` (a callback reading the trace)."""
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_code.co_name == "fit" and frame.f_locals.get("self") is model:
            return True
        frame = frame.f_back
    return False


class _Hooks:
    """What TrainingTrace installed on one model: buffers, reader and the originals."""

    def __init__(self, model, variables, ring, steps_per_call, owner):
        self.model = model
        self.owner = owner
        self.variables = variables
        self.ring = ring
        self.steps_per_call = steps_per_call
        self.buffers: list = []
        self.loss: _LossRecorder | None = None
        self.reader: StateReader | None = None


def _ring_size(variables, steps_per_call: int) -> int:
    size = sum(int(np.prod(v.shape)) for v in variables) * 3 + 2
    ring = max(1, min(_MAX_RING, _RING_ELEMENTS // max(size, 1)))
    return max(ring - ring % steps_per_call, steps_per_call)


def _install(model, variables, owner) -> _Hooks:
    optimizer = model.optimizer
    steps_per_call = int(getattr(model, "steps_per_execution", 1) or 1)
    ring = _ring_size(variables, steps_per_call)
    hooks = _Hooks(model, variables, ring, steps_per_call, owner)

    def add(shape, name, dtype="float32"):
        v = optimizer.add_variable(shape=(ring,) + tuple(shape), dtype=dtype, name=name)
        hooks.buffers.append(v)
        return v

    before = [add(v.shape, f"kclf_before_{i}") for i, v in enumerate(variables)]
    grads = [add(v.shape, f"kclf_grad_{i}") for i, v in enumerate(variables)]
    after = [add(v.shape, f"kclf_after_{i}") for i, v in enumerate(variables)]
    lr = add((), "kclf_learning_rate")
    hooks.loss = _LossRecorder(ring)
    hooks.reader = StateReader(model, before + grads + after + [lr, hooks.loss.losses, hooks.loss.count])
    watched = {id(v): i for i, v in enumerate(variables)}

    original_decay = optimizer._apply_weight_decay
    original_update = optimizer._backend_update_step

    def slot_now():
        return ops.mod(optimizer.iterations, ring) if ring > 1 else None

    # Keras applies weight decay to the variables before the update step proper,
    # so the starting weights are recorded here, before decay touches them.
    def apply_weight_decay(trainable_variables):
        slot = slot_now()
        for v in trainable_variables:
            i = watched.get(id(v))
            if i is not None:
                write_slot(before[i], slot, v.value)
        original_decay(trainable_variables)

    def update_step(grads_in, trainable_variables, learning_rate):
        slot = slot_now()
        for g, v in zip(grads_in, trainable_variables):
            i = watched.get(id(v))
            if i is not None:
                write_slot(grads[i], slot, g)
        write_slot(lr, slot, learning_rate)
        original_update(grads_in, trainable_variables, learning_rate)
        for v in trainable_variables:
            i = watched.get(id(v))
            if i is not None:
                write_slot(after[i], slot, v.value)

    original_loss = model._compute_loss

    def compute_loss(x=None, y=None, y_pred=None, sample_weight=None, training=True):
        loss = original_loss(x, y, y_pred, sample_weight, training=training)
        if training:
            hooks.loss.update_state(loss)
        return loss

    object.__setattr__(optimizer, "_apply_weight_decay", apply_weight_decay)
    object.__setattr__(optimizer, "_backend_update_step", update_step)
    object.__setattr__(model, "_compute_loss", compute_loss)

    # A fit that raised (Ctrl-C) never reaches on_train_end: the next fit call settles
    # the trace and removes the hooks first, so an untraced fit trains without them.
    def fit(*args, **kwargs):
        if owner._running:
            owner._finish(interrupted=True)
        else:
            _uninstall(model)
        return model.fit(*args, **kwargs)

    object.__setattr__(model, "fit", fit)
    model._metrics.append(hooks.loss)
    object.__setattr__(model, "_kclf_trace_hooks", hooks)
    # The next fit traces a new train function that contains the hooks.
    model.train_function = None
    return hooks


def _uninstall(model) -> None:
    hooks = model.__dict__.get("_kclf_trace_hooks")
    if hooks is None:
        return
    optimizer = model.optimizer
    for v in hooks.buffers:
        optimizer._untrack_variable(v)
    optimizer.__dict__.pop("_backend_update_step", None)
    optimizer.__dict__.pop("_apply_weight_decay", None)
    model.__dict__.pop("fit", None)
    model.__dict__.pop("_compute_loss", None)
    if hooks.loss in model._metrics:
        model._metrics.remove(hooks.loss)
    del model.__dict__["_kclf_trace_hooks"]
    model.train_function = None
