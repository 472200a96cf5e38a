"""``kclf bench``: what TrainingTrace costs, in steps per second of ``model.fit``.

For each backend, in a process of its own, the same small models are trained with and
without a TrainingTrace (every step, weights and gradients), and a plain NumPy loop doing
the same SGD updates and keeping the same history gives a reference line. A third kind of
process trains the logistic model for 100k steps to measure the trace's peak memory.

    kclf bench                                  # all backends; writes results/bench/
    kclf bench --backends jax --repeats 7       # one backend, more repeats
    kclf bench --quick --backends jax           # seconds, for the test suite

What is measured. A repeat is one ``model.fit`` call (one or more epochs of the same data,
``verbose=0``, ``shuffle=False``). Its steps/s count the steps after the first execution,
divided by the wall time from the start of the second execution until ``fit`` returns:
that excludes compilation, which a traced fit repeats every time (installing the
trace's hooks gives the model a new train function), and is reported separately as the
fit's start-up. Plain and traced repeats alternate (ABBA) so that drift on a shared
machine biases neither; each figure is the median over the repeats, with min and max,
and the ratio is the median of the paired traced / plain ratios.

Only the worker functions import Keras, after :func:`kclf.backend.select_backend`.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import resource
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from kclf import procs
from kclf.backend import BACKENDS, is_installed, select_backend, validate_name, versions
from kclf.errors import KclfError
from kclf.runner import atomic_write, to_jsonable

# name -> (features, hidden units, classes): the slides' logistic regression and an iris-size MLP.
MODELS = {"logistic": (2, (), 2), "iris": (4, (30,), 3)}
BATCH_SIZES = (1, 32)
SPE_MULTI = 8  # steps_per_execution for target 2 (JAX and TensorFlow; PyTorch rejects > 1)
LEARNING_RATE = 0.01
TARGET_SPE1, TARGET_SPE_MULTI = 0.90, 0.80
MEMORY_OVERHEAD_MIB = 64  # the fixed allowance of target 3: a compile, Keras's data adapter...
REFERENCE = "numpy"


class BenchError(KclfError):
    """A benchmark worker failed, or the options make no benchmark."""


def _log(tag: str, message: str) -> None:
    print(f"bench[{tag}] {message}", file=sys.stderr, flush=True)


def summary(values: list[float]) -> dict:
    """Median, min and max of a list of figures (None for an empty list)."""
    if not values:
        return {"median": None, "min": None, "max": None}
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


# -- synthetic data and the NumPy reference ------------------------------------------------


def make_data(model: str, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Separable-ish synthetic data for ``model``: float32 features, labels as the loss wants."""
    features, _, classes = MODELS[model]
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, features)).astype("float32")
    if classes == 2:
        y = (x.sum(axis=1) + 0.5 * rng.standard_normal(n) > 0).astype("float32").reshape(-1, 1)
    else:
        y = np.argmax(x @ rng.standard_normal((features, classes)), axis=1).astype("int32")
    return x, y


class NumpySGD:
    """The same model, loss and SGD update as the Keras runs, in float32 NumPy.

    The parameters live in one flat vector ``theta`` (the layers' kernels and biases are
    views into it), so keeping the history of a step is one row copy per array:
    weights before, gradient, weights after, loss and learning rate.
    """

    def __init__(self, model: str, seed: int = 0):
        features, hidden, classes = MODELS[model]
        widths = [features, *hidden, 1 if classes == 2 else classes]
        shapes = [s for a, b in zip(widths, widths[1:]) for s in ((a, b), (b,))]
        sizes = [math.prod(s) for s in shapes]
        self.theta = np.zeros(sum(sizes), "float32")
        self.grad = np.zeros_like(self.theta)
        rng = np.random.default_rng(seed)
        self.params, self.grads, start = [], [], 0
        for shape, size in zip(shapes, sizes):
            self.params.append(self.theta[start : start + size].reshape(shape))
            self.grads.append(self.grad[start : start + size].reshape(shape))
            start += size
        for kernel in self.params[::2]:
            limit = np.sqrt(6.0 / sum(kernel.shape))
            kernel[...] = rng.uniform(-limit, limit, kernel.shape)
        self.binary = classes == 2

    def step(self, x: np.ndarray, y: np.ndarray) -> float:
        """One SGD step on the batch (x, y); fills self.grad and updates self.theta."""
        n = len(x)
        activations = [x]
        for kernel, bias in zip(self.params[:-2:2], self.params[1:-2:2]):
            activations.append(np.maximum(activations[-1] @ kernel + bias, 0.0))  # ReLU
        z = activations[-1] @ self.params[-2] + self.params[-1]
        if self.binary:  # σ(z), binary cross-entropy; ∂L/∂z = (p − y) / n
            p = 1.0 / (1.0 + np.exp(-z))
            loss = -np.mean(y * np.log(p + 1e-7) + (1 - y) * np.log(1 - p + 1e-7))
            dz = (p - y) / n
        else:  # softmax(z), sparse categorical cross-entropy; ∂L/∂z = (P − Y) / n
            e = np.exp(z - z.max(axis=1, keepdims=True))
            p = e / e.sum(axis=1, keepdims=True)
            rows = np.arange(n)
            loss = -np.mean(np.log(p[rows, y] + 1e-7))
            dz = p
            dz[rows, y] -= 1.0
            dz /= n
        for layer in range(len(self.params) // 2 - 1, -1, -1):  # backpropagation
            kernel = self.params[2 * layer]
            self.grads[2 * layer][...] = activations[layer].T @ dz
            self.grads[2 * layer + 1][...] = dz.sum(axis=0)
            if layer:
                dz = (dz @ kernel.T) * (activations[layer] > 0)
        self.theta -= LEARNING_RATE * self.grad  # θ ← θ − η ∇L
        return float(loss)


def numpy_fit(model: NumpySGD, x, y, batch_size: int, steps: int, *, history: bool) -> float:
    """Run ``steps`` SGD steps over (x, y) in order; return the wall time in seconds."""
    if history:  # preallocated, like TrainingTrace's host storage
        before = np.zeros((steps, model.theta.size), "float32")
        grads, after = np.zeros_like(before), np.zeros_like(before)
        losses, rates = np.zeros(steps, "float32"), np.zeros(steps, "float32")
    n_batches = len(x) // batch_size
    start = time.perf_counter()
    for i in range(steps):
        lo = (i % n_batches) * batch_size
        xb, yb = x[lo : lo + batch_size], y[lo : lo + batch_size]
        if history:
            before[i] = model.theta
            losses[i] = model.step(xb, yb)
            grads[i], after[i], rates[i] = model.grad, model.theta, LEARNING_RATE
        else:
            model.step(xb, yb)
    return time.perf_counter() - start


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
        from kclf.callbacks import TrainingTrace

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


# -- the parent: spawn, collect, assemble ---------------------------------------------------------


def machine_details() -> dict:
    """CPU model, cores, memory, OS and load: what a reader needs to compare figures."""
    cpu = None
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next((ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")), None)
    except OSError:
        pass
    mem = None
    try:
        with open("/proc/meminfo") as fh:
            kib = next(int(ln.split()[1]) for ln in fh if ln.startswith("MemTotal"))
        mem = round(kib / 1024**2, 1)
    except (OSError, StopIteration):
        pass
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return {
        "cpu": cpu or platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "cores_available": affinity,
        "memory_gib": mem,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "loadavg_start": list(os.getloadavg()),
    }


def _spawn(argv: list[str], tag: str, log_path: Path) -> tuple[int, str]:
    """Run ``python -m kclf bench ARGV``; forward its ``bench[...]`` lines, log everything."""
    return procs.run_logged(procs.kclf_command("bench", *argv), log_path,
                            forward=lambda line: line.startswith("bench["))


def _run_child(argv: list[str], tag: str, out: Path) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        result_path = Path(tmp) / "result.json"
        code, tail = _spawn([*argv, "--result", str(result_path)], tag, out / "logs" / f"{tag}.log")
        if code != 0 or not result_path.exists():
            raise BenchError(f"the {tag} worker failed (exit {code}); its last lines:\n{tail}")
        return json.loads(result_path.read_text())


def assemble(workers: list[dict], memory: list[dict], machine: dict, settings: dict) -> dict:
    """bench.json's content: every figure, the targets' verdicts and the machine."""
    verdicts = []
    for w in workers:
        for c in w["cases"]:
            if w["backend"] == REFERENCE:
                c["target"] = None
                continue
            c["target"] = TARGET_SPE1 if c["steps_per_execution"] == 1 else TARGET_SPE_MULTI
            c["meets_target"] = bool(c["ratio"]["median"] >= c["target"] and c["every_step_recorded"])
            verdicts.append(c["meets_target"])
    pairs: dict[str, dict] = {}
    for m in memory:
        pairs.setdefault(m["backend"], {})["traced" if m["traced"] else "plain"] = m
    memory_rows = []
    for backend, pair in pairs.items():
        traced = pair.get("traced")
        if traced is None:
            continue
        steps, params = traced["steps"], traced["params"]
        # What the trace records per step, as float32: weights before, gradient and weights
        # after for each parameter, the loss and the learning rate.
        raw_mib = steps * (3 * params + 2) * 4 / 1024**2
        meta_mib = steps * 3 * 8 / 1024**2  # step, epoch, batch as int64
        limit = 2 * raw_mib + MEMORY_OVERHEAD_MIB
        plain = pair.get("plain")
        row = {
            "backend": backend,
            "steps": steps,
            "steps_recorded": traced.get("steps_recorded"),
            "raw_float32_mib": raw_mib,
            "meta_int64_mib": meta_mib,
            "traced_peak_growth_mib": traced["peak_growth_mib"],
            "plain_peak_growth_mib": plain["peak_growth_mib"] if plain else None,
            "trace_cost_mib": traced["peak_growth_mib"] - plain["peak_growth_mib"] if plain else None,
            "limit_mib": limit,
            "fixed_overhead_mib": MEMORY_OVERHEAD_MIB,
            "within_limit": bool(traced["peak_growth_mib"] <= limit and traced.get("steps_recorded") == steps),
            "runs": pair,
        }
        verdicts.append(row["within_limit"])
        memory_rows.append(row)
    machine = {**machine, "loadavg_end": list(os.getloadavg())}
    return {
        "settings": settings,
        "machine": machine,
        "versions": {w["backend"]: w["versions"] for w in workers},
        "timing": workers,
        "memory": memory_rows,
        "all_targets_met": all(verdicts) if verdicts else None,
    }


def _rate(s: dict) -> str:
    def fmt(v):
        return f"{v:,.0f}" if v >= 100 else f"{v:.3g}"

    return f"{fmt(s['median'])} ({fmt(s['min'])}–{fmt(s['max'])})"


def render_table(payload: dict) -> str:
    """The markdown tables: steps/s per case, then memory, then the machine."""
    lines = [
        "| backend | model | batch | spe | jit | plain steps/s (min–max) | traced steps/s (min–max) "
        "| traced / plain | target | every step | start-up s plain / traced |",
        "|---|---|---:|---:|---|---:|---:|---:|---|---|---:|",
    ]
    for w in payload["timing"]:
        for c in w["cases"]:
            ref = w["backend"] == REFERENCE
            target = "reference" if ref else (
                f"≥ {c['target']:.2f} {'✓' if c['meets_target'] else '✗'}")
            jit = "—" if c["jit_compile"] is None else ("yes" if c["jit_compile"] else "no")
            startup = "—" if ref else (
                f"{c['plain']['startup_s']['median']:.2f} / {c['traced']['startup_s']['median']:.2f}")
            lines.append(
                f"| {w['backend']} | {c['model']} | {c['batch_size']} | "
                f"{'—' if ref else c['steps_per_execution']} | {jit} | "
                f"{_rate(c['plain']['steps_per_s'])} | {_rate(c['traced']['steps_per_s'])} | "
                f"{c['ratio']['median']:.3f} | {target} | "
                f"{'✓' if c['every_step_recorded'] else '✗'} | {startup} |"
            )
    if payload["memory"]:
        lines += [
            "",
            "| backend | steps | raw float32 MiB | peak RSS growth traced MiB | plain MiB "
            "| traced − plain MiB (× raw) | limit MiB (2 × raw + fixed) | within |",
            "|---|---:|---:|---:|---:|---:|---:|---|",
        ]
        for m in payload["memory"]:
            plain = cost = "—"
            if m["plain_peak_growth_mib"] is not None:
                plain = f"{m['plain_peak_growth_mib']:.1f}"
                cost = f"{m['trace_cost_mib']:.1f} ({m['trace_cost_mib'] / m['raw_float32_mib']:.1f}×)"
            lines.append(
                f"| {m['backend']} | {m['steps']:,} | {m['raw_float32_mib']:.1f} | "
                f"{m['traced_peak_growth_mib']:.1f} | {plain} | {cost} | {m['limit_mib']:.1f} | "
                f"{'✓' if m['within_limit'] else '✗'} |"
            )
    mc = payload["machine"]
    vers = {k: v for w in payload["versions"].values() for k, v in w.items()}
    lines += [
        "",
        "steps/s: steps after a fit's first execution / wall time from then until fit returns, "
        "median (min–max) over the repeats; traced / plain: median of the paired repeats' ratios; "
        "start-up: what a fit spends beyond that rate, mostly compiling (a traced fit compiles "
        "its train function again); jit: Keras's default for the backend; spe: "
        "steps_per_execution. Memory: growth of peak RSS during one fit, batch 1; raw = steps × "
        "(3 × parameters + loss + learning rate) × 4 bytes.",
        "",
        f"Machine: {mc['cpu']}, {mc['cores']} cores ({mc['cores_available']} available), "
        f"{mc['memory_gib']} GiB; load average {mc['loadavg_start'][0]:.1f} at start, "
        f"{mc['loadavg_end'][0]:.1f} at end. "
        + ", ".join(f"{k} {v}" for k, v in vers.items()) + ".",
    ]
    return "\n".join(lines) + "\n"


# -- the command ---------------------------------------------------------------------------------


def _backend_list(text: str) -> list[str]:
    try:
        return procs.parse_backends(text, option="")  # argparse names the option
    except KclfError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer; received {text}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--backends", type=_backend_list, default=None,
                        help="comma-separated backends (default: all installed)")
    parser.add_argument("--repeats", type=_positive, default=5, help="timed repeats per case (default 5)")
    parser.add_argument("--steps", type=_positive, default=None,
                        help="steps per epoch, the data's size in batches (default 2000)")
    parser.add_argument("--min-seconds", type=float, default=None,
                        help="each repeat runs whole epochs for at least this long (default 0.5)")
    parser.add_argument("--memory-steps", type=int, default=None,
                        help="steps of the memory run, 0 to skip it (default 100000)")
    parser.add_argument("--out", default="results/bench", help="output folder (default results/bench)")
    parser.add_argument("--quick", action="store_true",
                        help="tiny sizes and one case per steps_per_execution: checks, not figures")
    # Internal: how the parent starts its workers.
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--memory-worker", help=argparse.SUPPRESS)
    parser.add_argument("--traced", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    # For whoever changes kclf/callbacks.py: measure a TrainingTrace defined in another file.
    parser.add_argument("--trace-from", help=argparse.SUPPRESS)


def _settings(args) -> dict:
    quick = args.quick
    return {
        "repeats": args.repeats,
        "steps": args.steps or (64 if quick else 2000),
        "min_seconds": args.min_seconds if args.min_seconds is not None else (0.0 if quick else 0.5),
        "memory_steps": args.memory_steps if args.memory_steps is not None else (512 if quick else 100_000),
        "quick": quick,
        "learning_rate": LEARNING_RATE,
        "optimizer": "SGD",
        "memory_fixed_overhead_mib": MEMORY_OVERHEAD_MIB,
        "steps_per_s": "steps after the first execution / wall time from then to fit's return",
        "ratio": "median over repeats of traced / plain, paired repeats (ABBA order)",
    }


def main(args) -> int:
    settings = _settings(args)
    if args.worker or args.memory_worker:
        if args.worker:
            result = run_worker(validate_name(args.worker) if args.worker != REFERENCE else REFERENCE,
                                settings["steps"], args.repeats, settings["min_seconds"], args.quick,
                                args.trace_from)
        else:
            result = run_memory_worker(validate_name(args.memory_worker), settings["memory_steps"],
                                       args.traced, args.trace_from)
        atomic_write(Path(args.result), json.dumps(to_jsonable(result)))
        return 0

    backends = args.backends or [b for b in BACKENDS if is_installed(b)]
    missing = [b for b in backends if not is_installed(b)]
    if missing:
        raise BenchError(f"backends not installed: {', '.join(missing)} (make install installs all three)")
    if not backends:
        raise BenchError("no backend installed; expected at least one of jax, tensorflow, torch")
    out = Path(args.out)
    common = ["--repeats", str(args.repeats), "--steps", str(settings["steps"]),
              "--min-seconds", str(settings["min_seconds"])] + (["--quick"] if args.quick else [])
    if args.trace_from:
        settings["trace_from"] = str(Path(args.trace_from).resolve())
        common += ["--trace-from", settings["trace_from"]]
    started = time.perf_counter()
    machine = machine_details()
    workers = []
    for backend in [*backends, REFERENCE]:
        _log(backend, "timing (own process)")
        workers.append(_run_child(["--worker", backend, *common], backend, out))
    memory = []
    if settings["memory_steps"] > 0:
        # Memory does not depend on speed, so these processes may share the CPUs; the plain
        # baseline (what fit alone adds) is skipped in quick mode.
        jobs = []
        for backend in backends:
            for kind in ("traced",) if args.quick else ("plain", "traced"):
                argv = ["--memory-worker", backend, "--memory-steps", str(settings["memory_steps"])]
                argv += ["--trace-from", settings["trace_from"]] if args.trace_from else []
                jobs.append((argv + (["--traced"] if kind == "traced" else []), f"{backend}-memory-{kind}"))
        _log("memory", f"{settings['memory_steps']:,} steps of the logistic model, "
             f"{len(jobs)} processes, two at a time")
        with ThreadPoolExecutor(max_workers=2) as pool:
            memory = list(pool.map(lambda job: _run_child(job[0], job[1], out), jobs))
    settings["wall_s"] = time.perf_counter() - started
    payload = assemble(workers, memory, machine, settings)
    table = render_table(payload)
    atomic_write(out / "bench.json", json.dumps(to_jsonable(payload), indent=2))
    atomic_write(out / "bench.md", table)
    print(table, end="")
    print(f"\noutputs: {out}/ (bench.json, bench.md, logs/); {settings['wall_s']:.0f} s")
    return 0
