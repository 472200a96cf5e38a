"""Mini-batch gradient descent: "the noise helps us jump out of local minima", measured.

Slide: "Mini-batch gradient descent", reason 3 ("Noisy gradient means we might jump out of
a local minimum"). Mini-batch noise needs data: example i is a number s_i, a "tilt", and its
loss is the slide's function tilted by it, ℓ_i(θ) = f(θ) + s_i θ. The mean over the data is
f(θ) + s̄ θ, so a batch's gradient is the full gradient plus (its mean tilt − s̄): the exact
gradient plus noise, with nothing else changed. Batches of 4, in an order drawn by
np.random.default_rng(seed) for seeds 0..23. The 24 seeds train as 24 independent copies of
θ in one Keras model (copy j sees only column j of the input, its own seed's batches), so
one fit gives every seed's trajectory.

2026 (the default): f is the slides' gradient_descent_plot() (kclf.functions.piecewise_f)
and s̄ = 0 exactly: 256 tilts of sd 3.5 on a grid of 1/64, the second 128 the negatives of
the first, so they sum to exactly 0.0 in float32 and the full-batch loss is f itself.
η = 1/8, two epochs (128 steps).

- From θ0 = −3, full-batch gradient descent goes into the local minimum −1 − √(4/3) and
  stays. Mini-batch SGD starts alike, and the noise carries 8 of 24 seeds over the hilltop
  θ = −1 at some step; 4 of 24 (0.167) end out of the local minimum's basin. All 4 end in
  the twin minimum −1 + √(4/3), which has the same loss 1.4667: on this function, jumping
  out of the marked local minimum leads to its twin, not to the global minimum. None of 24
  gets there: from the left it takes a step over the wall (f climbs to 8.72 at θ = 1.5).
- From θ0 = 2, on the plateau, full-batch gradient descent gets gradient 0.0 at all 128
  steps and never moves ("nowhere to go"). Mini-batch SGD does move: on the plateau a
  batch's gradient is its mean tilt. All 24 seeds leave the plateau; 13 of 24 walk off its
  right edge onto the right piece and down into the global minimum's basin; the others
  leave by its left edge, where the left piece's slope (14.75) throws them back to θ < 1.5
  (10 end in the twin minimum's basin, 1 in the local minimum's).

2025 (--edition 2025): the loss is the tilted double well ℓ_i(θ) = 0.5 (θ² − 1)² + s_i θ,
256 tilts of sd 3 and mean exactly 0.5 (up to float32), so the full-batch loss is
g(θ) = 0.5 (θ² − 1)² + 0.5 θ: a local minimum at θ ≈ 0.84 and the global one at θ ≈ −1.11.
From θ0 = 1.5 with η = 0.1, one epoch (64 steps):
- full-batch gradient descent (all 256 tilts per step) goes into the local minimum and stays;
- mini-batch SGD starts identically, and the batch noise carries some seeds over the ridge
  at θ ≈ 0.27 into the global minimum.
"""

import numpy as np
import pandas as pd
from keras import ops
from matplotlib.ticker import MaxNLocator

from kclf import functions, plots
from kclf.scalar import fit_parameters

NAME = "minibatch-noise"
DESCRIPTION = "Full-batch GD stays in a local minimum (and on the plateau); mini-batch SGD escapes in a fraction of 24 NumPy-seeded orders"
SLIDE = "Mini-batch gradient descent: 'the noise helps us jump out of local minima'"
POSITION = 120  # in the lecture's order (kclf list, kclf compare)
TOLERANCE = "deterministic"
EDITIONS = ("2026", "2025")

N_DATA = 256
BATCH_SIZE = 4
SEEDS = tuple(range(24))


def run(ctx):
    return _run_2026(ctx) if ctx.edition == "2026" else _run_2025(ctx)


def batches(data: np.ndarray, epochs: int = 1) -> np.ndarray:
    """(epochs·N_DATA, len(SEEDS)): column j is the data in seed j's shuffled order, shuffled
    again for each epoch by the same generator, np.random.default_rng(seed)."""
    columns = []
    for seed in SEEDS:
        rng = np.random.default_rng(seed)
        columns.append(np.concatenate([data[rng.permutation(N_DATA)] for _ in range(epochs)]))
    return np.stack(columns, axis=1)


# -- 2026: the slides' piecewise function -----------------------------------------------------
# η = 1/8, a power of two: η·g is exact, so every backend's update θ − η·g rounds alike
# (TensorFlow's compiled update rounds once, the others twice). With η = 0.2 the updates
# differed by a float32 ulp now and then, and a seed lingering near the hilltop (where each
# step multiplies a difference by 1 + 1.6η) grew that past kclf compare's float32 tolerance
# (measured). JAX's gradient on the left piece still differs by an ulp (its compiled step
# fuses multiply-adds): the largest difference, measured, is a tenth of the tolerance.
LEARNING_RATE = 0.125
TILT_SD = 3.5
EPOCHS = 2
STEPS = EPOCHS * N_DATA // BATCH_SIZE
STARTS = {"local minimum": -3.0, "plateau": 2.0}
TILT_STEP = 1 / 64  # tilts on this grid: every batch mean is exact in float32
BASIN_COLORS = {"local minimum": "C1", "twin minimum": "C4", "plateau": "C8", "global minimum": "C2"}


def tilts() -> np.ndarray:
    """The data: 256 tilts with sd ≈ 3 on a grid of 1/64; the second half is the first negated,
    so they sum to exactly 0 (in float32 too, in any order)."""
    z = np.random.default_rng(2026).standard_normal(N_DATA // 2)
    half = np.round(TILT_SD * z / np.sqrt(np.mean(z**2)) / TILT_STEP) * TILT_STEP
    return np.concatenate([half, -half]).astype("float32")


def tilted(theta, tilt):
    """Example i's loss ℓ_i(θ) = f(θ) + s_i θ; its mean over the data is f(θ)."""
    return functions.piecewise_f(theta, ops) + tilt * theta


def _descend(ctx, start: float, data: np.ndarray) -> dict:
    """Full-batch GD and mini-batch SGD (one θ per seed) from ``start``, both traced."""
    full_data = np.tile(data[:, None], (STEPS, 1))  # every step sees all 256: no order
    _, full_trace = fit_parameters(start, tilted, full_data, learning_rate=LEARNING_RATE,
                                   batch_size=N_DATA, name="full")
    ctx.attach(full_trace, f"full batch from {start:g}")
    _, mini_trace = fit_parameters(np.full(len(SEEDS), start), tilted, batches(data, EPOCHS),
                                   learning_rate=LEARNING_RATE, batch_size=BATCH_SIZE, name="seeds")
    ctx.attach(mini_trace, f"mini-batch from {start:g} (one theta per seed)")
    full = np.concatenate([[start], full_trace.weights_after("full/theta")]).astype("float64")
    mini = np.concatenate([np.full((1, len(SEEDS)), start),
                           mini_trace.weights_after("seeds/theta")]).astype("float64")
    basin0 = str(functions.piecewise_basin(start))
    ends_in = functions.piecewise_basin(mini[-1])
    out = ends_in != basin0
    left_basin = functions.piecewise_basin(mini) != basin0
    first_out = mini[np.argmax(left_basin, axis=0), np.arange(len(SEEDS))]
    exits = np.where(~left_basin.any(axis=0), "never", np.where(first_out > start, "right", "left"))
    return {
        "start": start,
        "full_batch": {"path": full, "gradients": full_trace.gradients("full/theta"),
                       "final_theta": full[-1], "final_loss": float(functions.piecewise_f(full[-1])),
                       "ends_in": str(functions.piecewise_basin(full[-1])),
                       "escaped": bool(functions.piecewise_basin(full[-1]) != basin0)},
        "minibatch": {"paths": mini, "final_theta": mini[-1], "final_loss": functions.piecewise_f(mini[-1]),
                      "ends_in": ends_in.tolist(), "escaped": out, "escaped_count": int(out.sum()),
                      "escape_fraction": float(out.mean()),
                      "ever_left_count": int(left_basin.any(axis=0).sum()),
                      "first_left_by": {side: int((exits == side).sum()) for side in ("left", "right")},
                      "ends_in_counts": {b: int((ends_in == b).sum()) for b in BASIN_COLORS}},
    }


def _run_2026(ctx):
    data = tilts()
    lo, hi = functions.PLATEAU
    ctx.header("The data: example i's loss is f(θ) + s_i θ")
    noise = TILT_SD / np.sqrt(BATCH_SIZE) * np.sqrt((N_DATA - BATCH_SIZE) / (N_DATA - 1))
    ctx.print(f"{N_DATA} tilts s_i on a grid of 1/64: sum in float32 {np.sum(data, dtype='float32'):g}, "
              f"sd {data.std():.4f}, from {data.min():g} to {data.max():g}; the full-batch loss is f")
    ctx.print(f"a batch of {BATCH_SIZE}: gradient f'(θ) + its mean tilt, noise sd {noise:.3f}; "
              f"η = {LEARNING_RATE:g}, {EPOCHS} epochs = {STEPS} steps, seeds {SEEDS[0]}..{SEEDS[-1]}")
    ctx.print(f"f: local minimum {functions.LOCAL_MINIMUM:.5f} and its twin {functions.TWIN_MINIMUM:.5f} "
              f"(f = 1.4667), hilltop −1 (f = 2) between them, plateau f = 1.5 on [{lo:g}, {hi:g}] "
              f"(walls 8.72 and 3.44), global minimum 5 (f = −5)")

    results = {label: _descend(ctx, start, data) for label, start in STARTS.items()}
    rows = []
    for j, seed in enumerate(("full batch", *SEEDS)):
        row = {"run": seed if j == 0 else f"mini-batch, seed {seed}"}
        for r in results.values():
            final, ends = ((r["full_batch"]["final_theta"], r["full_batch"]["ends_in"]) if j == 0 else
                           (r["minibatch"]["final_theta"][j - 1], r["minibatch"]["ends_in"][j - 1]))
            row |= {f"θ0 = {r['start']:g}: final θ": final,
                    f"θ0 = {r['start']:g}: loss": float(functions.piecewise_f(final)),
                    f"θ0 = {r['start']:g}: ends in": ends}
        rows.append(row)
    ctx.table(pd.DataFrame(rows).set_index("run"),
              f"From θ0 = −3 and θ0 = 2 (the plateau): η = {LEARNING_RATE:g}, {STEPS} steps",
              float_format=".5f")

    ctx.header("Escape fractions")
    n = len(SEEDS)
    local, plateau = results["local minimum"], results["plateau"]
    m = local["minibatch"]
    ctx.print(f"from θ0 = −3: full batch ends at {local['full_batch']['final_theta']:.5f} "
              f"(the local minimum; escaped {int(local['full_batch']['escaped'])}/1); mini-batch: "
              f"{m['escaped_count']}/{n} = {m['escape_fraction']:.3f} end out of the local minimum's "
              f"basin (θ > −1), {m['ever_left_count']}/{n} crossed the hilltop at some step; ends in: "
              + _counts(m["ends_in_counts"]))
    m, full = plateau["minibatch"], plateau["full_batch"]
    ctx.print(f"from θ0 = 2 (the plateau): full batch gradient {np.abs(full['gradients']).max():g} at "
              f"every one of {STEPS} steps, stays at {full['final_theta']:g}; mini-batch: "
              f"{m['ever_left_count']}/{n} leave the plateau, {m['first_left_by']['right']} by its right "
              f"edge, {m['first_left_by']['left']} by its left edge (the left piece's slope, 14.75 "
              f"there, throws them back); {m['escaped_count']}/{n} = {m['escape_fraction']:.3f} end "
              "off it, in: " + _counts(m["ends_in_counts"]))
    reached = local["minibatch"]["ends_in_counts"]["global minimum"]
    ctx.print(f"from θ0 = −3, {reached}/{n} end in the global minimum's basin: from the left it takes "
              "a step over the wall (the left piece climbs to 8.72 at θ = 1.5, where its slope "
              "pushes back by 14.75)")

    _figure_2026(ctx, results)
    return {"edition": "2026", "learning_rate": LEARNING_RATE, "batch_size": BATCH_SIZE, "steps": STEPS,
            "seeds": list(SEEDS), "tilts": {"sum": float(np.sum(data, dtype="float32")),
                                             "sd": float(data.std())},
            "minima": {"local": functions.LOCAL_MINIMUM, "twin": functions.TWIN_MINIMUM,
                       "global": functions.GLOBAL_MINIMUM},
            "starts": results}


def _counts(counts: dict) -> str:
    return ", ".join(f"{basin} {k}" for basin, k in counts.items() if k)


def _figure_2026(ctx, results):
    fig, axes = plots.subplots(1, 3, "Mini-batch noise on the 2026 slides' f(θ): full batch vs "
                               f"{len(SEEDS)} seeds, batches of {BATCH_SIZE}, η = {LEARNING_RATE:g}",
                               size=(19, 6))
    ax_f, ax_local, ax_plateau = axes[0]
    lo, hi = functions.PLATEAU
    for a, b in ((-3.4, lo - 1e-9), (lo, hi), (hi + 1e-9, 7.2)):
        theta = np.linspace(a, b, 400)
        ax_f.plot(theta, functions.piecewise_f(theta), color="grey", lw=1.2)
    ax_f.axvspan(lo, hi, color="orange", alpha=0.15, lw=0)
    local = results["local minimum"]
    full = local["full_batch"]["path"]
    ax_f.plot(full, functions.piecewise_f(full), "o-", color="C0", ms=4, lw=1.5,
              label=f"full batch from {local['start']:g}: into the local minimum, stays")
    for r in results.values():
        m = r["minibatch"]
        escaped = np.nonzero(m["escaped"])[0]
        if len(escaped):
            j = int(escaped[0])
            path = m["paths"][:, j]
            ax_f.plot(path, functions.piecewise_f(path), ".-", ms=3, lw=0.7, alpha=0.8,
                      color=BASIN_COLORS[m["ends_in"][j]],
                      label=f"mini-batch from {r['start']:g}, seed {SEEDS[j]}: ends in the {m['ends_in'][j]}")
    ax_f.set_xlabel("parameter θ")
    ax_f.set_ylabel("loss f(θ) (the full-batch loss)")
    ax_f.set_ylim(-5.6, 9.5)
    ax_f.set_title("Paths on f(θ)")
    ax_f.grid(True, alpha=0.3)
    ax_f.tick_params(labelsize=9)
    ax_f.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), fontsize=8, frameon=False)

    for ax, r in ((ax_local, local), (ax_plateau, results["plateau"])):
        m = r["minibatch"]
        steps = np.arange(STEPS + 1)
        for j in range(len(SEEDS)):
            ax.plot(steps, m["paths"][:, j], color=BASIN_COLORS[m["ends_in"][j]], lw=0.7, alpha=0.6)
        ax.plot(steps, r["full_batch"]["path"], color="C0", lw=2.5, label="full batch")
        for basin, color in BASIN_COLORS.items():
            if m["ends_in_counts"][basin]:
                ax.plot([], [], color=color, label=f"mini-batch seeds ending in the {basin} "
                        f"({m['ends_in_counts'][basin]}/{len(SEEDS)})")
        ax.axhspan(lo, hi, color="orange", alpha=0.15, lw=0)
        ax.axhline(functions.HILLTOP, color="grey", ls=":", lw=1)
        for value in (functions.LOCAL_MINIMUM, functions.TWIN_MINIMUM, functions.GLOBAL_MINIMUM):
            ax.axhline(value, color="k", ls="--", lw=0.6)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, steps=[1, 2, 4, 8]))
        ax.axvline(STEPS // EPOCHS, color="grey", ls="-.", lw=0.8)  # epoch 2 begins
        ax.set_xlabel(f"step (dash-dot: epoch 2 begins at step {STEPS // EPOCHS})")
        ax.set_ylabel("θ")
        ax.set_ylim(-3.4, 7.2)
        ax.grid(True, alpha=0.3)
        ax.tick_params(labelsize=9)
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), fontsize=8, frameon=False)
    ax_local.set_title("θ per step from θ0 = −3 (dashed: minima; dotted: the hilltop)")
    ax_plateau.set_title("θ per step from θ0 = 2, on the plateau (shaded)")
    ctx.figure(fig, "minibatch_noise.png")


# -- 2025: the tilted double well -------------------------------------------------------------
TILT_MEAN_2025 = 0.5
START_2025 = 1.5
LEARNING_RATE_2025 = 0.1
TILT_SD_2025 = 3.0
STEPS_2025 = N_DATA // BATCH_SIZE  # one epoch


def tilts_2025() -> np.ndarray:
    """The data: 256 tilts with mean exactly 0.5 (up to float32) and sd 3, in float32."""
    z = np.random.default_rng(2024).standard_normal(N_DATA)
    z = (z - z.mean()) / z.std()
    return (TILT_MEAN_2025 + TILT_SD_2025 * z).astype("float32")


def well_2025(theta, tilt):
    return functions.tilted_well(theta, tilt, ops)


def full_loss_2025(theta):
    return functions.tilted_well(np.asarray(theta, "float64"), TILT_MEAN_2025)


def _run_2025(ctx):
    data = tilts_2025()
    stationary = functions.local_minima(lambda t: functions.tilted_well_prime(t, TILT_MEAN_2025), -2.0, 2.0)
    local_min, global_min = stationary.max(), stationary.min()
    ridge = float(np.sort(np.roots([4 * functions.WELL_DEPTH, 0, -4 * functions.WELL_DEPTH, TILT_MEAN_2025]).real)[1])
    ctx.header("The full-batch loss g(θ) = 0.5 (θ² − 1)² + 0.5 θ")
    ctx.print(f"local minimum θ = {local_min:.4f} (g = {full_loss_2025(local_min):.4f}), ridge θ = {ridge:.4f} "
              f"(g = {full_loss_2025(ridge):.4f}), global minimum θ = {global_min:.4f} (g = {full_loss_2025(global_min):.4f})")
    ctx.print(f"data: {N_DATA} tilts, mean {data.astype('float64').mean():.6f}, sd {data.std():.3f}")

    # Full batch: every step sees all 256 tilts (the same for every seed: there is no order).
    full_data = np.tile(data[:, None], (STEPS_2025, 1))
    _, full_trace = fit_parameters(START_2025, well_2025, full_data, learning_rate=LEARNING_RATE_2025, batch_size=N_DATA, name="full")
    ctx.attach(full_trace, "full batch")
    # Mini-batch: one copy of θ per seed, each reading its own column.
    _, mini_trace = fit_parameters(np.full(len(SEEDS), START_2025), well_2025, batches(data),
                                   learning_rate=LEARNING_RATE_2025, batch_size=BATCH_SIZE, name="seeds")
    ctx.attach(mini_trace, "mini-batch (one theta per seed)")

    full_path = np.concatenate([[START_2025], full_trace.weights_after("full/theta")]).astype("float64")
    mini_paths = np.concatenate([np.full((1, len(SEEDS)), START_2025), mini_trace.weights_after("seeds/theta")]).astype("float64")
    final = mini_paths[-1]
    escaped = final < ridge
    full_escaped = bool(full_path[-1] < ridge)
    fraction = float(escaped.mean())
    ever_crossed = (mini_paths < ridge).any(axis=0)
    rows = [{"run": "full batch (256)", "final theta": full_path[-1], "g(final)": full_loss_2025(full_path[-1]),
             "in the global minimum's basin": "yes" if full_escaped else "no"}]
    for j, seed in enumerate(SEEDS):
        rows.append({"run": f"mini-batch (4), seed {seed}", "final theta": final[j], "g(final)": full_loss_2025(final[j]),
                     "in the global minimum's basin": "yes" if escaped[j] else "no"})
    ctx.table(pd.DataFrame(rows).set_index("run"), f"From θ0 = {START_2025}, η = {LEARNING_RATE_2025}, {STEPS_2025} steps",
              float_format=".4f")
    ctx.header("Escape fraction")
    ctx.print(f"full-batch GD: {int(full_escaped)}/1 (deterministic: every seed would give the same path)")
    ctx.print(f"mini-batch SGD: {int(escaped.sum())}/{len(SEEDS)} seeds = {fraction:.3f} end past the ridge "
              f"(crossed it at some step: {int(ever_crossed.sum())}/{len(SEEDS)})")

    # The escaping seed that crossed the ridge first (the clearest path to draw).
    first_cross = np.where(escaped, np.argmax(mini_paths < ridge, axis=0), len(mini_paths))
    example = int(np.argmin(first_cross))
    _figure_2025(ctx, full_path, mini_paths, escaped, example, (local_min, ridge, global_min))
    return {
        "learning_rate": LEARNING_RATE_2025, "batch_size": BATCH_SIZE, "steps": STEPS_2025, "seeds": list(SEEDS),
        "local_minimum": local_min, "ridge": ridge, "global_minimum": global_min,
        "full_batch": {"path": full_path, "final_theta": full_path[-1], "escaped": full_escaped,
                       "escape_fraction": float(full_escaped)},
        "minibatch": {"final_theta": final, "escaped": escaped, "escape_fraction": fraction,
                      "escaped_count": int(escaped.sum()), "ever_crossed_count": int(ever_crossed.sum())},
        "example_seed": SEEDS[example],
    }


def _figure_2025(ctx, full_path, mini_paths, escaped, example, points):
    local_min, ridge, global_min = points
    fig, axes = plots.subplots(1, 2, "The noise of mini-batches carries SGD out of a local minimum", size=(13, 4.6))
    ax, ax_t = axes[0]
    theta = np.linspace(-1.9, 1.7, 400)
    ax.plot(theta, full_loss_2025(theta), color="grey", lw=1.2, label="full-batch loss g(θ)")
    ax.plot(full_path, full_loss_2025(full_path), "o-", color="C0", ms=4, lw=1, label="full-batch GD: stays")
    path = mini_paths[:, example]
    ax.plot(path, full_loss_2025(path), ".-", color="C3", ms=4, lw=0.7, alpha=0.8,
            label=f"mini-batch SGD, seed {example}: escapes")
    ax.plot([START_2025], [full_loss_2025(START_2025)], "s", color="k", ms=7, label=f"start θ0 = {START_2025}")
    ax.axvline(ridge, color="grey", ls=":", lw=1)
    ax.annotate("ridge", (ridge, full_loss_2025(ridge)), textcoords="offset points", xytext=(4, 6), fontsize=8)
    ax.set_xlabel("θ")
    ax.set_ylabel("full-batch loss g(θ)")
    ax.set_ylim(-0.9, 1.6)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper center", fontsize=8)
    steps = np.arange(len(full_path))
    for j in range(mini_paths.shape[1]):
        ax_t.plot(steps, mini_paths[:, j], color="C3" if escaped[j] else "C1", lw=0.7, alpha=0.6)
    ax_t.plot(steps, full_path, color="C0", lw=2.5, label="full batch")
    ax_t.plot([], [], color="C3", label=f"mini-batch seeds that escaped ({int(escaped.sum())}/{len(escaped)})")
    ax_t.plot([], [], color="C1", label="mini-batch seeds still in the local minimum")
    ax_t.axhline(ridge, color="grey", ls=":", lw=1)
    ax_t.axhline(local_min, color="C0", ls="--", lw=0.8)
    ax_t.axhline(global_min, color="k", ls="--", lw=0.8)
    ax_t.set_xlabel("step")
    ax_t.set_ylabel("θ")
    ax_t.set_ylim(-2.2, 2.6)
    ax_t.set_title("θ per step: 24 seeds and the full batch")
    ax_t.grid(True, alpha=0.3)
    ax_t.legend(loc="upper right", fontsize=8)
    ctx.figure(fig, "minibatch_noise.png")
