"""Learning rate schedule: the five learning curves of Géron's Fig. 11-8, measured.

Slide: "Learning rate schedule" (Géron, Fig. 11-8: loss per epoch for η too low, too high,
high, just right, and "start high then reduce"). Linear regression ŷ = wx + b by mini-batch
SGD (batch 10, the same fixed order every epoch) on 100 points x ~ N(0, 1),
y = 2x − 1 + N(0, 1) (np.random.default_rng(7)), from θ0 = (0, 0), 20 epochs:

- too low (η = 0.002): the loss creeps down and is far from the optimum after 20 epochs;
- too high (η = 1.3): every step overshoots further, the loss overflows (the trace names the step);
- high (η = 0.3): fast at first, then the mini-batches' noise keeps it on a plateau above the
  optimum, bouncing around it (suboptimal);
- just right (η = 0.03): slower, but it settles much closer to the optimum;
- start high then reduce (η = 0.3 · 0.01^(step/200), down to 0.003): as fast as "high" at first,
  then it settles: it ends lowest.

The curve is the MSE on all 100 points after each epoch, from the weights the trace recorded.
"""

import keras
import numpy as np
import pandas as pd

from kclf import plots
from kclf.callbacks import TrainingTrace
from kclf.data import schedule_data
from kclf.models import compile_model, linear_regression

NAME = "learning-rate-schedule"
DESCRIPTION = "Geron's Fig. 11-8 measured: too low, too high (diverges), high (plateaus), just right, start high then reduce (ends lowest)"
SLIDE = "Learning rate schedule (Geron Fig. 11-8: five learning curves)"
POSITION = 130  # in the lecture's order (kclf list, kclf compare)
TOLERANCE = "deterministic"  # its diverging run: NaN at the same place agrees

N = 100
EPOCHS = 20
BATCH_SIZE = 10
TOTAL_STEPS = EPOCHS * N // BATCH_SIZE
RATES = {
    "too low (0.002)": 0.002,
    "too high (1.3)": 1.3,
    "high (0.3)": 0.3,
    "just right (0.03)": 0.03,
    "start high then reduce (0.3 to 0.003)": "schedule",
}
SCHEDULE = "start high then reduce (0.3 to 0.003)"
TOO_HIGH = "too high (1.3)"


def schedule():
    return keras.optimizers.schedules.ExponentialDecay(0.3, decay_steps=TOTAL_STEPS, decay_rate=0.01)


def run(ctx):
    x, y = schedule_data(N)
    X = np.c_[x[:, 0].astype("float64"), np.ones(N)]
    target = y[:, 0].astype("float64")
    optimum = np.linalg.lstsq(X, target, rcond=None)[0]

    def full_mse(w, b):
        with np.errstate(over="ignore", invalid="ignore"):
            return np.mean((np.outer(w, X[:, 0]) + np.asarray(b)[:, None] - target) ** 2, axis=1)

    best = float(full_mse(np.array([optimum[0]]), np.array([optimum[1]]))[0])
    traces, curves, results = {}, {}, {"optimum_mse": best, "optimum_theta": optimum, "runs": {}}
    for label, rate in RATES.items():
        model = linear_regression(1, weights=([[0.0]], [0.0]))
        compile_model(model, "regression", optimizer=keras.optimizers.SGD(schedule() if rate == "schedule" else rate))
        trace = TrainingTrace(verbose=False)
        model.fit(x, y, batch_size=BATCH_SIZE, epochs=EPOCHS, shuffle=False, verbose=0, callbacks=[trace])
        ctx.attach(trace, label, expect_divergence=label == TOO_HIGH)
        traces[label] = trace
        w = trace.weights_after("dense/kernel")[:, 0, 0].astype("float64")
        b = trace.weights_after("dense/bias")[:, 0].astype("float64")
        ends = np.arange(N // BATCH_SIZE - 1, len(w), N // BATCH_SIZE)  # the last step of each epoch
        curve = np.concatenate([full_mse(np.zeros(1), np.zeros(1)), full_mse(w[ends], b[ends])])
        curves[label] = curve
        final = float(curve[-1]) if trace.diverged_at is None else float("inf")
        results["runs"][label] = {
            "diverged_at": trace.diverged_at, "steps": int(trace.steps_recorded),
            "full_mse_per_epoch": curve, "final_full_mse": final,
            "final_excess_over_optimum": final - best,
            "learning_rates": trace.learning_rates(), "final_theta": [w[-1], b[-1]],
        }
    finite = {k: r["final_full_mse"] for k, r in results["runs"].items() if np.isfinite(r["final_full_mse"])}
    results["lowest"] = min(finite, key=finite.get)
    results["schedule_is_lowest"] = results["lowest"] == SCHEDULE

    rows = []
    for label, r in results["runs"].items():
        rows.append({"run": label, "epoch 1": r["full_mse_per_epoch"][1] if len(r["full_mse_per_epoch"]) > 1 else np.nan,
                     "epoch 5": r["full_mse_per_epoch"][5] if len(r["full_mse_per_epoch"]) > 5 else np.nan,
                     f"epoch {EPOCHS}": r["final_full_mse"],
                     "above the optimum": r["final_excess_over_optimum"],
                     "outcome": f"diverged at step {r['diverged_at']}" if r["diverged_at"] else "finite"})
    ctx.table(pd.DataFrame(rows).set_index("run"),
              f"MSE on all {N} points after each epoch (optimum {best:.6f}), batch {BATCH_SIZE}", float_format=".6g")
    ctx.print(f"lowest at the end: {results['lowest']}")
    _figure(ctx, results, curves, best)
    return results


def _figure(ctx, results, curves, best):
    fig, axes = plots.subplots(1, 2, "Learning curves for various learning rates η (after Géron, Fig. 11-8)",
                               size=(13, 4.6))
    ax, ax_ex = axes[0]
    colors = dict(zip(RATES, ["C0", "C3", "C1", "C2", "k"]))
    top = 1.15 * curves["too low (0.002)"][0]
    for label, curve in curves.items():
        epochs = np.arange(len(curve))
        finite = np.isfinite(curve) & (curve < top)
        ax.plot(epochs[finite], curve[finite], "o-", ms=3, color=colors[label], label=label)
        r = results["runs"][label]
        if r["diverged_at"] is not None:
            last = int(np.nonzero(finite)[0][-1])
            ax.annotate(f"off the chart, then NaN/inf at step {r['diverged_at']}", (last, curve[last]),
                        xytext=(6.5, 1.6), fontsize=8, color=colors[label],
                        arrowprops={"arrowstyle": "->", "color": colors[label]})
            ax.plot([last, last + 1], [curve[last], top], ":", color=colors[label])
    ax.axhline(best, color="grey", ls="--", lw=0.8, label=f"optimum (least squares) {best:.3f}")
    ax.set_ylim(0, top)
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"MSE on all {N} points")
    ax.set_title("Loss per epoch (the slide's figure)")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper right", fontsize=8)
    for label, curve in curves.items():
        if results["runs"][label]["diverged_at"] is not None:
            continue
        ax_ex.semilogy(np.arange(len(curve)), np.maximum(curve - best, 1e-9), "o-", ms=3, color=colors[label], label=label)
    ax_ex.set_xlabel("epoch")
    ax_ex.set_ylabel("MSE − optimum (log scale; too high: diverged)")
    ax_ex.set_title("Above the optimum: the schedule ends lowest")
    ax_ex.grid(True, alpha=0.3)
    ax_ex.legend(loc="lower left", fontsize=8)
    ctx.figure(fig, "learning_rate_schedule.png")
