"""``kclf bench``'s models, data and NumPy reference line (no Keras).

The NumPy line trains the same model with the same loss and SGD update as the Keras runs,
with kclf.reference's losses and gradients, and keeps the same history as a trace.
"""

from __future__ import annotations

import math
import time

import numpy as np

from kclf import reference

# name -> (features, hidden units, classes): the slides' logistic regression and an iris-size MLP.
MODELS = {"logistic": (2, (), 2), "iris": (4, (30,), 3)}
LEARNING_RATE = 0.01


def make_data(model: str, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Separable-ish synthetic data for ``model``: float32 features, labels as the loss wants."""
    features, _, classes = MODELS[model]
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, features)).astype("float32")
    if classes == 2:
        y = (x.sum(axis=1) + 0.5 * rng.standard_normal(n) > 0).astype("float32").reshape(-1, 1)
    else:
        y = np.argmax(x @ rng.standard_normal((features, classes)), axis=1).astype("int32")
    return x, y


class NumpySGD:
    """The same model, loss and SGD update as the Keras runs, on kclf.reference.

    The parameters live in one flat float32 vector ``theta`` (the layers' kernels and biases
    are views into it), so keeping the history of a step is one row copy per array:
    weights before, gradient, weights after, loss and learning rate.
    """

    def __init__(self, model: str, seed: int = 0):
        features, hidden, classes = MODELS[model]
        if len(hidden) > 1:
            raise ValueError("kclf.reference has the gradients of one hidden layer at most")
        widths = [features, *hidden, 1 if classes == 2 else classes]
        shapes = [s for a, b in zip(widths, widths[1:]) for s in ((a, b), (b,))]
        sizes = [math.prod(s) for s in shapes]
        self.theta = np.zeros(sum(sizes), "float32")
        self.grad = np.zeros_like(self.theta)
        rng = np.random.default_rng(seed)
        self.params, self.grads, start = [], [], 0
        for shape, size in zip(shapes, sizes):
            self.params.append(self.theta[start : start + size].reshape(shape))
            self.grads.append(self.grad[start : start + size].reshape(shape))
            start += size
        for kernel in self.params[::2]:
            limit = np.sqrt(6.0 / sum(kernel.shape))
            kernel[...] = rng.uniform(-limit, limit, kernel.shape)
        self.classes = classes

    def step(self, x: np.ndarray, y: np.ndarray) -> float:
        """One SGD step on the batch (x, y); fills self.grad and updates self.theta."""
        if len(self.params) == 2:  # σ(xW + b), binary cross-entropy
            p = reference.sigmoid(reference.linear(x, *self.params))
            loss = reference.binary_cross_entropy(p, y)
            gradients = reference.binary_cross_entropy_gradients(x, y, *self.params)
        else:  # one hidden ReLU layer, softmax output: one-hot targets
            target = reference.one_hot(y, self.classes) if self.classes > 2 else y
            h = np.maximum(reference.linear(x, *self.params[:2]), 0.0)
            z = reference.linear(h, *self.params[2:])
            loss = (reference.categorical_cross_entropy(reference.softmax(z), target) if self.classes > 2
                    else reference.binary_cross_entropy(reference.sigmoid(z), target))
            gradients = reference.dense_relu_classifier_gradients(x, target, *self.params)
        for dst, g in zip(self.grads, gradients):
            dst[...] = g
        self.theta -= LEARNING_RATE * self.grad  # θ ← θ − η ∇L
        return float(loss)


def numpy_fit(model: NumpySGD, x, y, batch_size: int, steps: int, *, history: bool) -> float:
    """Run ``steps`` SGD steps over (x, y) in order; return the wall time in seconds."""
    if history:  # preallocated, like TrainingTrace's host storage
        before = np.zeros((steps, model.theta.size), "float32")
        grads, after = np.zeros_like(before), np.zeros_like(before)
        losses, rates = np.zeros(steps, "float32"), np.zeros(steps, "float32")
    n_batches = len(x) // batch_size
    start = time.perf_counter()
    for i in range(steps):
        lo = (i % n_batches) * batch_size
        xb, yb = x[lo : lo + batch_size], y[lo : lo + batch_size]
        if history:
            before[i] = model.theta
            losses[i] = model.step(xb, yb)
            grads[i], after[i], rates[i] = model.grad, model.theta, LEARNING_RATE
        else:
            model.step(xb, yb)
    return time.perf_counter() - start
