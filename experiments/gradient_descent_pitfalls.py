"""Gradient descent pitfalls and learning rates: Keras SGD on the slides' own function.

Slides: "Gradient descent pitfalls" and "Learning rates". Keras minimises the function with
plain SGD on one trainable scalar θ (kclf.scalar.minimise), and TrainingTrace records every
step's θ and gradient.

2026 (the default). The slides draw ``gradient_descent_plot()``, kclf.functions.piecewise_f:
f(θ) = 0.3 (θ+1)⁴ − 0.8 (θ+1)² + 2 for θ < 1.5, 1.5 on [1.5, 2.5] (the plateau),
0.2 (θ−5)⁴ + 0.1 (θ−5)² − 5 for θ > 2.5. With η = 0.3 and 200 steps:

- θ0 = −2.8 ends in the local minimum −1 − √(4/3) = −2.15470 (f = 1.4667), θ0 = 3 in the
  global minimum 5 (f = −5): "depending on where it starts";
- θ0 = −1.001, where the gradient is small (f' = 0.0016), needs 22 steps to come within
  1e-4 of the same local minimum, against 7 from −2.8; the global minimum is slow too
  (f''(5) = 0.2 against 3.2 at the local minimum: 98 steps from 3);
- θ0 = 2, on the plateau, gets gradient 0.0 at every step and never moves; so does
  θ0 = −1, the hilltop between the left piece's two minima (a local maximum);
- the slide marks one local minimum, but the left piece is symmetric about θ = −1:
  θ0 = 0.8 ends in its unmarked twin −1 + √(4/3) = 0.15470, with the same f = 1.4667.

The walls (measured). f jumps at the plateau's edges: the left piece is 8.71875 at
θ = 1.5, the right piece 3.4375 at θ = 2.5, so the plateau is a pit with vertical walls.
Gradient descent never sees a wall: the gradient is the slope of the piece θ stands on.
- θ0 = 1.5 and θ0 = 2.5 (the edges belong to the plateau) get gradient 0.0 and stay;
- one float32 step outside, θ0 = 1.4999999 gets the left piece's 14.75, which points away
  from the pit: its first step goes 4.4 to the left, over the hilltop, and it ends in the
  far local minimum; θ0 = 2.5000002 gets −13 and goes to the global minimum;
- small steps never enter the pit (both pieces slope away from it), but a step that lands
  inside it stops dead: with η = 0.75, θ0 = 7 (f = −1.4) jumps to 1.9 and θ0 = −3
  (f = 3.6) to 1.8, both f = 1.5, gradient 0.0 for ever. From 7 the loss went up.

Learning rates, from θ0 = 7: η = 0.01 is too small (θ = 5.43 after 200 steps, still
moving); η = 0.3 reaches 5; η = 0.75 is too large: the first step overshoots the minimum
into the pit, the loss increases (−1.4 → 1.5) and never comes down again.

2025 (--edition 2025): the demo's f(x) = (x/100)² sin(x/5) instead (Géron, Fig. 4-6: a
local minimum, a plateau; Figs. 4-4 and 4-5: too small, too large), drawn on it rather than
borrowed:

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
from matplotlib.ticker import MaxNLocator

from kclf import functions, plots
from kclf.scalar import minimise

NAME = "gradient-descent-pitfalls"
DESCRIPTION = "Local and global minima, a plateau, the plateau's walls; too small and too large learning rates, as traced SGD steps"
SLIDE = "Gradient descent pitfalls; Learning rates (too small, too large)"
POSITION = 110  # in the lecture's order (kclf list, kclf compare)
TOLERANCE = "deterministic"
EDITIONS = ("2026", "2025")

VARIABLE = "x/theta"


def run(ctx):
    return _run_2026(ctx) if ctx.edition == "2026" else _run_2025(ctx)


# -- 2026: the slides' piecewise function -----------------------------------------------------
LEARNING_RATE = 0.3
STEPS = 200
STARTS = {  # the slide's three bullets, then what the function adds
    "local minimum": -2.8,
    "global minimum": 3.0,
    "small gradient": -1.001,
    "plateau": 2.0,
    "hilltop": -1.0,
    "twin minimum": 0.8,
}
# The walls: each edge, and one float32 step outside it (the nearest float32 to the edge).
WALLS = {
    "left edge": np.float32(1.5),
    "just left of it": np.nextafter(np.float32(1.5), np.float32(-np.inf)),
    "right edge": np.float32(2.5),
    "just right of it": np.nextafter(np.float32(2.5), np.float32(np.inf)),
}
JUMP_RATE = 0.75  # one step from −3 or from 7 lands inside the pit
JUMPS = {"into the pit from the right": 7.0, "into the pit from the left": -3.0}
RATES_START = 7.0
RATES = {"too small": 0.01, "just right": LEARNING_RATE, "too large": JUMP_RATE}
NEAR = 1e-4  # within this of a minimum counts as having reached it
MINIMA = {"local minimum": functions.LOCAL_MINIMUM, "twin minimum": functions.TWIN_MINIMUM,
          "global minimum": functions.GLOBAL_MINIMUM}


def _f32(x) -> str:
    """The shortest decimal that reads back as the same float32 (1.4999999, not 1.49999988...)."""
    return str(np.float32(x))


def f_2026(theta):
    return functions.piecewise_f(theta, ops)


def _descend(ctx, label: str, start, learning_rate: float) -> dict:
    """STEPS traced SGD steps from ``start``; θ per step, the recorded gradients, where it ends."""
    trace = minimise(start, f_2026, learning_rate=learning_rate, steps=STEPS, name="x")
    ctx.attach(trace, label)
    start = np.float32(start)
    path = np.concatenate([[start], trace.weights_after(VARIABLE)]).astype("float64")
    gradients = trace.gradients(VARIABLE).astype("float64")
    # Exactly 0.0 on the plateau and at the hilltop θ = −1; also, on some backends, at a
    # minimum once float32 rounds f' to 0 there (JAX's fused steps do, measured).
    zero = gradients == 0.0
    stuck_from = len(zero) - int(np.argmin(zero[::-1])) if not zero.all() else 0  # 0.0 from here on
    basin = str(functions.piecewise_basin(path[-1]))
    reached = None
    if basin in MINIMA:
        near = np.nonzero(np.abs(path - MINIMA[basin]) < NEAR)[0]
        reached = int(near[0]) if len(near) else None
    if reached is not None:
        ends_in = basin
    elif zero.all():
        ends_in = f"{basin}: never moved"
    elif stuck_from < len(zero):
        ends_in = f"{basin}: stopped dead after step {stuck_from}"
    else:
        ends_in = f"still moving ({basin} side)"
    return {
        "start": float(start), "learning_rate": learning_rate, "path": path, "gradients": gradients,
        "loss_start": float(functions.piecewise_f(path[0])), "first_gradient": gradients[0],
        "first_step_to": path[1], "loss_after_first_step": float(functions.piecewise_f(path[1])),
        "final_theta": path[-1], "final_loss": float(functions.piecewise_f(path[-1])),
        "steps_to_minimum": reached, "ends_in": ends_in,
    }


def _run_2026(ctx):
    m = MINIMA
    ctx.header("The loss: gradient_descent_plot()'s f(θ)")
    ctx.print(f"global minimum θ = {m['global minimum']:g} (f = {functions.piecewise_f(5.0):g}); "
              f"local minima θ = −1 ∓ √(4/3) = {m['local minimum']:.5f} (the slide's) and "
              f"{m['twin minimum']:.5f} (f = {functions.piecewise_f(m['local minimum']):.4f} both); "
              f"hilltop θ = −1 (f = 2)")
    lo, hi = functions.PLATEAU
    ctx.print(f"plateau f = {functions.PLATEAU_F:g} on [{lo:g}, {hi:g}]; walls: the left piece is "
              f"{functions.piecewise_f(np.nextafter(lo, -np.inf)):.5f} at θ → {lo:g}, the right piece "
              f"{functions.piecewise_f(np.nextafter(hi, np.inf)):.5f} at θ → {hi:g}")

    runs = {label: _descend(ctx, f"{label} (start {start:g})", start, LEARNING_RATE)
            for label, start in STARTS.items()}
    ctx.table(_frame(runs), f"Gradient descent pitfalls: η = {LEARNING_RATE:g}, {STEPS} steps",
              float_format=".6g")

    walls = {label: _descend(ctx, f"{label} (start {_f32(start)})", start, LEARNING_RATE)
             for label, start in WALLS.items()}
    walls |= {label: _descend(ctx, f"{label} (start {start:g}, eta {JUMP_RATE:g})", start, JUMP_RATE)
              for label, start in JUMPS.items()}
    ctx.table(_frame(walls), "The plateau's walls", float_format=".8g")
    edge, outside = walls["left edge"], walls["just left of it"]
    ctx.print(f"f' at θ = {lo:g}: {edge['first_gradient']:g} (the plateau); one float32 step left "
              f"({_f32(outside['start'])}): {outside['first_gradient']:.6g}, so its first step goes to "
              f"{outside['first_step_to']:.4f}, away from the wall; at θ = {hi:g}: "
              f"{walls['right edge']['first_gradient']:g}; one step right: "
              f"{walls['just right of it']['first_gradient']:.6g}")
    for label in JUMPS:
        r = walls[label]
        ctx.print(f"{label}: θ {r['start']:g} → {r['first_step_to']:.6g}, loss {r['loss_start']:.4g} → "
                  f"{r['loss_after_first_step']:.4g}, then gradient "
                  f"{np.abs(r['gradients'][1:]).max():g} at each of the next {STEPS - 1} steps: "
                  "stopped dead")
    ctx.print("gradient descent never sees a wall: the gradient is the slope of the piece θ stands "
              "on; near the pit both pieces slope away from it, so only a step that lands inside "
              "enters it, and then nothing brings it out")

    # η = JUMP_RATE from 7 is the walls' "into the pit from the right": the same run, not rerun.
    rates = {label: (walls["into the pit from the right"] if rate == JUMP_RATE else
                     _descend(ctx, f"{label} (start {RATES_START:g}, eta {rate:g})", RATES_START, rate))
             for label, rate in RATES.items()}
    ctx.table(_frame(rates), f"Learning rates, from θ0 = {RATES_START:g}", float_format=".6g")

    _figure_2026(ctx, runs, walls, rates)
    return {"edition": "2026", "learning_rate": LEARNING_RATE, "steps": STEPS,
            "minima": dict(m), "walls_f": {"left": functions.piecewise_f(np.nextafter(lo, -np.inf)),
                                            "right": functions.piecewise_f(np.nextafter(hi, np.inf))},
            "runs": runs, "walls": walls, "learning_rates": rates}


def _frame(runs: dict) -> pd.DataFrame:
    rows = [{"run": label, "θ0": r["start"], "η": r["learning_rate"], "loss at θ0": r["loss_start"],
             "gradient at θ0": r["first_gradient"], "θ1": r["first_step_to"],
             "final θ": r["final_theta"], "final loss": r["final_loss"],
             f"steps to within {NEAR:g}": "-" if r["steps_to_minimum"] is None else r["steps_to_minimum"],
             "ends in": r["ends_in"]} for label, r in runs.items()]
    return pd.DataFrame(rows).set_index("run")


def _piecewise(ax, lo: float = -3.3, hi: float = 7.6) -> None:
    """f piece by piece (no line drawn down the walls: f jumps there), walls dotted."""
    p0, p1 = functions.PLATEAU
    for a, b in ((lo, p0 - 1e-9), (p0, p1), (p1 + 1e-9, hi)):
        theta = np.linspace(a, b, 400)
        ax.plot(theta, functions.piecewise_f(theta), color="grey", lw=1.2)
    for edge, outside in ((p0, np.nextafter(p0, -np.inf)), (p1, np.nextafter(p1, np.inf))):
        ax.plot([edge, edge], [functions.PLATEAU_F, functions.piecewise_f(outside)], ":", color="grey", lw=1)
        ax.plot([edge], [functions.piecewise_f(outside)], "o", mfc="white", mec="grey", ms=4)
    ax.axvspan(p0, p1, color="orange", alpha=0.15, lw=0)
    ax.set_xlabel("parameter θ")
    ax.set_ylabel("loss f(θ)")
    ax.set_xlim(lo, hi)
    ax.set_ylim(-5.6, 9.5)
    ax.grid(True, alpha=0.3)
    ax.tick_params(labelsize=9)


def _arrows(ax, path, color: str, label: str) -> None:
    """Each step as an arrow from θ_t to θ_t+1 on the curve (steps that moved θ only)."""
    y = functions.piecewise_f(path)
    ax.plot(path[:1], y[:1], "s", color=color, ms=6, zorder=4)
    ax.plot(path, y, "o", color=color, ms=3, label=label, zorder=3)
    for i in np.nonzero(np.diff(path))[0][:40]:
        ax.annotate("", (path[i + 1], y[i + 1]), (path[i], y[i]),
                    arrowprops={"arrowstyle": "->", "color": color, "lw": 0.8, "shrinkA": 2, "shrinkB": 2})


def _legend_below(ax, ncol: int = 2) -> None:
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=ncol, fontsize=8, frameon=False)


def _per_step(ax, runs: dict, colors: list[str], last: int) -> None:
    for (label, r), color in zip(runs.items(), colors):
        ax.plot(np.arange(last + 1), r["path"][:last + 1], ".-", color=color, ms=3, lw=1,
                label=f"{label}: θ0 = {r['start']:g}, η = {r['learning_rate']:g}")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("step")
    ax.set_ylabel("θ")
    ax.grid(True, alpha=0.3)
    ax.tick_params(labelsize=9)


def _figure_2026(ctx, runs, walls, rates):
    fig, axes = plots.subplots(2, 2, "Gradient descent on the 2026 slides' f(θ): Keras SGD, traced",
                               size=(15, 12))
    (ax_f, ax_t), (ax_w, ax_r) = axes
    colors = ["C1", "C2", "C4", "C0", "C5", "C3"]
    _piecewise(ax_f)
    for (label, r), color in zip(runs.items(), colors):
        _arrows(ax_f, r["path"], color, f"{label}: θ0 = {r['start']:g} → {r['final_theta']:.4f}")
    ax_f.set_title(f"Pitfalls: η = {LEARNING_RATE:g}, six starts (squares)")
    _legend_below(ax_f)

    _per_step(ax_t, runs, colors, last=40)
    for value in MINIMA.values():
        ax_t.axhline(value, color="k", ls="--", lw=0.6)
    ax_t.set_title("θ per step, the first 40 of 200 (dashed: the three minima)")
    _legend_below(ax_t)

    _piecewise(ax_w)
    wall_colors = ["C0", "C1", "C2", "C3", "C4", "C5"]
    for (label, r), color in zip(walls.items(), wall_colors):
        _arrows(ax_w, r["path"], color, f"{label}: θ0 = {_f32(r['start'])}, η = {r['learning_rate']:g} "
                f"→ {r['final_theta']:.4f}")
    ax_w.set_title("The walls: the edges stay, one float32 step outside leaves,\n"
                   f"a step of η = {JUMP_RATE:g} lands in the pit and stops dead")
    _legend_below(ax_w)

    _per_step(ax_r, rates, ["C0", "C2", "C3"], last=60)
    ax_r.axhline(functions.GLOBAL_MINIMUM, color="k", ls="--", lw=0.6)
    ax_r.axhspan(*functions.PLATEAU, color="orange", alpha=0.15, lw=0)
    ax_r.set_title(f"Learning rates from θ0 = {RATES_START:g}: the first 60 steps\n"
                   "(shaded: the plateau's θ; dashed: the global minimum)")
    _legend_below(ax_r, ncol=1)
    fig.subplots_adjust(hspace=0.55)
    ctx.figure(fig, "gradient_descent_pitfalls.png")


# -- 2025: the demo's f(x) = (x/100)² sin(x/5) ------------------------------------------------
LEARNING_RATE_2025 = 20.0
STEPS_2025 = 60
STARTS_2025 = {"local minimum": 50.0, "global minimum": 90.0, "plateau": 3.0}
PLATEAU_GRADIENT_2025 = 1e-3  # |f'(x)| under this for every step: a plateau (f' at 50 is 0.047)
NEAR_2025 = 0.5  # within 0.5 of a minimum of f counts as ending in it
SMALL_2025 = {"start": 50.0, "learning_rate": 2.0, "steps": 20}
LARGE_2025 = {"start": 84.0, "learning_rate": 80.0, "steps": 12}


def f_2025(x):
    return functions.lecture_f(x, ops)


def outcome_2025(path, gradients, minima) -> str:
    """Where a run ended: the global or a local minimum, a plateau, or still moving."""
    end = path[-1]
    best = minima[np.argmin(functions.lecture_f(minima))]
    if abs(end - best) < NEAR_2025:
        return "global minimum"
    if np.min(np.abs(minima - end)) < NEAR_2025:
        return "local minimum"
    if np.all(np.abs(gradients) < PLATEAU_GRADIENT_2025):
        return "plateau"
    return "still moving"


def _path_2025(trace, start):
    return np.concatenate([[start], trace.weights_after(VARIABLE)]).astype("float64")


def _run_2025(ctx):
    minima = functions.local_minima()
    results = {"minima": minima, "f_at_minima": functions.lecture_f(minima), "runs": {}}
    runs = {}
    for label, start in STARTS_2025.items():
        trace = minimise(start, f_2025, learning_rate=LEARNING_RATE_2025, steps=STEPS_2025, name="x")
        ctx.attach(trace, f"{label} (start {start:g})")
        runs[label] = (start, trace)
    rows = []
    for label, (start, trace) in runs.items():
        path, grads = _path_2025(trace, start), trace.gradients(VARIABLE).astype("float64")
        small = np.abs(grads) < PLATEAU_GRADIENT_2025
        results["runs"][label] = {
            "start": start, "path": path, "gradients": grads, "final_x": path[-1],
            "final_f": functions.lecture_f(path[-1]), "outcome": outcome_2025(path, grads, minima),
            "steps_with_small_gradient": int(small.sum()), "max_abs_gradient": float(np.abs(grads).max()),
        }
        r = results["runs"][label]
        rows.append({"run": label, "start": start, "end x": r["final_x"], "f(end)": r["final_f"],
                     "max |f'| on the way": r["max_abs_gradient"],
                     f"steps with |f'| < {PLATEAU_GRADIENT_2025:g}": f"{r['steps_with_small_gradient']}/{STEPS_2025}",
                     "outcome": r["outcome"]})
    ctx.table(pd.DataFrame(rows).set_index("run"), f"Three starts, eta = {LEARNING_RATE_2025:g}, {STEPS_2025} steps",
              float_format=".4g")
    ctx.print(f"minima of f in [0, 100]: x = {np.round(minima, 3).tolist()}, "
              f"f = {np.round(functions.lecture_f(minima), 4).tolist()}")

    small_trace = minimise(SMALL_2025["start"], f_2025, learning_rate=SMALL_2025["learning_rate"], steps=SMALL_2025["steps"], name="x")
    large_trace = minimise(LARGE_2025["start"], f_2025, learning_rate=LARGE_2025["learning_rate"], steps=LARGE_2025["steps"], name="x")
    ctx.attach(small_trace, f"too small (eta {SMALL_2025['learning_rate']:g})")
    ctx.attach(large_trace, f"too large (eta {LARGE_2025['learning_rate']:g})")
    target = minima[np.argmin(np.abs(minima - SMALL_2025["start"]))]
    small_path = _path_2025(small_trace, SMALL_2025["start"])
    progress = np.diff(small_path)
    covered = (small_path[-1] - small_path[0]) / (target - small_path[0])
    ctx.header(f"Too small: eta = {SMALL_2025['learning_rate']:g} from x = {SMALL_2025['start']:g}")
    ctx.print(f"progress per step (from the trace): {np.array2string(progress[:5], precision=3)} ... "
              f"{progress[-1]:.3f}; after {SMALL_2025['steps']} steps x = {small_path[-1]:.3f}, "
              f"{covered:.0%} of the way to the minimum at {target:.3f}")
    best = minima[np.argmin(functions.lecture_f(minima))]
    large_path = _path_2025(large_trace, LARGE_2025["start"])
    distance = np.abs(large_path - best)
    curvature = (functions.lecture_f_prime(best + 1e-3) - functions.lecture_f_prime(best - 1e-3)) / 2e-3
    ctx.header(f"Too large: eta = {LARGE_2025['learning_rate']:g} from x = {LARGE_2025['start']:g}")
    ctx.print(f"curvature at the minimum f''({best:.2f}) = {curvature:.4f}; eta f'' = {LARGE_2025['learning_rate'] * curvature:.2f} > 2")
    ctx.print(f"distance to the minimum at each step: {np.array2string(distance, precision=2)}")
    results["too_small"] = {"learning_rate": SMALL_2025["learning_rate"], "path": small_path, "progress_per_step": progress,
                            "fraction_of_the_way": covered, "gradients": small_trace.gradients(VARIABLE)}
    results["too_large"] = {"learning_rate": LARGE_2025["learning_rate"], "path": large_path,
                            "distance_to_minimum": distance, "eta_times_curvature": LARGE_2025["learning_rate"] * curvature,
                            "gradients": large_trace.gradients(VARIABLE)}
    _figure_2025(ctx, results, minima)
    return results


def _steps_2025(ax, path, color, label):
    """Each step as an arrow from the guess to the next one, as in the textbook figures."""
    y = functions.lecture_f(path)
    ax.plot(path, y, "o", color=color, ms=4, label=label, zorder=3)
    for i in range(len(path) - 1):
        ax.annotate("", (path[i + 1], y[i + 1]), (path[i], y[i]),
                    arrowprops={"arrowstyle": "->", "color": color, "lw": 0.8, "shrinkA": 2, "shrinkB": 2})


def _figure_2025(ctx, results, minima):
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
        _steps_2025(ax_out, r["path"], colors[label], f"start {r['start']:g}: {r['outcome']} (x = {r['final_x']:.2f})")
    ax_out.set_title(f"Same eta = {LEARNING_RATE_2025:g}, three starts, {STEPS_2025} steps")
    ax_out.set_xlim(0, 100)
    ax_out.set_ylim(-0.9, 1.05)
    ax_out.legend(loc="upper left", fontsize=8)

    small = results["too_small"]
    _steps_2025(ax_small, small["path"], "C3", f"eta = {small['learning_rate']:g}: {len(small['path']) - 1} steps")
    ax_small.plot([minima[1]], [functions.lecture_f(minima[1])], "*", color="k", ms=12, label="the minimum")
    ax_small.set_xlim(46, 62)
    ax_small.set_ylim(-0.34, 0.0)
    ax_small.set_title(f"Too small: {small['fraction_of_the_way']:.0%} of the way in {len(small['path']) - 1} steps")
    ax_small.legend(loc="upper right", fontsize=8)

    large = results["too_large"]
    _steps_2025(ax_large, large["path"], "C3", f"eta = {large['learning_rate']:g}: {len(large['path']) - 1} steps")
    for i in (0, 1, 2, len(large["path"]) - 1):
        ax_large.annotate(str(i), (large["path"][i], functions.lecture_f(large["path"][i])),
                          textcoords="offset points", xytext=(4, 4), fontsize=8)
    ax_large.plot([minima[2]], [functions.lecture_f(minima[2])], "*", color="k", ms=12, label="the minimum")
    ax_large.set_xlim(74, 98)
    ax_large.set_ylim(-0.8, 0.2)
    ax_large.set_title("Too large: overshoots, then bounces wall to wall")
    ax_large.legend(loc="upper center", fontsize=8)
    ctx.figure(fig, "gradient_descent_pitfalls.png")
