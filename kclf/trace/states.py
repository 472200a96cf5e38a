"""StepStates: the whole training state before chosen steps, so one step can be replayed.

A TrainingTrace records what each step did: the weights before and after, the applied
gradient, the batch loss. To run one step again, on another backend and from the same
state, it also takes what the optimizer carries from step to step (Adam's moments and its
step count) and the step's batch. StepStates records, before steps 1, 1 + every,
1 + 2·every, … (the steps a ``TrainingTrace(every=every)`` keeps), the model's trainable
weights, the optimizer's variables and which rows of the fit's data the batch holds;
:meth:`save` writes them with the model (architecture and compile configuration, a .keras
file) and the data, for ``kclf compare``'s one-step replay (kclf.compare.replay).

    states = StepStates(every=5, rows=lambda step: order_of(step))
    model.fit(data, callbacks=[states, TrainingTrace(every=5)])
    states.save(folder, "fit_500_epochs", model, x, y)
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

import keras
import numpy as np

TRACE_PREFIX = "kclf_"  # the TrainingTrace's own rings live on the optimizer while it records


def optimizer_variables(optimizer) -> list:
    """The optimizer's own variables (iterations, learning rate, moments), in its order,
    without what a TrainingTrace keeps on it while it records."""
    return [v for v in optimizer.variables if not v.name.startswith(TRACE_PREFIX)]


def _values(variables) -> list[np.ndarray]:
    return [np.array(keras.ops.convert_to_numpy(v.value)) for v in variables]


def sync(model) -> None:
    """JAX's fit keeps the state outside the variables between steps: put it back in them
    (fit then takes it from them again, so a value assigned here is the one it trains on)."""
    sync_state = getattr(model, "jax_state_sync", None)
    if sync_state is not None:
        sync_state()


class StepStates(keras.callbacks.Callback):
    """Record the weights and the optimizer's variables before every ``every``-th step.

    Args:
        every: record before steps 1, 1 + every, 1 + 2·every, … (1-based, over the fit).
        rows: the rows of the fit's data that step ``s`` trains on (for :meth:`save`).
    """

    def __init__(self, every: int = 1, rows: Callable[[int], np.ndarray] | None = None):
        super().__init__()
        if not isinstance(every, int) or every < 1:
            raise ValueError(f"every must be a positive integer; received {every!r}")
        self.every = every
        self.rows = rows

    def on_train_begin(self, logs=None):
        self.step = 0
        self.steps: list[int] = []
        self.weights: list[list[np.ndarray]] = []
        self.optimizer: list[list[np.ndarray]] = []

    def on_train_batch_begin(self, batch, logs=None):
        self.step += 1
        if (self.step - 1) % self.every:
            return
        sync(self.model)
        self.steps.append(self.step)
        self.weights.append(_values(self.model.trainable_variables))
        self.optimizer.append(_values(optimizer_variables(self.model.optimizer)))

    def save(self, folder: Path, label: str, model, x, y, class_weight: dict | None = None) -> Path:
        """Write ``folder/LABEL.npz`` (states, batches, data) and ``folder/LABEL.keras``."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        stem = folder / quote(label, safe="")
        model.save(stem.with_suffix(".keras"))
        arrays = {"steps": np.array(self.steps, dtype="int64"), "x": np.asarray(x),
                  "y": np.asarray(y)}
        if self.rows is not None and self.steps:
            batches = [np.asarray(self.rows(s), dtype="int64") for s in self.steps]
            width = max(len(b) for b in batches)
            arrays["rows"] = np.stack([np.pad(b, (0, width - len(b)), constant_values=-1)
                                       for b in batches])
        for j in range(len(self.weights[0]) if self.weights else 0):
            arrays[f"w{j}"] = np.stack([w[j] for w in self.weights])
        for j in range(len(self.optimizer[0]) if self.optimizer else 0):
            arrays[f"o{j}"] = np.stack([o[j] for o in self.optimizer])
        meta = {"label": label, "every": self.every,
                "variables": [v.path for v in model.trainable_variables],
                "optimizer_variables": [v.path for v in optimizer_variables(model.optimizer)],
                "class_weight": {str(k): float(v) for k, v in (class_weight or {}).items()}}
        path = stem.with_suffix(".npz")
        with open(path, "wb") as fh:
            np.savez(fh, meta=np.array(json.dumps(meta)), **arrays)
        return path
