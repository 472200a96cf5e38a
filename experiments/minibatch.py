"""Stochastic, mini-batch and batch gradient descent side by side on ~100 points.

Slides: "Stochastic gradient descent (SGD)", "Batch gradient descent (BGD)" and the
glossary's "mini-batch gradient descent". The same linear data (y = 2x − 1 + noise),
the same start θ0 = (0, 0), learning rate and number of epochs; only the batch size
changes: 1 (SGD), 10 (mini-batch) and all 100 points (BGD). Small batches take many
noisy steps per epoch, the full batch takes one smooth step.
"""

import keras
import numpy as np
import pandas as pd

from kclf import plots
from kclf.callbacks import TrainingTrace
from kclf.data import linear_data
from kclf.models import compile_model, linear_regression

NAME = "minibatch"
DESCRIPTION = "SGD vs mini-batch vs full-batch on ~100 points: loss per step and (w, b) paths over the MSE contour"
SLIDE = "SGD, BGD and mini-batch gradient descent"
POSITION = 80  # in the lecture's order (kclf list, kclf compare)
TOLERANCE = "deterministic"

LEARNING_RATE = 0.005
EPOCHS = 10
BATCH_SIZES = {"SGD (batch 1)": 1, "mini-batch (10)": 10, "BGD (batch 100)": 100}


def run(ctx):
    x, y = linear_data(100)
    traces = {}
    for label, batch_size in BATCH_SIZES.items():
        model = linear_regression(1, weights=([[0.0]], [0.0]))
        compile_model(model, "regression", optimizer=keras.optimizers.SGD(LEARNING_RATE))
        trace = TrainingTrace()
        ctx.attach(trace, label)  # before fit: Ctrl-C during fit keeps the steps so far
        model.fit(x, y, batch_size=batch_size, epochs=EPOCHS, shuffle=False, verbose=0, callbacks=[trace])
        traces[label] = trace

    rows, results = [], {}
    full_mse = lambda w, b: float(np.mean((w * x[:, 0] + b - y[:, 0]) ** 2))  # noqa: E731
    for label, trace in traces.items():
        w = trace.weights_after("dense/kernel")[:, 0, 0]
        b = trace.weights_after("dense/bias")[:, 0]
        results[label] = {
            "batch_size": BATCH_SIZES[label],
            "steps": int(trace.steps_recorded),
            "final_theta": [float(w[-1]), float(b[-1])],
            "final_full_mse": full_mse(w[-1], b[-1]),
            "losses": trace.losses().tolist(),
        }
        rows.append({"run": label, "steps": trace.steps_recorded, "final w": w[-1], "final b": b[-1],
                     "MSE on all data": results[label]["final_full_mse"]})
    ctx.table(pd.DataFrame(rows).set_index("run"), f"after {EPOCHS} epochs, eta = {LEARNING_RATE}", float_format=".4f")

    fig, axes = plots.subplots(1, 2, "Batch size: noisy many steps vs smooth few steps", size=(12, 4.5))
    ax_loss, ax_path = axes[0]
    for label, trace in traces.items():
        per_epoch = trace.steps_recorded / EPOCHS
        # Step s's loss is measured at the weights it starts from: after (s − 1)/per_epoch epochs.
        ax_loss.plot((trace.steps() - 1) / per_epoch, trace.losses(), label=label, alpha=0.8, lw=1)
    ax_loss.set_yscale("log")
    ax_loss.set_xlabel("epochs completed before the step")
    ax_loss.set_ylabel("batch loss (MSE) at each step")
    ax_loss.legend()
    plots.mse_contour(ax_path, x, y, (-0.5, 2.6), (-1.6, 1.0))
    for label, trace in traces.items():
        w = np.concatenate([[0.0], trace.weights_after("dense/kernel")[:, 0, 0]])
        b = np.concatenate([[0.0], trace.weights_after("dense/bias")[:, 0]])
        ax_path.plot(w, b, ".-", ms=2, lw=0.8, label=label)
    ax_path.set_title("(w, b) paths over the MSE contour")
    ax_path.legend(loc="lower left")
    ctx.figure(fig, "minibatch.png")
    return results
