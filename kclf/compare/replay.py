"""One step from the reference's state: the child that replays steps on one backend.

    KERAS_BACKEND=jax python -m kclf.compare.replay REQUEST.json

The request names a reference run's ``states/`` folder (kclf.trace.states: per fit the
model, the data, and before each traced step the weights, the optimizer's variables and
the batch's rows), the steps to replay per fit, the reference's applied gradients at those
steps, and the CSV to write. For each step this backend

1. loads the reference's weights and optimizer variables (Adam's moments and step count)
   into the model, then runs one ``fit`` step on that step's batch with a TrainingTrace:
   its own batch loss (forward), its own gradient (backward) and weights after (the whole
   step), all from the reference's state;
2. loads the state again and applies the *reference's* gradient with its own optimizer
   (``optimizer.apply``): the update from the same gradient.

The CSV has a trace's columns (run, step, variable, index, weight_before, gradient,
weight_after, loss, learning_rate) and ``update_after`` (2.). The steps run through
``fit`` itself (one fit per step: the optimizer's step count changes between them), so
what is measured is the backend's own train step, as in the compared run.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from urllib.parse import quote

import numpy as np


def _load_states(folder: Path, label: str) -> tuple[dict, dict]:
    stem = folder / quote(label, safe="")
    with np.load(stem.with_suffix(".npz"), allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    meta = json.loads(str(arrays.pop("meta")))
    return meta, arrays


def _state(arrays: dict, i: int, prefix: str) -> list[np.ndarray]:
    out, j = [], 0
    while f"{prefix}{j}" in arrays:
        out.append(arrays[f"{prefix}{j}"][i])
        j += 1
    return out


def compiled(path: Path):
    """The model of a .keras file, compiled as its own backend would compile it: the saved
    optimizer is the saving backend's class (keras.src.backend.torch...: ``Adam`` by its
    public name instead), and what only sets how the step runs (jit_compile, run_eagerly,
    steps_per_execution) is left at this backend's defaults, as the demo's compile leaves it."""
    import zipfile

    import keras

    config = json.loads(zipfile.ZipFile(path).read("config.json"))["compile_config"]
    optimizer = dict(config["optimizer"])
    if str(optimizer.get("module", "")).startswith("keras.src.backend."):
        optimizer.update(module="keras.optimizers", registered_name=None)
    model = keras.saving.load_model(path, compile=False)
    model.compile_from_config({"optimizer": optimizer, **{k: config.get(k) for k in (
        "loss", "loss_weights", "metrics", "weighted_metrics")}})
    return model


def replay_fit(folder: Path, label: str, steps: list[int], gradients: np.ndarray | None):
    """The rows (a trace frame plus ``update_after``) of ``steps`` of fit ``label``."""
    import keras

    from kclf.callbacks import TrainingTrace
    from kclf.errors import KclfError
    from kclf.trace.states import optimizer_variables, sync

    meta, arrays = _load_states(folder, label)
    model = compiled(folder / f"{quote(label, safe='')}.keras")
    if not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
    weights, slots = model.trainable_variables, optimizer_variables(model.optimizer)
    recorded = {int(s): i for i, s in enumerate(arrays["steps"])}
    x, y = arrays["x"], arrays["y"]
    class_weight = {int(float(k)): v for k, v in meta["class_weight"].items()} or None

    def load(i: int) -> None:
        sync(model)
        values, opt = _state(arrays, i, "w"), _state(arrays, i, "o")
        if len(values) != len(weights) or len(opt) != len(slots):
            raise KclfError(f"states {label!r}: {len(values)} weights and {len(opt)} optimizer "
                            f"variables recorded; the model has {len(weights)} and {len(slots)}")
        for v, value in zip([*weights, *slots], [*values, *opt]):
            v.assign(np.asarray(value).astype(v.dtype))

    class One(keras.utils.PyDataset):
        def __init__(self, rows):
            super().__init__()
            self.rows = rows

        def __len__(self):
            return 1

        def __getitem__(self, _):
            return x[self.rows], y[self.rows]

    trace = TrainingTrace(verbose=False)
    updates = []
    for n, step in enumerate(steps):
        if step not in recorded:
            raise KclfError(f"states {label!r}: no state before step {step}")
        i = recorded[step]
        rows = arrays["rows"][i]
        rows = rows[rows >= 0]
        load(i)
        model.fit(One(rows), epochs=1, shuffle=False, verbose=0, callbacks=[trace],
                  class_weight=class_weight)
        if gradients is None:
            continue
        load(i)
        flat, grads, at = gradients[n], [], 0
        for v in weights:
            size = int(np.prod(v.shape))
            grads.append(keras.ops.convert_to_tensor(flat[at:at + size].reshape(v.shape), v.dtype))
            at += size
        model.optimizer.apply(grads, weights)
        updates.append(np.concatenate([np.ravel(keras.ops.convert_to_numpy(v.value)) for v in weights]))
    frame = trace.to_frame()
    order = {i + 1: s for i, s in enumerate(steps)}  # the trace counts its fits' steps 1, 2, ...
    frame["step"] = frame["step"].map(order)
    frame = frame.drop(columns=[c for c in ("fit", "epoch", "batch") if c in frame])
    frame.insert(0, "run", label)
    frame["update_after"] = np.concatenate(updates) if updates else np.nan
    return frame


def main(argv: list[str]) -> int:
    import pandas as pd

    from kclf.backend import select_backend

    request = json.loads(Path(argv[0]).read_text())
    select_backend()
    folder = Path(request["states"])
    gradients = {}
    if request.get("gradients"):
        with np.load(request["gradients"], allow_pickle=False) as npz:
            gradients = {k: npz[k] for k in npz.files}
    frames = []
    for n, (label, steps) in enumerate(request["steps"].items()):
        frames.append(replay_fit(folder, label, [int(s) for s in steps], gradients.get(f"g{n}")))
    out = Path(request["out"])
    pd.concat(frames, ignore_index=True).to_csv(out.with_suffix(".tmp"), index=False)
    out.with_suffix(".tmp").replace(out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
