"""Run in a child process by tests/test_data_parallel.py, its devices set in its environment
(KCLF_DEVICES=N, and XLA_FLAGS on JAX): the data-parallel experiment's fits on 1 and N
devices, and what the test checks of them, printed as one JSON line."""

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "experiments"))

import data_parallel as dp  # noqa: E402

from kclf import devices  # noqa: E402
from kclf.callbacks import TrainingTrace  # noqa: E402


def placement(trace) -> int:
    """On how many devices the trace's row ring lives (each a full copy)."""
    rows = trace._hooks.rows.value
    shards = getattr(rows, "addressable_shards", None)
    if shards is not None:
        assert all(s.data.shape == rows.shape for s in shards), "the ring is sharded, expected replicated"
        return len(shards)
    values = getattr(rows, "values", None)
    return len(values) if values is not None else 1


def main() -> None:
    import keras

    n = devices.configure()  # KCLF_DEVICES=N: TensorFlow's CPU split before its first op
    x, y_class, y_binary = dp.data()
    out = {"backend": keras.backend.backend(), "devices": len(devices.cpu_devices()), "models": {}}
    for label, build, task in dp.models():
        y = y_class if task == "sparse" else y_binary
        one, many = dp.fit(build, task, x, y, 1), dp.fit(build, task, x, y, n)
        applied = 0.0  # SGD: after = before − lr · gradient, so the recorded gradient is the applied one
        for path in many.variable_paths:
            step = (many.weights_before(path) - many.weights_after(path)) / dp.LEARNING_RATE
            applied = max(applied, float(np.max(np.abs(step - many.gradients(path)))))
        out["models"][label] = {
            "differences": dp.differences(one, many), "disagreements": dp.agree(one, many),
            "applied_vs_recorded": applied, "copies": placement(many),
            "losses": many.losses().tolist(), "history": many.model.history.history["loss"],
        }
    # JAX: several steps per execution (the rings are read once per ring, not per call).
    if keras.backend.backend() == "jax":
        from kclf.models import compile_model

        label, build, task = dp.models()[0]
        traces = []
        for k in (1, n):
            with devices.data_parallel(k):
                model = build()
                compile_model(model, task, optimizer=keras.optimizers.SGD(dp.LEARNING_RATE), steps_per_execution=4)
                trace = TrainingTrace()
                model.fit(x, y_class, batch_size=dp.BATCH_SIZE, epochs=dp.EPOCHS, shuffle=False, verbose=0,
                          callbacks=[trace])
            traces.append(trace)
        out["steps_per_execution_4"] = {"differences": dp.differences(*traces), "disagreements": dp.agree(*traces)}
    # TensorFlow: built and compiled in the strategy's scope, fit outside it (Keras enters it).
    if keras.backend.backend() == "tensorflow":
        label, build, task = dp.models()[1]
        with devices.data_parallel(n):
            model = build()
            model.compile(optimizer=keras.optimizers.SGD(dp.LEARNING_RATE), loss="binary_crossentropy")
        trace = TrainingTrace()
        model.fit(x, y_binary, batch_size=dp.BATCH_SIZE, epochs=1, shuffle=False, verbose=0, callbacks=[trace])
        out["fit_outside_scope_steps"] = int(trace.steps_recorded)
    print("RESULT " + json.dumps(out))


if __name__ == "__main__":
    main()
