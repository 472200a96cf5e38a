"""Gradient descent pitfalls and learning rates, on the demo's function.

Slides: "Gradient descent pitfalls" (Géron, Fig. 4-6: a local minimum, a plateau) and
"Learning rates" (Géron, Figs. 4-4 and 4-5: too small, too large), drawn on the demo's
f(x) = (x/100)² sin(x/5) instead of borrowed. Keras minimises f with plain SGD, one
trainable scalar:

- three starts with the same η = 20: x = 50 ends in the local minimum at 55.86
  (f = −0.307), x = 90 in the global minimum of [0, 100] at 86.97 (f = −0.751), and x = 3
  sits on the plateau near 0, where f ≈ x³/50000 is nearly flat: the recorded gradient
  stays under 1e-3 at every step and x barely moves;
- from the slide's guess 50, η = 2 is too small: 20 steps cover a third of the way to the
  minimum (the trace gives the progress per step);
- from x = 84, beside the global minimum, η = 80 is too large: the curvature there is
  f'' ≈ 0.03, η f'' ≈ 2.4 > 2, so every step overshoots the valley further than the last,
  until the steps bounce between its two walls for ever instead of settling.
"""

import numpy as np
import pandas as pd
from keras import ops

from kclf import functions, plots
from kclf.scalar import minimise

NAME = "gradient-descent-pitfalls"
DESCRIPTION = "Local minimum, global minimum and plateau from 3 starts; too small and too large learning rates as steps"
SLIDE = "Gradient descent pitfalls; Learning rates (too small, too large)"
POSITION = 110  # in the lecture's order (kclf list, kclf compare)
TOLERANCE = "deterministic"

VARIABLE = "x/theta"
LEARNING_RATE = 20.0
STEPS = 60
STARTS = {"local minimum": 50.0, "global minimum": 90.0, "plateau": 3.0}
PLATEAU_GRADIENT = 1e-3  # |f'(x)| under this for every step: a plateau (f' at 50 is 0.047)
NEAR = 0.5  # within 0.5 of a minimum of f counts as ending in it
SMALL = {"start": 50.0, "learning_rate": 2.0, "steps": 20}
LARGE = {"start": 84.0, "learning_rate": 80.0, "steps": 12}


def f_ops(x):
    return functions.lecture_f(x, ops)


def outcome(path, gradients, minima) -> str:
    """Where a run ended: the global or a local minimum, a plateau, or still moving."""
    end = path[-1]
    best = minima[np.argmin(functions.lecture_f(minima))]
    if abs(end - best) < NEAR:
        return "global minimum"
    if np.min(np.abs(minima - end)) < NEAR:
        return "local minimum"
    if np.all(np.abs(gradients) < PLATEAU_GRADIENT):
        return "plateau"
    return "still moving"


def _path(trace, start):
    return np.concatenate([[start], trace.weights_after(VARIABLE)]).astype("float64")


def run(ctx):
    minima = functions.local_minima()
    results = {"minima": minima, "f_at_minima": functions.lecture_f(minima), "runs": {}}
    runs = {}
    for label, start in STARTS.items():
        trace = minimise(start, f_ops, learning_rate=LEARNING_RATE, steps=STEPS, name="x")
        ctx.attach(trace, f"{label} (start {start:g})")
        runs[label] = (start, trace)
    rows = []
    for label, (start, trace) in runs.items():
        path, grads = _path(trace, start), trace.gradients(VARIABLE).astype("float64")
        small = np.abs(grads) < PLATEAU_GRADIENT
        results["runs"][label] = {
            "start": start, "path": path, "gradients": grads, "final_x": path[-1],
            "final_f": functions.lecture_f(path[-1]), "outcome": outcome(path, grads, minima),
            "steps_with_small_gradient": int(small.sum()), "max_abs_gradient": float(np.abs(grads).max()),
        }
        r = results["runs"][label]
        rows.append({"run": label, "start": start, "end x": r["final_x"], "f(end)": r["final_f"],
                     "max |f'| on the way": r["max_abs_gradient"],
                     f"steps with |f'| < {PLATEAU_GRADIENT:g}": f"{r['steps_with_small_gradient']}/{STEPS}",
                     "outcome": r["outcome"]})
    ctx.table(pd.DataFrame(rows).set_index("run"), f"Three starts, eta = {LEARNING_RATE:g}, {STEPS} steps",
              float_format=".4g")
    ctx.print(f"minima of f in [0, 100]: x = {np.round(minima, 3).tolist()}, "
              f"f = {np.round(functions.lecture_f(minima), 4).tolist()}")

    small_trace = minimise(SMALL["start"], f_ops, learning_rate=SMALL["learning_rate"], steps=SMALL["steps"], name="x")
    large_trace = minimise(LARGE["start"], f_ops, learning_rate=LARGE["learning_rate"], steps=LARGE["steps"], name="x")
    ctx.attach(small_trace, f"too small (eta {SMALL['learning_rate']:g})")
    ctx.attach(large_trace, f"too large (eta {LARGE['learning_rate']:g})")
    target = minima[np.argmin(np.abs(minima - SMALL["start"]))]
    small_path = _path(small_trace, SMALL["start"])
    progress = np.diff(small_path)
    covered = (small_path[-1] - small_path[0]) / (target - small_path[0])
    ctx.header(f"Too small: eta = {SMALL['learning_rate']:g} from x = {SMALL['start']:g}")
    ctx.print(f"progress per step (from the trace): {np.array2string(progress[:5], precision=3)} ... "
              f"{progress[-1]:.3f}; after {SMALL['steps']} steps x = {small_path[-1]:.3f}, "
              f"{covered:.0%} of the way to the minimum at {target:.3f}")
    best = minima[np.argmin(functions.lecture_f(minima))]
    large_path = _path(large_trace, LARGE["start"])
    distance = np.abs(large_path - best)
    curvature = (functions.lecture_f_prime(best + 1e-3) - functions.lecture_f_prime(best - 1e-3)) / 2e-3
    ctx.header(f"Too large: eta = {LARGE['learning_rate']:g} from x = {LARGE['start']:g}")
    ctx.print(f"curvature at the minimum f''({best:.2f}) = {curvature:.4f}; eta f'' = {LARGE['learning_rate'] * curvature:.2f} > 2")
    ctx.print(f"distance to the minimum at each step: {np.array2string(distance, precision=2)}")
    results["too_small"] = {"learning_rate": SMALL["learning_rate"], "path": small_path, "progress_per_step": progress,
                            "fraction_of_the_way": covered, "gradients": small_trace.gradients(VARIABLE)}
    results["too_large"] = {"learning_rate": LARGE["learning_rate"], "path": large_path,
                            "distance_to_minimum": distance, "eta_times_curvature": LARGE["learning_rate"] * curvature,
                            "gradients": large_trace.gradients(VARIABLE)}
    _figure(ctx, results, minima)
    return results


def _steps(ax, path, color, label):
    """Each step as an arrow from the guess to the next one, as in the textbook figures."""
    y = functions.lecture_f(path)
    ax.plot(path, y, "o", color=color, ms=4, label=label, zorder=3)
    for i in range(len(path) - 1):
        ax.annotate("", (path[i + 1], y[i + 1]), (path[i], y[i]),
                    arrowprops={"arrowstyle": "->", "color": color, "lw": 0.8, "shrinkA": 2, "shrinkB": 2})


def _figure(ctx, results, minima):
    fig, axes = plots.subplots(1, 3, "Gradient descent pitfalls and learning rates on f(x) = (x/100)² sin(x/5)",
                               size=(17, 4.8))
    ax_out, ax_small, ax_large = axes[0]
    x = np.linspace(0, 100, 500)
    for ax in axes[0]:
        ax.plot(x, functions.lecture_f(x), "--", color="grey", lw=1)
        ax.set_xlabel("x")
        ax.set_ylabel("f(x) (the loss)")
        ax.grid(True, alpha=0.3)
    colors = {"local minimum": "C1", "global minimum": "C2", "plateau": "C0"}
    for label, r in results["runs"].items():
        _steps(ax_out, r["path"], colors[label], f"start {r['start']:g}: {r['outcome']} (x = {r['final_x']:.2f})")
    ax_out.set_title(f"Same eta = {LEARNING_RATE:g}, three starts, {STEPS} steps")
    ax_out.set_xlim(0, 100)
    ax_out.set_ylim(-0.9, 1.05)
    ax_out.legend(loc="upper left", fontsize=8)

    small = results["too_small"]
    _steps(ax_small, small["path"], "C3", f"eta = {small['learning_rate']:g}: {len(small['path']) - 1} steps")
    ax_small.plot([minima[1]], [functions.lecture_f(minima[1])], "*", color="k", ms=12, label="the minimum")
    ax_small.set_xlim(46, 62)
    ax_small.set_ylim(-0.34, 0.0)
    ax_small.set_title(f"Too small: {small['fraction_of_the_way']:.0%} of the way in {len(small['path']) - 1} steps")
    ax_small.legend(loc="upper right", fontsize=8)

    large = results["too_large"]
    _steps(ax_large, large["path"], "C3", f"eta = {large['learning_rate']:g}: {len(large['path']) - 1} steps")
    for i in (0, 1, 2, len(large["path"]) - 1):
        ax_large.annotate(str(i), (large["path"][i], functions.lecture_f(large["path"][i])),
                          textcoords="offset points", xytext=(4, 4), fontsize=8)
    ax_large.plot([minima[2]], [functions.lecture_f(minima[2])], "*", color="k", ms=12, label="the minimum")
    ax_large.set_xlim(74, 98)
    ax_large.set_ylim(-0.8, 0.2)
    ax_large.set_title("Too large: overshoots, then bounces wall to wall")
    ax_large.legend(loc="upper center", fontsize=8)
    ctx.figure(fig, "gradient_descent_pitfalls.png")
