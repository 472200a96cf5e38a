"""The drift phase of ``kclf compare``: after the runs, for each experiment whose reference
run recorded its states (the demos under a replay start, kclf.trace.states), replay steps
of every backend from the reference's state (kclf.compare.replay), run the reference again
from 1-ulp perturbed starts (kclf.compare.envelope), and say why each backend parts
(kclf.compare.diagnosis).

Sampling: a fit's steps with a recorded state are its traced ones (every step of iris's
short fits, every 5th of its long ones, one a epoch for stroke). Up to ``replay_steps`` of
them are replayed per fit and backend: all when there are no more, else that many evenly
spaced, plus the first three and the two on each side of every backend's first parting.
The reference replays a few of its own (the first two, the partings, the last): they must
reproduce its run bit for bit, which checks the replay itself.

Everything goes to OUT/drift/NAME/: replay-BACKEND.csv (and its request and log),
envelope-I/ (a perturbed run's folder) and its log. Each process is started ``jobs`` at a
time; ``--reuse`` keeps an output whose inputs are unchanged (a .key file beside it).
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import numpy as np

from kclf import procs
from kclf.compare import envelope as envelope_mod
from kclf.compare import tolerances
from kclf.compare.diagnosis import Diagnosis, fit_steps, same_start, split_fit

DEFAULT_REPLAY_STEPS = 60


@dataclass
class Task:
    """One process of the drift phase."""

    what: str  # "iris: replay on jax"
    command: list[str]
    env: dict
    log: Path
    output: Path  # what it leaves when it worked
    key: str  # its inputs, for --reuse
    proc: object = None
    handle: object = None  # its log, open while it runs
    started: float = 0.0
    wall_s: float | None = None
    error: str | None = None
    reused: bool = False


@dataclass
class Cost:
    """What the drift phase took, for the report."""

    wall_s: float = 0.0
    tasks: dict[str, float | None] = field(default_factory=dict)  # what -> seconds (None: reused)
    problems: list[str] = field(default_factory=list)


def _sha(*parts) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part if isinstance(part, bytes) else str(part).encode())
    return digest.hexdigest()[:20]


def _read(path: Path) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError:
        return b""


def states_folder(exp) -> Path | None:
    """The reference run's states/, when it recorded one."""
    if exp.reference is None:
        return None
    run = exp.runs[exp.reference].outcome
    folder = Path(run.dir) / "states" if run.dir else None
    return folder if folder is not None and folder.is_dir() and run.ok else None


def sample(recorded: list[int], cap: int, must: set[int]) -> list[int]:
    """Up to ``cap`` of the ``recorded`` steps, evenly spaced, with the first three and the
    ``must`` steps (and their recorded neighbours, two a side) always in."""
    recorded = sorted(recorded)
    if len(recorded) <= cap:
        return recorded
    index = set(np.linspace(0, len(recorded) - 1, cap).round().astype(int).tolist())
    index |= {0, 1, 2}
    position = {s: i for i, s in enumerate(recorded)}
    for step in must:
        if step in position:
            i = position[step]
            index |= set(range(max(i - 2, 0), min(i + 3, len(recorded))))
    return [recorded[i] for i in sorted(index)]


def _partings(exp) -> dict[str, set[int]]:
    """fit -> the steps where some backend's weights first leave the reference's."""
    out: dict[str, set[int]] = {}
    for pair in exp.pairs.values():
        weights = (pair.traces.quantities if pair.traces else {}).get("weights")
        if weights is not None and not weights.within:
            out.setdefault(weights.first_run, set()).add(weights.first_step)
    return out


def _recorded(folder: Path, fit: str) -> list[int] | None:
    path = folder / f"{quote(fit, safe='')}.npz"
    try:
        with np.load(path, allow_pickle=False) as npz:
            return [int(s) for s in npz["steps"]]
    except (OSError, KeyError, ValueError):
        return None


def plan(exp, out: Path, settings, *, replay_steps: int, envelope_runs: int,
         horizon: int | None) -> tuple[list[Task], dict]:
    """The processes for one experiment, and what the analysis needs to read them."""
    from kclf.compare.runs import Target, command_for

    folder = states_folder(exp)
    ref = exp.reference
    frame = exp.frames.get(ref)
    if folder is None or frame is None:
        return [], {}
    where = out / "drift" / exp.name
    where.mkdir(parents=True, exist_ok=True)
    partings = _partings(exp)
    fits, chosen, own = [], {}, {}
    for fit in dict.fromkeys(frame["run"]):
        recorded = _recorded(folder, fit)
        if not recorded:
            continue
        fits.append(fit)
        chosen[fit] = sample(recorded, replay_steps, partings.get(fit, set()))
        checks = {recorded[0], recorded[min(1, len(recorded) - 1)], recorded[-1],
                  *partings.get(fit, set())}
        own[fit] = sorted(s for s in checks if s in set(recorded))
    if not fits:
        return [], {}
    gradients = {}
    for n, fit in enumerate(fits):
        steps = fit_steps(frame, fit)
        have = np.isin(chosen[fit], steps.steps)
        chosen[fit] = [s for s, ok in zip(chosen[fit], have) if ok]
        gradients[f"g{n}"] = steps.at(chosen[fit]).gradient.astype("float32")
    grad_path = where / "gradients.npz"
    np.savez(grad_path, **gradients)
    ref_summary = _read(Path(exp.runs[ref].outcome.dir) / "summary.json")
    tasks = []
    for backend, run in exp.runs.items():
        if not run.outcome.ok or replay_steps <= 0:
            continue
        steps = own if backend == ref else chosen
        request = {"states": str(folder.resolve()), "steps": {f: steps[f] for f in fits},
                   "gradients": str(grad_path.resolve()) if backend != ref else None,
                   "out": str((where / f"replay-{backend}.csv").resolve())}
        path = where / f"replay-{backend}.json"
        path.write_text(json.dumps(request))
        tasks.append(Task(f"{exp.name}: {backend}'s steps from {ref}'s states",
                          [sys.executable, "-m", "kclf.compare.replay", str(path.resolve())],
                          procs.python_env(KERAS_BACKEND=backend), where / f"replay-{backend}.log",
                          where / f"replay-{backend}.csv",
                          _sha(ref_summary, json.dumps(request), _read(Path(run.outcome.dir) / "summary.json"))))
    if exp.script is None:
        target = Target(exp.name)
        for seed in range(1, envelope_runs + 1):
            run_dir = (where / f"envelope-{seed}").resolve()
            env = procs.python_env(KERAS_BACKEND=ref, **{envelope_mod.PERTURB_ENV: str(seed),
                                                         envelope_mod.HORIZON_ENV: str(horizon or 0)})
            tasks.append(Task(f"{exp.name}: {ref} from a 1-ulp perturbed start (seed {seed})",
                              command_for(target, ref, run_dir, settings), env,
                              where / f"envelope-{seed}.log", run_dir / "summary.json",
                              _sha(json.dumps(exp.runs[ref].outcome.made, sort_keys=True), seed,
                                   horizon)))
    return tasks, {"where": where, "fits": fits, "chosen": chosen, "own": own,
                   "recorded": {f: len(_recorded(folder, f) or []) for f in fits}}


def _start(task: Task) -> None:
    task.log.parent.mkdir(parents=True, exist_ok=True)
    task.output.with_name(task.output.name + ".key").unlink(missing_ok=True)
    task.handle = open(task.log, "wb")
    task.proc = procs.spawn(task.command, task.env, task.handle, task.handle)
    task.started = time.monotonic()


def _finish(task: Task, error: str | None = None) -> None:
    task.wall_s = time.monotonic() - task.started
    task.handle.close()
    code = task.proc.returncode
    if error:
        task.error = error
    elif code != 0 or not task.output.is_file():
        last = procs.tail(task.log, 1)
        task.error = f"exit {code}" + (f": {last[-1]}" if last else "")
    else:
        task.output.with_name(task.output.name + ".key").write_text(task.key)


def execute(tasks: list[Task], *, jobs: int, timeout: float, reuse: bool, progress=None) -> None:
    """Run the tasks ``jobs`` at a time (``reuse``: keep an output made from the same inputs).
    Ctrl-C stops them all and is raised again."""
    queue = []
    for task in tasks:
        key_file = task.output.with_name(task.output.name + ".key")
        if reuse and task.output.is_file() and _read(key_file).decode(errors="replace") == task.key:
            task.reused = True
        else:
            queue.append(task)
    active: list[Task] = []
    try:
        while queue or active:
            while queue and len(active) < jobs:
                task = queue.pop(0)
                _start(task)
                active.append(task)
            for task in list(active):
                if task.proc.poll() is not None:
                    _finish(task)
                elif time.monotonic() - task.started > timeout:
                    procs.stop(task.proc)
                    _finish(task, f"exceeded the timeout of {timeout:g} s")
                else:
                    continue
                active.remove(task)
                if progress:
                    progress(task)
            time.sleep(0.05)
    except KeyboardInterrupt:
        for task in active:
            procs.stop(task.proc)
            _finish(task, "interrupted")
        raise


def _same_start(exp) -> None:
    """Without a replay: each backend's fits read from the traces alone (every step traced,
    the same start): how long they stay bit-identical, and what part differs first."""
    ref = exp.frames.get(exp.reference)
    for backend, pair in exp.pairs.items():
        other = exp.frames.get(backend)
        if ref is None or other is None or (pair.diagnosis and pair.diagnosis.start):
            continue
        fits = same_start(ref, other)
        if fits:
            pair.diagnosis = pair.diagnosis or Diagnosis(backend, exp.reference)
            pair.diagnosis.same_start = fits


def _rejudge(exp, tol) -> None:
    """Judge every backend again under ``tol`` (the measured tolerance)."""
    from kclf.compare.verdict import compare_pair

    exp.tolerance = tol
    ref = exp.runs[exp.reference].outcome
    for backend, pair in list(exp.pairs.items()):
        again = compare_pair(ref, exp.runs[backend].outcome, tol, exp.frames)
        again.diagnosis = again.diagnosis or pair.diagnosis
        exp.pairs[backend] = again


def _replay_frame(path: Path):
    import pandas as pd

    return pd.read_csv(path, dtype={"run": str, "variable": str, "index": str},
                       keep_default_na=False, na_values={c: ["", "nan", "NaN"] for c in (
                           "weight_before", "gradient", "weight_after", "loss", "learning_rate",
                           "update_after")})


def _bit_identical(a, b, steps) -> tuple[int, int]:
    """(steps whose rows are bit-identical in every traced column, steps compared)."""
    if a is None or b is None:
        return 0, 0
    steps = [s for s in steps if s in set(a.steps.tolist()) and s in set(b.steps.tolist())]
    if not steps:
        return 0, 0
    x, y = a.at(steps), b.at(steps)
    same = [(np.array_equal(x.before[i], y.before[i]) and np.array_equal(x.gradient[i], y.gradient[i])
             and np.array_equal(x.after[i], y.after[i]) and x.loss[i] == y.loss[i])
            for i in range(len(steps))]
    return sum(same), len(steps)


def analyse(exp, info: dict, tasks: list[Task], *, horizon: int | None, replay_steps: int) -> None:
    """Read what the tasks left and attach the envelope and each backend's diagnosis."""
    from kclf.compare.diff import TraceError, compare_traces, read_trace

    where, fits, ref = info["where"], info["fits"], exp.reference
    ref_frame = exp.frames[ref]
    failed = {t.output: t.error for t in tasks if t.error}
    frames, results = [], []
    for task in tasks:
        if task.output.name == "summary.json" and task.output not in failed:
            try:
                frames.append(read_trace(task.output.parent / "trace.csv"))
                results.append(json.loads(task.output.read_text()).get("results"))
            except (TraceError, OSError, ValueError) as exc:
                failed[task.output] = str(exc)
    env = None
    if frames:
        ref_results = exp.runs[ref].outcome.summary.get("results") if exp.runs[ref].outcome.summary else None
        env = envelope_mod.measure(ref_frame, frames, ref_results, results, horizon)
        for frame in frames:  # the hand-chosen tolerance's criterion, as for a backend
            for quantity, q in compare_traces(ref_frame, frame, exp.tolerance).quantities.items():
                env.add_beyond(quantity, q.max_abs, q.max_rel, q.first_run, q.first_step)
        exp.envelope = env
        if env.results:  # whole fits: the printed numbers are judged by the envelope
            _rejudge(exp, tolerances.measured(exp.tolerance, env.results, envelope_mod.MARGIN,
                                              env.runs, ref))
    problems = [f"{t.what}: {failed[t.output]} (log: {t.log})" for t in tasks if t.output in failed]
    own_check = ""
    own_path = where / f"replay-{ref}.csv"
    if own_path.is_file() and own_path not in failed:
        mine = _replay_frame(own_path)
        same = total = 0
        for fit in fits:
            s, n = _bit_identical(fit_steps(ref_frame, fit), fit_steps(mine, fit), info["own"][fit])
            same, total = same + s, total + n
        own_check = (f"the replay reproduces {same} of {total} of {ref}'s own recorded steps bit "
                     f"for bit")
    sampling = (f"replayed per fit: every traced step up to {replay_steps}, else {replay_steps} "
                "evenly spaced ones plus the first three and two on each side of a parting "
                "step")
    if env is not None:
        sampling += (f"; envelope: {env.runs} runs of {ref} from 1-ulp perturbed starts, "
                     + (f"the first {horizon} steps of each fit" if horizon else "whole fits")
                     + f", margin x{envelope_mod.MARGIN:g}")
    for backend, pair in exp.pairs.items():
        diag = pair.diagnosis or Diagnosis(backend, ref)
        pair.diagnosis = diag
        diag.sampling = sampling
        diag.problems += problems
        path = where / f"replay-{backend}.csv"
        if not path.is_file() or path in failed:
            continue
        replay, other = _replay_frame(path), exp.frames.get(backend)
        weights = (pair.traces.quantities if pair.traces else {}).get("weights")
        same = total = 0
        for fit in fits:
            rep, mine = fit_steps(replay, fit), fit_steps(other, fit) if other is not None else None
            ref_steps = fit_steps(ref_frame, fit)
            if rep is None or ref_steps is None:
                continue
            parting = weights.first_step if weights is not None and weights.first_run == fit else None
            diag.fits[fit] = split_fit(fit, ref_steps, mine, rep, exp.tolerance, parting, env,
                                       info["recorded"].get(fit))
            s, n = _bit_identical(mine, rep, [int(ref_steps.steps[0])])
            same, total = same + s, total + n
        checks = [f"{backend}'s replay reproduces its own first step in {same} of {total} fits "
                  "bit for bit (the same state: every fit starts from the captured weights)"]
        if own_check:
            checks.append(own_check)
        diag.self_check = "; ".join(checks)


def diagnose(comparison, out: Path, settings, *, jobs: int = 1, timeout: float = 900.0,
             replay_steps: int = DEFAULT_REPLAY_STEPS, envelope_runs: int = envelope_mod.DEFAULT_RUNS,
             horizon: int | None = envelope_mod.DEFAULT_HORIZON, reuse: bool = False,
             progress=None) -> Cost:
    """The drift phase for every experiment that can be replayed; returns its cost."""
    began = time.monotonic()
    cost = Cost()
    planned = []
    for exp in comparison.experiments.values():
        if exp.verdict in ("failed", "incomplete"):
            continue
        tasks, info = [], {}
        if replay_steps or envelope_runs:
            tasks, info = plan(exp, out, settings, replay_steps=replay_steps,
                               envelope_runs=envelope_runs, horizon=horizon)
        if tasks:
            planned.append((exp, tasks, info))
        elif exp.tolerance.step_by_step:
            _same_start(exp)
    every = [t for _, tasks, _ in planned for t in tasks]
    if not every:
        return cost
    if progress:
        progress(None, len(every))
    execute(every, jobs=jobs, timeout=timeout, reuse=reuse,
            progress=(lambda task: progress(task, len(every))) if progress else None)
    for exp, tasks, info in planned:
        analyse(exp, info, tasks, horizon=horizon, replay_steps=replay_steps)
        exp.drift_cost = {t.what: (None if t.reused else t.wall_s) for t in tasks}
    cost.tasks = {t.what: (None if t.reused else t.wall_s) for t in every}
    cost.problems = [f"{t.what}: {t.error}" for t in every if t.error]
    cost.wall_s = time.monotonic() - began
    return cost
