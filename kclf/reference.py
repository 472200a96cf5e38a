"""The slides' formulas in plain NumPy: the trusted reference Keras is checked against.

Each formula appears once, in the form a student writes it on paper. Shapes follow
the slides: X is (n, p), a kernel W is (p, units), a bias b is (units,).

    >>> import numpy as np
    >>> sigmoid(np.array([-5.0, 1.0, 7.0])).round(4)
    array([0.0067, 0.7311, 0.9991])
"""

from __future__ import annotations

import numpy as np

EPS = 1e-7  # Keras clips probabilities to [EPS, 1 - EPS] before taking logs.


def sigmoid(z):
    """σ(z) = 1 / (1 + e^(−z)), without overflow for large |z|."""
    z = np.asarray(z, dtype="float64")
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def softmax(z, axis: int = -1):
    """Softmax_j(z) = e^(z_j) / Σ_k e^(z_k), shifted by max(z) so it never overflows."""
    z = np.asarray(z, dtype="float64")
    e = np.exp(z - np.max(z, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


def linear(X, W, b):
    """z = X W + b."""
    return np.asarray(X, "float64") @ np.asarray(W, "float64") + np.asarray(b, "float64")


# --- losses (mean over the batch, as Keras reduces them) ---------------------


def squared_errors(y_hat, y):
    """Loss_i = (ŷ_i − y_i)²."""
    return (np.asarray(y_hat, "float64") - np.asarray(y, "float64")) ** 2


def mse(y_hat, y) -> float:
    """Loss_{1:n} = (1/n) Σ (ŷ_i − y_i)²."""
    return float(np.mean(squared_errors(y_hat, y)))


def binary_cross_entropy(p, y) -> float:
    """−(1/n) Σ [y log p + (1 − y) log(1 − p)], p clipped to [EPS, 1 − EPS]."""
    p = np.clip(np.asarray(p, "float64").reshape(-1), EPS, 1 - EPS)
    y = np.asarray(y, "float64").reshape(-1)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def categorical_cross_entropy(P, Y) -> float:
    """−(1/n) Σ_i Σ_j y_ij log p_ij for one-hot Y, P clipped to [EPS, 1 − EPS]."""
    P = np.clip(np.asarray(P, "float64"), EPS, 1 - EPS)
    P = P / P.sum(axis=1, keepdims=True)
    return float(-np.mean(np.sum(np.asarray(Y, "float64") * np.log(P), axis=1)))


def one_hot(labels, n_classes: int) -> np.ndarray:
    labels = np.asarray(labels).astype(int).reshape(-1)
    return np.eye(n_classes)[labels]


# --- gradients with respect to kernel and bias -------------------------------


def _dense_gradients(X, dz):
    """Chain rule through z = XW + b: ∂L/∂W = Xᵀ dz, ∂L/∂b = Σ_i dz_i."""
    X = np.asarray(X, "float64")
    return X.T @ dz, dz.sum(axis=0)


def mse_gradients(X, y, W, b):
    """Linear regression with MSE: ∂L/∂ŷ_i = 2(ŷ_i − y_i)/n."""
    y_hat = linear(X, W, b)
    y = np.asarray(y, "float64").reshape(y_hat.shape)
    return _dense_gradients(X, 2 * (y_hat - y) / len(y_hat))


def per_observation_mse_gradients(x, y, w: float, b: float):
    """The BGD table's columns for ŷ = wx + b: ŷ, loss, dL/dw = 2(ŷ−y)x, dL/db = 2(ŷ−y)."""
    x = np.asarray(x, "float64")
    y = np.asarray(y, "float64")
    y_hat = w * x + b
    return y_hat, (y_hat - y) ** 2, 2 * (y_hat - y) * x, 2 * (y_hat - y)


def binary_cross_entropy_gradients(X, y, W, b):
    """Logistic regression: ∂L/∂z_i = (σ(z_i) − y_i)/n (the same with from_logits)."""
    z = linear(X, W, b)
    y = np.asarray(y, "float64").reshape(z.shape)
    return _dense_gradients(X, (sigmoid(z) - y) / len(z))


def categorical_cross_entropy_gradients(X, Y, W, b):
    """Softmax regression with one-hot Y: ∂L/∂z_ij = (softmax(z_i)_j − y_ij)/n."""
    z = linear(X, W, b)
    return _dense_gradients(X, (softmax(z) - np.asarray(Y, "float64")) / len(z))


def sparse_categorical_cross_entropy_gradients(X, labels, W, b):
    W = np.asarray(W)
    return categorical_cross_entropy_gradients(X, one_hot(labels, W.shape[1]), W, b)


def dense_relu_classifier_gradients(X, Y, W1, b1, W2, b2):
    """One hidden ReLU layer, softmax output (one-hot Y) or sigmoid output (Y of shape (n, 1)).

    Returns the gradients for (W1, b1, W2, b2).
    """
    X = np.asarray(X, "float64")
    z1 = linear(X, W1, b1)
    h = np.maximum(z1, 0.0)
    z2 = linear(h, W2, b2)
    n = len(X)
    Y = np.asarray(Y, "float64").reshape(z2.shape)
    p = sigmoid(z2) if z2.shape[1] == 1 else softmax(z2)
    dz2 = (p - Y) / n
    dW2, db2 = _dense_gradients(h, dz2)
    dz1 = (dz2 @ np.asarray(W2, "float64").T) * (z1 > 0)
    dW1, db1 = _dense_gradients(X, dz1)
    return dW1, db1, dW2, db2


def sgd_step(theta, gradient, learning_rate: float):
    """θ_{t+1} = θ_t − η ∇Loss."""
    return np.asarray(theta, "float64") - learning_rate * np.asarray(gradient, "float64")
