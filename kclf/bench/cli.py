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
import ast
import json
import os
import platform
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from kclf import procs
from kclf.backend import BACKENDS, is_installed, validate_name
from kclf.bench import data_parallel as dp
from kclf.bench import fits as whole_fits
from kclf.bench.numpy_line import LEARNING_RATE
from kclf.bench.report import (
    MEMORY_OVERHEAD_MIB,
    REFERENCE,
    assemble,
    render_table,
)
from kclf.bench.workers import (
    _log,
    run_memory_worker,
    run_worker,
)
from kclf.errors import KclfError, UsageError
from kclf.fsio import usable_folder
from kclf.options import at_least
from kclf.runner import atomic_write, to_jsonable


class BenchError(KclfError):
    """A benchmark worker failed, or the options make no benchmark."""


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


def _check_trace_from(path: Path) -> None:
    """--trace-from before any worker imports it: a readable Python file defining TrainingTrace."""
    try:
        tree = ast.parse(path.read_text(), filename=str(path))
    except OSError as exc:
        raise UsageError(f"--trace-from {path}: cannot be read ({exc.strerror}); expected a Python "
                         "file that defines TrainingTrace") from None
    except SyntaxError as exc:
        raise UsageError(f"--trace-from {path}: not valid Python (line {exc.lineno}: {exc.msg}); "
                         "expected a Python file that defines TrainingTrace") from None
    if "TrainingTrace" not in _top_level_names(tree):
        raise UsageError(f"--trace-from {path}: defines no TrainingTrace; expected the file with "
                         "the TrainingTrace to measure (a changed kclf/trace/callback.py)")


def _top_level_names(tree: ast.Module) -> set[str]:
    """The names a module binds at its top level: classes, functions, assignments, imports."""
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
    return names


def _backend_list(text: str) -> list[str]:
    try:
        return procs.parse_backends(text, option="")  # argparse names the option
    except KclfError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--backends", type=_backend_list, default=None,
                        help="comma-separated backends (default: all installed)")
    parser.add_argument("--repeats", type=at_least(1), default=5,
                        help="timed repeats per case (default 5)")
    parser.add_argument("--steps", type=at_least(1), default=None,
                        help="steps per epoch, the data's size in batches (default 2000)")
    parser.add_argument("--min-seconds", type=at_least(0, float), default=None,
                        help="each repeat runs whole epochs for at least this long (default 0.5)")
    parser.add_argument("--memory-steps", type=at_least(0), default=None,
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
    parser.add_argument("--dp-worker", help=argparse.SUPPRESS)
    parser.add_argument("--traced", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    # For whoever changes kclf/trace/callback.py: measure a TrainingTrace defined in another file.
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
    if args.worker or args.memory_worker or args.fits_worker or getattr(args, "dp_worker", None):
        if getattr(args, "dp_worker", None):
            result = dp.run_dp_worker(settings["steps"], args.repeats, settings["min_seconds"], args.quick,
                                            args.trace_from)
        elif args.fits_worker:
            result = whole_fits.run_fits_worker(validate_name(args.fits_worker), args.repeats, args.quick,
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
    out = usable_folder(Path(args.out))  # before any worker starts, not when the first one ends
    if args.trace_from:
        _check_trace_from(Path(args.trace_from))
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
    data_parallel = None
    if dp.BACKEND in backends:
        _log(dp.BACKEND, f"data parallel on {dp.DEVICES} CPU devices (own process)")
        data_parallel = dp.run_child(common, out)
    demos = whole_fits.run_demos(backends) if settings["demos"] else []
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
    payload["data_parallel"] = data_parallel
    table = render_table(payload)
    table = table + "\n".join(dp.render(data_parallel)) + ("\n" if data_parallel else "")
    atomic_write(out / "bench.json", json.dumps(to_jsonable(payload), indent=2))
    atomic_write(out / "bench.md", table)
    print(table, end="")
    print(f"\noutputs: {out}/ (bench.json, bench.md, logs/); {settings['wall_s']:.0f} s")
    return 0
