"""Minimising a function of a few numbers with Keras: the optimisation slides' 1-D demos.

A :class:`Parameters` layer owns the trainable number θ (a scalar, or a vector of
independent copies) and outputs ``fn(θ, inputs)``, the per-example loss; the model is
compiled with a loss that sums the layer's output over its last axis, so Keras's mean
over the batch is the loss being minimised and each copy θ_j gets its own gradient.
Plain SGD then does θ ← θ − η ∂loss/∂θ, and TrainingTrace records every step.

:func:`autodiff_gradient` asks the backend's own autodiff (jax.grad, tf.GradientTape,
torch.autograd) for a gradient outside any training step, to check the trace against.
"""

from __future__ import annotations

from collections.abc import Callable

import keras
import numpy as np
from keras import ops

from kclf.trace.callback import TrainingTrace


class Parameters(keras.layers.Layer):
    """Trainable θ with the shape of ``initial``; call(inputs) = fn(θ, inputs)."""

    def __init__(self, initial, fn: Callable, name: str = "theta", **kwargs):
        super().__init__(name=name, **kwargs)
        self.initial = np.asarray(initial, "float32")
        self.fn = fn

    def build(self, input_shape):
        self.theta = self.add_weight(shape=self.initial.shape, initializer="zeros", name="theta")
        self.theta.assign(self.initial)

    def call(self, inputs):
        return self.fn(self.theta, inputs)


def summed_loss(y_true, y_pred):
    """Per example: the sum of the layer's output over its last axis (y_true is unused)."""
    return ops.sum(y_pred, axis=-1)


def parameter_model(initial, fn: Callable, width: int, *, learning_rate, name: str = "theta") -> keras.Model:
    """A compiled model whose only weight is θ (path ``{name}/theta``), trained by plain SGD."""
    inputs = keras.Input(shape=(width,), name="data")
    model = keras.Model(inputs, Parameters(initial, fn, name=name)(inputs), name="parameters")
    model.compile(optimizer=keras.optimizers.SGD(learning_rate), loss=summed_loss)
    return model


def fit_parameters(
    initial, fn: Callable, data, *, learning_rate, batch_size: int, name: str = "theta",
    stop_on_divergence: bool = True,
) -> tuple[keras.Model, TrainingTrace]:
    """One epoch over ``data`` (rows in the given order, no shuffling): one SGD step per batch."""
    data = np.asarray(data, "float32")
    model = parameter_model(initial, fn, data.shape[1], learning_rate=learning_rate, name=name)
    trace = TrainingTrace(stop_on_divergence=stop_on_divergence, verbose=False)
    targets = np.zeros_like(data)
    model.fit(data, targets, batch_size=batch_size, epochs=1, shuffle=False, verbose=0, callbacks=[trace])
    return model, trace


def minimise(initial, fn: Callable, *, learning_rate, steps: int, name: str = "theta") -> TrainingTrace:
    """Gradient descent on fn(θ) (no data): ``steps`` steps from ``initial``."""
    zeros = np.zeros((steps, 1), "float32")
    _, trace = fit_parameters(initial, lambda theta, x: ops.zeros_like(x) + fn(theta),
                              zeros, learning_rate=learning_rate, batch_size=1, name=name)
    return trace


def autodiff_gradient(fn: Callable, x) -> np.ndarray:
    """d/dx of sum(fn(x)) at float32 ``x`` by the backend's own autodiff, outside Keras's fit."""
    x = np.asarray(x, "float32")
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        return np.asarray(jax.grad(lambda t: ops.sum(fn(t)))(jax.numpy.asarray(x)))
    if backend == "tensorflow":
        import tensorflow as tf

        t = tf.constant(x)
        with tf.GradientTape() as tape:
            tape.watch(t)
            total = ops.sum(fn(t))
        return tape.gradient(total, t).numpy()
    if backend == "torch":
        import torch

        t = torch.tensor(x, requires_grad=True)
        ops.sum(fn(t)).backward()
        return t.grad.detach().cpu().numpy()
    raise ValueError(f"no autodiff for backend {backend!r}")
