"""Iris: a small dense network with a softmax output sorts flowers into three species.

Slides: the multi-class demonstration. Four measurements per flower (112 for training, the
last 25% of those held out for validation, 38 for testing), one hidden layer of 30 ReLU units,
three softmax outputs, Adam and sparse categorical cross-entropy. The same model is trained
four ways from the same (NumPy-seeded) initial weights: 500 epochs; with early stopping on
the validation accuracy; with one-hot targets and categorical cross-entropy (the same loss,
written differently, so the same numbers); and with logits out of the network
(from_logits=True). Then its probabilities for the first test flowers become class names.

The data are fed in a fixed order (shuffle=False; train_test_split already shuffled them),
so a rerun on one backend repeats every number, and every backend computes the same steps
(``kclf run iris --start numpy``). KCLF_QUICK=1 cuts the epochs for tests.
"""

import os

import keras
import numpy as np
import pandas as pd

from kclf import plots
from kclf.demo_data import iris
from kclf.models import compile_model, dense_classifier
from kclf.trace.callback import TrainingTrace

SEED = 24
EPOCHS, PATIENCE = 500, 50
QUICK_EPOCHS, QUICK_PATIENCE = 30, 5  # KCLF_QUICK=1: enough to exercise every step
TRACE_EVERY = 50  # steps between trace records: 1500 steps in the full run → 31 rows
N_PREDICTIONS = 5


def train(model, x, y, *, task="sparse", from_logits=False, epochs, callbacks=()):
    """Compile with Adam and the slides' loss for ``task``; fit on the fixed-order data."""
    keras.utils.set_random_seed(SEED)
    compile_model(model, task, optimizer="adam", from_logits=from_logits, metrics=["accuracy"])
    history = model.fit(
        x, y, epochs=epochs, batch_size=32, validation_split=0.25, shuffle=False,
        callbacks=list(callbacks), verbose=0,
    )
    return history.history


def run(ctx):
    quick = os.environ.get("KCLF_QUICK") == "1"
    epochs, patience = (QUICK_EPOCHS, QUICK_PATIENCE) if quick else (EPOCHS, PATIENCE)
    mode = f" (quick mode: {epochs} epochs, patience {patience})" if quick else ""

    # Setup: the data, as the lecture splits it.
    data = iris()
    names = np.array(data.class_names)
    x_train, x_test = data.X_train.to_numpy("float32"), data.X_test.to_numpy("float32")
    y_train, y_test = data.y_train, data.y_test
    shown = data.X_train.head().assign(target=data.y_train[:5], species=names[data.y_train[:5]])
    ctx.table(shown, f"iris: {len(x_train)} training rows, {len(x_test)} test rows{mode}")

    def model(from_logits=False):
        return dense_classifier(4, 3, hidden=(30,), activation="relu",
                                from_logits=from_logits, seed=SEED)

    def evaluate(net, y=y_test):
        scores = net.evaluate(x_test, y, verbose=0, return_dict=True)
        return {"test_loss": float(scores["loss"]), "test_accuracy": float(scores["accuracy"])}

    # Run 1: a fixed number of epochs, watching the validation rows.
    plain = model()
    trace = TrainingTrace(every=TRACE_EVERY)
    history = train(plain, x_train, y_train, epochs=epochs, callbacks=[trace])
    ctx.attach(trace, label="plain")
    last = pd.DataFrame(history)[["loss", "accuracy", "val_loss", "val_accuracy"]].tail(3)
    ctx.table(last.rename(index=lambda i: i + 1),
              f"{epochs} epochs, validation_split=0.25: the last epochs", float_format=".4f")
    results = evaluate(plain)
    plain_scores = dict(results)

    # Run 2: stop when the validation accuracy has not improved for `patience` epochs.
    stopped = model()
    early = keras.callbacks.EarlyStopping(
        monitor="val_accuracy", patience=patience, restore_best_weights=True
    )
    history_es = train(stopped, x_train, y_train, epochs=epochs, callbacks=[early])
    stopped_epoch, best_epoch = len(history_es["loss"]), early.best_epoch + 1
    ctx.header(f"early stopping (val_accuracy, patience {patience}, restore_best_weights)")
    ctx.print(f"stopped after epoch {stopped_epoch}; weights restored from epoch {best_epoch}")
    results["early_stopping"] = {"stopped_epoch": stopped_epoch, "best_epoch": best_epoch,
                                 **evaluate(stopped)}

    # Run 3: one-hot targets need categorical (not sparse) cross-entropy; the loss is the same.
    onehot = model()
    train(onehot, x_train, keras.utils.to_categorical(y_train, 3), task="categorical",
          epochs=epochs)
    results["onehot"] = evaluate(onehot, keras.utils.to_categorical(y_test, 3))

    # Run 4: the network outputs logits; the loss applies the softmax itself.
    logits = model(from_logits=True)
    train(logits, x_train, y_train, from_logits=True, epochs=epochs)
    results["from_logits"] = evaluate(logits)

    runs = {
        f"{epochs} epochs": plain_scores,
        f"early stopping (epoch {best_epoch})": results["early_stopping"],
        "one-hot, categorical CE": results["onehot"],
        "from_logits=True": results["from_logits"],
    }
    table = pd.DataFrame(runs).T.rename(columns={"test_loss": "loss", "test_accuracy": "accuracy"})
    ctx.table(table[["loss", "accuracy"]], "test set", float_format=".4f")

    # Predictions: probabilities → argmax → class names.
    probs = np.asarray(plain.predict(x_test[:N_PREDICTIONS], verbose=0), dtype="float64")
    predicted = probs.argmax(axis=1)
    table = pd.DataFrame(probs, columns=[f"P({n})" for n in names])
    table["argmax"] = predicted
    table["predicted"] = names[predicted]
    table["actual"] = names[y_test[:N_PREDICTIONS]]
    ctx.table(table, f"predictions for the first {N_PREDICTIONS} test rows", float_format=".4f")
    results["first_predictions"] = names[predicted].tolist()
    results["first_probabilities"] = probs

    # Figures: the learning curves of runs 1 and 2, and the test confusion matrix of run 1.
    fig, axes = plots.subplots(2, 2, f"iris: learning curves{mode}", size=(11.0, 8.0))
    for row, (hist, label, mark) in enumerate(
        [(history, f"{epochs} epochs", None), (history_es, "early stopping", best_epoch)]
    ):
        for col, metric in enumerate(("loss", "accuracy")):
            plots.history_curves(axes[row, col], hist, metric, title=f"{label}: {metric}",
                                 mark_epoch=mark)
    fig.tight_layout()
    ctx.figure(fig, "learning_curves.png")

    y_pred = np.asarray(plain.predict(x_test, verbose=0)).argmax(axis=1)
    fig, ax = plots.figure(f"iris: confusion matrix, test set ({epochs} epochs){mode}")
    ax.grid(False)
    plots.confusion_matrix(ax, y_test, y_pred, names)
    ctx.figure(fig, "confusion_matrix.png")
    return results
