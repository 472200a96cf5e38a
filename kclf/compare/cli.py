"""``kclf compare``'s command line: options, progress with the time left, the summary lines."""

from __future__ import annotations

import os
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from kclf import registry
from kclf.compare.drift import DEFAULT_REPLAY_STEPS
from kclf.compare.envelope import DEFAULT_HORIZON, DEFAULT_RUNS
from kclf.compare.runs import (
    DEFAULT_TIMEOUT_S,
    RunOutcome,
    Settings,
    resolve_backends,
    resolve_targets,
    reuse,
)
from kclf.compare.schedule import TIMEOUT_FACTOR, execute
from kclf.compare.tolerances import tolerance_for
from kclf.compare.verdict import build
from kclf.editions import EDITIONS, STARTS, STROKE_CSV_ENV, resolve, start_names
from kclf.errors import KclfError, UsageError
from kclf.fsio import FolderLock, usable_folder
from kclf.options import at_least

DEFAULT_OUT = Path("results") / "compare"

DESCRIPTION = (
    "Run each experiment once per backend, each in a process of its own, and compare every "
    "backend with the reference: torch for the 2026 edition (the default), tensorflow for "
    "--edition 2025 (the backend each edition's lecture ran on), or the first backend "
    "--backends names. Writes OUT/report.html (the lecture's numbers per backend, a "
    "step-through of the optimisation slides, the cross-backend diagnostics), comparison.md "
    "and comparison.json. The stroke demo reads the Kaggle file given by --data or "
    "KCLF_STROKE_CSV, else a synthetic stand-in, which the report names."
)


def add_arguments(parser) -> None:
    parser.description = DESCRIPTION
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help="experiments (see kclf list), 'all' (the default), or a script path "
                        "that saves with kclf.runner.save")
    parser.add_argument("--backends", help="comma-separated, first is the reference "
                        "(default: the edition's backend first, torch for 2026, tensorflow for "
                        "2025, then the others; those not installed are skipped)")
    parser.add_argument("--out", default=str(DEFAULT_OUT), help="report folder (default: results/compare/)")
    parser.add_argument("--jobs", "-j", type=at_least(1), default=1, help="runs in parallel (default 1)")
    parser.add_argument("--rtol", type=at_least(0, float), help="one relative tolerance for every number "
                        "(default: each experiment's TOLERANCE declaration)")
    parser.add_argument("--atol", type=at_least(0, float), help="one absolute tolerance for every number "
                        "(default: the table's)")
    parser.add_argument("--timeout", type=at_least(0, float, strictly=True), default=None,
                        help=f"seconds per run before it counts as failed (default {DEFAULT_TIMEOUT_S:g}, "
                        f"or {TIMEOUT_FACTOR:g}x the run's measured cost where that is longer: the "
                        "2026 stroke demo takes 14 minutes on an unloaded 2-core machine)")
    parser.add_argument("--reuse", action="store_true", help="diff the runs an earlier compare left "
                        "in --out again (e.g. after changing a tolerance) instead of running them")
    parser.add_argument("--separate", action="store_true", help="one process per run (default: the "
                        "short experiments of a backend share one process, imports once)")
    parser.add_argument("--data", help="data file for experiments that read one (stroke: the Kaggle CSV)")
    parser.add_argument("--devices", type=int, default=1, metavar="N",
                        help="CPU devices each run sees (default 1): N > 1 sets up N virtual devices "
                        "in every child before its backend starts (kclf.devices), for data-parallel "
                        "runs (DataParallel on JAX, MirroredStrategy on TensorFlow)")
    parser.add_argument("--edition", choices=tuple(EDITIONS), help="which edition of the "
                        "lecture (default 2026, the PyTorch edition; 2025: TensorFlow)")
    parser.add_argument("--replay-steps", type=at_least(0), default=DEFAULT_REPLAY_STEPS, metavar="N",
                        help="where a run recorded its states (the demos' replay starts): replay up "
                        f"to N steps per fit of each backend from the reference's state, to split "
                        f"its difference into each step's own error and drift carried from earlier "
                        f"steps (default {DEFAULT_REPLAY_STEPS}; 0: none)")
    parser.add_argument("--envelope", type=at_least(0), default=DEFAULT_RUNS, metavar="K",
                        help="run the reference K more times from initial weights one float32 ulp "
                        f"off, for how far rounding alone moves it (default {DEFAULT_RUNS}; 0: none)")
    parser.add_argument("--envelope-steps", type=at_least(0), default=DEFAULT_HORIZON, metavar="N",
                        help=f"steps per fit of those runs (default {DEFAULT_HORIZON}; 0: whole fits, "
                        "which also measures the printed numbers' envelope and judges them by it)")
    parser.add_argument("--start", choices=start_names(), metavar="START",
                        help="where the demos (iris, stroke, lecture) start (default: the "
                        "edition's replay, torch-2026 or tensorflow-2025, diffed step by step "
                        "against that backend): " + "; ".join(
                            f"{s.name} = {s.help}" for s in STARTS.values()))


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


def _progress(done: int, total: int, elapsed: float, outcome: RunOutcome, left: float | None = None) -> None:
    wall = f" ({outcome.wall_s:.1f} s)" if outcome.wall_s is not None else ""
    eta = "" if left is None or done == total else f", ~{_clock(left)} left"
    print(f"[{done}/{total} {_clock(elapsed)}{eta}] {outcome.experiment} on {outcome.backend}: "
          f"{outcome.status}{wall}", file=sys.stderr, flush=True)


def _heartbeat(done: int, total: int, elapsed: float, left: float | None, running) -> None:
    """Before the first run: the whole compare's estimate; later, while no run ends, what is
    running and where its fit is (every schedule.HEARTBEAT_S seconds, terminal or not)."""
    eta = "" if left is None else f", ~{_clock(left)} left"
    if not running:
        print(f"kclf compare: about {_clock(left)} to go, from kclf's measured costs "
              "(kclf.compare.costs) or this folder's last compare" if left is not None else
              "kclf compare: no estimate yet (runs not measured before)", file=sys.stderr, flush=True)
        return
    now = ", ".join(f"{r.name} on {r.backend} ({_clock(r.seconds)}" + (f"; {r.doing}" if r.doing else "")
                    + ")" for r in running)
    print(f"[{done}/{total} {_clock(elapsed)}{eta}] running: {now}", file=sys.stderr, flush=True)


def main(args) -> int:
    from kclf.devices import MAX_DEVICES, is_count

    devices = getattr(args, "devices", 1)
    if not is_count(devices):
        raise UsageError(f"--devices {devices!r}: expected a positive number of devices, at most "
                         f"{MAX_DEVICES}")
    start, edition = resolve(getattr(args, "start", None), getattr(args, "edition", None),
                             default="replay")
    settings = Settings(start.name, edition.name, getattr(args, "data", None), devices)
    targets = resolve_targets(args.names)
    check_offered(targets, start.name, edition.name)
    backends, skipped = resolve_backends(args.backends, start.backend or edition.backend)
    if devices > 1:
        installed = backends
        backends, skipped = _with_devices(devices, backends, skipped)
        if installed and not backends:  # torch was the only one: say why, not "none installed"
            from importlib.metadata import version

            given = "named in --backends" if args.backends else "installed"
            raise UsageError(f"--devices {devices}: keras {version('keras')}'s torch backend has no "
                             f"DataParallel (it comes with Keras 3.16) and no other backend is {given}; "
                             f"expected jax or tensorflow for {devices} devices (or --devices 1)")
    with _children_environment(devices):
        return _main(args, targets, backends, skipped, settings)


def _main(args, targets, backends, skipped, settings: Settings) -> int:
    from kclf.compare import report

    if not backends:
        raise KclfError("no backend is installed; install one with make install")
    tolerances = {t.name: tolerance_for(t.name, args.rtol, args.atol, start=settings.start,
                                        script=t.script) for t in targets}
    out = Path(args.out)
    registry.check_data(args.data, [t.name for t in targets if t.script is None],
                        any(t.script for t in targets))
    usable_folder(out)
    with FolderLock(out, "kclf compare"):
        total = len(targets) * len(backends)
        for name, why in skipped.items():
            print(f"kclf compare: skipping {name}: {why}", file=sys.stderr)
        readers = _data_readers(targets)
        if readers and settings.data is None and not os.environ.get(STROKE_CSV_ENV):
            print(f"kclf compare: {', '.join(readers)} on kclf's synthetic stand-in (no --data, no "
                  f"{STROKE_CSV_ENV}): the lecture's numbers for the Kaggle file cannot agree",
                  file=sys.stderr)
        if args.reuse:
            outcomes, interrupted = reuse(targets, backends, out, settings), False
        how = f"diffing the runs already in {out}/runs" if args.reuse else f"{args.jobs} at a time"
        print(f"kclf compare: {len(targets)} experiment(s) × {len(backends)} backend(s) = {total} runs, "
              f"{how}, reference {backends[0]} → {out}/", file=sys.stderr, flush=True)
        if not args.reuse:
            outcomes, interrupted = execute(targets, backends, out, jobs=args.jobs, timeout=args.timeout,
                                            progress=_progress, settings=settings,
                                            batch=not args.separate, heartbeat=_heartbeat)
        comparison = build(targets, backends, skipped, outcomes, tolerances,
                           interrupted=interrupted)
        if not interrupted:
            _drift(args, comparison, out, settings)
        page = report.write(out, comparison)

    from kclf.compare import plain

    for exp in comparison.experiments.values():
        where = f": {exp.where}" if exp.where and exp.verdict != "agree" else ""
        synthetic = f" ({plain.SYNTHETIC})" if plain.synthetic(exp) else ""
        print(f"  {exp.name:<26} {plain.label(exp)}{synthetic}{where}", file=sys.stderr)
    state = "" if comparison.complete else "INCOMPLETE "
    print(f"{state}report: {page} (also comparison.md, comparison.json)", file=sys.stderr)
    return comparison.exit_code


def _data_readers(targets) -> list[str]:
    known = registry.discover()
    return [t.name for t in targets if t.script is None and t.name in known and known[t.name].reads_data]


def _drift(args, comparison, out: Path, settings: Settings) -> None:
    """The drift phase (kclf.compare.drift): replays and the envelope, where runs recorded
    their states; Ctrl-C there leaves the comparison interrupted."""
    from kclf.compare import drift
    from kclf.trace.interrupt import caught

    replay = getattr(args, "replay_steps", DEFAULT_REPLAY_STEPS)
    runs = getattr(args, "envelope", DEFAULT_RUNS)
    steps = getattr(args, "envelope_steps", DEFAULT_HORIZON)
    began = time.monotonic()

    def progress(task, total):
        if task is None:
            print(f"kclf compare: {total} more process(es): each backend's steps from the "
                  f"reference's state, and the reference from 1-ulp perturbed starts",
                  file=sys.stderr, flush=True)
            return
        state = f"failed ({task.error})" if task.error else f"ok ({task.wall_s:.1f} s)"
        print(f"[drift {_clock(time.monotonic() - began)}] {task.what}: {state}",
              file=sys.stderr, flush=True)

    try:
        drift.diagnose(comparison, out, settings, jobs=args.jobs,
                       timeout=args.timeout or DEFAULT_TIMEOUT_S,
                       replay_steps=replay, envelope_runs=runs, horizon=steps or None,
                       reuse=args.reuse, progress=progress)
    except KeyboardInterrupt:
        caught()
        comparison.interrupted = True


@contextmanager
def _children_environment(n: int):
    """--devices N: the children (which inherit this environment) start with N CPU devices;
    this process's own environment is back as it was afterwards."""
    if n == 1:
        yield
        return
    from kclf import devices

    saved = dict(os.environ)
    os.environ.update(devices.environment(n))
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _with_devices(n: int, backends: list[str], skipped: dict) -> tuple[list[str], dict]:
    """--devices N: the backends without data parallelism in the installed Keras are
    skipped, in one line."""
    from importlib.metadata import version

    from kclf import devices

    if "torch" in backends and not devices.torch_has_data_parallel():
        skipped = {**skipped, "torch": devices.TORCH_MESSAGE.format(version=version("keras"), n=n)}
        backends = [b for b in backends if b != "torch"]
    return backends, skipped


def check_offered(targets, start: str, edition: str) -> None:
    """Before anything runs: each experiment with --start modes (or editions) offers the
    compare's, as ``kclf run`` would insist in every child."""
    from kclf import registry

    known = registry.discover()
    for target in targets:
        info = known.get(target.name) if target.script is None else None
        if info and info.starts and start not in info.starts:
            raise UsageError(f"--start {start}: experiment {info.name!r} takes one of: "
                             f"{', '.join(info.starts)}")
        if info and info.editions and edition not in info.editions:
            raise UsageError(f"--edition {edition}: experiment {info.name!r} has "
                             f"{', '.join(info.editions)}")
