"""One demo run as ``kclf run iris|stroke`` shows it: the cells, then the lecture's numbers
beside this run's, why they differ where they may, and the slide's figures."""

from __future__ import annotations

from pathlib import Path

from kclf.demos import cache, lecture_cells, published, start

WHY_OTHER_BACKEND = (
    "Why the numbers differ on {backend}: the code and the seeds are the lecture's, but Keras "
    "draws the initial weights with each backend's own random generator (TensorFlow: "
    "stateless Philox ops; JAX: jax.random's threefry; PyTorch: torch's generator), and fit's "
    "shuffle uses another generator again (TensorFlow: tf.random.shuffle in tf.data, the same "
    "order every epoch; JAX: NumPy's global generator; PyTorch: torch's RandomSampler). Same "
    "seed, different numbers, a different start and a different batch order: the models "
    "train to other weights. Run with --start tensorflow to start from TensorFlow's weights "
    "and batch order; then only arithmetic differs."
)
WHY_REPLAY = (
    "--start tensorflow: every model started from the TensorFlow lecture run's initial weights "
    "and saw its rows in TensorFlow's order, epoch by epoch ({cache}). What can still differ "
    "is float32 arithmetic (summation order, fused kernels), which training can amplify; "
    "kclf compare shows step by step where, if anywhere, {backend} parts from TensorFlow."
)


def run(ctx, demo: str, data_file: Path | None, module) -> dict:
    """Run ``demo``'s cells under the start mode in KCLF_START; print and return results."""
    mode = start.mode()
    if mode == "lecture":
        starter = start.Lecture()
        ctx.print(f"# start: the lecture's own seeding on {ctx.backend} (--start lecture)")
    else:
        capture = cache.ensure(demo, data_file)
        fits, _ = cache.load(capture)
        starter = start.Replay(fits, every=module.TRACE_EVERY)
        ctx.print(f"# start: TensorFlow's initial weights and batch order ({capture})")
    try:
        out = lecture_cells(demo)(ctx, starter, data_file)
    finally:  # an interrupted or failed fit keeps what its trace recorded
        for label, trace in starter.traces.items():
            ctx.attach(trace, label)
    values = out["values"]
    rows = published.check(demo, values)
    agree = sum(r["agrees"] for r in rows)
    synthetic = bool(values.get("synthetic"))
    ctx.header(f"The lecture's numbers and this run's ({ctx.backend}, --start {mode}): "
               f"{agree} of {len(rows)} agree to rtol {published.RTOL:g}")
    if synthetic:
        ctx.print("(synthetic data: the lecture's numbers are for the Kaggle file, so they "
                  "cannot agree; give the file with --data to compare)")
    ctx.print(published.table(rows))
    if mode == "lecture" and ctx.backend != "tensorflow":
        ctx.print("\n" + WHY_OTHER_BACKEND.format(backend=ctx.backend))
    elif mode == "lecture" and agree < len(rows) and not synthetic:
        ctx.print("\nThe lecture ran keras 3.8.0 with tensorflow 2.18.0; numbers that differ "
                  "here come from a different Keras or TensorFlow version or CPU.")
    elif mode == "tensorflow":
        ctx.print("\n" + WHY_REPLAY.format(cache=capture.name, backend=ctx.backend))
    title = f"{demo} on {ctx.backend} (--start {mode})" + (" (synthetic data)" if synthetic else "")
    if demo == "iris":
        module.figure(ctx, out["histories"], title)
    else:
        module.figure(ctx, out["y_test"], out["y_pred"], title)
    return {"start": mode, "values": values, "lecture": rows,
            "lecture_agree": agree, "lecture_total": len(rows),
            **({"histories": out["histories"]} if "histories" in out else {})}
