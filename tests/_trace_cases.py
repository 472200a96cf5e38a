"""The training trace's tests' shared cases and checks (a helper module, not a test file).

Slide models with their reference (the loss and gradients kclf.reference computes at given
weights on one batch), fitted in batch order (shuffle=False), so the batch of step s is known
and every recorded step can be held against θ ← θ − η∇L and the reference. Keras is imported
inside the functions, never while a test file is collected: the backend-free test process
must not import it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest

from kclf import reference

COLUMNS = [
    "step", "epoch", "batch", "variable", "index",
    "weight_before", "gradient", "weight_after", "loss", "learning_rate",
]
RING = 64  # the trace copies device values to the host at least once per 64 steps


# 12 rows in 3 batches of 4, over 2 epochs: 6 steps, the last 3 in the second epoch.
BATCH_SIZE = 4
EPOCHS = 2
_rng = np.random.default_rng(20240611)
X = _rng.normal(size=(12, 3)).astype("float32")
Y_REGRESSION = (X @ [[1.0], [-2.0], [0.5]] + 0.3 + 0.1 * _rng.normal(size=(12, 1))).astype("float32")
Y_BINARY = (X[:, :1] - X[:, 1:2] > 0).astype("float32")
LABELS = _rng.integers(0, 3, size=12).astype("int32")
ONE_HOT = reference.one_hot(LABELS, 3).astype("float32")


# --- the reference: (loss, gradients) at given weights on one batch ----------------------------------


def linear_mse(X, y, W, b):
    return reference.mse(reference.linear(X, W, b), y), reference.mse_gradients(X, y, W, b)


def logistic_bce(X, y, W, b):
    p = reference.sigmoid(reference.linear(X, W, b))
    return reference.binary_cross_entropy(p, y), reference.binary_cross_entropy_gradients(X, y, W, b)


def softmax_sparse(X, labels, W, b):
    P = reference.softmax(reference.linear(X, W, b))
    loss = reference.categorical_cross_entropy(P, reference.one_hot(labels, P.shape[1]))
    return loss, reference.sparse_categorical_cross_entropy_gradients(X, labels, W, b)


def softmax_categorical(X, Y, W, b):
    P = reference.softmax(reference.linear(X, W, b))
    return reference.categorical_cross_entropy(P, Y), reference.categorical_cross_entropy_gradients(X, Y, W, b)


def dense_relu_sparse(X, labels, W1, b1, W2, b2):
    h = np.maximum(reference.linear(X, W1, b1), 0.0)
    P = reference.softmax(reference.linear(h, W2, b2))
    Y = reference.one_hot(labels, P.shape[1])
    return reference.categorical_cross_entropy(P, Y), reference.dense_relu_classifier_gradients(X, Y, W1, b1, W2, b2)


@dataclass(frozen=True)
class Case:
    """A slide model, its task (which picks the loss), its targets and its reference."""

    model: Callable  # kclf.models -> an uncompiled keras.Model
    task: str
    y: np.ndarray
    reference: Callable  # (X, y, *weights) -> (loss, gradients)
    from_logits: bool = False


CASES = {
    "linear-mse": Case(lambda m: m.linear_regression(3, seed=1), "regression", Y_REGRESSION, linear_mse),
    "logistic-bce": Case(lambda m: m.logistic_regression(3, seed=2), "binary", Y_BINARY, logistic_bce),
    "logistic-bce-from-logits": Case(
        lambda m: m.logistic_regression(3, from_logits=True, seed=2), "binary", Y_BINARY, logistic_bce,
        from_logits=True,
    ),
    "softmax-sparse": Case(lambda m: m.softmax_regression(3, 3, seed=3), "sparse", LABELS, softmax_sparse),
    "softmax-categorical": Case(
        lambda m: m.softmax_regression(3, 3, seed=3), "categorical", ONE_HOT, softmax_categorical
    ),
    "dense-relu": Case(
        lambda m: m.dense_classifier(3, 3, hidden=(4,), seed=4), "sparse", LABELS, dense_relu_sparse
    ),
}


# --- fitting with a trace, and what every step must satisfy ------------------------------------------


def build(case: Case, optimizer, **compile_kwargs):
    """The case's model, compiled with the slides' loss for its task."""
    from kclf import models

    model = case.model(models)
    return models.compile_model(
        model, case.task, optimizer=optimizer, from_logits=case.from_logits, **compile_kwargs
    )


def sgd(learning_rate=0.05, **kwargs):
    import keras

    return keras.optimizers.SGD(learning_rate, **kwargs)


def fit_with_trace(model, x, y, *, trace=None, callbacks=(), batch_size=BATCH_SIZE, epochs=EPOCHS, **kwargs):
    """fit() in batch order with a TrainingTrace first among the callbacks; returns the trace."""
    from kclf.trace.callback import TrainingTrace

    trace = TrainingTrace() if trace is None else trace
    model.fit(
        x, y, batch_size=batch_size, epochs=epochs, shuffle=False, verbose=0,
        callbacks=[trace, *callbacks], **kwargs,
    )
    return trace


def batch_of(step: int, x, y, batch_size: int = BATCH_SIZE):
    """The batch that 1-based ``step`` trained on: the same batches, in order, every epoch."""
    n_batches = -(-len(x) // batch_size)
    i = (step - 1) % n_batches
    rows = slice(i * batch_size, (i + 1) * batch_size)
    return x[rows], y[rows]


def reference_at_step(trace, i: int, case_reference, x, y, batch_size: int = BATCH_SIZE):
    """The reference's (loss, gradients) for the i-th recorded step, at its weight_before."""
    step = int(trace.steps()[i])
    before = [trace.weights_before(path)[i] for path in trace.variable_paths]
    return case_reference(*batch_of(step, x, y, batch_size), *before)


def assert_close(actual, expected, rtol=2e-5, what=""):
    """float32 against the float64 reference: relative, with an absolute floor at the scale
    of the largest element (a small result of a sum of larger terms keeps fewer digits)."""
    expected = np.asarray(expected, "float64")
    scale = float(np.max(np.abs(expected))) if expected.size else 0.0
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=rtol * scale + 1e-12, err_msg=what)


def assert_matches_reference(trace, case_reference, x, y, batch_size: int = BATCH_SIZE):
    """Every recorded step's loss and gradients equal the reference at its weight_before."""
    steps = range(trace.steps_recorded)
    expected = [reference_at_step(trace, i, case_reference, x, y, batch_size) for i in steps]
    assert_close(trace.losses(), [loss for loss, _ in expected], what="losses")
    for k, path in enumerate(trace.variable_paths):
        gradients = [gradient[k] for _, gradient in expected]
        assert_close(trace.gradients(path), gradients, what=f"{path} gradients")


def assert_sgd_update(frame):
    """weight_after = weight_before − learning_rate × gradient for every element and step."""
    before, gradient, after, lr = (
        frame[c].to_numpy("float64") for c in ("weight_before", "gradient", "weight_after", "learning_rate")
    )
    change = lr * gradient
    scale = np.maximum(np.abs(before), np.abs(change))
    np.testing.assert_array_less(np.abs(after - (before - change)), 1e-6 * scale + 1e-12)


def assert_steps_chain(trace, initial_weights):
    """Step 1 starts from the initial weights; each step starts where the previous one ended."""
    for path, initial in zip(trace.variable_paths, initial_weights):
        before, after = trace.weights_before(path), trace.weights_after(path)
        np.testing.assert_array_equal(before[0], initial, err_msg=path)
        np.testing.assert_array_equal(before[1:], after[:-1], err_msg=path)


def interrupt_at(step: int):
    """A callback that raises KeyboardInterrupt (Ctrl-C) at the end of ``step``."""
    import keras

    class InterruptAt(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.seen = 0

        def on_train_batch_end(self, batch, logs=None):
            self.seen += 1
            if self.seen == step:
                raise KeyboardInterrupt

    return InterruptAt()


def iterations(model) -> int:
    from keras import ops

    return int(ops.convert_to_numpy(model.optimizer.iterations))


JIT = [pytest.param(False, id="eager"), pytest.param(True, id="jit")]


def skip_slow_torch_compile(backend_name: str, jit_compile: bool, case_name: str) -> None:
    if backend_name == "torch" and jit_compile and case_name != "linear-mse":
        pytest.skip("torch.compile takes 20 to 60 s per model on CPU; linear-mse covers it")


def kclf_leftovers(model, n_optimizer_variables: int) -> list[str]:
    """What a TrainingTrace would leave behind: extra optimizer variables, the loss recorder."""
    leftovers = [v.path for v in model.optimizer.variables[n_optimizer_variables:]]
    return leftovers + [m.name for m in model.metrics if m.name.startswith("kclf")]


def assert_one_line(error) -> str:
    text = str(error.value)
    assert "\n" not in text, text
    return text


def assert_untouched(model, initial, trace) -> None:
    """Refused before training: no step ran, the model kept its weights, nothing recorded."""
    assert iterations(model) == 0
    for before, now in zip(initial, model.get_weights()):
        np.testing.assert_array_equal(now, before)
    assert trace.steps_recorded == 0


def counter_model(unused_dtype: str):
    """A linear layer with a second trainable weight the loss does not use."""
    import keras

    class WithCounter(keras.layers.Layer):
        def build(self, input_shape):
            self.kernel = self.add_weight(shape=(3, 1), initializer="ones", name="kernel")
            self.counter = self.add_weight(shape=(), initializer="zeros", dtype=unused_dtype,
                                           trainable=True, name="counter")

        def call(self, x):
            return x @ self.kernel

    model = keras.Sequential([keras.Input((3,)), WithCounter(name="counted")])
    model.compile(optimizer=sgd(), loss="mse")
    return model
