"""Running: each (experiment, backend) in its own process, ``jobs`` at a time, longest first.

Every run is its own process with KERAS_BACKEND set before keras is imported; its output
folder is OUT/runs/NAME/BACKEND, its logs and outcome beside it (BACKEND.stdout.log,
BACKEND.stderr.log, BACKEND.outcome.json). A run that reports another backend than the one
it was started for fails.

A process is a :class:`Job` (:func:`start` for one run, :func:`start_batch` for several of
one backend); kclf.compare.schedule decides which start when and watches them through it.

The outcome also records what the run was made with (:func:`made_with`: kclf's version, the
backend's versions, --devices, and the --start, --edition and --data that apply to it), so
that ``--reuse`` takes a run only if this compare would have made it the same way; any other,
and a run whose files are missing or unreadable, is "not run" (the report is INCOMPLETE).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field, fields
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
    devices: int = 1  # given in the environment (kclf.devices), not on the command line

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
    made: dict | None = None  # what it was made with (made_with), for --reuse
    summary: dict | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"


STATUSES = ("ok", "diverged", "failed", "timeout", "interrupted", "not run")


def made_with(target: Target, backend: str, settings: Settings) -> dict:
    """What a run's numbers depend on besides the code it runs, as this compare gives it:
    kclf's version, the script (None for an experiment), the backend's versions, --devices,
    and the --start, --edition and --data that apply to it (the data by its content)."""
    from kclf import __version__, registry
    from kclf.backend import versions
    from kclf.editions import STROKE_CSV_ENV

    info = registry.discover().get(target.name) if target.script is None else None
    made = {"kclf": __version__, "script": str(target.script) if target.script else None,
            "versions": versions(backend), "devices": settings.devices}
    if info is not None and info.starts:
        made["start"] = settings.start
    if info is not None and info.editions:
        made["edition"] = settings.edition
    if info is None or info.reads_data:
        # kclf run falls back on the variable; a script reads --data only (KCLF_DATA).
        data = settings.data if info is None else settings.data or os.environ.get(STROKE_CSV_ENV)
        made["data"] = _data(data)
    return made


def _data(path: str | None) -> dict | None:
    if not path:
        return None
    try:
        digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        digest = None
    return {"path": str(path), "sha256": digest}


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
        return [sys.executable, "-m", "kclf.compare.script", str(target.script)]
    return procs.kclf_command("run", target.name, "--backend", backend, "--out", str(out),
                              *(settings or Settings()).arguments(target.name))


@dataclass
class Job:
    """A running process: one run, or (batched) several of one backend, one after another.

    :func:`start` and :func:`start_batch` make one; kclf.compare.schedule watches it with
    :meth:`exited` and :meth:`collect`, ends it with :meth:`stop` or :meth:`close`, and
    turns its current run into a :class:`RunOutcome` with :meth:`finish`.
    """

    keys: list[tuple[str, str]]  # (name, backend), in the order the process runs them
    folders: list[Path]
    proc: subprocess.Popen
    started: float  # when its current run began
    files: tuple = ()
    index: int = 0  # its current run; len(keys) once every run has finished
    batched: bool = False
    script: bool = False  # a user's script: exit 0 is the only success (README, "Compare your own script")
    made: list = field(default_factory=list)  # made_with, per run

    @property
    def key(self) -> tuple[str, str]:
        """(name, backend) of its current run."""
        return self.keys[self.index]

    @property
    def folder(self) -> Path:
        """Its current run's folder."""
        return self.folders[self.index]

    @property
    def left(self) -> list[tuple[str, str]]:
        """The runs it has not finished: the current one, then those after it."""
        return self.keys[self.index:]

    @property
    def done(self) -> bool:
        """Every run of it has finished."""
        return self.index == len(self.keys)

    def exited(self) -> bool:
        return self.proc.poll() is not None

    def stop(self) -> None:
        procs.stop(self.proc)

    def finish(self, status: str | None = None, error: str | None = None,
               returncode: int | None = None) -> RunOutcome:
        """Close the current run (finished, or stopped with ``status``), read what it wrote
        and record its outcome beside its folder; the job moves on to its next run."""
        name, backend = self.key
        folder = self.folder
        out = RunOutcome(name, backend, str(folder), batched=self.batched,
                         made=self.made[self.index] if self.made else None)
        if not self.batched or self.proc.poll() is not None:
            for fh in self.files:
                fh.close()
        if status:  # stopped (Ctrl-C, timeout): its process cannot clean up after itself
            _remove_unfinished(folder)
        out.wall_s = time.monotonic() - self.started
        out.returncode = self.proc.returncode if returncode is None else returncode
        out.stderr_tail = procs.tail(beside(folder, "stderr.log"), STDERR_LINES)
        summary, problem = _load_summary(folder)
        summary_error = (summary or {}).get("error")
        if status:
            out.status, out.error = status, error
        elif out.returncode == 0 and problem == "missing":
            out.status = "failed"
            out.error = "exited 0 but wrote no summary.json (a script must call kclf.runner.save)"
        elif out.returncode == 0 and summary is None:
            out.status = "failed"
            out.error = (f"{folder / 'summary.json'}: {problem}; expected the summary.json "
                         "kclf.runner.save writes")
        elif out.returncode == 0:
            out.status = "ok" if summary.get("status", "ok") == "ok" else summary["status"]
            out.error = summary_error
        elif out.returncode == 3 and not self.script and (summary or {}).get("status") == "diverged":
            # kclf run's exit 3: the training diverged, as its summary says. Any other exit 3 (a
            # user's script's own, or a run that wrote no such summary) is a failure.
            out.status, out.error = "diverged", summary_error or "training diverged"
        elif out.returncode == 130 and not self.script:
            out.status, out.error = "interrupted", "interrupted"
        else:
            out.status = "failed"
            how = f"killed by signal {-out.returncode}" if out.returncode < 0 else f"exit {out.returncode}"
            last = out.stderr_tail[-1] if out.stderr_tail else ""
            out.error = f"{how}: {summary_error or last}".rstrip(": ")
        _read_summary(out)
        record = {k: v for k, v in asdict(out).items() if k != "summary"}
        atomic_write(beside(folder, OUTCOME), json.dumps(record, indent=1))
        self.index += 1
        self.started = time.monotonic()
        return out

    def collect(self) -> list[RunOutcome]:
        """A batch's runs that ended since the last call (kclf.compare.batch writes each one's
        exit code beside its folder), in order; the job moves on past them."""
        finished = []
        while self.batched and not self.done:
            try:
                code = json.loads(beside(self.folder, EXIT).read_text())["returncode"]
            except (OSError, ValueError, KeyError):
                break
            finished.append(self.finish(returncode=code))
        return finished

    def close(self) -> None:
        """After a batch's last run: the process ends on its own, else it is stopped."""
        try:
            self.proc.wait(timeout=30)
        except Exception:
            self.stop()
        for fh in self.files:
            fh.close()


def start(target: Target, backend: str, folder: Path, settings: Settings) -> Job:
    """One run in a process of its own, into a fresh ``folder``, its logs beside it."""
    resolved = _fresh(folder)
    env = procs.python_env(KERAS_BACKEND=backend, KCLF_OUT=str(resolved))
    if target.script is not None and settings.data is not None:
        env["KCLF_DATA"] = settings.data  # a user's script reads --data from here
    stdout = open(beside(folder, "stdout.log"), "wb")
    stderr = open(beside(folder, "stderr.log"), "wb")
    proc = procs.spawn(command_for(target, backend, resolved, settings), env, stdout, stderr)
    return Job([(target.name, backend)], [folder], proc, time.monotonic(), (stdout, stderr),
               script=target.script is not None, made=[made_with(target, backend, settings)])


def start_batch(names: list[str], backend: str, folders: list[Path], settings: Settings) -> Job:
    """One process for several experiments of one backend (kclf.compare.batch): keras and the
    backend are imported once. Each run still gets its own folder, logs and outcome."""
    items = [f"{name}={_fresh(folder)}" for name, folder in zip(names, folders)]
    env = procs.python_env(KERAS_BACKEND=backend)
    log = open(folders[0].parent.parent / f"batch-{backend}.log", "wb")
    proc = procs.spawn([sys.executable, "-m", "kclf.compare.batch", backend,
                        f"--edition={settings.edition}", *items], env, log, log)
    return Job([(n, backend) for n in names], list(folders), proc, time.monotonic(), (log,),
               batched=True, made=[made_with(Target(n), backend, settings) for n in names])


def _fresh(folder: Path) -> Path:
    # The folder is ours (OUT/runs/NAME/BACKEND): stale outputs must not pass for new ones,
    # nor an earlier run's outcome for this one's (--reuse) if this compare is killed.
    shutil.rmtree(folder, ignore_errors=True)
    _remove_unfinished(folder)
    beside(folder, EXIT).unlink(missing_ok=True)
    beside(folder, OUTCOME).unlink(missing_ok=True)
    folder.mkdir(parents=True, exist_ok=True)
    return folder.resolve()


def _remove_unfinished(folder: Path) -> None:
    """A stopped run's hidden folders beside ``folder`` (kclf.fsio.StagedFolder's .BACKEND.new-*
    and .BACKEND.old-*): killed, it never swapped them in or removed them itself."""
    for left in folder.parent.glob(f".{folder.name}.*-*"):
        shutil.rmtree(left, ignore_errors=True)


SUMMARY_STATUSES = ("ok", "diverged", "failed", "interrupted")  # what kclf.runner writes


def _load_summary(folder: Path) -> tuple[dict | None, str | None]:
    """(the run's summary.json, None), or (None, what is wrong with it: "missing", ...)."""
    try:
        summary = json.loads((folder / "summary.json").read_text())
    except FileNotFoundError:
        return None, "missing"
    except OSError as exc:
        return None, f"cannot be read ({exc.strerror})"
    except ValueError as exc:
        return None, f"not JSON ({str(exc).splitlines()[0]})"
    if not isinstance(summary, dict):
        return None, f"a JSON {type(summary).__name__}, not an object"
    if summary.get("status", "ok") not in SUMMARY_STATUSES:
        return None, f"status {summary['status']!r}, not one of {', '.join(SUMMARY_STATUSES)}"
    for key in ("results", "traces", "timing", "versions"):  # the report reads them as objects
        if not isinstance(summary.get(key) or {}, dict):
            return None, f"field {key!r} is a {type(summary[key]).__name__}, not an object"
    for label, trace in (summary.get("traces") or {}).items():
        if not isinstance(trace, dict) or not isinstance(trace.get("timing") or {}, dict):
            return None, f"trace {label!r} is not an object with a timing object"
    return summary, None


def _read_summary(outcome: RunOutcome) -> None:
    """Read the run's summary.json; one that names another backend fails the run."""
    outcome.summary, _ = _load_summary(Path(outcome.dir))
    ran_on = (outcome.summary or {}).get("backend")
    if outcome.summary is not None and ran_on != outcome.backend:
        outcome.status = "failed"
        outcome.error = (f"ran on {ran_on!r}, not on {outcome.backend!r}: the script must not set "
                         "KERAS_BACKEND itself (kclf compare sets it)")
        outcome.summary = None



def reuse(targets: list[Target], backends: list[str], out: Path,
          settings: Settings | None = None) -> dict[tuple[str, str], RunOutcome]:
    """The outcomes of an earlier compare into ``out``: diff again without running again.

    A run is taken as it was only if this compare would have made it the same way (see
    :func:`made_with`) and its files can be read; any other is "not run", its error saying
    why. Names with no run at all there are a UsageError, before anything is written."""
    settings = settings or Settings()
    outcomes, absent = {}, []
    for target in targets:
        found = False
        for backend in backends:
            folder = run_dir(out, target.name, backend)
            record = beside(folder, OUTCOME)
            if not record.is_file() and (folder / OUTCOME).is_file():
                record = folder / OUTCOME  # a compare from before kclf 12 kept it inside the folder
            found = found or record.is_file() or folder.is_dir()
            outcomes[(target.name, backend)] = _reused(target, backend, folder, record, settings)
        if not found:
            absent.append(target.name)
    if absent:
        raise UsageError(f"--reuse: no runs of {', '.join(absent)} in {out / 'runs'}; expected "
                         "names an earlier kclf compare --out there ran (or drop --reuse)")
    return outcomes


class _Unusable(Exception):
    """A reused run that cannot be diffed: the message names the file and what is wrong."""


AGAIN = "run it again without --reuse"


def _reused(target: Target, backend: str, folder: Path, record: Path, settings: Settings) -> RunOutcome:
    """One run of an earlier compare, or a "not run" outcome saying why it cannot be reused."""
    if not record.is_file():
        return RunOutcome(target.name, backend, str(folder),
                          error=f"nothing to --reuse: no {record.name} in {record.parent}")
    try:
        outcome = _read_outcome(record, target.name, backend)
    except _Unusable as exc:
        return RunOutcome(target.name, backend, str(folder), error=str(exc))
    outcome.dir = str(folder)
    expected = made_with(target, backend, settings)
    try:
        unlike = _unlike(outcome.made, expected)
        if not unlike:
            unlike = _ran_otherwise(_reused_summary(outcome, folder), expected)
        if unlike:
            raise _Unusable(f"--reuse: made with {'; '.join(unlike)}; expected a run made as "
                            f"this compare makes it ({AGAIN})")
    except _Unusable as exc:
        return RunOutcome(target.name, backend, str(folder), error=str(exc), made=outcome.made)
    _read_summary(outcome)
    return outcome


_TYPES = {"experiment": (str,), "backend": (str,), "dir": (str,), "status": (str,),
          "returncode": (int, type(None)), "wall_s": (int, float, type(None)),
          "error": (str, type(None)), "stderr_tail": (list,), "batched": (bool,),
          "made": (dict, type(None)), "summary": (dict, type(None))}


def _read_outcome(record: Path, name: str, backend: str) -> RunOutcome:
    """BACKEND.outcome.json as kclf compare writes it, else _Unusable naming the file."""
    def unusable(problem: str) -> _Unusable:
        return _Unusable(f"{record}: {problem}; expected the outcome an earlier kclf compare "
                         f"wrote ({AGAIN})")

    try:
        data = json.loads(record.read_text())
    except OSError as exc:
        raise unusable(f"cannot be read ({exc.strerror})") from None
    except ValueError as exc:
        raise unusable(f"not JSON ({str(exc).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise unusable(f"a JSON {type(data).__name__}, not an object")
    unknown = [k for k in data if k not in {f.name for f in fields(RunOutcome)}]
    if unknown:
        raise unusable(f"unknown field {unknown[0]!r}")
    for key in ("experiment", "backend", "dir", "status"):
        if key not in data:
            raise unusable(f"no field {key!r}")
    for key, value in data.items():
        if not isinstance(value, _TYPES[key]) or (isinstance(value, bool) and bool not in _TYPES[key]):
            raise unusable(f"field {key!r} is {value!r}")
    if not all(isinstance(line, str) for line in data.get("stderr_tail", [])):
        raise unusable("field 'stderr_tail' holds more than lines of text")
    if data["status"] not in STATUSES:
        raise unusable(f"status {data['status']!r}")
    if (data["experiment"], data["backend"]) != (name, backend):
        raise unusable(f"the outcome of {data['experiment']!r} on {data['backend']}, not of "
                       f"{name!r} on {backend}")
    return RunOutcome(**data)


def _reused_summary(outcome: RunOutcome, folder: Path) -> dict | None:
    """The run's summary.json (and trace.csv, if it lists traces) when its outcome says it
    wrote one; a missing or unreadable one is _Unusable, naming the file."""
    path = folder / "summary.json"
    summary, problem = _load_summary(folder)
    if problem is None and summary.get("traces") and not (folder / "trace.csv").is_file():
        path, problem = folder / "trace.csv", "missing (its summary.json lists traces)"
    if problem is not None and outcome.status in ("ok", "diverged"):
        raise _Unusable(f"{path}: {problem}; expected the files the run wrote ({AGAIN})")
    return summary if problem is None else None


_MADE = {"kclf": "kclf", "script": "script", "devices": "--devices", "start": "--start",
         "edition": "--edition", "data": "--data"}


def _unlike(recorded, expected: dict) -> list[str]:
    """How a reused run was made otherwise than this compare would make it, one phrase each
    ("--start numpy, not torch-2026": the run's, then this compare's)."""
    if not isinstance(recorded, dict):
        return ["settings it did not record (an earlier kclf)"]
    phrases = []
    for key, want in expected.items():
        got = recorded.get(key)
        if key == "versions":
            want, got = want or {}, got if isinstance(got, dict) else {}
            phrases += [f"{name} {got.get(name)}, not {version}"
                        for name, version in want.items() if got.get(name) != version]
        elif key == "data":
            if _data_key(got) != _data_key(want):
                phrases.append(f"--data {_data_text(got)}, not {_data_text(want)}")
        elif got != want:
            phrases.append(f"{_MADE[key]} {got}, not {want}")
    return phrases


def _ran_otherwise(summary: dict | None, expected: dict) -> list[str]:
    """The --start and --edition a run's summary.json says it ran with (kclf run writes them),
    where they are not this compare's."""
    ran = (summary or {}).get("settings")
    if not isinstance(ran, dict):
        return []
    return [f"--{key} {ran[key]} (says its summary.json), not {expected[key]}"
            for key in ("start", "edition") if key in expected and key in ran
            and ran[key] != expected[key]]


def _data_key(data):
    if isinstance(data, dict) and data.get("sha256"):
        return data["sha256"]  # the same rows under another path are the same data
    return data


def _data_text(data) -> str:
    if not isinstance(data, dict):
        return "none" if data is None else str(data)
    digest = data.get("sha256")
    return f"{data.get('path')} ({'sha256 ' + digest[:12] if digest else 'unreadable'})"
