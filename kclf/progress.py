"""A line on stderr every few seconds while a long fit runs, in a terminal or not.

The demos train for minutes (the 2026 stroke demo: 706 epochs) with ``verbose=0``, as the
lecture's cells do, so a log (or ``kclf compare``, which reads each run's stderr) would see
nothing for minutes. :func:`fit_progress` gives a Keras callback that writes

    kclf: fit 'class_weight': epoch 37 of 1000, 12 s, loss 0.3345

at most every KCLF_PROGRESS_S seconds (default 10; 0 turns it off). It changes nothing in the
fit: no randomness, no stopping, no printing to stdout, where the lecture's tables go.
"""

from __future__ import annotations

import os
import sys
import time

PREFIX = "kclf: fit"  # kclf.compare.schedule recognises the lines by it
EVERY_ENV = "KCLF_PROGRESS_S"
DEFAULT_EVERY_S = 10.0


def every_s() -> float:
    """Seconds between lines: KCLF_PROGRESS_S, else DEFAULT_EVERY_S (0 or less: none)."""
    try:
        return float(os.environ.get(EVERY_ENV, DEFAULT_EVERY_S))
    except ValueError:
        return DEFAULT_EVERY_S


def fit_progress(label: str, every: float | None = None, stream=None):
    """A Keras callback reporting fit ``label``'s epoch every ``every`` seconds on ``stream``
    (stderr). Keras is imported here, not with the module: the compare parent reads PREFIX."""
    import keras

    class FitProgress(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.every = every_s() if every is None else every
            self.stream = stream

        def on_train_begin(self, logs=None):
            self.started = self.said = time.monotonic()
            self.epoch = 0

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch + 1

        # No on_train_batch_end: defining one makes Keras hand every step's logs to the host
        # (a sync per step on JAX and TensorFlow); the demos' epochs are short enough.
        def on_epoch_end(self, epoch, logs=None):
            self._maybe_say(logs)

        def _maybe_say(self, logs) -> None:
            now = time.monotonic()
            if self.every <= 0 or now - self.said < self.every:
                return
            self.said = now
            epochs = (self.params or {}).get("epochs")
            loss = (logs or {}).get("loss")
            text = f"{PREFIX} {label!r}: epoch {self.epoch}" + (f" of {epochs}" if epochs else "")
            text += f", {now - self.started:.0f} s"
            try:
                text += f", loss {float(loss):.4g}" if loss is not None else ""
            except (TypeError, ValueError):
                pass
            print(text, file=self.stream or sys.stderr, flush=True)

    return FitProgress()


def with_progress(label: str, kwargs: dict) -> dict:
    """``fit``'s keyword arguments with a progress callback for fit ``label`` added."""
    return {**kwargs, "callbacks": [*(kwargs.get("callbacks") or []), fit_progress(label)]}
