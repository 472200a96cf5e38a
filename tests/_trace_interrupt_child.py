"""The child of tests/test_trace_interrupt.py's Ctrl-C test: traced fits stopped by Ctrl-C.

    KERAS_BACKEND=B python tests/_trace_interrupt_child.py TRIES

For each try it starts a long traced fit of the same model with a new TrainingTrace and
prints "recording" once the first step is recorded; the parent then sends SIGINT. After the
KeyboardInterrupt it prints one JSON line: what the trace holds and whether the model holds
the weights the last recorded step left.
"""

import json
import sys

import keras
import numpy as np

from kclf.callbacks import TrainingTrace


class SayRecording(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.said = False

    def on_train_batch_end(self, batch, logs=None):
        if not self.said:
            self.said = True
            print("recording", flush=True)


def check(model, trace, start_weights, start_iterations) -> dict:
    steps = trace.steps_recorded
    iterations = int(keras.ops.convert_to_numpy(model.optimizer.iterations)) - start_iterations
    frame = trace.to_frame()
    paths = trace.variable_paths
    chain = all(np.array_equal(trace.weights_before(p)[1:], trace.weights_after(p)[:-1]) for p in paths)
    starts = all(np.array_equal(trace.weights_before(p)[0], w) for p, w in zip(paths, start_weights))
    kept = all(np.array_equal(trace.weights_after(p)[-1], w) for p, w in zip(paths, model.get_weights()))
    return {"interrupted": trace.interrupted, "steps": steps, "iterations": iterations,
            "rows": len(frame), "elements": sum(w.size for w in start_weights), "chain": chain,
            "starts": starts, "model_kept": kept}


def main(tries: int) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1024, 3)).astype("float32")  # 256 steps an epoch: Ctrl-C mostly lands inside one
    y = (x @ [[1.0], [-2.0], [0.5]]).astype("float32")
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4, activation="relu"),
                              keras.layers.Dense(1)])
    model.compile(keras.optimizers.SGD(0.01), "mse")
    for _ in range(tries):
        trace = TrainingTrace()
        start_weights = model.get_weights()
        start_iterations = int(keras.ops.convert_to_numpy(model.optimizer.iterations))
        try:
            model.fit(x, y, batch_size=4, epochs=100_000, shuffle=False, verbose=0,
                      callbacks=[trace, SayRecording()])
            found = {"error": "the fit ended without Ctrl-C"}
        except KeyboardInterrupt:
            try:
                found = check(model, trace, start_weights, start_iterations)
            except Exception as exc:  # what the test reports
                found = {"error": f"{type(exc).__name__}: {exc}"}
        print(json.dumps(found), flush=True)


if __name__ == "__main__":
    main(int(sys.argv[1]))
