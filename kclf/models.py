"""Model factories for the slides' models, with exact or NumPy-seeded initial weights.

Every factory returns an uncompiled ``keras.Model`` whose layers have fixed names,
so variable paths ("dense/kernel") are the same on every backend and in every run.
Keras's own seeded initialisers draw different numbers per backend; with ``seed``
kclf draws the initial weights with NumPy instead, so all three backends start
from identical values.

    >>> import numpy as np
    >>> model = logistic_regression(2, weights=([[1.0], [2.0]], [-10.0]))
    >>> model = compile_model(model, "binary", optimizer="sgd")
    >>> model.predict(np.array([[1.0, 2.0]]), verbose=0).round(4)    # σ(1 + 4 − 10)
    array([[0.0067]], dtype=float32)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import keras

# Keras is imported inside each factory, not here: importing kclf.models neither imports
# keras nor picks a backend (kclf.backend.select_backend, or KERAS_BACKEND, does that).

Weights = "tuple[Sequence, Sequence] | None"


def _glorot_uniform(rng: np.random.Generator, fan_in: int, fan_out: int) -> np.ndarray:
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, size=(fan_in, fan_out)).astype("float32")


def _check_positive(name: str, value: int) -> None:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive integer; received {value!r}")


def _as_weights(weights, n_features: int, units: int) -> list[np.ndarray]:
    """Validate (kernel, bias) against the layer's shapes; return float32 arrays."""
    try:
        kernel, bias = weights
    except (TypeError, ValueError):
        raise ValueError(
            f"weights must be a (kernel, bias) pair; received {type(weights).__name__}"
        ) from None
    kernel = np.asarray(kernel, dtype="float32")
    bias = np.asarray(bias, dtype="float32")
    if kernel.shape != (n_features, units):
        raise ValueError(
            f"weights kernel has shape {kernel.shape}; expected {(n_features, units)} "
            f"for n_features={n_features}, units={units}"
        )
    if bias.shape != (units,):
        raise ValueError(f"weights bias has shape {bias.shape}; expected {(units,)} for units={units}")
    if not (np.all(np.isfinite(kernel)) and np.all(np.isfinite(bias))):
        raise ValueError("weights contain NaN or inf; expected finite numbers")
    return [kernel, bias]


def _single_dense(
    n_features: int, units: int, activation: str | None, weights, seed: int | None, name: str
) -> keras.Model:
    import keras

    _check_positive("n_features", n_features)
    _check_positive("units", units)
    inputs = keras.Input(shape=(n_features,), name="x")
    layer = keras.layers.Dense(units, activation=activation, name="dense")
    model = keras.Model(inputs, layer(inputs), name=name)
    if weights is not None:
        layer.set_weights(_as_weights(weights, n_features, units))
    elif seed is not None:
        rng = np.random.default_rng(seed)
        layer.set_weights([_glorot_uniform(rng, n_features, units), np.zeros(units, "float32")])
    return model


def linear_regression(n_features: int, *, weights: Weights = None, seed: int | None = None) -> keras.Model:
    """Dense(1) with a linear output: ŷ = x·w + b."""
    return _single_dense(n_features, 1, None, weights, seed, "linear_regression")


def logistic_regression(
    n_features: int, *, weights: Weights = None, from_logits: bool = False, seed: int | None = None
) -> keras.Model:
    """Dense(1, sigmoid): ŷ = σ(x·w + b); the logit z itself when from_logits."""
    activation = None if from_logits else "sigmoid"
    return _single_dense(n_features, 1, activation, weights, seed, "logistic_regression")


def softmax_regression(
    n_features: int,
    n_classes: int,
    *,
    weights: Weights = None,
    from_logits: bool = False,
    seed: int | None = None,
) -> keras.Model:
    """Dense(n_classes, softmax): Ŷ = Softmax(XW + b); the logits Z when from_logits."""
    if not isinstance(n_classes, (int, np.integer)) or isinstance(n_classes, bool) or n_classes < 2:
        raise ValueError(f"n_classes must be an integer >= 2 (for 2 classes, softmax over 2 units "
                         f"or logistic_regression); received {n_classes!r}")
    activation = None if from_logits else "softmax"
    return _single_dense(n_features, n_classes, activation, weights, seed, "softmax_regression")


def dense_classifier(
    n_features: int,
    n_classes: int,
    hidden: Sequence[int] | int = (30,),
    activation: str = "relu",
    *,
    from_logits: bool = False,
    seed: int | None = None,
) -> keras.Model:
    """Hidden Dense layers, then 1 sigmoid unit (2 classes) or n_classes softmax units.

    Layers are named hidden_1, hidden_2, ... and output. ``hidden``: units per hidden
    layer, or one integer for a single hidden layer.
    """
    import keras

    _check_positive("n_features", n_features)
    if not isinstance(n_classes, (int, np.integer)) or isinstance(n_classes, bool) or n_classes < 2:
        raise ValueError(f"n_classes must be an integer >= 2; received {n_classes!r}")
    if isinstance(hidden, (int, np.integer)) and not isinstance(hidden, bool):
        hidden = (hidden,)
    try:
        hidden = tuple(hidden)
    except TypeError:
        raise ValueError(f"hidden must be a sequence of positive integers (or one); received "
                         f"{hidden!r}") from None
    for units in hidden:
        _check_positive("hidden units", units)
    out_units = 1 if n_classes == 2 else n_classes
    out_activation = None if from_logits else ("sigmoid" if n_classes == 2 else "softmax")

    inputs = keras.Input(shape=(n_features,), name="x")
    x = inputs
    layers = []
    for i, units in enumerate(hidden, start=1):
        layer = keras.layers.Dense(units, activation=activation, name=f"hidden_{i}")
        layers.append(layer)
        x = layer(x)
    output = keras.layers.Dense(out_units, activation=out_activation, name="output")
    layers.append(output)
    model = keras.Model(inputs, output(x), name="dense_classifier")
    if seed is not None:
        rng = np.random.default_rng(seed)
        fan_in = n_features
        for layer in layers:
            units = layer.units
            layer.set_weights([_glorot_uniform(rng, fan_in, units), np.zeros(units, "float32")])
            fan_in = units
    return model


TASKS = ("regression", "binary", "sparse", "categorical")


def loss_for(task: str, *, from_logits: bool = False) -> keras.losses.Loss:
    """The slides' loss table: regression → MSE; binary → binary cross-entropy;
    multi-class → sparse (integer labels) or categorical (one-hot) cross-entropy."""
    import keras

    if task == "regression":
        return keras.losses.MeanSquaredError()
    if task == "binary":
        return keras.losses.BinaryCrossentropy(from_logits=from_logits)
    if task == "sparse":
        return keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits)
    if task == "categorical":
        return keras.losses.CategoricalCrossentropy(from_logits=from_logits)
    raise ValueError(f"unknown task {task!r}; expected one of: {', '.join(TASKS)}")


def compile_model(
    model: keras.Model,
    task: str,
    *,
    optimizer="sgd",
    from_logits: bool = False,
    metrics: Sequence | None = None,
    **compile_kwargs,
) -> keras.Model:
    """Compile ``model`` with the loss the slides prescribe for ``task`` and return it."""
    model.compile(
        optimizer=optimizer,
        loss=loss_for(task, from_logits=from_logits),
        metrics=list(metrics) if metrics else None,
        **compile_kwargs,
    )
    return model
