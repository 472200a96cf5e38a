"""kclf.reference against closed forms, finite differences and the slides' own numbers."""

import warnings

import numpy as np
import pytest

from kclf import reference
from kclf.data import SLIDES_X, bgd_data

# The slides' logistic and softmax weights (experiments/logistic_forward.py, softmax_forward.py).
SLIDES_W_LOGISTIC = np.array([[1.0], [2.0]])
SLIDES_B_LOGISTIC = np.array([-10.0])
SLIDES_W_SOFTMAX = np.array([[1.0, 3.0], [2.0, 4.0]])
SLIDES_B_SOFTMAX = np.array([-10.0, -20.0])


def strict_numerics():
    """Overflow, division by zero and NaN raise; underflow to 0 is the correct answer for
    e^(-1000), so NumPy's default (ignore) stays for it."""
    return np.errstate(over="raise", divide="raise", invalid="raise", under="ignore")


def numerical_gradient(loss, param: np.ndarray, h: float = 1e-6) -> np.ndarray:
    """Central differences of loss() with respect to each element of param (changed in place)."""
    grad = np.zeros_like(param)
    for index in np.ndindex(param.shape):
        saved = param[index]
        param[index] = saved + h
        up = loss()
        param[index] = saved - h
        down = loss()
        param[index] = saved
        grad[index] = (up - down) / (2 * h)
    return grad


def assert_matches_finite_differences(loss, params, analytic) -> None:
    assert len(params) == len(analytic)
    for param, grad in zip(params, analytic, strict=True):
        assert np.shape(grad) == param.shape
        np.testing.assert_allclose(grad, numerical_gradient(loss, param), rtol=1e-5, atol=1e-8)


@pytest.fixture
def rng():
    return np.random.default_rng(20240611)


# --- sigmoid and softmax -------------------------------------------------------


def test_sigmoid_matches_closed_form(rng):
    z = rng.normal(scale=5.0, size=50)
    np.testing.assert_allclose(reference.sigmoid(z), 1.0 / (1.0 + np.exp(-z)), rtol=1e-14)
    assert reference.sigmoid(0.0) == 0.5
    # σ(−z) = 1 − σ(z)
    np.testing.assert_allclose(reference.sigmoid(-z), 1.0 - reference.sigmoid(z), atol=1e-15)


def test_sigmoid_is_stable_at_large_magnitudes():
    z = np.array([-1000.0, -100.0, 100.0, 1000.0])
    with strict_numerics(), warnings.catch_warnings():
        warnings.simplefilter("error")
        values = reference.sigmoid(z)
    assert np.all(np.isfinite(values))
    np.testing.assert_allclose(values, [0.0, np.exp(-100.0), 1.0, 1.0], rtol=1e-12, atol=0)


def test_sigmoid_reproduces_the_slides():
    z = reference.linear(SLIDES_X, SLIDES_W_LOGISTIC, SLIDES_B_LOGISTIC).reshape(-1)
    np.testing.assert_array_equal(z, [-5.0, 1.0, 7.0])
    # The slides print (0.0067, 0.731, 0.9991): each to the digits shown.
    np.testing.assert_allclose(reference.sigmoid(z), [0.0067, 0.731, 0.9991], atol=1e-4)
    np.testing.assert_array_equal(reference.sigmoid(z).round(4), [0.0067, 0.7311, 0.9991])


def test_softmax_matches_closed_form(rng):
    Z = rng.normal(scale=3.0, size=(10, 4))
    expected = np.exp(Z) / np.exp(Z).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(reference.softmax(Z), expected, rtol=1e-13)
    np.testing.assert_allclose(reference.softmax(Z).sum(axis=1), 1.0, rtol=1e-15)
    # Along another axis, and for two classes the softmax is the sigmoid of the difference.
    np.testing.assert_allclose(reference.softmax(Z.T, axis=0), expected.T, rtol=1e-13)
    two = Z[:, :2]
    np.testing.assert_allclose(
        reference.softmax(two)[:, 1], reference.sigmoid(two[:, 1] - two[:, 0]), rtol=1e-13
    )


def test_softmax_is_stable_at_large_magnitudes():
    Z = np.array([[1000.0, 0.0], [-1000.0, 1000.0], [1000.0, 1000.0], [-1000.0, -1000.0]])
    with strict_numerics(), warnings.catch_warnings():
        warnings.simplefilter("error")
        values = reference.softmax(Z)
    np.testing.assert_array_equal(values, [[1.0, 0.0], [0.0, 1.0], [0.5, 0.5], [0.5, 0.5]])


def test_softmax_reproduces_the_slides():
    Z = reference.linear(SLIDES_X, SLIDES_W_SOFTMAX, SLIDES_B_SOFTMAX)
    np.testing.assert_array_equal(Z, [[-5.0, -9.0], [1.0, 5.0], [7.0, 19.0]])
    A = reference.softmax(Z)
    np.testing.assert_allclose(
        A, [[0.982, 0.018], [0.018, 0.982], [6.14e-06, 1.0]], rtol=2e-3, atol=0
    )
    assert f"{A[2, 0]:.2e}" == "6.14e-06"


# --- losses ---------------------------------------------------------------------


def test_losses_match_closed_forms():
    assert reference.mse([1.0, 2.0, 3.0], [1.0, 0.0, 6.0]) == pytest.approx((0 + 4 + 9) / 3)
    p, y = np.array([0.9, 0.2]), np.array([1.0, 0.0])
    assert reference.binary_cross_entropy(p, y) == pytest.approx(-(np.log(0.9) + np.log(0.8)) / 2)
    P = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]])
    Y = reference.one_hot([0, 2], 3)
    np.testing.assert_array_equal(Y, [[1, 0, 0], [0, 0, 1]])
    assert reference.categorical_cross_entropy(P, Y) == pytest.approx(
        -(np.log(0.7) + np.log(0.8)) / 2
    )


def test_cross_entropy_clips_probabilities_like_keras():
    # p = 0 and p = 1 give log(EPS) instead of −inf.
    with strict_numerics():
        loss = reference.binary_cross_entropy([0.0, 1.0], [1.0, 0.0])
        cce = reference.categorical_cross_entropy([[0.0, 1.0]], [[1.0, 0.0]])
    assert loss == pytest.approx(-np.log(reference.EPS))
    assert np.isfinite(cce) and cce == pytest.approx(-np.log(reference.EPS), rel=1e-6)


# --- gradients against central finite differences ------------------------------


def test_mse_gradients_match_finite_differences(rng):
    X = rng.normal(size=(7, 3))
    y = rng.normal(size=(7, 1))
    W, b = rng.normal(size=(3, 1)), rng.normal(size=1)

    def loss():
        return reference.mse(reference.linear(X, W, b), y)

    assert_matches_finite_differences(loss, (W, b), reference.mse_gradients(X, y, W, b))


def test_binary_cross_entropy_gradients_match_finite_differences(rng):
    X = rng.normal(size=(8, 2))
    y = rng.integers(0, 2, size=8).astype("float64")
    W, b = rng.normal(size=(2, 1)), rng.normal(size=1)

    def loss():
        return reference.binary_cross_entropy(reference.sigmoid(reference.linear(X, W, b)), y)

    grads = reference.binary_cross_entropy_gradients(X, y, W, b)
    assert_matches_finite_differences(loss, (W, b), grads)


def test_categorical_cross_entropy_gradients_match_finite_differences(rng):
    X = rng.normal(size=(9, 4))
    Y = reference.one_hot(rng.integers(0, 3, size=9), 3)
    W, b = rng.normal(size=(4, 3)), rng.normal(size=3)

    def loss():
        return reference.categorical_cross_entropy(reference.softmax(reference.linear(X, W, b)), Y)

    grads = reference.categorical_cross_entropy_gradients(X, Y, W, b)
    assert_matches_finite_differences(loss, (W, b), grads)


def test_sparse_categorical_cross_entropy_gradients_match_finite_differences(rng):
    X = rng.normal(size=(9, 4))
    labels = rng.integers(0, 3, size=9)
    W, b = rng.normal(size=(4, 3)), rng.normal(size=3)
    Y = reference.one_hot(labels, 3)

    def loss():
        return reference.categorical_cross_entropy(reference.softmax(reference.linear(X, W, b)), Y)

    grads = reference.sparse_categorical_cross_entropy_gradients(X, labels, W, b)
    assert_matches_finite_differences(loss, (W, b), grads)
    for sparse, dense in zip(
        grads, reference.categorical_cross_entropy_gradients(X, Y, W, b), strict=True
    ):
        np.testing.assert_array_equal(sparse, dense)


@pytest.mark.parametrize("n_classes", [2, 3], ids=["sigmoid-output", "softmax-output"])
def test_dense_relu_classifier_gradients_match_finite_differences(rng, n_classes):
    n, p, hidden = 10, 3, 5
    out_units = 1 if n_classes == 2 else n_classes
    X = rng.normal(size=(n, p))
    labels = rng.integers(0, n_classes, size=n)
    Y = labels.astype("float64").reshape(n, 1) if n_classes == 2 else reference.one_hot(labels, 3)
    W1, b1 = rng.normal(size=(p, hidden)), rng.normal(scale=0.1, size=hidden)
    W2, b2 = rng.normal(size=(hidden, out_units)), rng.normal(scale=0.1, size=out_units)
    # Finite differences are only valid away from ReLU's kink.
    assert np.min(np.abs(reference.linear(X, W1, b1))) > 1e-4

    def loss():
        z2 = reference.linear(np.maximum(reference.linear(X, W1, b1), 0.0), W2, b2)
        if n_classes == 2:
            return reference.binary_cross_entropy(reference.sigmoid(z2), Y)
        return reference.categorical_cross_entropy(reference.softmax(z2), Y)

    grads = reference.dense_relu_classifier_gradients(X, Y, W1, b1, W2, b2)
    assert_matches_finite_differences(loss, (W1, b1, W2, b2), grads)


# --- the slides' gradient descent tables ---------------------------------------


def test_per_observation_mse_gradients_give_the_bgd_first_table():
    x, y = bgd_data()
    np.testing.assert_array_equal(x, [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(y.round(2), [0.99, 3.00, 5.01])
    y_hat, loss, dw, db = reference.per_observation_mse_gradients(x, y, 0.0, 0.0)
    np.testing.assert_array_equal(y_hat, [0.0, 0.0, 0.0])
    np.testing.assert_array_equal(loss.round(2), [0.98, 9.02, 25.15])
    np.testing.assert_array_equal(dw.round(2), [-1.98, -12.02, -30.09])
    np.testing.assert_array_equal(db.round(2), [-1.98, -6.01, -10.03])
    # Exactly the formulas on the slide.
    np.testing.assert_allclose(loss, y**2)
    np.testing.assert_allclose(dw, -2 * y * x)
    np.testing.assert_allclose(db, -2 * y)


def test_per_observation_mse_gradients_average_to_the_batch_gradient():
    x, y = bgd_data()
    w, b = 0.7, -0.2
    _, loss, dw, db = reference.per_observation_mse_gradients(x, y, w, b)
    dW, dB = reference.mse_gradients(x.reshape(-1, 1), y, np.array([[w]]), np.array([b]))
    assert loss.mean() == pytest.approx(reference.mse(w * x + b, y))
    np.testing.assert_allclose([dW.item(), dB.item()], [dw.mean(), db.mean()], rtol=1e-12)


def test_sgd_steps_reproduce_the_slides():
    theta = np.zeros(2)  # (w, b)
    steps = []
    for x, y in [(5.0, 5.0), (9.0, 17.0)]:
        _, _, dw, db = reference.per_observation_mse_gradients(x, y, *theta)
        steps.append((float(dw), float(db)))
        theta = reference.sgd_step(theta, [dw, db], 0.01)
        if len(steps) == 1:
            np.testing.assert_allclose(theta, [0.5, 0.1], rtol=1e-12)
    np.testing.assert_allclose(steps, [(-50.0, -10.0), (-223.2, -24.8)], rtol=1e-12)
    np.testing.assert_allclose(theta, [2.732, 0.348], rtol=1e-12)


def test_sgd_step_is_theta_minus_eta_gradient():
    theta = np.array([[1.0, -2.0], [0.5, 3.0]])
    gradient = np.array([[10.0, 4.0], [-2.0, 0.0]])
    np.testing.assert_allclose(
        reference.sgd_step(theta, gradient, 0.1), [[0.0, -2.4], [0.7, 3.0]], rtol=1e-12
    )
