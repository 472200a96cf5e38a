"""Gradient-based learning: the lecture's guessing demo, played by Keras.

Slide: "Gradient-based learning" (the in-browser demo minimise-with-gradients.py). The demo
hides f(x) = (x/100)² sin(x/5) on [0, 100]; the student guesses x = 50, may "Show derivatives"
(a short tangent line at each guess) and guesses again. Here Keras plays the student: one
trainable scalar x, the loss f(x), plain SGD x ← x − η f'(x) with η = 20, from the slide's
first guess 50 and from 20, 70 and 90. TrainingTrace records each guess and the derivative
it used; the figure draws the function, each step as a point with its tangent, and where
each start ends.

The recorded derivative is checked three ways on a grid of 101 x values in [0, 100]:
against the backend's own autodiff called outside training, against the derivative
f'(x) = 2x/100² sin(x/5) + (x/100)² cos(x/5)/5 (kclf.functions.lecture_f_prime), and
against the demo's own ``fDash``, whose first term is a factor 100 too small.
"""

import numpy as np
import pandas as pd
from keras import ops

from kclf import functions, plots
from kclf.scalar import autodiff_gradient, fit_parameters, minimise

NAME = "gradient-based-learning"
DESCRIPTION = "The demo's f(x) = (x/100)^2 sin(x/5) minimised by SGD from x = 50 and others; gradient checked 3 ways"
SLIDE = "Gradient-based learning (the 'make a guess / show derivatives' demo)"
POSITION = 100  # in the lecture's order (kclf list, kclf compare)
TOLERANCE = "deterministic"

LEARNING_RATE = 20.0
STEPS = 40
SLIDE_GUESS = 50.0
STARTS = (SLIDE_GUESS, 20.0, 70.0, 90.0)
GRID = np.linspace(0.0, 100.0, 101)
TANGENT_WIDTH = 5.0  # the demo's eps: each tangent line spans x ± 2.5
VARIABLE = "x/theta"


def f_ops(x):
    return functions.lecture_f(x, ops)


def run(ctx):
    minima = functions.local_minima()
    traces = {}
    for start in STARTS:
        trace = minimise(start, f_ops, learning_rate=LEARNING_RATE, steps=STEPS, name="x")
        label = f"start {start:g}"
        ctx.attach(trace, label)
        traces[start] = trace

    # The slide's guess, step by step: what the student sees in the demo.
    trace = traces[SLIDE_GUESS]
    x_before = trace.weights_before(VARIABLE).astype("float64")
    grads = trace.gradients(VARIABLE).astype("float64")
    x_after = trace.weights_after(VARIABLE).astype("float64")
    table = pd.DataFrame({
        "guess x": x_before, "f(x) (loss)": trace.losses(), "f'(x) Keras": grads,
        "f'(x) by hand": functions.lecture_f_prime(x_before),
        "step -eta f'(x)": x_after - x_before, "next guess": x_after,
    }, index=pd.RangeIndex(1, STEPS + 1, name="step"))
    ctx.table(table.iloc[list(range(5)) + [STEPS - 1]], f"From the slide's guess x = {SLIDE_GUESS:g}, eta = {LEARNING_RATE:g}",
              float_format=".6g")

    rows, starts = [], {}
    for start, tr in traces.items():
        path = np.concatenate([[start], tr.weights_after(VARIABLE)]).astype("float64")
        end = float(path[-1])
        nearest = float(minima[np.argmin(np.abs(minima - end))])
        starts[f"{start:g}"] = {
            "path": path, "losses": tr.losses(), "gradients": tr.gradients(VARIABLE),
            "final_x": end, "final_f": float(functions.lecture_f(end)),
            "final_gradient": float(functions.lecture_f_prime(end)), "nearest_minimum": nearest,
        }
        rows.append({"start": start, "end x": end, "f(end)": starts[f"{start:g}"]["final_f"],
                     "f'(end)": starts[f"{start:g}"]["final_gradient"], "nearest minimum": nearest,
                     "global?": bool(np.isclose(nearest, minima[np.argmin(functions.lecture_f(minima))]))})
    ctx.table(pd.DataFrame(rows).set_index("start"), f"Where each start ends after {STEPS} steps", float_format=".5g")

    # The derivative three ways, on a grid: one SGD step of a model whose weight is the grid.
    _, grid_trace = fit_parameters(GRID, lambda theta, x: ops.zeros_like(x) + f_ops(theta),
                                   np.zeros((1, len(GRID))), learning_rate=0.0, batch_size=1, name="grid")
    ctx.attach(grid_trace, "gradient on the grid")
    recorded = grid_trace.gradients("grid/theta")[0].astype("float64")
    x32 = GRID.astype("float32").astype("float64")
    auto = autodiff_gradient(f_ops, GRID).astype("float64")
    analytic = functions.lecture_f_prime(x32)
    fdash = functions.lecture_fdash(x32)
    errors = {
        "autodiff_max_abs_error": float(np.max(np.abs(recorded - auto))),
        "analytic_max_abs_error": float(np.max(np.abs(recorded - analytic))),
        "lecture_fdash_max_abs_error": float(np.max(np.abs(recorded - fdash))),
    }
    worst = int(np.argmax(np.abs(recorded - fdash)))
    ctx.header(f"The gradient Keras applied, checked on {len(GRID)} points of [0, 100]")
    ctx.print(f"max |recorded - backend autodiff (outside fit)| = {errors['autodiff_max_abs_error']:.3g}")
    ctx.print(f"max |recorded - f'(x) derived by hand|         = {errors['analytic_max_abs_error']:.3g}")
    ctx.print(f"max |recorded - the demo's fDash|               = {errors['lecture_fdash_max_abs_error']:.3g}"
              f"  (at x = {GRID[worst]:g}: {recorded[worst]:.4g} vs fDash {fdash[worst]:.4g})")
    ctx.print("What a difference means: below 1e-6 is float32 rounding (f' is at most 0.18 here and sin(x/5)")
    ctx.print("of a float32 x rounds at ~1e-7), so the gradient Keras applied IS the derivative, on every backend;")
    ctx.print("0.018 is a different function: the demo's fDash writes the first term 2(1/100)^2 (x/100) sin(x/5)")
    ctx.print("= 2x/100^3 sin(x/5), a factor 100 smaller than the product rule's 2x/100^2 sin(x/5), so the")
    ctx.print("demo's tangent lines are tilted wrongly where that term is large (up to 10% of f's steepest slope).")

    _figure(ctx, traces, minima)
    _gradient_figure(ctx, recorded, analytic, fdash)
    return {
        "learning_rate": LEARNING_RATE, "steps": STEPS, "minima": minima, "starts": starts,
        **errors, "grid": GRID, "grid_gradient": recorded,
    }


def _tangent(ax, x, y, slope, **kwargs):
    half = TANGENT_WIDTH / 2
    ax.plot([x - half, x + half], [y - slope * half, y + slope * half], **kwargs)


def _figure(ctx, traces, minima):
    fig, axes = plots.subplots(1, 2, "Gradient-based learning: guess, see the derivative, step", size=(13, 4.6))
    curve_x = np.linspace(0, 100, 400)
    for ax in axes[0]:
        ax.plot(curve_x, functions.lecture_f(curve_x), "--", color="grey", lw=1, label="f(x) = (x/100)² sin(x/5)")
        ax.set_xlabel("x (the guess)")
        ax.set_ylabel("f(x) (the loss)")
        ax.grid(True, alpha=0.3)
        ax.set_xlim(0, 100)
    ax = axes[0][0]
    tr = traces[SLIDE_GUESS]
    xs = tr.weights_before(VARIABLE).astype("float64")
    ys = functions.lecture_f(xs)
    slopes = tr.gradients(VARIABLE).astype("float64")
    shown = list(range(5))
    ax.scatter(xs[shown], ys[shown], color="C0", zorder=3, label="Keras's guesses (first 5 steps)")
    for i in shown:
        _tangent(ax, xs[i], ys[i], slopes[i], color="C3", lw=1.2, label="recorded f'(x) as a tangent" if i == 0 else None)
        ax.annotate(str(i + 1), (xs[i], ys[i]), textcoords="offset points", xytext=(-3, 7), fontsize=7)
    end = tr.weights_after(VARIABLE)[-1]
    ax.plot([end], [functions.lecture_f(end)], "*", color="k", ms=12, label=f"after {STEPS} steps: x = {end:.2f}")
    ax.set_title(f"From the slide's guess x = {SLIDE_GUESS:g} (eta = {LEARNING_RATE:g})")
    ax.set_xlim(38, 68)
    ax.set_ylim(-0.4, 0.2)
    ax.legend(loc="upper right", fontsize=8)
    ax = axes[0][1]
    for i, (start, trace) in enumerate(traces.items()):
        path = np.concatenate([[start], trace.weights_after(VARIABLE)]).astype("float64")
        ax.plot(path, functions.lecture_f(path), "o-", ms=3, lw=0.8, color=f"C{i}", label=f"start {start:g} → {path[-1]:.1f}")
        ax.plot([path[-1]], [functions.lecture_f(path[-1])], "*", ms=13, color=f"C{i}", markeredgecolor="k")
    ax.plot(minima, functions.lecture_f(minima), "v", color="k", ms=5, label="minima of f in [0, 100]")
    ax.set_title(f"Four starts, {STEPS} SGD steps each: each ends in the nearest valley")
    ax.set_ylim(-0.9, 1.05)
    ax.legend(loc="upper left", fontsize=8)
    ctx.figure(fig, "gradient_based_learning.png")


def _gradient_figure(ctx, recorded, analytic, fdash):
    fig, axes = plots.subplots(1, 2, "The gradient Keras applied vs the derivative by hand and the demo's fDash",
                               size=(13, 4.2))
    ax, ax_err = axes[0]
    ax.plot(GRID, recorded, "o", ms=3, color="C0", label="recorded by TrainingTrace")
    ax.plot(GRID, analytic, "-", color="k", lw=1, label="f'(x) by hand")
    ax.plot(GRID, fdash, "--", color="C3", lw=1.2, label="the demo's fDash")
    ax.set_xlabel("x")
    ax.set_ylabel("derivative")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)
    ax_err.semilogy(GRID, np.maximum(np.abs(recorded - analytic), 1e-12), ".", color="k", label="|recorded − f'| (float32 rounding)")
    ax_err.semilogy(GRID, np.maximum(np.abs(recorded - fdash), 1e-12), ".", color="C3", label="|recorded − fDash|")
    ax_err.set_xlabel("x")
    ax_err.set_ylabel("|difference| (zeros drawn at 1e-12)")
    ax_err.set_ylim(1e-12, 1)
    ax_err.grid(True, alpha=0.3)
    ax_err.legend(loc="lower right", fontsize=8)
    ctx.figure(fig, "gradient_check.png")
