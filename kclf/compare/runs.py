"""Running: each (experiment, backend) in its own process, ``jobs`` at a time, longest first.

Every run is its own process with KERAS_BACKEND set before keras is imported; its output
folder is OUT/runs/NAME/BACKEND, its logs and outcome beside it (BACKEND.stdout.log,
BACKEND.stderr.log, BACKEND.outcome.json). A run that reports another backend than the one
it was started for fails.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from kclf import procs
from kclf.errors import UnknownExperiment, UsageError
from kclf.fsio import atomic_write

DEFAULT_TIMEOUT_S = 900.0
STDERR_LINES = 20
OUTCOME = "outcome.json"  # how a run ended, beside its folder: BACKEND.outcome.json (for --reuse)


@dataclass
class Target:
    """An experiment from experiments/ (``script`` None) or a user's script."""

    name: str
    script: Path | None = None


@dataclass
class RunOutcome:
    experiment: str
    backend: str
    dir: str
    status: str = "not run"  # ok | diverged | failed | timeout | interrupted | not run
    returncode: int | None = None
    wall_s: float | None = None
    error: str | None = None
    stderr_tail: list[str] = field(default_factory=list)
    summary: dict | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def resolve_targets(names: list[str]) -> list[Target]:
    """Experiment names, ``all`` or script paths → targets; unknown names fail here."""
    from kclf import registry

    names = names or ["all"]
    known = registry.discover()
    targets: list[Target] = []
    for name in names:
        if name == "all":
            targets += [Target(n) for n in known]
        elif name.endswith(".py") or os.sep in name:
            path = Path(name)
            if not path.is_file():
                raise UnknownExperiment(f"script {name!r} not found; expected a path to a .py file")
            targets.append(Target(path.stem, path.resolve()))
        elif name in known:
            targets.append(Target(name))
        else:
            raise UnknownExperiment(
                f"unknown experiment {name!r}; expected one of: all, {', '.join(known)}, "
                "or a path to a script (.py)"
            )
    unique = {t.name: t for t in targets}
    return list(unique.values())


def resolve_backends(spec: str | None) -> tuple[list[str], dict[str, str]]:
    """(backends to run, {skipped backend: why}). A named backend that is missing is an error."""
    from kclf.backend import BACKENDS, BackendError, is_installed, pip_extra

    explicit = spec is not None
    default = sorted(BACKENDS, key=lambda b: b != "tensorflow")  # the lecture's backend leads
    names = procs.parse_backends(spec) if explicit else default
    missing = {n: f"not installed (pip install '{pip_extra(n)}')" for n in names if not is_installed(n)}
    if explicit and missing:
        name = next(iter(missing))
        raise BackendError(f"backend {name!r} is {missing[name]}")
    return [n for n in names if n not in missing], missing


def run_dir(out: Path, name: str, backend: str) -> Path:
    return out / "runs" / name / backend


def beside(folder: Path, what: str) -> Path:
    """OUT/runs/NAME/BACKEND.WHAT: a run's logs and outcome, outside the folder it replaces."""
    return folder.parent / f"{folder.name}.{what}"


def command_for(target: Target, backend: str, out: Path) -> list[str]:
    if target.script is not None:
        return [sys.executable, str(target.script)]
    return procs.kclf_command("run", target.name, "--backend", backend, "--out", str(out))


@dataclass
class _Active:
    outcome: RunOutcome
    proc: subprocess.Popen
    started: float
    files: tuple


def _start(target: Target, backend: str, folder: Path, start: str) -> _Active:
    # The folder is ours (OUT/runs/NAME/BACKEND): stale outputs must not pass for new ones.
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)
    env = procs.python_env(KERAS_BACKEND=backend, KCLF_OUT=str(folder.resolve()), KCLF_START=start)
    stdout = open(beside(folder, "stdout.log"), "wb")
    stderr = open(beside(folder, "stderr.log"), "wb")
    proc = procs.spawn(command_for(target, backend, folder.resolve()), env, stdout, stderr)
    return _Active(RunOutcome(target.name, backend, str(folder)), proc, time.monotonic(), (stdout, stderr))


def _read_summary(outcome: RunOutcome) -> None:
    """Read the run's summary.json; one that names another backend fails the run."""
    try:
        outcome.summary = json.loads((Path(outcome.dir) / "summary.json").read_text())
    except (OSError, ValueError):
        outcome.summary = None
    ran_on = (outcome.summary or {}).get("backend")
    if outcome.summary is not None and ran_on != outcome.backend:
        outcome.status = "failed"
        outcome.error = (f"ran on {ran_on!r}, not on {outcome.backend!r}: the script must not set "
                         "KERAS_BACKEND itself (kclf compare sets it)")
        outcome.summary = None


def _finish(active: _Active, status: str | None = None, error: str | None = None) -> RunOutcome:
    """Close a finished (or stopped) run and read what it wrote."""
    for fh in active.files:
        fh.close()
    out = active.outcome
    folder = Path(out.dir)
    out.wall_s = time.monotonic() - active.started
    out.returncode = active.proc.returncode
    out.stderr_tail = procs.tail(beside(folder, "stderr.log"), STDERR_LINES)
    try:
        summary = json.loads((folder / "summary.json").read_text())
    except (OSError, ValueError):
        summary = None
    summary_error = (summary or {}).get("error")
    if status:
        out.status, out.error = status, error
    elif out.returncode == 0 and summary is None:
        out.status = "failed"
        out.error = "exited 0 but wrote no summary.json (a script must call kclf.runner.save)"
    elif out.returncode == 0:
        out.status = "ok" if summary.get("status", "ok") == "ok" else summary["status"]
        out.error = summary_error
    elif out.returncode == 3:
        out.status, out.error = "diverged", summary_error or "training diverged"
    elif out.returncode == 130:
        out.status, out.error = "interrupted", "interrupted"
    else:
        out.status = "failed"
        how = f"killed by signal {-out.returncode}" if out.returncode < 0 else f"exit {out.returncode}"
        last = out.stderr_tail[-1] if out.stderr_tail else ""
        out.error = f"{how}: {summary_error or last}".rstrip(": ")
    _read_summary(out)
    record = {k: v for k, v in asdict(out).items() if k != "summary"}
    atomic_write(beside(folder, OUTCOME), json.dumps(record, indent=1))
    return out


def reuse(targets: list[Target], backends: list[str], out: Path) -> dict[tuple[str, str], RunOutcome]:
    """The outcomes of an earlier compare into ``out``: diff again without running again.

    Names with no run at all there are a UsageError, before anything is written."""
    outcomes, absent = {}, []
    for target in targets:
        found = False
        for backend in backends:
            folder = run_dir(out, target.name, backend)
            outcome = RunOutcome(target.name, backend, str(folder), error="not run (nothing to --reuse)")
            try:
                outcome = RunOutcome(**json.loads(beside(folder, OUTCOME).read_text()))
                outcome.dir = str(folder)
                found = True
                _read_summary(outcome)
            except (OSError, ValueError, TypeError):
                pass
            outcomes[(target.name, backend)] = outcome
        if not found:
            absent.append(target.name)
    if absent:
        raise UsageError(f"--reuse: no runs of {', '.join(absent)} in {out / 'runs'}; expected "
                         "names an earlier kclf compare --out there ran (or drop --reuse)")
    return outcomes


class Estimate:
    """Seconds each run is expected to take: its wall time in the last compare into the same
    folder, else the mean of this compare's runs of that experiment, else of all runs so far."""

    def __init__(self, out: Path, keys):
        self.previous: dict[tuple[str, str], float] = {}
        for name, backend in keys:
            try:
                wall = json.loads(beside(run_dir(out, name, backend), OUTCOME).read_text())["wall_s"]
                self.previous[(name, backend)] = float(wall)
            except (OSError, ValueError, KeyError, TypeError):
                pass
        self.seen: dict[tuple[str, str], float] = {}

    def of(self, key: tuple[str, str]) -> float | None:
        if key in self.previous:
            return self.previous[key]
        same = [s for k, s in self.seen.items() if k[0] == key[0]]
        pool = same or list(self.seen.values())
        return sum(pool) / len(pool) if pool else None

    def left(self, queued, active: dict, jobs: int) -> float | None:
        """Seconds until every queued and running run is done, ``jobs`` at a time."""
        now, total = time.monotonic(), 0.0
        for key, running in active.items():
            guess = self.of(key)
            if guess is None:
                return None
            total += max(guess - (now - running.started), 0.0)
        for key in queued:
            guess = self.of(key)
            if guess is None:
                return None
            total += guess
        return total / max(min(jobs, len(queued) + len(active)), 1)


def execute(
    targets: list[Target], backends: list[str], out: Path, *,
    jobs: int = 1, timeout: float = DEFAULT_TIMEOUT_S, progress=None, start: str = "tensorflow",
) -> tuple[dict[tuple[str, str], RunOutcome], bool]:
    """Run every (target, backend), ``jobs`` at a time, the longest (last time) first;
    returns (outcomes, interrupted). ``progress(done, total, elapsed, outcome, left)``."""
    by_name = {t.name: t for t in targets}
    keys = [(t.name, b) for t in targets for b in backends]
    estimate = Estimate(out, keys)
    queue = sorted(keys, key=lambda k: -(estimate.previous.get(k, float("inf"))))  # stable: unknown first
    total = len(queue)
    outcomes: dict[tuple[str, str], RunOutcome] = {}
    active: dict[tuple[str, str], _Active] = {}
    begun = time.monotonic()

    def done(result: RunOutcome) -> None:
        key = (result.experiment, result.backend)
        outcomes[key] = result
        if result.wall_s is not None:
            estimate.seen[key] = result.wall_s
        if progress:
            progress(len(outcomes), total, time.monotonic() - begun, result,
                     estimate.left(queue, active, jobs))

    try:
        while queue or active:
            while queue and len(active) < jobs:
                name, backend = key = queue.pop(0)
                active[key] = _start(by_name[name], backend, run_dir(out, name, backend), start)
            for key, running in list(active.items()):
                if running.proc.poll() is not None:
                    done(_finish(active.pop(key)))
                elif time.monotonic() - running.started > timeout:
                    procs.stop(running.proc)
                    done(_finish(active.pop(key), "timeout", f"exceeded the per-run timeout of {timeout:g} s"))
            time.sleep(0.05)
    except KeyboardInterrupt:
        for key, running in active.items():
            procs.stop(running.proc)
            outcomes[key] = _finish(running, "interrupted", "interrupted (Ctrl-C) before it finished")
        for name, backend in queue:
            outcomes[(name, backend)] = RunOutcome(
                name, backend, str(run_dir(out, name, backend)), error="not run: compare was interrupted")
        return outcomes, True
    return outcomes, False
