"""One demo run as ``kclf run iris|stroke|lecture`` shows it: the cells under the edition's
preamble, then the lecture's numbers beside this run's, why they differ where they may, and
the slide's figures."""

from __future__ import annotations

import importlib
from pathlib import Path

from kclf.demos import cache, cells, published, start
from kclf.editions import EDITIONS, STARTS

WHY_OTHER_BACKEND = (
    "Why the numbers differ on {backend}: the code and the seeds are the {edition} edition's, "
    "which ran on {own}, but Keras draws the initial weights with each backend's own random "
    "generator (TensorFlow: stateless Philox ops; JAX: jax.random's threefry; PyTorch: torch's "
    "generator), and fit's shuffle uses another generator again (TensorFlow: tf.random.shuffle "
    "in tf.data, the same order every epoch; JAX: NumPy's global generator; PyTorch: a "
    "RandomSampler seeded from torch's global generator, a new order every epoch). Same seed, "
    "different numbers, a different start and a different batch order: the models train to "
    "other weights. Run with --start {replay} to start from {own}'s weights and batch order; "
    "then only arithmetic differs."
)
WHY_REPLAY = (
    "--start {start}: every model started from the {edition} edition's {own} run's initial "
    "weights and saw its rows in that run's order, epoch by epoch ({cache}). What can still "
    "differ is float32 arithmetic (summation order, fused kernels), which training can "
    "amplify; kclf compare shows step by step where, if anywhere, {backend} parts from {own}."
)
WHY_EDITION = {
    "2025": "The 2025 edition ran keras 3.8.0 with tensorflow 2.18.0; numbers that differ here "
            "come from a different Keras or TensorFlow version or CPU.",
    "2026": "The 2026 edition ran keras 3.14.1 with torch 2.11.0 on macOS. Its counts, epochs and "
            "4-decimal lines do not depend on the CPU; its full-precision evaluations do, by a "
            "few float32 ulps: torch's CPU kernels differ by vector instruction set (forcing AVX2 "
            "or no vector code moves them by 1-13 ulps here). Beyond that, a different Keras or "
            "torch version.",
}
ORDER_NOTE = (
    "Order matters on torch: every shuffled epoch, and every DataLoader Keras makes, draws from "
    "torch's global generator, so the lecture's iris numbers depend on the 706 stroke epochs "
    "run before them in the same process. This run restored torch's generator to the state "
    "the lecture's run had when the iris demo began ({fixture}); `kclf run lecture` runs both "
    "demos in order instead."
)


def starter_for(ctx, demo: str, data_file: Path | None, prefix: str = ""):
    """(the starter for ctx.start, the capture file it replays or None). A bad data file
    fails here, in one line, before any capture or training (read once: kclf.demo_data).
    A replay records each fit's states into the run's ``states/`` (kclf.trace.states) and
    takes a perturbation from the environment (kclf.compare.envelope)."""
    if data_file is not None and demo == "stroke":
        from kclf.demo_data import load_stroke_csv

        load_stroke_csv(data_file)
    if ctx.start == "lecture":
        ctx.print(f"# start: the {ctx.edition} edition's own seeding on {ctx.backend} "
                  "(--start lecture)")
        return start.Lecture(), None
    capture = cache.ensure(demo, data_file, STARTS[ctx.start].edition)
    fits, _ = cache.load(capture)
    every = importlib.import_module(f"kclf.demos.{demo}").TRACE_EVERY
    ctx.print(f"# start: the {ctx.edition} edition's {STARTS[ctx.start].backend} run's initial "
              f"weights and batch order ({capture})")
    from kclf.compare.envelope import perturbation

    seed, horizon = perturbation()
    if seed is not None:
        ctx.print(f"# perturbed: every fit starts one ulp off (seed {seed})"
                  + (f", stopped after {horizon} steps" if horizon else ""))
    states = ctx.out / "states" if seed is None else None  # a perturbed run is not replayed
    return start.Replay(fits, every=every, states=states, prefix=prefix,
                        perturb=seed, horizon=horizon), capture


def run(ctx, demo: str, data_file: Path | None, prefix: str = "") -> dict:
    """Run ``demo`` alone under ``ctx.start`` and ``ctx.edition``: print and return results.
    ``prefix`` (in a run of several demos): the demo's figures' and traces' prefix.

    The 2026 iris demo on torch first restores torch's generators to where the lecture's run
    had them when its iris demo began (kclf.demos.cache.restore_iris_generators)."""
    starter, capture = starter_for(ctx, demo, data_file, prefix.replace("_", "/"))
    restored = None
    with start.preamble(ctx.edition, ctx.backend):
        if demo == "iris" and ctx.edition == "2026" and ctx.backend == "torch":
            restored = cache.restore_iris_generators()
        try:
            out = cells(ctx, demo, starter, data_file)
        finally:  # an interrupted or failed fit keeps what its trace recorded
            for label, trace in starter.traces.items():
                ctx.attach(trace, f"{demo}/{label}" if prefix else label)
    if restored is not None and ctx.start == "lecture":
        ctx.print("\n" + ORDER_NOTE.format(fixture=restored.name))
    return report(ctx, demo, out, capture, prefix)


def report(ctx, demo: str, out: dict, capture: Path | None, prefix: str = "") -> dict:
    """The lecture's numbers beside this run's, why they differ where they may, the figures."""
    values = out["values"]
    rows = published.check(demo, values, ctx.edition)
    agree = sum(r["agrees"] for r in rows)
    rtol = published.PUBLISHED[(demo, ctx.edition)][2]
    synthetic = bool(values.get("synthetic"))
    edition = EDITIONS[ctx.edition]
    ctx.header(f"The {ctx.edition} lecture's {demo} numbers and this run's ({ctx.backend}, "
               f"--start {ctx.start}): {agree} of {len(rows)} agree to rtol {rtol:g}")
    if synthetic:
        ctx.print("(synthetic data: the lecture's numbers are for the Kaggle file, so they "
                  "cannot agree; give the file with --data to compare)")
    ctx.print(published.table(rows))
    if ctx.start == "lecture" and ctx.backend != edition.backend:
        ctx.print("\n" + WHY_OTHER_BACKEND.format(backend=ctx.backend, edition=ctx.edition,
                                                  own=edition.backend, replay=edition.replay))
    elif ctx.start == "lecture" and agree < len(rows) and not synthetic:
        ctx.print("\n" + WHY_EDITION[ctx.edition])
    elif capture is not None:
        ctx.print("\n" + WHY_REPLAY.format(start=ctx.start, edition=ctx.edition,
                                           own=edition.backend, cache=capture.name,
                                           backend=ctx.backend))
    title = (f"{demo}, {ctx.edition} edition, on {ctx.backend} (--start {ctx.start})"
             + (" (synthetic data)" if synthetic else ""))
    module = importlib.import_module(f"kclf.demos.{demo}")
    if demo == "iris":
        module.figure(ctx, out["histories"], title, prefix + "fitting_metrics.png")
    else:
        if "fit_500_epochs" in out["histories"]:
            from kclf.demos import iris

            iris.figure(ctx, out["histories"], title, prefix + "fitting_metrics.png")
        module.figure(ctx, out["y_test"], out["y_pred"], title, prefix + "roc_pr_curves.png")
    return {"start": ctx.start, "edition": ctx.edition, "values": values, "lecture": rows,
            "lecture_agree": agree, "lecture_total": len(rows),
            **({"histories": out["histories"]} if "histories" in out else {})}


def lecture(ctx, data_file: Path | None) -> dict:
    """Both demos in the edition's order. 2026: in one process under one preamble, as the
    lecture ran them (iris after stroke's draws from torch's generator). 2025: each under its
    own preamble, as kclf reproduces that edition (each demo's numbers reproduce alone)."""
    edition = EDITIONS[ctx.edition]
    if ctx.edition == "2025":
        return {demo: run(ctx, demo, data_file, prefix=f"{demo}_") for demo in edition.demos}
    starters = {demo: starter_for(ctx, demo, data_file, f"{demo}/") for demo in edition.demos}
    outs = {}
    with start.preamble(ctx.edition, ctx.backend):
        for demo in edition.demos:
            ctx.header(f"# The {demo} demo ({ctx.edition} edition, in the lecture's order)")
            starter = starters[demo][0]
            try:
                outs[demo] = cells(ctx, demo, starter, data_file)
            finally:
                for label, trace in starter.traces.items():
                    ctx.attach(trace, f"{demo}/{label}")
    return {demo: report(ctx, demo, outs[demo], starters[demo][1], prefix=f"{demo}_")
            for demo in edition.demos}
