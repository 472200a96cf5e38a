"""Logistic regression, forward pass: z = Xw + b and ŷ = σ(z) for the slides' three rows.

Slides: "Logistic regression" → "Multiple observations" and "Matrix notation".
With w = (1, 2) and b = −10 the slides get z = (−5, 1, 7) and
ŷ = σ(z) ≈ (0.0067, 0.731, 0.9991). Here a Keras Dense(1, sigmoid) layer computes
them on the chosen backend, and kclf.reference checks them.
"""

import numpy as np
import pandas as pd

from kclf import plots, reference
from kclf.data import SLIDES_X, SLIDES_Y
from kclf.models import logistic_regression

NAME = "logistic-forward"
DESCRIPTION = "Dense+sigmoid forward pass on the slides' 3 rows: z = Xw + b, y_hat = sigmoid(z)"
SLIDE = "Logistic regression: multiple observations, matrix notation"
POSITION = 30  # in the lecture's order (kclf list, kclf compare)
TOLERANCE = "deterministic"

W = np.array([[1.0], [2.0]])
B = np.array([-10.0])


def run(ctx):
    # Setup: the slides' data and weights, in a Keras model.
    data = pd.DataFrame({"x_1": SLIDES_X[:, 0], "x_2": SLIDES_X[:, 1], "y": SLIDES_Y})
    ctx.table(data.astype({"x_1": int, "x_2": int}), "data")
    model = logistic_regression(2, weights=(W, B))
    logits = logistic_regression(2, weights=(W, B), from_logits=True)

    # Run: the same forward pass, once as logits and once through the sigmoid.
    z = np.asarray(logits.predict(SLIDES_X, verbose=0), dtype="float64").reshape(-1)
    y_hat = np.asarray(model.predict(SLIDES_X, verbose=0), dtype="float64").reshape(-1)

    # Result: as the slides print them, and against the NumPy reference.
    ctx.header("z = X w + b")
    ctx.print(np.array2string(z.reshape(-1, 1).round(4), separator=", "))
    ctx.header("a = sigmoid(z)   (slides: [[0.01], [0.73], [1.  ]])")
    ctx.print(np.array2string(y_hat.reshape(-1, 1).round(2), separator=", "))
    ref_z = reference.linear(SLIDES_X, W, B).reshape(-1)
    ref_y = reference.sigmoid(ref_z)
    table = pd.DataFrame({"z": z, "y_hat": y_hat, "reference y_hat": ref_y, "|diff|": np.abs(y_hat - ref_y)})
    ctx.table(table, "Keras vs kclf.reference", float_format=".6g")

    fig, ax = plots.figure("Sigmoid: y = 1 / (1 + exp(-x))", xlabel="x", ylabel="sigmoid(x)")
    grid = np.linspace(-10, 10, 100)
    ax.plot(grid, reference.sigmoid(grid))
    ax.scatter(z, y_hat, color="C3", zorder=3, label="the slides' 3 rows (Keras)")
    ax.legend()
    ctx.figure(fig, "sigmoid.png")
    return {"z": z, "y_hat": y_hat, "reference": {"z": ref_z, "y_hat": ref_y}}
