"""Mini-batch gradient descent: "the noise helps us jump out of local minima", measured.

Slide: "Mini-batch gradient descent", reason 3 (and Géron's Fig. 4-6). The data are 256
numbers s_i ("tilts", NumPy-seeded, mean exactly 0.5, standard deviation 3); example i's
loss is ℓ_i(θ) = 0.5 (θ² − 1)² + s_i θ, so the full-batch loss is the tilted double well
g(θ) = 0.5 (θ² − 1)² + 0.5 θ: a local minimum at θ ≈ 0.84 and the global one at θ ≈ −1.11.
A batch's gradient is g'(θ) plus its mean tilt minus 0.5: the exact gradient plus noise.

From θ0 = 1.5 with η = 0.1, 64 steps each:
- full-batch gradient descent (all 256 tilts per step) goes into the local minimum and stays;
- mini-batch SGD (batch 4, one epoch in an order drawn by np.random.default_rng(seed) for
  seeds 0..23) starts identically, and the batch noise carries some seeds over the ridge at
  θ ≈ 0.27 into the global minimum.
The 24 seeds train as 24 independent copies of θ in one Keras model (copy j sees only column
j of the input, its own seed's batches), so one fit gives every seed's trajectory.
"""

import numpy as np
import pandas as pd
from keras import ops

from kclf import functions, plots
from kclf.scalar import fit_parameters

NAME = "minibatch-noise"
DESCRIPTION = "Full-batch GD stays in a local minimum; mini-batch SGD escapes it in a fraction of 24 NumPy-seeded orders"
SLIDE = "Mini-batch gradient descent: 'the noise helps us jump out of local minima'"
POSITION = 120  # in the lecture's order (kclf list, kclf compare)
TOLERANCE = "deterministic"

N_DATA = 256
TILT_MEAN = 0.5
TILT_SD = 3.0
START = 1.5
LEARNING_RATE = 0.1
BATCH_SIZE = 4
SEEDS = tuple(range(24))
STEPS = N_DATA // BATCH_SIZE  # one epoch


def tilts() -> np.ndarray:
    """The data: 256 tilts with mean exactly 0.5 (up to float32) and sd 3, in float32."""
    z = np.random.default_rng(2024).standard_normal(N_DATA)
    z = (z - z.mean()) / z.std()
    return (TILT_MEAN + TILT_SD * z).astype("float32")


def batches(data: np.ndarray) -> np.ndarray:
    """(N_DATA, len(SEEDS)): column j is the data in seed j's shuffled order."""
    return np.stack([data[np.random.default_rng(seed).permutation(N_DATA)] for seed in SEEDS], axis=1)


def well(theta, tilt):
    return functions.tilted_well(theta, tilt, ops)


def full_loss(theta):
    return functions.tilted_well(np.asarray(theta, "float64"), TILT_MEAN)


def run(ctx):
    data = tilts()
    stationary = functions.local_minima(lambda t: functions.tilted_well_prime(t, TILT_MEAN), -2.0, 2.0)
    local_min, global_min = stationary.max(), stationary.min()
    ridge = float(np.sort(np.roots([4 * functions.WELL_DEPTH, 0, -4 * functions.WELL_DEPTH, TILT_MEAN]).real)[1])
    ctx.header("The full-batch loss g(θ) = 0.5 (θ² − 1)² + 0.5 θ")
    ctx.print(f"local minimum θ = {local_min:.4f} (g = {full_loss(local_min):.4f}), ridge θ = {ridge:.4f} "
              f"(g = {full_loss(ridge):.4f}), global minimum θ = {global_min:.4f} (g = {full_loss(global_min):.4f})")
    ctx.print(f"data: {N_DATA} tilts, mean {data.astype('float64').mean():.6f}, sd {data.std():.3f}")

    # Full batch: every step sees all 256 tilts (the same for every seed: there is no order).
    full_data = np.tile(data[:, None], (STEPS, 1))
    _, full_trace = fit_parameters(START, well, full_data, learning_rate=LEARNING_RATE, batch_size=N_DATA, name="full")
    ctx.attach(full_trace, "full batch")
    # Mini-batch: one copy of θ per seed, each reading its own column.
    _, mini_trace = fit_parameters(np.full(len(SEEDS), START), well, batches(data),
                                   learning_rate=LEARNING_RATE, batch_size=BATCH_SIZE, name="seeds")
    ctx.attach(mini_trace, "mini-batch (one theta per seed)")

    full_path = np.concatenate([[START], full_trace.weights_after("full/theta")]).astype("float64")
    mini_paths = np.concatenate([np.full((1, len(SEEDS)), START), mini_trace.weights_after("seeds/theta")]).astype("float64")
    final = mini_paths[-1]
    escaped = final < ridge
    full_escaped = bool(full_path[-1] < ridge)
    fraction = float(escaped.mean())
    ever_crossed = (mini_paths < ridge).any(axis=0)
    rows = [{"run": "full batch (256)", "final theta": full_path[-1], "g(final)": full_loss(full_path[-1]),
             "in the global minimum's basin": "yes" if full_escaped else "no"}]
    for j, seed in enumerate(SEEDS):
        rows.append({"run": f"mini-batch (4), seed {seed}", "final theta": final[j], "g(final)": full_loss(final[j]),
                     "in the global minimum's basin": "yes" if escaped[j] else "no"})
    ctx.table(pd.DataFrame(rows).set_index("run"), f"From θ0 = {START}, η = {LEARNING_RATE}, {STEPS} steps",
              float_format=".4f")
    ctx.header("Escape fraction")
    ctx.print(f"full-batch GD: {int(full_escaped)}/1 (deterministic: every seed would give the same path)")
    ctx.print(f"mini-batch SGD: {int(escaped.sum())}/{len(SEEDS)} seeds = {fraction:.3f} end past the ridge "
              f"(crossed it at some step: {int(ever_crossed.sum())}/{len(SEEDS)})")

    # The escaping seed that crossed the ridge first (the clearest path to draw).
    first_cross = np.where(escaped, np.argmax(mini_paths < ridge, axis=0), len(mini_paths))
    example = int(np.argmin(first_cross))
    _figure(ctx, full_path, mini_paths, escaped, example, (local_min, ridge, global_min))
    return {
        "learning_rate": LEARNING_RATE, "batch_size": BATCH_SIZE, "steps": STEPS, "seeds": list(SEEDS),
        "local_minimum": local_min, "ridge": ridge, "global_minimum": global_min,
        "full_batch": {"path": full_path, "final_theta": full_path[-1], "escaped": full_escaped,
                       "escape_fraction": float(full_escaped)},
        "minibatch": {"final_theta": final, "escaped": escaped, "escape_fraction": fraction,
                      "escaped_count": int(escaped.sum()), "ever_crossed_count": int(ever_crossed.sum())},
        "example_seed": SEEDS[example],
    }


def _figure(ctx, full_path, mini_paths, escaped, example, points):
    local_min, ridge, global_min = points
    fig, axes = plots.subplots(1, 2, "The noise of mini-batches carries SGD out of a local minimum", size=(13, 4.6))
    ax, ax_t = axes[0]
    theta = np.linspace(-1.9, 1.7, 400)
    ax.plot(theta, full_loss(theta), color="grey", lw=1.2, label="full-batch loss g(θ)")
    ax.plot(full_path, full_loss(full_path), "o-", color="C0", ms=4, lw=1, label="full-batch GD: stays")
    path = mini_paths[:, example]
    ax.plot(path, full_loss(path), ".-", color="C3", ms=4, lw=0.7, alpha=0.8,
            label=f"mini-batch SGD, seed {example}: escapes")
    ax.plot([START], [full_loss(START)], "s", color="k", ms=7, label=f"start θ0 = {START}")
    ax.axvline(ridge, color="grey", ls=":", lw=1)
    ax.annotate("ridge", (ridge, full_loss(ridge)), textcoords="offset points", xytext=(4, 6), fontsize=8)
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
