"""Learning rates: too small, about right, too large, and a schedule.

Slides: the glossary's "learning rate, learning rate schedule" and the SGD update
θ_{t+1} = θ_t − η ∇Loss. Mini-batch gradient descent (batch 10) on the same ~100
linear points from θ0 = (0, 0): a tiny η barely moves, a good η converges, a too large
η overshoots further at every step until the loss overflows (TrainingTrace stops that
run and names the step), and an exponentially decaying schedule starts fast and
settles lowest: the full-data MSE after training is its smallest. The trace records the
rate each step used.
"""

import keras
import numpy as np
import pandas as pd

from kclf import plots
from kclf.callbacks import TrainingTrace
from kclf.data import linear_data
from kclf.models import compile_model, linear_regression

NAME = "learning-rates"
DESCRIPTION = "Too small, about right, too large (diverges) and a decaying schedule; rate per step recorded"
SLIDE = "Learning rate and learning rate schedule"
POSITION = 90  # in the lecture's order (kclf list, kclf compare)
TOLERANCE = "deterministic"  # its diverging run: NaN at the same place agrees

EPOCHS = 20
BATCH_SIZE = 10
RATES = {
    "too small (0.0001)": 1e-4,
    "about right (0.005)": 5e-3,
    "too large (0.08)": 8e-2,
    # Start at the largest stable rate and decay to 0.2x over the 200 steps: it still adds up
    # to more movement than the constant 0.005 (which matters along the slow, intercept
    # direction of these uncentred x), then settles. Halving every 20 steps instead (the
    # first version) had shrunk the rate 1000-fold by the end and lost to the constant rate:
    # full-data MSE 1.135 against 1.129.
    "schedule (0.025 x 0.2^(step/200))": keras.optimizers.schedules.ExponentialDecay(
        0.025, decay_steps=200, decay_rate=0.2
    ),
}


def run(ctx):
    x, y = linear_data(100)
    traces = {}
    for label, rate in RATES.items():
        model = linear_regression(1, weights=([[0.0]], [0.0]))
        compile_model(model, "regression", optimizer=keras.optimizers.SGD(rate))
        trace = TrainingTrace()
        model.fit(x, y, batch_size=BATCH_SIZE, epochs=EPOCHS, shuffle=False, verbose=0, callbacks=[trace])
        ctx.attach(trace, label, expect_divergence=label.startswith("too large"))
        traces[label] = trace

    rows, results = [], {}
    for label, trace in traces.items():
        losses = trace.losses()
        w = trace.weights_after("dense/kernel")[:, 0, 0]
        b = trace.weights_after("dense/bias")[:, 0]
        full_mse = float(np.mean((w[-1] * x[:, 0].astype("float64") + b[-1] - y[:, 0]) ** 2))
        results[label] = {
            "diverged_at": trace.diverged_at,
            "final_full_mse": full_mse if trace.diverged_at is None else None,
            "steps": int(trace.steps_recorded),
            "final_theta": [float(w[-1]), float(b[-1])],
            "losses": losses.tolist(),
            "learning_rates": trace.learning_rates().tolist(),
        }
        outcome = f"diverged at step {trace.diverged_at}" if trace.diverged_at else "finite"
        rows.append({"run": label, "steps": trace.steps_recorded, "first loss": losses[0],
                     "last loss": losses[-1], "final w": w[-1], "final b": b[-1],
                     "full-data MSE": results[label]["final_full_mse"], "outcome": outcome})
    ctx.table(pd.DataFrame(rows).set_index("run"), f"{EPOCHS} epochs, batch size {BATCH_SIZE}", float_format=".4g")

    fig, axes = plots.subplots(1, 2, "Learning rate: too small, right, too large, scheduled", size=(12, 4.5))
    ax_loss, ax_rate = axes[0]
    for i, (label, trace) in enumerate(traces.items()):
        losses = trace.losses()
        finite = np.isfinite(losses)
        ax_loss.plot(trace.steps()[finite], losses[finite], color=f"C{i}", lw=1, label=label)
        if trace.diverged_at:
            last = trace.steps()[finite][-1]
            ax_loss.plot([last], [losses[finite][-1]], "x", color=f"C{i}", ms=10)
            ax_loss.annotate(f"NaN/inf at step {trace.diverged_at}", (last, losses[finite][-1]),
                             textcoords="offset points", xytext=(-40, -15), fontsize=8)
        ax_rate.plot(trace.steps(), trace.learning_rates(), color=f"C{i}", lw=1.2, label=label)
    ax_loss.set_yscale("log")
    ax_loss.set_xlabel("step")
    ax_loss.set_ylabel("batch loss")
    ax_loss.legend(fontsize=8)
    ax_rate.set_yscale("log")
    ax_rate.set_xlabel("step")
    ax_rate.set_ylabel("learning rate used (from the trace)")
    ax_rate.set_title("the rate each step used")
    ctx.figure(fig, "learning_rates.png")
    return results
