"""``kclf bench``'s workers, one process each: steady-state steps per second of ``fit`` with
and without TrainingTrace per case, the NumPy reference line, and the 100k-step memory run.

Only these functions import Keras, after :func:`kclf.backend.select_backend`.
"""

from __future__ import annotations

import gc
import math
import platform
import resource
import statistics
import sys
import time

import numpy as np

from kclf.backend import select_backend, versions
from kclf.bench.numpy_line import LEARNING_RATE, MODELS, NumpySGD, make_data, numpy_fit
from kclf.bench.report import REFERENCE

BATCH_SIZES = (1, 32)
SPE_MULTI = 8  # steps_per_execution for target 2 (JAX and TensorFlow; PyTorch rejects > 1)



def _log(tag: str, message: str) -> None:
    print(f"bench[{tag}] {message}", file=sys.stderr, flush=True)


def summary(values: list[float]) -> dict:
    """Median, min and max of a list of figures (None for an empty list)."""
    if not values:
        return {"median": None, "min": None, "max": None}
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


# -- the workers (one process each) ------------------------------------------------------------


def _cases(backend: str, quick: bool) -> list[dict]:
    spes = (1,) if backend in ("torch", REFERENCE) else (1, SPE_MULTI)
    cases = [
        {"model": m, "batch_size": b, "steps_per_execution": s}
        for s in spes
        for m in MODELS
        for b in BATCH_SIZES
    ]
    if quick:  # one case per steps_per_execution keeps the test suite fast
        cases = [c for c in cases if c["model"] == "logistic" and c["batch_size"] == 1]
    return cases


def _paired(plain: list[dict], traced: list[dict]) -> dict:
    rate_p = [r["steps_per_s"] for r in plain]
    rate_t = [r["steps_per_s"] for r in traced]
    ratios = [t / p for p, t in zip(rate_p, rate_t)]
    return {
        "plain": {"steps_per_s": summary(rate_p), "startup_s": summary([r["startup_s"] for r in plain])},
        "traced": {"steps_per_s": summary(rate_t), "startup_s": summary([r["startup_s"] for r in traced])},
        "ratio": summary(ratios),
        "ratio_of_medians": summary(rate_t)["median"] / summary(rate_p)["median"],
    }


def _trace_class(path: str | None):
    """kclf's TrainingTrace, or the one defined in the file at ``path`` (to measure a change)."""
    if not path:
        from kclf.trace.callback import TrainingTrace

        return TrainingTrace
    import importlib.util

    spec = importlib.util.spec_from_file_location("kclf_bench_trace", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.TrainingTrace


def _keras_case(case: dict, steps: int, repeats: int, min_seconds: float, tag: str,
                trace_from: str | None = None) -> dict:
    import keras

    from kclf.models import compile_model, dense_classifier, logistic_regression

    name, batch, spe = case["model"], case["batch_size"], case["steps_per_execution"]
    features, hidden, classes = MODELS[name]
    x, y = make_data(name, steps * batch)

    class Clock(keras.callbacks.Callback):
        """Marks the start of the second execution; only a batch-*begin* hook, so that
        Keras keeps dispatching the plain fit's batch-end callbacks asynchronously."""

        def on_train_begin(self, logs=None):
            self.first, self.t_first = None, None

        def on_train_batch_begin(self, batch, logs=None):
            if self.first is None and batch > 0:
                self.first, self.t_first = batch, time.perf_counter()

    def build():
        if name == "logistic":
            model = logistic_regression(features, seed=0)
            task = "binary"
        else:
            model = dense_classifier(features, classes, hidden, seed=0)
            task = "sparse"
        optimizer = keras.optimizers.SGD(learning_rate=LEARNING_RATE)
        return compile_model(model, task, optimizer=optimizer, steps_per_execution=spe)

    TrainingTrace = _trace_class(trace_from)
    models = {"plain": build(), "traced": build()}
    clock = Clock()

    def fit(kind: str, epochs: int) -> dict:
        trace = TrainingTrace(verbose=False) if kind == "traced" else None
        callbacks = [clock] + ([trace] if trace else [])
        gc.collect()
        cpu0, t0 = time.process_time(), time.perf_counter()
        models[kind].fit(x, y, batch_size=batch, epochs=epochs, verbose=0, shuffle=False, callbacks=callbacks)
        t1, cpu1 = time.perf_counter(), time.process_time()
        total = epochs * steps
        timed = total - clock.first
        out = {
            "steps": total,
            "timed_steps": timed,
            "wall_s": t1 - t0,
            "cpu_s": cpu1 - cpu0,
            "steps_per_s": timed / (t1 - clock.t_first),
            "startup_s": clock.t_first - t0 - clock.first / (timed / (t1 - clock.t_first)),
        }
        if trace is not None:
            out["steps_recorded"] = trace.steps_recorded
        return out

    # Warm-up: compile both; its rate sizes the repeats so each one lasts >= min_seconds.
    warm = fit("plain", 1)
    fit("traced", 1)
    epochs = max(1, math.ceil(min_seconds * warm["steps_per_s"] / steps))
    runs = {"plain": [], "traced": []}
    for r in range(repeats):
        for kind in ("plain", "traced") if r % 2 == 0 else ("traced", "plain"):
            runs[kind].append(fit(kind, epochs))
    result = {
        **case,
        "steps_per_fit": epochs * steps,
        "epochs": epochs,
        "jit_compile": bool(models["plain"].jit_compile),
        "repeats": runs,
        **_paired(runs["plain"], runs["traced"]),
    }
    recorded = {r["steps_recorded"] for r in runs["traced"]}
    result["every_step_recorded"] = recorded == {epochs * steps}
    _log(tag, _case_line(result))
    return result


def _numpy_case(case: dict, steps: int, repeats: int, min_seconds: float, tag: str,
                trace_from: str | None = None) -> dict:
    name, batch = case["model"], case["batch_size"]
    x, y = make_data(name, steps * batch)

    def fit(kind: str, n_steps: int) -> dict:
        gc.collect()
        cpu0 = time.process_time()
        wall = numpy_fit(NumpySGD(name), x, y, batch, n_steps, history=kind == "traced")
        rate = n_steps / wall
        return {"steps": n_steps, "timed_steps": n_steps, "wall_s": wall,
                "cpu_s": time.process_time() - cpu0, "steps_per_s": rate, "startup_s": 0.0}

    warm = fit("plain", steps)
    n_steps = max(steps, math.ceil(min_seconds * warm["steps_per_s"]))
    runs = {"plain": [], "traced": []}
    for r in range(repeats):
        for kind in ("plain", "traced") if r % 2 == 0 else ("traced", "plain"):
            runs[kind].append(fit(kind, n_steps))
    result = {**case, "steps_per_fit": n_steps, "epochs": None, "jit_compile": None,
              "repeats": runs, **_paired(runs["plain"], runs["traced"]), "every_step_recorded": True}
    _log(tag, _case_line(result))
    return result


def _case_line(result: dict) -> str:
    p, t = result["plain"]["steps_per_s"]["median"], result["traced"]["steps_per_s"]["median"]
    return (f"{result['model']} batch={result['batch_size']} spe={result['steps_per_execution']}: "
            f"plain {p:,.0f}/s, traced {t:,.0f}/s, ratio {result['ratio']['median']:.2f}")


def run_worker(backend: str, steps: int, repeats: int, min_seconds: float, quick: bool,
               trace_from: str | None = None) -> dict:
    """Time every case on one backend (this process's), return the figures."""
    if backend != REFERENCE:
        select_backend(backend)
    run_case = _numpy_case if backend == REFERENCE else _keras_case
    cases = [run_case(c, steps, repeats, min_seconds, backend, trace_from) for c in _cases(backend, quick)]
    return {"backend": backend, "versions": _versions(backend), "threads": _threads(backend), "cases": cases}


def _versions(backend: str) -> dict:
    if backend == REFERENCE:
        return {"python": platform.python_version(), "numpy": np.__version__}
    return {**versions(backend), "numpy": np.__version__}


def _threads(backend: str) -> dict:
    """The backend's own thread pools: they compete for the cores on a loaded machine."""
    if backend == "torch":
        import torch

        return {"intra_op": torch.get_num_threads(), "inter_op": torch.get_num_interop_threads()}
    if backend == "tensorflow":
        import tensorflow as tf

        return {"intra_op": tf.config.threading.get_intra_op_parallelism_threads() or "default",
                "inter_op": tf.config.threading.get_inter_op_parallelism_threads() or "default"}
    return {}


def _status_kib() -> dict[str, int]:
    out = {}
    with open("/proc/self/status") as fh:
        for line in fh:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0])
    return out


def _reset_peak() -> bool:
    """Make the kernel's peak-RSS mark restart from the current RSS (Linux >= 4.0)."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def run_memory_worker(backend: str, steps: int, traced: bool, trace_from: str | None = None) -> dict:
    """Peak RSS growth of one ``fit`` of ``steps`` steps of the logistic model, batch 1."""
    select_backend(backend)
    import keras

    from kclf.models import compile_model, logistic_regression

    TrainingTrace = _trace_class(trace_from)

    spe = 1 if backend == "torch" else SPE_MULTI  # only to get 100k steps done sooner
    x, y = make_data("logistic", steps)
    model = compile_model(
        logistic_regression(2, seed=0), "binary",
        optimizer=keras.optimizers.SGD(learning_rate=LEARNING_RATE), steps_per_execution=spe,
    )
    warm_steps = 64 * spe
    model.fit(x[:warm_steps], y[:warm_steps], batch_size=1, verbose=0, shuffle=False,
              callbacks=[TrainingTrace(verbose=False)] if traced else None)
    gc.collect()
    reset = _reset_peak()
    before = _status_kib()
    maxrss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    trace = TrainingTrace(verbose=False) if traced else None
    t0 = time.perf_counter()
    model.fit(x, y, batch_size=1, verbose=0, shuffle=False, callbacks=[trace] if trace else None)
    wall = time.perf_counter() - t0
    after = _status_kib()
    maxrss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # With the peak reset, VmHWM is this fit's own peak; without it, ru_maxrss may still
    # hold the import-time peak, so the growth is a lower bound.
    peak_kib = after["VmHWM"] if reset else maxrss_after
    params = sum(int(np.prod(v.shape)) for v in model.trainable_variables)
    result = {
        "backend": backend,
        "traced": traced,
        "steps": steps,
        "steps_per_execution": spe,
        "params": params,
        "wall_s": wall,
        "peak_reset": reset,
        "rss_before_mib": before["VmRSS"] / 1024,
        "peak_mib": peak_kib / 1024,
        "peak_growth_mib": (peak_kib - before["VmRSS"]) / 1024,
        "end_growth_mib": (after["VmRSS"] - before["VmRSS"]) / 1024,
        "ru_maxrss_before_mib": maxrss_before / 1024,
        "ru_maxrss_after_mib": maxrss_after / 1024,
    }
    if trace is not None:
        result["steps_recorded"] = trace.steps_recorded
    _log(f"{backend}-memory", f"{'traced' if traced else 'plain'}: {steps:,} steps in {wall:.0f} s, "
         f"peak RSS +{result['peak_growth_mib']:.1f} MiB")
    return result
