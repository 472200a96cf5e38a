"""The lecture's iris demo (_keras-iris-classification-demo.qmd), cell by cell, in order.

The cells are the lecture's, with its seeding: ``build_model()`` calls ``random.seed(42)``
so Keras's unseeded initialisers draw from the same seeds each time; ``fit`` shuffles
(Keras's default) in batches of 32. Where the models start and how the rows are ordered
is the ``starter``'s business (kclf.demos.start); everything else is as published.

The two editions differ in two places: 2025 trains its early-stopping model as ``model`` (so
``y_pred`` comes from it) and ends with the one-hot run; 2026 trains it as ``model_es`` (so
``y_pred`` comes from the 500-epoch ``model``) and has its one-hot slides inside an HTML
comment, which prints nothing.
"""

from __future__ import annotations

import random

import numpy as np
import pandas as pd

NUM_CATS = 3
FEATURES = ["SepalLength", "SepalWidth", "PetalLength", "PetalWidth"]
# Trace density in --start tensorflow (steps between records): every step of the short
# fits; the long ones every 5 steps, which keeps trace.csv near 10 MB.
TRACE_EVERY = {"fit_5_epochs": 1, "fit_5_epochs_accuracy": 1, "fit_500_epochs": 5,
               "early_stopping": 5, "one_hot": 5}


def data():
    """features, target and the lecture's split (random_state=24): 112 / 38 rows."""
    from sklearn.datasets import load_iris
    from sklearn.model_selection import train_test_split

    iris = load_iris()
    features = pd.DataFrame(iris.data, columns=FEATURES)
    target = iris.target.reshape(-1, 1)
    X_train, X_test, y_train, y_test = train_test_split(features, target, random_state=24)
    return iris, X_train, X_test, y_train, y_test


def build_model(seed=42):
    from keras.layers import Dense
    from keras.models import Sequential

    random.seed(seed)
    return Sequential([Dense(30, activation="relu"), Dense(NUM_CATS, activation="softmax")])


def _floats(values) -> list:
    return [float(v) for v in values]


def cells(ctx, starter, edition: str = "2026") -> dict:
    """Run the demo's cells (after the lecture's preamble); return ``values`` (every printed
    number) and the histories."""
    import keras
    from keras.callbacks import EarlyStopping
    from sklearn.preprocessing import OneHotEncoder

    iris, X_train, X_test, y_train, y_test = data()
    values: dict = {}
    ctx.header("Split the data into train and test")
    ctx.print(f"X_test.shape, y_test.shape = {X_test.shape}, {y_test.shape}; "
              f"X_train has {len(X_train)} rows")

    ctx.header("Fit the model: model.fit(X_train, y_train, epochs=5, verbose=2)")
    model = build_model()
    model.compile("adam", "sparse_categorical_crossentropy")
    hist = starter.fit("fit_5_epochs", model, X_train, y_train, epochs=5, verbose=0)
    values["fit_5_epochs"] = {"loss": _floats(hist.history["loss"])}
    for i, loss in enumerate(hist.history["loss"], 1):
        ctx.print(f"Epoch {i}/5 - loss: {loss:.4f}")

    ctx.header("Track accuracy as the model trains")
    model = build_model()
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    hist = starter.fit("fit_5_epochs_accuracy", model, X_train, y_train, epochs=5, verbose=0)
    values["fit_5_epochs_accuracy"] = {k: _floats(hist.history[k]) for k in ("accuracy", "loss")}
    for i, (acc, loss) in enumerate(zip(hist.history["accuracy"], hist.history["loss"]), 1):
        ctx.print(f"Epoch {i}/5 - accuracy: {acc:.4f} - loss: {loss:.4f}")

    ctx.header("Run a long fit: 500 epochs, validation_split=0.25")
    model = build_model()
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    hist = starter.fit("fit_500_epochs", model, X_train, y_train, epochs=500,
                       validation_split=0.25, verbose=False)
    evaluation = _floats(model.evaluate(X_test, y_test, verbose=False))
    values["fit_500_epochs"] = {"evaluate": evaluation}
    ctx.print(f"model.evaluate(X_test, y_test) = {evaluation}")

    ctx.header("Add early stopping (patience 50, val_accuracy, restore_best_weights)")
    model_es = build_model()
    model_es.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    es = EarlyStopping(restore_best_weights=True, patience=50, monitor="val_accuracy")
    hist_es = starter.fit("early_stopping", model_es, X_train, y_train, epochs=500,
                          validation_split=0.25, callbacks=[es], verbose=False)
    epochs = len(hist_es.history["loss"])
    ctx.print(f"Stopped after {epochs} epochs.")
    evaluation = _floats(model_es.evaluate(X_test, y_test, verbose=False))
    if edition == "2025":  # 2025's cell reuses the name: y_pred below is the early-stopped model's
        model = model_es
    values["early_stopping"] = {"epochs": epochs, "best_epoch": int(es.best_epoch) + 1,
                                "evaluate": evaluation}
    ctx.print(f"model.evaluate(X_test, y_test) = {evaluation}")

    ctx.header("What is the softmax activation?")
    out = np.array([5, -1, 6])
    in_numpy = (np.exp(out) / np.exp(out).sum()).round(3)
    in_keras = keras.ops.round(keras.ops.softmax(keras.ops.convert_to_tensor([[5.0, -1.0, 6.0]])), 3)
    in_keras = keras.ops.convert_to_numpy(in_keras)
    values["softmax"] = {"numpy": _floats(in_numpy), "keras": [_floats(in_keras[0])]}
    ctx.print(f"NumPy: {in_numpy}   keras.ops: {in_keras}")

    ctx.header("Prediction using classifiers ("
               + ("the early-stopped model)" if edition == "2025" else "the 500-epoch model)"))
    y_pred = model.predict(X_test.head(4), verbose=0)
    argmax = np.argmax(y_pred, axis=1)
    values["predict"] = {
        "y_test": y_test[:4].tolist(), "probabilities": [_floats(r) for r in y_pred],
        "argmax": argmax.tolist(), "names": iris.target_names[argmax].tolist(),
    }
    ctx.print(f"y_test[:4] = {y_test[:4].ravel().tolist()}")
    # 2026's setup.py prints NumPy arrays with precision 2 (numpy.set_printoptions).
    shown = np.array2string(np.asarray(y_pred), precision=2 if edition == "2026" else 8)
    ctx.print(f"y_pred =\n{shown}")
    ctx.print(f"np.argmax(y_pred, axis=1) = {argmax.tolist()}; "
              f"names {iris.target_names[argmax].tolist()}")
    histories = {"fit_500_epochs": hist.history, "early_stopping": hist_es.history}
    histories = {k: {m: _floats(v) for m, v in h.items()} for k, h in histories.items()}
    if edition != "2025":  # 2026: the one-hot slides are commented out
        return {"values": values, "histories": histories}

    ctx.header("Classifier given one-hot outputs: categorical_crossentropy, 100 epochs")
    enc = OneHotEncoder(sparse_output=False)
    y_train_oh = enc.fit_transform(y_train)
    y_test_oh = enc.transform(y_test)
    model = build_model()
    model.compile("adam", "categorical_crossentropy", metrics=["accuracy"])
    starter.fit("one_hot", model, X_train, y_train_oh, epochs=100, verbose=False)
    evaluation = _floats(model.evaluate(X_test, y_test_oh, verbose=False))
    values["one_hot"] = {"evaluate": evaluation}
    ctx.print(f"model.evaluate(X_test, y_test_oh) = {evaluation}")
    return {"values": values, "histories": histories}


def figure(ctx, histories: dict, title: str, filename: str = "fitting_metrics.png") -> None:
    """The slide's "Fitting metrics": loss (left) and accuracy (right), without early
    stopping (top) and with it (bottom)."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(9, 6))  # own x axes, as the slide: 500 vs ~70 epochs
    for row, key in enumerate(("fit_500_epochs", "early_stopping")):
        h = histories[key]
        for col, metric in enumerate(("loss", "accuracy")):
            ax = axes[row, col]
            ax.plot(h[metric], label="Training")
            ax.plot(h[f"val_{metric}"], label="Validation")
            ax.spines[["top", "right"]].set_visible(False)
            if row == 0:
                ax.set_title(metric.capitalize())
            else:
                ax.set_xlabel("Epoch")
            ax.set_ylabel("500 epochs" if row == 0 else "early stopping")
    axes[0, 0].legend()
    fig.suptitle(title)
    fig.tight_layout()
    ctx.figure(fig, filename)
