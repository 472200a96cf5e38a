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
EXIT = "exit.json"  # a batched run's exit code, beside its folder (kclf.compare.batch writes it)


@dataclass
class Target:
    """An experiment from experiments/ (``script`` None) or a user's script."""

    name: str
    script: Path | None = None


@dataclass(frozen=True)
class Settings:
    """What every run of one compare is given on its command line (kclf.editions)."""

    start: str = "torch-2026"
    edition: str = "2026"
    data: str | None = None

    def arguments(self, name: str) -> list[str]:
        """``kclf run NAME``'s options for these settings, for the ones NAME takes."""
        from kclf import registry

        info = registry.discover().get(name)
        if info is None:
            return []
        args = []
        if info.starts:
            args += ["--start", self.start]
        if info.editions:
            args += ["--edition", self.edition]
        if info.reads_data and self.data is not None:
            args += ["--data", self.data]
        return args


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
    batched: bool = False  # ran in one process with other experiments of its backend
    summary: dict | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def resolve_targets(names: list[str]) -> list[Target]:
    """Experiment names, ``all`` or script paths → targets; unknown names fail here, and so
    does a script named like an experiment or another script (its runs would take their place:
    OUT/runs/NAME/BACKEND). A path to an experiment's own file is that experiment."""
    from kclf import registry

    names = names or ["all"]
    known = registry.discover()
    files = {info.path.resolve(): n for n, info in known.items()}
    targets: list[Target] = []
    for name in names:
        if name == "all":
            targets += [Target(n) for n, info in known.items() if info.in_all]
        elif name.endswith(".py") or os.sep in name:
            path = Path(name)
            if not path.is_file():
                raise UnknownExperiment(f"script {name!r} not found; expected a path to a .py file")
            resolved = path.resolve()
            targets.append(Target(files[resolved]) if resolved in files else Target(path.stem, resolved))
        elif name in known:
            targets.append(Target(name))
        else:
            raise UnknownExperiment(
                f"unknown experiment {name!r}; expected one of: all, {', '.join(known)}, "
                "or a path to a script (.py)"
            )
    unique: dict[str, Target] = {}
    for target in targets:
        first = unique.setdefault(target.name, target)
        if first.script != target.script:
            script, other = (target, first) if target.script is not None else (first, target)
            what = (f"the script {other.script}" if other.script is not None
                    else f"the experiment {target.name!r} ({known[target.name].path})")
            raise UsageError(f"script {script.script}: named {target.name!r} like {what}; "
                             "expected a name of its own (rename the script's file)")
    return list(unique.values())


def resolve_backends(spec: str | None, reference: str = "torch") -> tuple[list[str], dict[str, str]]:
    """(backends to run, {skipped backend: why}). A named backend that is missing is an error.
    Without ``spec``, every backend with ``reference`` (the edition's backend) first."""
    from kclf.backend import BACKENDS, BackendError, is_installed, pip_extra

    explicit = spec is not None
    default = sorted(BACKENDS, key=lambda b: b != reference)  # the reference leads
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


def command_for(target: Target, backend: str, out: Path, settings: Settings | None = None) -> list[str]:
    if target.script is not None:
        return [sys.executable, str(target.script)]
    return procs.kclf_command("run", target.name, "--backend", backend, "--out", str(out),
                              *(settings or Settings()).arguments(target.name))


@dataclass
class _Active:
    """A running process: one run, or (batched) several of one backend, one after another."""

    keys: list[tuple[str, str]]  # (name, backend), in the order the process runs them
    folders: list[Path]
    proc: subprocess.Popen
    started: float  # when its current run began
    files: tuple = ()
    index: int = 0
    batched: bool = False
    script: bool = False  # a user's script: exit 0 is the only success (README, "Compare your own script")

    @property
    def key(self) -> tuple[str, str]:
        return self.keys[self.index]


def _fresh(folder: Path) -> Path:
    # The folder is ours (OUT/runs/NAME/BACKEND): stale outputs must not pass for new ones.
    shutil.rmtree(folder, ignore_errors=True)
    for left in folder.parent.glob(f".{folder.name}.*-*"):  # a killed run's unfinished folders
        shutil.rmtree(left, ignore_errors=True)
    beside(folder, EXIT).unlink(missing_ok=True)
    folder.mkdir(parents=True, exist_ok=True)
    return folder.resolve()


def _start(target: Target, backend: str, folder: Path, settings: Settings) -> _Active:
    resolved = _fresh(folder)
    env = procs.python_env(KERAS_BACKEND=backend, KCLF_OUT=str(resolved))
    if target.script is not None and settings.data is not None:
        env["KCLF_DATA"] = settings.data  # a user's script reads --data from here
    stdout = open(beside(folder, "stdout.log"), "wb")
    stderr = open(beside(folder, "stderr.log"), "wb")
    proc = procs.spawn(command_for(target, backend, resolved, settings), env, stdout, stderr)
    return _Active([(target.name, backend)], [folder], proc, time.monotonic(), (stdout, stderr),
                   script=target.script is not None)


def _start_batch(names: list[str], backend: str, folders: list[Path], settings: Settings) -> _Active:
    """One process for several experiments of one backend (kclf.compare.batch): keras and the
    backend are imported once. Each run still gets its own folder, logs and outcome."""
    items = [f"{name}={_fresh(folder)}" for name, folder in zip(names, folders)]
    env = procs.python_env(KERAS_BACKEND=backend)
    log = open(folders[0].parent.parent / f"batch-{backend}.log", "wb")
    proc = procs.spawn([sys.executable, "-m", "kclf.compare.batch", backend,
                        f"--edition={settings.edition}", *items], env, log, log)
    return _Active([(n, backend) for n in names], list(folders), proc, time.monotonic(), (log,),
                   batched=True)


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


def _finish(active: _Active, status: str | None = None, error: str | None = None,
            returncode: int | None = None) -> RunOutcome:
    """Close active's current run (finished or stopped) and read what it wrote."""
    name, backend = active.key
    folder = active.folders[active.index]
    out = RunOutcome(name, backend, str(folder), batched=active.batched)
    if not active.batched or active.proc.poll() is not None:
        for fh in active.files:
            fh.close()
    out.wall_s = time.monotonic() - active.started
    out.returncode = active.proc.returncode if returncode is None else returncode
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
    elif out.returncode == 3 and not active.script and (summary or {}).get("status") == "diverged":
        # kclf run's exit 3: the training diverged, as its summary says. Any other exit 3 (a
        # user's script's own, or a run that wrote no such summary) is a failure.
        out.status, out.error = "diverged", summary_error or "training diverged"
    elif out.returncode == 130 and not active.script:
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
            record = beside(folder, OUTCOME)
            if not record.is_file():  # a compare from before kclf 12 kept it inside the folder
                record = folder / OUTCOME
            try:
                outcome = RunOutcome(**json.loads(record.read_text()))
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
