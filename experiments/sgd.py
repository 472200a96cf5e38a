"""Stochastic gradient descent by hand and by Keras: the slides' two SGD iterations.

Slides: "Stochastic gradient descent (SGD)", "SGD, first iteration", "SGD, second iteration".
Linear regression ŷ = wx + b from θ0 = (w, b) = (0, 0), learning rate η = 0.01, one
observation per step: first (x=5, y=5), then (x=9, y=17). The slides get
Loss = 25, ∇ = (−50, −10), θ1 = (0.5, 0.1); then ∇ = (−223.2, −24.8), θ2 = (2.732, 0.348).
Keras trains the same model with batch size 1 and no shuffling; TrainingTrace records
what it computed and applied, and kclf.reference redoes each line by hand.
"""

import keras
import numpy as np
import pandas as pd

from kclf import plots, reference
from kclf.callbacks import TrainingTrace
from kclf.data import SGD_PICKS_X, SGD_PICKS_Y
from kclf.models import compile_model, linear_regression

NAME = "sgd"
DESCRIPTION = "The slides' two SGD steps on linear regression: theta1 = (0.5, 0.1), theta2 = (2.732, 0.348)"
SLIDE = "Stochastic gradient descent (SGD): first and second iteration"
POSITION = 60  # in the lecture's order (kclf list, kclf compare)
TOLERANCE = "deterministic"

LEARNING_RATE = 0.01


def run(ctx):
    # Setup: θ0 = (0, 0), the two picks in the slides' order.
    model = linear_regression(1, weights=([[0.0]], [0.0]))
    compile_model(model, "regression", optimizer=keras.optimizers.SGD(LEARNING_RATE))
    trace = TrainingTrace()
    ctx.attach(trace)

    # Run: one epoch, batch size 1, no shuffling = exactly the two picks.
    model.fit(SGD_PICKS_X, SGD_PICKS_Y, batch_size=1, epochs=1, shuffle=False, verbose=0, callbacks=[trace])

    # Result: each iteration as the slides write it, Keras next to the hand calculation.
    kernel_before, kernel_grad = trace.weights_before("dense/kernel"), trace.gradients("dense/kernel")
    bias_before, bias_grad = trace.weights_before("dense/bias"), trace.gradients("dense/bias")
    theta = [[float(kernel_before[0, 0, 0]), float(bias_before[0, 0])]]
    gradients, losses, rows = [], [], []
    theta_hand = np.zeros(2)
    for i, (x, y) in enumerate(zip(SGD_PICKS_X[:, 0], SGD_PICKS_Y[:, 0])):
        w, b = theta_hand
        y_hat, loss, dw, db = reference.per_observation_mse_gradients([x], [y], w, b)
        grad_keras = np.array([kernel_grad[i, 0, 0], bias_grad[i, 0]], dtype="float64")
        theta_hand = reference.sgd_step(theta_hand, [dw[0], db[0]], LEARNING_RATE)
        theta_keras = [float(trace.weights_after("dense/kernel")[i, 0, 0]), float(trace.weights_after("dense/bias")[i, 0])]
        theta.append(theta_keras)
        gradients.append(grad_keras.tolist())
        losses.append(float(trace.losses()[i]))
        rows.append({
            "iteration": i + 1, "x": x, "y": y, "y_hat": y_hat[0], "loss": trace.losses()[i],
            "dL/dw": grad_keras[0], "dL/db": grad_keras[1],
            "w": theta_keras[0], "b": theta_keras[1],
            "hand w": theta_hand[0], "hand b": theta_hand[1],
        })
        ctx.header(f"SGD, iteration {i + 1}: pick x = {x:g}, y = {y:g}")
        ctx.print(f"theta_{i} = ({w:.4g}, {b:.4g});  y_hat = {y_hat[0]:.4g};  Loss = ({y_hat[0]:.4g} - {y:g})^2 = {loss[0]:.4g}")
        ctx.print(f"gradient (Keras) = ({grad_keras[0]:.4g}, {grad_keras[1]:.4g});  by hand = ({dw[0]:.4g}, {db[0]:.4g})")
        ctx.print(f"theta_{i + 1} = theta_{i} - {LEARNING_RATE} * gradient = ({theta_keras[0]:.4g}, {theta_keras[1]:.4g})")
    ctx.table(pd.DataFrame(rows).set_index("iteration"), "Keras (trace) vs by hand", float_format=".6g")

    fig, ax = plots.figure("SGD's two steps over the MSE of the two picks")
    plots.mse_contour(ax, SGD_PICKS_X, SGD_PICKS_Y, (-0.5, 3.5), (-0.5, 1.0))
    plots.theta_path(ax, theta, "Keras: theta_0 → theta_1 → theta_2")
    ax.legend(loc="upper left")  # the lower right holds the off-axes minimum's marker
    ctx.figure(fig, "sgd_path.png")
    return {"theta": theta, "gradients": gradients, "losses": losses, "learning_rate": LEARNING_RATE}
