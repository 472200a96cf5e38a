"""TrainingTrace: record every optimizer step's weights, loss and applied gradients.

    trace = TrainingTrace()
    model.fit(x, y, batch_size=1, callbacks=[trace])
    trace.to_frame()      # one row per (step, variable, element)

What is recorded is what the model's own train step computed and applied, not a
recomputation: the trace hooks the optimizer's update step (the gradients after clipping
and loss-scale unscaling, the learning rate it used, the weights before and after) and the
training loss, and each step writes one packed row into a ring on the device
(:mod:`kclf.trace.hooks`). The callback copies the rings to host memory once per ring and
at every epoch's end (:mod:`kclf.trace.store`), so it records every step also when Keras
runs several steps per call (steps_per_execution > 1). Every private Keras name it relies
on is in :mod:`kclf.trace.keras_api`.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence

import keras
import numpy as np

from kclf.backend import threads_for
from kclf.errors import KclfError
from kclf.trace import keras_api as api
from kclf.trace import store
from kclf.trace.hooks import hooks_for
from kclf.trace.interrupt import CtrlC
from kclf.trace.store import SelectorValueError


class TrainingTrace(keras.callbacks.Callback):
    """Record, for every optimizer step, the weights before and after, the applied
    gradient, the step's own batch loss and the learning rate.

    Args:
        every: record every k-th step only (steps 1, 1 + k, 1 + 2k, ...).
        variables: record only these variables: Keras paths ("dense/kernel"), layer names
            ("dense") or unambiguous path ends ("dense/kernel" for
            "sequential_2/dense/kernel"); a callable taking the variable also works.
        stop_on_divergence: stop training when the loss or a gradient is NaN/inf;
            the trace keeps every step up to and including that one. With False,
            training goes on, every step is kept and ``diverged_at`` names the first.
        verbose: print the divergence message on stderr.

    One trace may record several fits of its model: the steps go on counting and
    ``to_frame()`` then has a ``fit`` column (0 for the first). Ctrl-C during a fit stops it
    at the end of the running step, with every step recorded and the model holding its
    weights (a second Ctrl-C stops at once); also one that lands inside a garbage-collection
    callback, where Python would drop it.

    What it cannot record it refuses in one line before the step changes anything: a model
    without trainable weights, a trainable integer variable, a variable that gets no
    gradient, a custom train_step whose loss does not go through ``compute_loss``.
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
        self.variable_filter = store.check_selector(variables)
        self.stop_on_divergence = stop_on_divergence
        self.verbose = verbose
        self.diverged_at: int | None = None
        self.variable_paths: list[str] = []
        self.variable_shapes: list[tuple] = []
        self.recording = False  # between on_train_begin and the fit's end
        self._interrupted = False
        self._unreadable = False  # a fit stopped where JAX no longer had the newest steps
        self._owner = None  # the model this trace records
        self._hooks = None
        self._store = store.Store([])
        self._fits = 0
        self._steps_before = 0  # steps of the earlier fits
        self._read = 0  # steps of this fit copied from the device
        self._sigint = CtrlC()
        self._times = (None, None, None, 0)  # start, first call returned, last read, steps
        threads_for(keras.backend.backend())  # torch: one thread, also where kclf came after it

    # -- attaching to a model ------------------------------------------------------------
    def _select(self, variables) -> list:
        chosen = self.variable_filter
        if chosen is None:
            return list(variables)
        if callable(chosen):
            selected = [v for v in variables if chosen(v)]
            if not selected:
                raise SelectorValueError(f"variables: the callable chose none of {[v.path for v in variables]}; "
                                         "expected it to return True for at least one")
            return selected
        paths = store.resolve(chosen, [v.path for v in variables])
        return [v for v in variables if v.path in paths]

    def set_model(self, model):
        if self._owner is not None and model is not self._owner:
            raise KclfError(f"this TrainingTrace records model {self._owner.name!r}; "
                            f"use a new TrainingTrace for model {model.name!r}")
        api.check_supported()
        optimizer = getattr(model, "optimizer", None)
        if optimizer is None:
            raise KclfError("TrainingTrace needs a compiled model (model.compile(optimizer=..., loss=...))")
        steps = api.gradient_accumulation(api.applying_optimizer(model))
        if steps:
            raise KclfError(f"TrainingTrace does not support gradient_accumulation_steps (= {steps}); "
                            "expected None: the optimizer applies one update per several steps")
        super().set_model(model)
        if self.recording:
            self.end_fit(interrupted=True)  # the last fit raised
        _check_weights(model)
        variables = self._select(model.trainable_variables)
        _check_dtypes(variables, model.trainable_variables)
        if not optimizer.built:
            optimizer.build(model.trainable_variables)
        paths = [v.path for v in variables]
        if self._fits and paths != self.variable_paths:
            raise KclfError(f"this TrainingTrace recorded {self.variable_paths}; the model now has {paths}")
        self._owner = model
        self.variable_paths, self.variable_shapes = paths, [tuple(v.shape) for v in variables]
        if not self._fits:
            self._store = store.Store([int(np.prod(s)) for s in self.variable_shapes])
        self._hooks = hooks_for(model, variables)
        self._hooks.owner = self

    # -- the callback ----------------------------------------------------------------------
    def on_train_begin(self, logs=None):
        if self._hooks is None or not self._hooks.installed:
            self.set_model(self.model)  # reused after its fit ended
        hooks = self._hooks
        # Both rings start from the optimizer's iteration count: one slot index serves both.
        self._count0 = hooks.start()
        self._fit, self._fits = self._fits, self._fits + 1
        self._steps_before += self._read  # the steps of the earlier fits go on counting
        self._read = self._applied = self._epoch_start = self._calls = 0
        self._epoch = 0
        self._fit_diverged = False
        self._flush_calls = hooks.ring // hooks.steps_per_call
        self._interrupted, self._unreadable, self.recording = False, False, True
        self._times = (time.perf_counter(), None, None, 0)
        self._sigint.catch(api.fit_codes(self.model))

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch, self._epoch_start = epoch, self._read

    def on_train_batch_end(self, batch, logs=None):
        self._calls += 1
        if self._times[1] is None:
            self._times = (self._times[0], time.perf_counter(), None, 0)
        if self._calls >= self._flush_calls:  # before the next call could overwrite a slot
            self._flush()
        if self._sigint.pending:
            self._stop_on_ctrl_c()

    def on_epoch_end(self, epoch, logs=None):
        self._flush()
        if self._sigint.pending:
            self._stop_on_ctrl_c()

    def on_train_end(self, logs=None):
        self.end_fit(interrupted=False)

    def end_fit(self, *, interrupted: bool) -> None:
        """Copy what the device holds, take the hooks off (the trace's explicit end; Keras
        calls it through on_train_end, and the next fit does when the last one raised)."""
        if not self.recording:
            return
        try:
            self._flush()
        finally:
            self.recording, self._interrupted = False, interrupted
            ctrl_c = self._sigint.release()
            if self._hooks is not None:
                self._hooks.uninstall()
        if ctrl_c:  # it came after the last step's end: raised now, with everything recorded
            self._interrupted = True
            raise KeyboardInterrupt

    def _stop_on_ctrl_c(self) -> None:
        self._sigint.take()
        api.sync_state(self.model)  # JAX: the model gets its weights back from the fit's state
        self.end_fit(interrupted=True)
        raise KeyboardInterrupt

    # -- copying from the device ---------------------------------------------------------
    def _flush(self) -> None:
        hooks = self._hooks
        if not self.recording or hooks is None:
            return
        self._calls = 0
        values = hooks.read()
        if values is None:  # a second Ctrl-C stopped JAX mid-step: the steps since the last copy are gone
            if self.verbose and not self._unreadable:
                print(f"TrainingTrace: the fit stopped at once inside a step (a second Ctrl-C); the trace "
                      f"keeps its {self._store.n} steps copied before, not the newest ones", file=sys.stderr)
            self._unreadable = True
            return
        rows, losses, count, iterations = values
        executed = count - self._count0  # the device's count: steps Keras reported but never ran are not here
        self._times = (self._times[0], self._times[1], time.perf_counter(), executed)
        applied = np.arange(self._applied, iterations - self._count0)
        self._applied, self._read = iterations - self._count0, executed
        if not len(applied):
            return
        block = rows[(self._count0 + applied) % hooks.ring]
        # A loss-scale optimizer skips a step whose scaled gradients overflow: it applies
        # nothing, so it has no row, and the steps after it count the skipped ones too.
        new = applied + block[:, -1].astype("int64") + 1  # this fit's 1-based step numbers
        block[:, -1] = losses[(self._count0 + new - 1) % hooks.ring]
        steps = self._steps_before + new
        keep, first = store.select(steps, store.non_finite(block, self._store.sizes), self.every,
                                         stop_on_divergence=self.stop_on_divergence, diverged=self._fit_diverged)
        self._store.append(block[keep], self._fit, steps[keep], self._epoch, new[keep] - self._epoch_start - 1)
        if first is not None:
            self._fit_diverged = True
            self.diverged_at = self.diverged_at or int(steps[first])
            if self.verbose:
                print(f"TrainingTrace: loss or gradient is NaN/inf at step {int(steps[first])}"
                      + ("; stopping training" if self.stop_on_divergence else ""), file=sys.stderr)
            if self.stop_on_divergence and self.model is not None:
                self.model.stop_training = True

    def _settle(self) -> None:
        """During a fit (or after one that raised) the newest steps are still on the device."""
        if self.recording:
            self._flush()

    # -- results ---------------------------------------------------------------------------
    @property
    def interrupted(self) -> bool:
        """True while a fit runs and after one that ended by an exception (Ctrl-C)."""
        return self._interrupted or self.recording

    @property
    def steps_recorded(self) -> int:
        self._settle()
        return self._store.n

    def to_frame(self):
        """One row per (step, variable, element): step, epoch, batch, variable, index,
        weight_before, gradient, weight_after, loss, learning_rate (and fit, from the
        second fit of the same trace on)."""
        import pandas as pd

        self._settle()
        return pd.DataFrame(self._store.frame_data(self.variable_paths, with_fit=self._fits > 1))

    def to_csv(self, path) -> None:
        self.to_frame().to_csv(path, index=False)

    def losses(self) -> np.ndarray:
        """The recorded steps' losses, in step order."""
        self._settle()
        return self._store.loss.copy()

    def steps(self) -> np.ndarray:
        self._settle()
        return self._store.meta("step").copy()

    def learning_rates(self) -> np.ndarray:
        self._settle()
        return self._store.lr.copy()

    def _series(self, which: str, variable: str) -> np.ndarray:
        self._settle()
        i = store.lookup(variable, self.variable_paths)
        return self._store.values(which, i).reshape((self._store.n,) + self.variable_shapes[i]).copy()

    def weights_before(self, variable: str) -> np.ndarray:
        """Array (steps, *variable shape) of the values each recorded step started from."""
        return self._series("before", variable)

    def weights_after(self, variable: str) -> np.ndarray:
        return self._series("after", variable)

    def gradients(self, variable: str) -> np.ndarray:
        return self._series("grad", variable)

    def timing(self) -> dict:
        """The last fit's wall time: until its first call returned, steps/s after it, total."""
        start, first, last, steps = self._times
        if start is None or first is None or last is None:
            return {"steps": steps, "first_step_s": None, "steps_per_s": None, "total_s": None}
        spc = self._hooks.steps_per_call if self._hooks else 1
        rate = (steps - spc) / (last - first) if last > first and steps > spc else None
        return {"steps": steps, "first_step_s": first - start, "steps_per_s": rate, "total_s": last - start}


def _check_weights(model) -> None:
    """The model has trainable weights to record, or one line saying why not."""
    if not model.trainable_variables and model.built and api.unbuilt_layers(model):
        api.build_layers(model)  # TensorFlow: model.build(shape) left its layers unbuilt
    if model.trainable_variables:
        return
    unbuilt = api.unbuilt_layers(model)
    if not model.built:  # TensorFlow builds an Input-less Sequential at its first batch
        raise KclfError(f"model {model.name!r} has no weights yet (it is built at its first "
                        "batch); TrainingTrace records them from the first step: give it "
                        "keras.Input(shape) or call model.build(input_shape) before fit")
    if unbuilt:
        raise KclfError(f"model {model.name!r} is marked built but its layers "
                        f"{[layer.name for layer in unbuilt]} are not (model.build could not run it); "
                        "TrainingTrace records the weights from the first step: call the model "
                        "on a batch (model(x[:1])) before fit")
    frozen = len(model.weights)
    why = (f"its {frozen} weights are all non-trainable: frozen layers or trainable=False" if frozen
           else "it has no weights at all")
    raise KclfError(f"model {model.name!r} has no trainable weights ({why}), so the optimizer "
                    "updates nothing; TrainingTrace records updates: expected a model with at "
                    "least one trainable weight")


def _check_dtypes(variables, every) -> None:
    """Only float variables get gradients: an integer one would make Keras drop it."""
    wrong = [v for v in variables if "float" not in str(v.dtype)]
    if wrong:
        floats = [v.path for v in every if "float" in str(v.dtype)]
        expected = "them non-trainable (trainable=False)" + (f" or variables={floats}" if floats else "")
        raise KclfError(f"trainable variables {[f'{v.path} ({v.dtype})' for v in wrong]} are not float, "
                        "so they get no gradient and the optimizer never updates them; TrainingTrace "
                        f"records float variables: expected {expected}")
