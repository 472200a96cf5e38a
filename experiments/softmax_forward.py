"""Softmax regression, forward pass: Z = XW + b and A = Softmax(Z) for the slides' three rows.

Slides: "Using a softmax output" → "Multiple observations" and "Matrix notation".
With W = [[1, 3], [2, 4]] and b = (−10, −20) the slides get
Z = [[−5, −9], [1, 5], [7, 19]] and A ≈ [[0.982, 0.018], [0.018, 0.982], [6.14e-06, 1]].
A Keras Dense(2, softmax) layer computes them on the chosen backend; kclf.reference checks them.
"""

import numpy as np
import pandas as pd

from kclf import plots, reference
from kclf.data import SLIDES_X, SLIDES_Y
from kclf.models import softmax_regression

NAME = "softmax-forward"
DESCRIPTION = "Dense+softmax forward pass on the slides' 3 rows: Z = XW + b, A = Softmax(Z)"
SLIDE = "Using a softmax output: multiple observations, matrix notation"
POSITION = 40  # in the lecture's order (kclf list, kclf compare)
TOLERANCE = "deterministic"

W = np.array([[1.0, 3.0], [2.0, 4.0]])
B = np.array([-10.0, -20.0])


def run(ctx):
    # The slide's targets are one-hot: y_i = (1, 0) for class 1, (0, 1) for class 2.
    Y = reference.one_hot(SLIDES_Y, 2).astype(int)
    data = pd.DataFrame({"x_1": SLIDES_X[:, 0], "x_2": SLIDES_X[:, 1], "y_1": Y[:, 0], "y_2": Y[:, 1]})
    ctx.table(data.astype({"x_1": int, "x_2": int}), "data (one-hot targets y_1, y_2)")
    model = softmax_regression(2, 2, weights=(W, B))
    logits = softmax_regression(2, 2, weights=(W, B), from_logits=True)

    Z = np.asarray(logits.predict(SLIDES_X, verbose=0), dtype="float64")
    A = np.asarray(model.predict(SLIDES_X, verbose=0), dtype="float64")

    ctx.header("Z = X W + b")
    ctx.print(np.array2string(Z.round(4), separator=", "))
    ctx.header("A = Softmax(Z)   (slides: [[9.82e-01, 1.80e-02], [1.80e-02, 9.82e-01], [6.14e-06, 1.00e+00]])")
    with np.printoptions(precision=2, floatmode="fixed"):
        ctx.print(np.array2string(A, separator=", ", formatter={"float_kind": lambda v: f"{v:.2e}"}))
    ref_Z = reference.linear(SLIDES_X, W, B)
    ref_A = reference.softmax(ref_Z)
    ctx.header("Keras vs kclf.reference")
    ctx.print(f"max |A - reference| = {np.max(np.abs(A - ref_A)):.3g}")
    ctx.print(f"max |Z - reference| = {np.max(np.abs(Z - ref_Z)):.3g}")

    fig, ax = plots.figure("Softmax of the slides' 3 rows", xlabel="row", ylabel="probability")
    rows = np.arange(3)
    ax.bar(rows - 0.2, A[:, 0], width=0.4, label="class 1")
    ax.bar(rows + 0.2, A[:, 1], width=0.4, label="class 2")
    ax.set_xticks(rows)
    ax.set_ylim(0, 1.3)  # room above the bars for the legend
    ax.legend(loc="upper center", ncol=2)
    ctx.figure(fig, "softmax.png")
    return {"Z": Z, "A": A, "reference": {"Z": ref_Z, "A": ref_A}}
