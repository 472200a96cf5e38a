"""Batch gradient descent: the slides' two BGD tables, and what Keras applies.

Slides: "Batch gradient descent (BGD)", "BGD, first iteration", "BGD, second iteration".
Data x = 1, 2, 3 and y = 2x − 1 + 0.01ε (np.random.seed(111)), θ0 = (0, 0), η = 0.1,
the full batch at every step. The tables list, per observation, y_hat, the squared
error and its derivatives dL/dw = 2(ŷ − y)x and dL/db = 2(ŷ − y); the gradient of the
batch loss is their mean, which is exactly the gradient Keras applies.
"""

import keras
import numpy as np
import pandas as pd

from kclf import plots, reference
from kclf.callbacks import TrainingTrace
from kclf.data import bgd_data
from kclf.models import compile_model, linear_regression

NAME = "bgd"
DESCRIPTION = "The slides' two BGD iterations: per-observation tables, mean gradient = Keras's gradient"
SLIDE = "Batch gradient descent (BGD): first and second iteration"
POSITION = 70  # in the lecture's order (kclf list, kclf compare)
TOLERANCE = "deterministic"

LEARNING_RATE = 0.1
ITERATIONS = 2


def run(ctx):
    x, y = bgd_data()
    model = linear_regression(1, weights=([[0.0]], [0.0]))
    compile_model(model, "regression", optimizer=keras.optimizers.SGD(LEARNING_RATE))
    trace = TrainingTrace()
    ctx.attach(trace)

    # Full batch: one step per epoch.
    model.fit(x.reshape(-1, 1).astype("float32"), y.reshape(-1, 1).astype("float32"),
              batch_size=len(x), epochs=ITERATIONS, shuffle=False, verbose=0, callbacks=[trace])

    before_w, before_b = trace.weights_before("dense/kernel")[:, 0, 0], trace.weights_before("dense/bias")[:, 0]
    grad_w, grad_b = trace.gradients("dense/kernel")[:, 0, 0], trace.gradients("dense/bias")[:, 0]
    after_w, after_b = trace.weights_after("dense/kernel")[:, 0, 0], trace.weights_after("dense/bias")[:, 0]
    theta = [[float(before_w[0]), float(before_b[0])]]
    tables, nablas, keras_gradients = [], [], []
    for t in range(ITERATIONS):
        w, b = float(before_w[t]), float(before_b[t])
        y_hat, loss, dldw, dldb = reference.per_observation_mse_gradients(x, y, w, b)
        df = pd.DataFrame({"x": x.astype(int), "y": y, "y_hat": y_hat, "loss": loss, "dL/dw": dldw, "dL/db": dldb})
        ctx.table(df.round(2), f"BGD, iteration {t + 1} (theta_{t} = ({w:.4g}, {b:.4g}))")
        nabla = np.array([df["dL/dw"].mean(), df["dL/db"].mean()])
        applied = np.array([grad_w[t], grad_b[t]], dtype="float64")
        ctx.print(f"nabla = mean of the dL/dw and dL/db columns = {np.array2string(nabla, precision=4)}")
        ctx.print(f"gradient Keras applied                      = {np.array2string(applied, precision=4)}")
        ctx.print(f"batch loss: Keras {trace.losses()[t]:.6g}, table mean {df['loss'].mean():.6g}")
        theta_next = [float(after_w[t]), float(after_b[t])]
        ctx.print(f"theta_{t + 1} = theta_{t} - {LEARNING_RATE} * nabla = {np.round(theta_next, 4).tolist()}")
        theta.append(theta_next)
        tables.append(df.to_dict(orient="list"))
        nablas.append(nabla.tolist())
        keras_gradients.append(applied.tolist())

    fig, ax = plots.figure("BGD: two full-batch steps on the slides' data")
    plots.mse_contour(ax, x, y, (-0.5, 2.5), (-1.5, 1.0))
    plots.theta_path(ax, theta, "Keras BGD, eta = 0.1")
    ax.legend(loc="lower right")
    ctx.figure(fig, "bgd_path.png")
    return {
        "theta": theta,
        "nabla": nablas,
        "keras_gradient": keras_gradients,
        "tables": tables,
        "losses": trace.losses().tolist(),
    }
