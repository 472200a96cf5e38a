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

from kclf import bench_fits, procs
from kclf.backend import BACKENDS, is_installed, select_backend, validate_name, versions
from kclf.bench_reference import LEARNING_RATE, MODELS, NumpySGD, make_data, numpy_fit  # noqa: F401
from kclf.bench_report import (  # noqa: F401
    MEMORY_OVERHEAD_MIB,
    REFERENCE,
    TARGET_FIT,
    TARGET_SPE1,
    TARGET_SPE_MULTI,
    assemble,
    render_table,
)
from kclf.errors import KclfError
from kclf.runner import atomic_write, to_jsonable

BATCH_SIZES = (1, 32)
SPE_MULTI = 8  # steps_per_execution for target 2 (JAX and TensorFlow; PyTorch rejects > 1)


class BenchError(KclfError):
    """A benchmark worker failed, or the options make no benchmark."""


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
    parser.add_argument("--demos", action=argparse.BooleanOptionalAction, default=None,
                        help="time kclf run iris / stroke against the lecture's plain cells "
                             "(default: on, off with --quick)")
    # Internal: how the parent starts its workers.
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--memory-worker", help=argparse.SUPPRESS)
    parser.add_argument("--fits-worker", help=argparse.SUPPRESS)
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
        "demos": args.demos if args.demos is not None else not quick,
        "learning_rate": LEARNING_RATE,
        "optimizer": "SGD",
        "memory_fixed_overhead_mib": MEMORY_OVERHEAD_MIB,
        "steps_per_s": "steps after the first execution / wall time from then to fit's return",
        "ratio": "median over repeats of traced / plain, paired repeats (ABBA order)",
        "fit_ratio": "whole and second fits: median over repeats of plain / traced wall time",
    }


def main(args) -> int:
    settings = _settings(args)
    if args.worker or args.memory_worker or args.fits_worker:
        if args.fits_worker:
            result = bench_fits.run_fits_worker(validate_name(args.fits_worker), args.repeats, args.quick,
                                                args.trace_from)
        elif args.worker:
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
    fits = []
    for backend in backends:
        _log(backend, "whole fits and second fits (own process)")
        fits.append(_run_child(["--fits-worker", backend, *common], f"{backend}-fits", out))
    demos = bench_fits.run_demos(backends) if settings["demos"] else []
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
    payload = assemble(workers, memory, machine, settings, fits, demos)
    table = render_table(payload)
    atomic_write(out / "bench.json", json.dumps(to_jsonable(payload), indent=2))
    atomic_write(out / "bench.md", table)
    print(table, end="")
    print(f"\noutputs: {out}/ (bench.json, bench.md, logs/); {settings['wall_s']:.0f} s")
    return 0
