"""The device side of TrainingTrace: what it adds to a model's train step.

Each optimizer step writes one packed row (weights before, gradients applied, weights after,
learning rate) into a ring owned by the optimizer, and the training loss into a ring owned
by a hidden metric, so JAX's stateless step carries both like any other state. The row is
written when the optimizer's ``apply`` ends, so the weights after are what the step left in
the model (after constraints and an EMA overwrite). What the trace cannot record it refuses
while the step is traced, before it changes anything: a step whose loss does not go through
``compute_loss`` (a custom train_step with its own loss), one that computes several losses,
a recorded variable that gets no gradient. The rings,
the wrapped methods and the compiled train function stay cached on the model after a fit:
a later trace of the same variables on the same compiled model reuses them, and the plain
train function that was there before comes back when the trace is removed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import keras
import numpy as np
from keras import ops

from kclf.errors import KclfError
from kclf.trace import keras_api as api
from kclf.trace.device import StateReader, pack, snapshot, write_slot
from kclf.trace.refusals import loss_problem, no_gradient

# Elements kept on the device between host reads: small enough for any model we trace.
RING_ELEMENTS = 1 << 20
MAX_RING = 64


class LossRecorder(keras.metrics.Metric):
    """Keeps the last ``ring`` training losses; a metric so JAX carries it as state."""

    def __init__(self, ring: int):
        super().__init__(name="kclf_trace_loss")
        self.ring = ring
        # Under tf.distribute the metric's variables are per replica and summed when read:
        # the loss is all-reduced in the step (below), so the first replica's copy is it.
        self.losses = self.add_variable(shape=(ring,), initializer="zeros", name="losses",
                                        aggregation="only_first_replica")
        self.count = self.add_variable(shape=(), initializer="zeros", dtype="int32", name="count",
                                       aggregation="only_first_replica")

    def record(self, loss) -> bool:
        """Keep the step's loss; False where the step cannot carry it (JAX outside the
        stateless scope of the metrics' variables)."""
        if not api.writable_in_step(self.count):
            return False
        # The step's loss as Keras reports it: under MirroredStrategy each replica's loss is
        # its shard's mean divided by the replica count, and their sum is the batch's.
        loss = api.sum_over_replicas(loss)
        slot = ops.mod(self.count.value, self.ring) if self.ring > 1 else None
        write_slot(self.losses, slot, ops.stop_gradient(loss))
        self.count.assign_add(1)
        return True

    def update_state(self, *args, **kwargs):
        pass  # a custom train_step updates every metric with (y, y_pred): the loss comes from record

    def reset_state(self):
        pass  # Keras resets metrics every epoch; the ring must survive that.

    def result(self):
        return {}  # nothing for the progress bar or the logs


def ring_size(sizes, steps_per_call: int) -> int:
    width = 3 * sum(sizes) + 2
    ring = max(1, min(MAX_RING, RING_ELEMENTS // max(width, 1)))
    return max(ring - ring % steps_per_call, steps_per_call)


class Hooks:
    """The rings, the wrapped methods and the train functions of one traced model."""

    def __init__(self, model, variables, before_fit: Callable[[], None]):
        self.model = model
        self.optimizer = api.applying_optimizer(model)
        self.variables = list(variables)
        self.sizes = [int(np.prod(v.shape)) for v in self.variables]
        self.steps_per_call = int(getattr(model, "steps_per_execution", 1) or 1)
        self.ring = ring_size(self.sizes, self.steps_per_call)
        self.key = (tuple(id(v) for v in self.variables), self.ring, api.compile_identity(model))
        # A row: before, gradients, after, learning rate, and how many steps a loss-scale
        # optimizer had skipped by then (the loss lives in the metric's ring).
        width = 3 * sum(self.sizes) + 2
        # Placed like every variable without a layout: replicated on each device of a
        # DataParallel mesh (JAX) or mirrored on each replica (tf.distribute); every replica
        # writes the same all-reduced row, so the first replica's copy is the one kept.
        self.rows = self.optimizer.add_variable(shape=(self.ring, width), dtype="float32", name="kclf_rows",
                                                aggregation="only_first_replica")
        self.skips = self.optimizer.add_variable(shape=(), dtype="float32", name="kclf_skipped_steps",
                                                 aggregation="only_first_replica")
        self.scaler = model.optimizer if model.optimizer is not self.optimizer else None
        api.untrack(self.optimizer, [self.rows, self.skips])
        self.loss = LossRecorder(self.ring)
        self._step = threading.local()  # per replica thread under tf.distribute
        self._before = {}  # id(variable) -> its value before weight decay changed it
        self._reduced = {}  # tf.distribute: position -> the all-reduced gradient
        self.reader = None
        self.traced_function = None  # the compiled train function with the hooks
        self.plain_function = None  # the one that was there before
        self.installed = False
        # Called when a fit starts through these hooks, and before another trace takes them:
        # the trace recording through them ends its last fit if that one raised.
        self.before_fit = before_fit

    # -- what runs inside the step -----------------------------------------------------------
    # Python work here runs once, while JAX and TensorFlow trace the step (every step on
    # PyTorch, which runs eagerly).
    def _on_loss(self, loss) -> None:
        if self.loss.record(loss):
            self._step.losses = getattr(self._step, "losses", 0) + 1

    def _loss_checked(self, original):
        """The optimizer update the train step calls, once per step (a loss-scale optimizer's
        also when it skips the step): one loss went through compute_loss before it."""
        step, name = self._step, self.model.name

        def checked(*args, **kwargs):
            losses, step.losses = getattr(step, "losses", 0), 0
            if losses != 1:
                api.raise_in_step(KclfError(loss_problem(name, losses, keras.backend.backend())))
            return original(*args, **kwargs)

        return checked

    def _apply(self, original):
        step, variables, name = self._step, self.variables, self.model.name

        def apply(grads, trainable_variables=None):
            step.row = None
            original(grads, trainable_variables)
            if step.row is None:
                api.raise_in_step(KclfError(f"model {name!r}: the optimizer's apply ran no update step; "
                                            "TrainingTrace records one update per step: expected "
                                            "a Keras optimizer without gradient accumulation"))
            slot, values, learning_rate = step.row
            step.row = None
            # The weights now are what the step left: after constraints and an EMA overwrite.
            row = pack(values + [v.value for v in variables] + [learning_rate, self.skips.value])
            write_slot(self.rows, slot, row)

        return apply if self.scaler is not None else self._loss_checked(apply)

    def _weight_decay(self, original):
        watched, before = {id(v) for v in self.variables}, self._before

        def apply_weight_decay(trainable_variables):
            # The weights before the step: decay changes them before the update proper.
            before.clear()
            before.update({id(v): snapshot(v) for v in trainable_variables if id(v) in watched})
            original(trainable_variables)

        return apply_weight_decay

    def _update_step(self, original):
        optimizer, ring, variables, before = self.optimizer, self.ring, self.variables, self._before
        reduced, step = self._reduced, self._step

        def update_step(grads, trainable_variables, learning_rate):
            reduced.clear()
            by_id = {id(v): g for g, v in zip(grads, trainable_variables)}
            if any(id(v) not in by_id for v in variables):  # Keras drops a None gradient
                api.raise_in_step(KclfError(no_gradient(
                    [v for v in variables if id(v) not in by_id], [v for v in variables if id(v) in by_id])))
            starts = [before.get(id(v)) for v in variables]
            starts = [snapshot(v) if s is None else s for s, v in zip(starts, variables)]
            slot = ops.mod(optimizer.iterations, ring) if ring > 1 else None
            original(grads, trainable_variables, learning_rate)
            if reduced:  # tf.distribute: the all-reduced gradients the update applied
                by_id = {id(v): reduced[i] for i, v in enumerate(trainable_variables)}
                reduced.clear()
            step.row = (slot, starts + [by_id[id(v)] for v in variables], learning_rate)
            before.clear()

        return update_step

    # -- putting it on and taking it off ------------------------------------------------------
    def install(self) -> None:
        """Put the hooks on; the cached traced train function when the model has one."""
        model, optimizer = self.model, self.optimizer
        self._before = {}
        self._reduced = {}
        api.track(optimizer, [self.rows, self.skips])
        self._step.losses, self._step.row = 0, None
        api.patch_optimizer(optimizer, self._apply, self._weight_decay, self._update_step)
        api.capture_all_reduce(optimizer, self._reduced)
        if self.scaler is not None:
            api.count_skipped_steps(self.scaler, self.skips)
            api.patch_scaler_updates(self.scaler, self._loss_checked)
        api.patch_compute_loss(model, self._on_loss)
        api.add_metric(model, self.loss)
        api.patch_make_train_function(model, self.before_fit)
        self.reader = StateReader(model, [self.rows, self.loss.losses, self.loss.count, optimizer.iterations])
        self.plain_function = model.train_function
        model.train_function = self.traced_function  # None: fit compiles the traced one
        self.installed = True

    def uninstall(self) -> None:
        """Take the hooks off, keep the traced function, restore the plain one."""
        if not self.installed:
            return
        model, optimizer = self.model, self.optimizer
        self.traced_function = model.train_function
        api.untrack(optimizer, [self.rows, self.skips])
        api.unpatch_optimizer(optimizer)
        if self.scaler is not None:
            api.unpatch_scaler(self.scaler)
        api.unpatch_compute_loss(model)
        api.remove_metric(model, self.loss)
        api.unpatch_make_train_function(model)
        model.train_function = self.plain_function
        self.installed = False

    def read(self):
        """(rows ring, loss ring, loss count, optimizer iterations) as NumPy; None when JAX
        no longer has them (see StateReader.read)."""
        values = self.reader.read()
        if values is None:
            return None
        rows, losses, count, iterations = values
        return rows, losses, int(count), int(iterations)

    def start(self) -> int:
        """Align the rings for a fit: returns the optimizer's iteration count, where both
        the loss count and the row slots start; the skipped-step count starts at 0."""
        iterations = int(ops.convert_to_numpy(self.optimizer.iterations))
        self.loss.count.assign(iterations)
        self.skips.assign(0.0)
        return iterations


def hooks_for(model, variables, *, before_fit: Callable[[], None]) -> Hooks:
    """Installed hooks recording ``variables``: the model's cached ones when they record the
    same variables with the same ring and compile, else new ones (one recompile).
    ``before_fit``: the recording trace's, called whenever a fit starts through them."""
    cached = model.__dict__.get("_kclf_trace_hooks")
    key = (tuple(id(v) for v in variables),
           ring_size([int(np.prod(v.shape)) for v in variables], int(getattr(model, "steps_per_execution", 1) or 1)),
           api.compile_identity(model))
    if cached is not None:
        cached.before_fit()  # the trace that had them: its fit raised, it ends here
        cached.uninstall()
        if cached.key != key:
            cached = None
    if cached is None:
        cached = Hooks(model, variables, before_fit)
        object.__setattr__(model, "_kclf_trace_hooks", cached)
    cached.before_fit = before_fit
    cached.install()
    return cached
