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
from dataclasses import dataclass

import keras
import numpy as np

from kclf.backend import threads_for
from kclf.errors import KclfError
from kclf.trace import keras_api as api
from kclf.trace import refusals, store
from kclf.trace.hooks import hooks_for
from kclf.trace.interrupt import CtrlC
from kclf.trace.variables import check_selector, choose, lookup


@dataclass(slots=True)
class Fit:
    """One fit of a trace, born at on_train_begin: where its steps are in the device's rings
    and how far the host has copied them."""

    index: int  # 0 for the trace's first fit
    steps_before: int  # the trace's earlier fits' steps: this fit's step 1 is steps_before + 1
    start: int  # the optimizer's iteration count when it began: both rings' first slot
    flush_every: int  # train-function calls that fill a ring: copied before one can overwrite
    began: float  # time.perf_counter() at on_train_begin
    recording: bool = True  # until the fit ends
    interrupted: bool = False  # it ended by an exception (Ctrl-C)
    unreadable: bool = False  # JAX no longer had the newest steps (a second Ctrl-C)
    diverged: bool = False  # a step's loss or gradient was NaN/inf
    epoch: int = 0
    epoch_start: int = 0  # steps run before this epoch
    calls: int = 0  # train-function calls since the last copy
    ran: int = 0  # steps the device ran, at the last copy
    applied: int = 0  # updates the optimizer applied, at the last copy: rows copied
    first_call: float | None = None  # when the first train-function call returned
    last_copy: float | None = None

    def timing(self, steps_per_call: int) -> dict:
        """Wall time until the first call returned, steps/s after it, and in all."""
        first, last, steps = self.first_call, self.last_copy, self.ran
        if first is None or last is None:
            return {"steps": steps, "first_step_s": None, "steps_per_s": None, "total_s": None}
        rate = (steps - steps_per_call) / (last - first) if last > first and steps > steps_per_call else None
        return {"steps": steps, "first_step_s": first - self.began, "steps_per_s": rate,
                "total_s": last - self.began}


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

    What it cannot record it refuses in one line before the step changes anything
    (:mod:`kclf.trace.refusals`): a model without trainable weights, a trainable integer
    variable, a variable that gets no gradient, a custom train_step whose loss does not go
    through ``compute_loss``.
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
        self.variable_filter = check_selector(variables)
        self.stop_on_divergence = stop_on_divergence
        self.verbose = verbose
        self.diverged_at: int | None = None
        self.variable_paths: list[str] = []
        self.variable_shapes: list[tuple] = []
        self._owner = None  # the model this trace records
        self._hooks = None
        self._store = store.Store([])
        self._fit: Fit | None = None  # the running fit, or the last one
        self._sigint = CtrlC()
        threads_for(keras.backend.backend())  # torch: one thread, also where kclf came after it

    # -- attaching to a model ------------------------------------------------------------
    def set_model(self, model):
        if self._owner is not None and model is not self._owner:
            raise KclfError(f"this TrainingTrace records model {self._owner.name!r}; "
                            f"use a new TrainingTrace for model {model.name!r}")
        api.check_supported()
        refusals.check_model(model)
        super().set_model(model)
        self._end_raised_fit()
        refusals.check_weights(model)
        chosen = choose(model.trainable_variables, self.variable_filter)
        refusals.check_dtypes(chosen, model.trainable_variables)
        if not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)
        paths = [v.path for v in chosen]
        if self._fit is not None and paths != self.variable_paths:
            raise KclfError(f"this TrainingTrace recorded {self.variable_paths}; the model now has {paths}")
        self._owner = model
        self.variable_paths, self.variable_shapes = paths, [tuple(v.shape) for v in chosen]
        if self._fit is None:
            self._store = store.Store([int(np.prod(s)) for s in self.variable_shapes])
        self._hooks = hooks_for(model, chosen, before_fit=self._end_raised_fit)

    def _end_raised_fit(self) -> None:
        """A fit or a new trace starts while this one still records: its last fit raised
        (Keras tells its callbacks nothing then)."""
        if self.recording:
            self.end_fit(interrupted=True)

    # -- the callback ----------------------------------------------------------------------
    def on_train_begin(self, logs=None):
        if self._hooks is None or not self._hooks.installed:
            self.set_model(self.model)  # reused after its fit ended
        hooks, last = self._hooks, self._fit
        # Both rings start from the optimizer's iteration count: one slot index serves both.
        start = hooks.start()
        self._fit = Fit(index=last.index + 1 if last else 0,
                        steps_before=last.steps_before + last.ran if last else 0,
                        start=start, flush_every=hooks.ring // hooks.steps_per_call,
                        began=time.perf_counter())
        self._sigint.catch(api.fit_codes(self.model))

    def on_epoch_begin(self, epoch, logs=None):
        fit = self._fit
        fit.epoch, fit.epoch_start = epoch, fit.ran

    def on_train_batch_end(self, batch, logs=None):
        fit = self._fit
        fit.calls += 1
        if fit.first_call is None:
            fit.first_call = time.perf_counter()
        if fit.calls >= fit.flush_every:  # before the next call could overwrite a slot
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
        fit = self._fit
        if fit is None or not fit.recording:
            return
        try:
            self._flush()
        finally:
            fit.recording, fit.interrupted = False, interrupted
            ctrl_c = self._sigint.release()
            if self._hooks is not None:
                self._hooks.uninstall()
        if ctrl_c:  # it came after the last step's end: raised now, with everything recorded
            fit.interrupted = True
            raise KeyboardInterrupt

    def _stop_on_ctrl_c(self) -> None:
        self._sigint.take()
        api.sync_state(self.model)  # JAX: the model gets its weights back from the fit's state
        self.end_fit(interrupted=True)
        raise KeyboardInterrupt

    # -- copying from the device ---------------------------------------------------------
    def _flush(self) -> None:
        fit, hooks = self._fit, self._hooks
        if fit is None or not fit.recording or hooks is None:
            return
        fit.calls = 0
        values = hooks.read()
        if values is None:  # a second Ctrl-C stopped JAX mid-step: the steps since the last copy are gone
            if self.verbose and not fit.unreadable:
                print(f"TrainingTrace: the fit stopped at once inside a step (a second Ctrl-C); the trace "
                      f"keeps its {self._store.n} steps copied before, not the newest ones", file=sys.stderr)
            fit.unreadable = True
            return
        rows, losses, count, iterations = values
        copied = fit.applied
        fit.ran = count - fit.start  # the device's count: steps Keras reported but never ran are not here
        fit.applied = iterations - fit.start
        fit.last_copy = time.perf_counter()
        if fit.applied <= copied:
            return
        block, new = store.applied_steps(rows, losses, ring=hooks.ring, start=fit.start, copied=copied,
                                         applied=fit.applied)
        steps = fit.steps_before + new
        keep, first = store.select(steps, store.non_finite(block, self._store.sizes), self.every,
                                   stop_on_divergence=self.stop_on_divergence, diverged=fit.diverged)
        self._store.append(block[keep], fit.index, steps[keep], fit.epoch, new[keep] - fit.epoch_start - 1)
        if first is not None:
            fit.diverged = True
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
    def recording(self) -> bool:
        """True between on_train_begin and the fit's end."""
        return self._fit is not None and self._fit.recording

    @property
    def interrupted(self) -> bool:
        """True while a fit runs and after one that ended by an exception (Ctrl-C)."""
        return self._fit is not None and (self._fit.interrupted or self._fit.recording)

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
        several = self._fit is not None and self._fit.index > 0
        return pd.DataFrame(self._store.frame_data(self.variable_paths, with_fit=several))

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
        i = lookup(variable, self.variable_paths)
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
        if self._fit is None:
            return {"steps": 0, "first_step_s": None, "steps_per_s": None, "total_s": None}
        return self._fit.timing(self._hooks.steps_per_call if self._hooks else 1)
