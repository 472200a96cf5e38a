"""``kclf bench``: what a user feels, beside the steady-state steps per second.

* Whole fits: build, compile and fit a fresh 4 → 30 → 1 network (Adam, batch 32) for 20,
  300 and 3,000 steps, with a new TrainingTrace and without; the wall time includes the
  compilation each fit pays.
* Second fits: fit a model once, then time a second fit of the same model with a new trace
  against a second plain fit of another such model.
* The lecture's demos: the wall time of ``kclf run iris`` / ``kclf run stroke`` per backend,
  against the lecture's own cells run as plain Keras fits in a bare process (no trace, no
  outputs), so the cost kclf adds is visible.

Paired repeats alternate the order (ABBA); speed ratios are plain wall time / traced wall
time, so 1.0 means the trace costs nothing and 0.9 that the traced fit took 11% longer.
"""

from __future__ import annotations

import gc
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

WHOLE_FIT_STEPS = (20, 300, 3000)
SECOND_FIT_STEPS = 300
BATCH = 32
DEMOS = ("iris", "stroke")


def _log(tag: str, message: str) -> None:
    print(f"bench[{tag}] {message}", file=sys.stderr, flush=True)


def _data(steps: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((steps * BATCH, 4)).astype("float32")
    y = (x @ [1.0, -1.0, 0.5, 0.0] + 0.3 * rng.standard_normal(len(x)) > 0).astype("float32").reshape(-1, 1)
    return x, y


def _model():
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(30, activation="relu"),
                              keras.layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="binary_crossentropy")
    return model


def _ratios(plain: list[float], traced: list[float]) -> dict:
    ratios = [p / t for p, t in zip(plain, traced)]
    return {"plain_s": statistics.median(plain), "traced_s": statistics.median(traced),
            "ratio": statistics.median(ratios), "ratio_min": min(ratios), "ratio_max": max(ratios),
            "repeats": len(ratios)}


def run_fits_worker(backend: str, repeats: int, quick: bool, trace_from: str | None = None) -> dict:
    """Whole fits and second fits on this process's backend."""
    from kclf.backend import select_backend

    select_backend(backend)
    from kclf.bench.workers import _trace_class

    TrainingTrace = _trace_class(trace_from)

    def fit(model, x, y, traced: bool):
        callbacks = [TrainingTrace(verbose=False)] if traced else None
        model.fit(x, y, batch_size=BATCH, epochs=1, shuffle=False, verbose=0, callbacks=callbacks)

    def whole(x, y, traced: bool) -> float:
        gc.collect()
        t0 = time.perf_counter()
        fit(_model(), x, y, traced)
        return time.perf_counter() - t0

    def second(x, y, traced: bool) -> float:
        model = _model()
        fit(model, x, y, traced)
        gc.collect()
        t0 = time.perf_counter()
        fit(model, x, y, traced)  # a new trace when traced
        return time.perf_counter() - t0

    steps_list = (20, 300) if quick else WHOLE_FIT_STEPS
    x, y = _data(max(steps_list))
    whole(x[: 20 * BATCH], y[: 20 * BATCH], True)  # imports and first compiles out of the figures
    whole(x[: 20 * BATCH], y[: 20 * BATCH], False)
    out = {"backend": backend, "whole_fit": [], "second_fit": None}
    for steps in steps_list:
        xs, ys = x[: steps * BATCH], y[: steps * BATCH]
        runs = {True: [], False: []}
        for r in range(repeats):
            for traced in (False, True) if r % 2 == 0 else (True, False):
                runs[traced].append(whole(xs, ys, traced))
        row = {"steps": steps, **_ratios(runs[False], runs[True])}
        out["whole_fit"].append(row)
        _log(backend, f"whole fit, {steps} steps: plain {row['plain_s']:.2f} s, traced {row['traced_s']:.2f} s, "
             f"ratio {row['ratio']:.2f}")
    steps = 20 if quick else SECOND_FIT_STEPS
    xs, ys = x[: steps * BATCH], y[: steps * BATCH]
    runs = {True: [], False: []}
    for r in range(repeats):
        for traced in (False, True) if r % 2 == 0 else (True, False):
            runs[traced].append(second(xs, ys, traced))
    out["second_fit"] = {"steps": steps, **_ratios(runs[False], runs[True])}
    _log(backend, f"second fit, {steps} steps: plain {out['second_fit']['plain_s']:.2f} s, traced "
         f"{out['second_fit']['traced_s']:.2f} s, ratio {out['second_fit']['ratio']:.2f}")
    return out


# -- the lecture's demos -----------------------------------------------------------------------


class _Quiet:
    """The demos' ``ctx`` without output: the lecture's cells only print and attach."""

    def header(self, *args, **kwargs):
        pass

    def print(self, *args, **kwargs):
        pass

    def attach(self, *args, **kwargs):
        pass

    def figure(self, fig, *args, **kwargs):
        import matplotlib.pyplot as plt

        plt.close(fig)


def plain_cells(demo: str) -> None:
    """The lecture's cells of ``demo`` as plain Keras fits: the lecture's own seeding and
    shuffling, no trace, nothing written (KERAS_BACKEND picks the backend)."""
    import importlib

    from kclf.demos.start import Lecture

    module = importlib.import_module(f"kclf.demos.{demo}")
    module.cells(_Quiet(), Lecture(), None)


def _wall(cmd: list[str], env: dict) -> tuple[float, int]:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        _log("demos", f"{' '.join(cmd[2:])} exited {proc.returncode}: {proc.stderr.strip()[-300:]}")
    return wall, proc.returncode


def run_demos(backends: list[str], demos=DEMOS) -> list[dict]:
    """Wall time per backend of ``kclf run DEMO`` and of the demo's plain cells, each in a
    fresh process (imports included), one after the other."""
    rows = []
    for backend in backends:
        env = dict(os.environ, KERAS_BACKEND=backend, PYTHONUNBUFFERED="1", TF_CPP_MIN_LOG_LEVEL="2")
        for demo in demos:
            with tempfile.TemporaryDirectory() as tmp:
                kclf_s, kclf_rc = _wall([sys.executable, "-m", "kclf", "run", demo, "--backend", backend,
                                         "--out", os.path.join(tmp, demo)], env)
            plain_s, plain_rc = _wall([sys.executable, "-c",
                                       f"from kclf.bench.fits import plain_cells; plain_cells({demo!r})"], env)
            row = {"backend": backend, "demo": demo, "kclf_run_s": kclf_s, "plain_cells_s": plain_s,
                   "ok": kclf_rc == 0 and plain_rc == 0}
            rows.append(row)
            _log("demos", f"{demo} on {backend}: kclf run {kclf_s:.1f} s, plain cells {plain_s:.1f} s")
    return rows
