"""Cross-entropy vs squared error: how each penalises the probability p given to the true class.

Slides: the loss comparison. For an observation of class 1 predicted with probability p, the
squared error is (1 − p)² and the cross-entropy is −log p. Both are 0 at p = 1; as p → 0 the
squared error creeps up to 1 while the cross-entropy grows without bound. The curves are drawn
with NumPy; the sample values are also computed by Keras's own losses on the chosen backend.
"""

import keras
import numpy as np
import pandas as pd

from kclf import plots

NAME = "cross-entropy-vs-mse"
DESCRIPTION = "The penalties (1 - p)^2 and -log p for p in (0, 1]: why classification uses cross-entropy"
SLIDE = "Loss functions: cross-entropy vs squared error"
POSITION = 50  # in the lecture's order (kclf list, kclf compare)
TOLERANCE = "deterministic"

WHY = (
    "Cross-entropy is the loss for classification because it is the negative log-likelihood "
    "of the predicted probabilities: a confidently wrong answer (p near 0 for the true class) "
    "costs without limit and keeps a steep slope, while (1 - p)^2 never exceeds 1 and its "
    "slope never exceeds 2, so it barely pushes the model away from confident mistakes."
)
SAMPLE_P = (0.001, 0.01, 0.1, 0.5, 0.9, 0.99, 1.0)


def run(ctx):
    p = np.array(SAMPLE_P)
    squared, cross = (1 - p) ** 2, -np.log(p) + 0.0  # + 0.0: print 0, not -0, at p = 1

    # Keras's losses for a class-1 observation predicted with probability p, one row each.
    y_true = np.ones((len(p), 1), dtype="float32")
    y_pred = p.reshape(-1, 1).astype("float32")
    keras_mse = np.asarray(keras.losses.mean_squared_error(y_true, y_pred), dtype="float64")
    keras_bce = np.asarray(keras.losses.binary_crossentropy(y_true, y_pred), dtype="float64")

    table = pd.DataFrame({
        "p": p, "(1 - p)^2": squared, "-log p": cross,
        "keras MSE": keras_mse, "keras binary CE": keras_bce,
        "d/dp (1 - p)^2": -2 * (1 - p) + 0.0, "d/dp -log p": -1 / p,
    })
    ctx.table(table.set_index("p"), "penalty for probability p on the true class",
              float_format=".4g")
    ctx.header("why cross-entropy")
    ctx.print(WHY)
    ctx.print("(Keras clips p to [1e-7, 1 - 1e-7] inside binary cross-entropy, so its value "
              "at p = 1 is about 1e-7, not 0.)")

    grid = np.linspace(0.001, 1.0, 1000)
    fig, axes = plots.subplots(1, 2, "Penalty for predicting p for the true class",
                               size=(11.0, 4.2))
    left, right = axes[0]
    left.plot(grid, (1 - grid) ** 2, label="squared error (1 - p)^2")
    left.plot(grid, -np.log(grid), label="cross-entropy -log p")
    left.set(xlabel="p", ylabel="penalty", ylim=(0, 5), title="the penalties")
    right.plot(grid, 2 * (1 - grid), label="|d/dp (1 - p)^2| = 2(1 - p)")
    right.plot(grid, 1 / grid, label="|d/dp -log p| = 1/p")
    right.set(xlabel="p", ylabel="slope (absolute value)", ylim=(0, 10), title="their slopes")
    for ax in (left, right):
        ax.grid(True, alpha=0.3)
        ax.legend()
    fig.tight_layout()
    ctx.figure(fig, "cross_entropy_vs_mse.png")

    return {"p": p, "squared_error": squared, "cross_entropy": cross,
            "keras_mse": keras_mse, "keras_binary_crossentropy": keras_bce}
