"""kclf.models: the slides' models, their layer names, weights and losses, on each backend.

Run once per backend (make test sets KERAS_BACKEND). keras is imported inside the
fixtures, never at module level, so collecting this file in the keras-free process is free.
"""

import re

import numpy as np
import pytest

pytestmark = pytest.mark.backend

# The seed=0 initial weights, drawn by NumPy (glorot uniform, zero bias) in kclf.models.
# They do not depend on the backend: every backend must start from these numbers.
SEED0_KERNEL_2x1 = [0.38738614320755005, -0.6511415243148804]
SEED0_HIDDEN_4x5_ROW0 = [
    0.2236575037240982, -0.37593671679496765, -0.7495871186256409,
    -0.7895070910453796, 0.5115681290626526,
]
SEED0_OUTPUT_5x3_ROW0 = [-0.8169742822647095, -0.6507604718208313, 0.29553014039993286]


@pytest.fixture
def keras(backend_name):
    import keras

    assert keras.backend.backend() == backend_name
    return keras


@pytest.fixture
def models(keras):
    from kclf import models

    return models


def weights_by_path(model) -> dict[str, np.ndarray]:
    return {v.path: np.asarray(v.numpy()) for v in model.weights}


def predict(keras, model, x) -> np.ndarray:
    """Call the model eagerly: cheaper than predict(), which compiles a function first."""
    return np.asarray(keras.ops.convert_to_numpy(model(np.asarray(x, dtype="float32"))))


def glorot_redraw(rng: np.random.Generator, fan_in: int, fan_out: int) -> np.ndarray:
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, size=(fan_in, fan_out)).astype("float32")


# --- shapes, names and activations ------------------------------------------


@pytest.mark.parametrize(
    "factory, args, out_units, activation",
    [
        ("linear_regression", (3,), 1, "linear"),
        ("logistic_regression", (3,), 1, "sigmoid"),
        ("softmax_regression", (3, 4), 4, "softmax"),
    ],
)
def test_single_dense_factories(keras, models, factory, args, out_units, activation):
    model = getattr(models, factory)(*args)
    assert model.name == factory
    assert tuple(model.outputs[0].shape) == (None, out_units)
    assert [v.path for v in model.weights] == ["dense/kernel", "dense/bias"]
    assert weights_by_path(model)["dense/kernel"].shape == (3, out_units)
    assert model.get_layer("dense").activation is getattr(keras.activations, activation)
    assert predict(keras, model, np.ones((5, 3))).shape == (5, out_units)


@pytest.mark.parametrize("factory, args", [("logistic_regression", (2,)), ("softmax_regression", (2, 3))])
def test_from_logits_leaves_the_output_linear(keras, models, factory, args):
    model = getattr(models, factory)(*args, from_logits=True)
    assert model.get_layer("dense").activation is keras.activations.linear


def test_dense_classifier_layers(keras, models):
    model = models.dense_classifier(4, 3, hidden=(8, 6))
    assert [v.path for v in model.weights] == [
        "hidden_1/kernel", "hidden_1/bias", "hidden_2/kernel", "hidden_2/bias",
        "output/kernel", "output/bias",
    ]
    shapes = {path: w.shape for path, w in weights_by_path(model).items()}
    assert shapes["hidden_1/kernel"] == (4, 8)
    assert shapes["hidden_2/kernel"] == (8, 6)
    assert shapes["output/kernel"] == (6, 3)
    assert model.get_layer("hidden_1").activation is keras.activations.relu
    assert model.get_layer("output").activation is keras.activations.softmax
    out = predict(keras, model, np.random.default_rng(0).normal(size=(5, 4)))
    assert out.shape == (5, 3)
    np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-6)


def test_dense_classifier_defaults_to_one_hidden_layer_of_30(models):
    model = models.dense_classifier(4, 3)
    assert [v.path for v in model.weights][::2] == ["hidden_1/kernel", "output/kernel"]
    assert weights_by_path(model)["hidden_1/kernel"].shape == (4, 30)


def test_dense_classifier_two_classes_has_one_sigmoid_unit(keras, models):
    model = models.dense_classifier(4, 2, hidden=(5,), activation="tanh")
    assert tuple(model.outputs[0].shape) == (None, 1)
    assert model.get_layer("output").activation is keras.activations.sigmoid
    assert model.get_layer("hidden_1").activation is keras.activations.tanh
    logits = models.dense_classifier(4, 2, hidden=(5,), from_logits=True)
    assert logits.get_layer("output").activation is keras.activations.linear


# --- exact weights -----------------------------------------------------------


def test_exact_weights_give_the_slides_forward_pass(keras, models):
    model = models.logistic_regression(2, weights=([[1.0], [2.0]], [-10.0]), from_logits=True)
    weights = weights_by_path(model)
    np.testing.assert_array_equal(weights["dense/kernel"], [[1.0], [2.0]])
    np.testing.assert_array_equal(weights["dense/bias"], [-10.0])
    assert weights["dense/kernel"].dtype == np.float32
    x = [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]
    np.testing.assert_array_equal(predict(keras, model, x), [[-5.0], [1.0], [7.0]])

    model = models.softmax_regression(2, 2, weights=(np.array([[1, 3], [2, 4]]), (-10, -20)))
    np.testing.assert_array_equal(weights_by_path(model)["dense/bias"], [-10.0, -20.0])


def test_exact_weights_for_linear_regression(keras, models):
    model = models.linear_regression(1, weights=([[2.0]], [-1.0]))
    np.testing.assert_allclose(predict(keras, model, [[1.0], [2.0], [3.0]]), [[1.0], [3.0], [5.0]])


def test_wrong_kernel_shape_names_expected_and_received(models):
    with pytest.raises(ValueError) as caught:
        models.logistic_regression(2, weights=([[1.0], [2.0], [3.0]], [0.0]))
    message = str(caught.value)
    assert "(3, 1)" in message and "expected (2, 1)" in message
    assert "n_features=2" in message

    with pytest.raises(ValueError, match=re.escape("shape (2,); expected (2, 1)")):
        models.logistic_regression(2, weights=([1.0, 2.0], [0.0]))


def test_wrong_bias_shape_names_expected_and_received(models):
    with pytest.raises(ValueError, match=re.escape("bias has shape (1,); expected (2,)")):
        models.softmax_regression(2, 2, weights=([[1.0, 3.0], [2.0, 4.0]], [-10.0]))
    with pytest.raises(ValueError, match=re.escape("bias has shape (); expected (1,)")):
        models.logistic_regression(2, weights=([[1.0], [2.0]], -10.0))


def test_weights_must_be_a_pair(models):
    with pytest.raises(ValueError, match=r"\(kernel, bias\) pair; received int"):
        models.linear_regression(1, weights=5)
    with pytest.raises(ValueError, match=r"\(kernel, bias\) pair; received tuple"):
        models.linear_regression(1, weights=([[1.0]], [0.0], [0.0]))


@pytest.mark.parametrize(
    "weights",
    [([[np.nan], [2.0]], [0.0]), ([[1.0], [2.0]], [np.inf]), ([[1.0], [-np.inf]], [0.0])],
    ids=["nan-kernel", "inf-bias", "-inf-kernel"],
)
def test_non_finite_weights_are_rejected(models, weights):
    with pytest.raises(ValueError, match="NaN or inf"):
        models.logistic_regression(2, weights=weights)


@pytest.mark.parametrize("bad", [0, -1, 2.0, True, "2"])
def test_sizes_must_be_positive_integers(models, bad):
    with pytest.raises(ValueError, match="n_features must be a positive integer"):
        models.linear_regression(bad)
    with pytest.raises(ValueError, match="positive integer"):
        models.dense_classifier(4, 3, hidden=(bad,))


def test_dense_classifier_needs_two_classes(models):
    with pytest.raises(ValueError, match="n_classes must be an integer >= 2; received 1"):
        models.dense_classifier(4, 1)


def test_softmax_regression_needs_two_classes(models):
    with pytest.raises(ValueError, match=r"n_classes must be an integer >= 2 .*received 1"):
        models.softmax_regression(2, 1)


def test_dense_classifier_takes_one_integer_as_one_hidden_layer(keras, models):
    model = models.dense_classifier(4, 3, hidden=5)
    assert [layer.name for layer in model.layers[1:]] == ["hidden_1", "output"]
    assert model.get_layer("hidden_1").units == 5
    with pytest.raises(ValueError, match="hidden must be a sequence of positive integers"):
        models.dense_classifier(4, 3, hidden=None)


# --- seeded weights: NumPy draws them, so every backend starts the same ------


def test_seeded_weights_are_the_numpy_draw(models):
    model = models.logistic_regression(2, seed=0)
    weights = weights_by_path(model)
    np.testing.assert_array_equal(weights["dense/kernel"].ravel(), np.float32(SEED0_KERNEL_2x1))
    np.testing.assert_array_equal(weights["dense/bias"], [0.0])
    redraw = glorot_redraw(np.random.default_rng(0), 2, 1)
    np.testing.assert_array_equal(weights["dense/kernel"], redraw)
    # Every single-Dense factory draws the same way.
    np.testing.assert_array_equal(
        weights_by_path(models.linear_regression(2, seed=0))["dense/kernel"], redraw
    )


def test_seeded_weights_repeat_for_a_seed_and_differ_between_seeds(models):
    first = weights_by_path(models.softmax_regression(4, 3, seed=7))
    again = weights_by_path(models.softmax_regression(4, 3, seed=7))
    other = weights_by_path(models.softmax_regression(4, 3, seed=8))
    for path in first:
        np.testing.assert_array_equal(first[path], again[path])
    assert not np.array_equal(first["dense/kernel"], other["dense/kernel"])
    np.testing.assert_array_equal(
        first["dense/kernel"], glorot_redraw(np.random.default_rng(7), 4, 3)
    )


def test_seeded_dense_classifier_draws_layer_by_layer(models):
    weights = weights_by_path(models.dense_classifier(4, 3, hidden=(5,), seed=0))
    np.testing.assert_array_equal(weights["hidden_1/kernel"][0], np.float32(SEED0_HIDDEN_4x5_ROW0))
    np.testing.assert_array_equal(weights["output/kernel"][0], np.float32(SEED0_OUTPUT_5x3_ROW0))
    rng = np.random.default_rng(0)
    np.testing.assert_array_equal(weights["hidden_1/kernel"], glorot_redraw(rng, 4, 5))
    np.testing.assert_array_equal(weights["output/kernel"], glorot_redraw(rng, 5, 3))
    np.testing.assert_array_equal(weights["hidden_1/bias"], np.zeros(5))
    np.testing.assert_array_equal(weights["output/bias"], np.zeros(3))


# --- compile_model: the slides' loss table -------------------------------------


@pytest.mark.parametrize(
    "task, loss_class",
    [
        ("regression", "MeanSquaredError"),
        ("binary", "BinaryCrossentropy"),
        ("sparse", "SparseCategoricalCrossentropy"),
        ("categorical", "CategoricalCrossentropy"),
    ],
)
@pytest.mark.parametrize("from_logits", [False, True])
def test_compile_model_picks_the_loss(keras, models, task, loss_class, from_logits):
    model = models.linear_regression(2)
    assert models.compile_model(model, task, from_logits=from_logits) is model
    assert type(model.loss) is getattr(keras.losses, loss_class)
    if task != "regression":
        assert model.loss.from_logits is from_logits
    assert isinstance(model.optimizer, keras.optimizers.SGD)


def test_compile_model_passes_optimizer_and_metrics(keras, models):
    import numpy as np

    model = models.logistic_regression(2)
    optimizer = keras.optimizers.SGD(learning_rate=0.01)
    models.compile_model(model, "binary", optimizer=optimizer, metrics=["accuracy"])
    assert model.optimizer is optimizer
    x = np.array([[1.0, 2.0], [-1.0, 0.5], [0.5, -2.0], [2.0, 1.0]], "float32")
    y = np.array([[1.0], [0.0], [0.0], [1.0]], "float32")
    logs = model.fit(x, y, epochs=1, batch_size=4, verbose=0).history
    assert set(logs) == {"loss", "accuracy"} and 0.0 <= logs["accuracy"][0] <= 1.0
    assert optimizer.iterations.numpy() == 1  # the step was this optimizer's


def test_compile_model_rejects_an_unknown_task(models):
    with pytest.raises(ValueError) as caught:
        models.compile_model(models.linear_regression(1), "multiclass")
    message = str(caught.value)
    assert "'multiclass'" in message
    assert "regression, binary, sparse, categorical" in message
