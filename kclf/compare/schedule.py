"""Scheduling the runs: ``jobs`` processes at a time, the longest (last time) first, with an
estimate of the time left; the short experiments of one backend share one process.

A job is one process: a single run (the demos, a user's script), or a batch: every short
experiment (those without --start modes) of one backend, run one after another by
kclf.compare.batch, so keras and the backend are imported once per backend instead of once
per run. Each run keeps its own folder, logs, outcome, wall time and timeout; if a batch
dies or a run in it passes the timeout, the runs it had not reached start again on their own.
"""

from __future__ import annotations

import json
import math
import signal
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from kclf import procs
from kclf.compare import costs, runs
from kclf.compare.runs import OUTCOME, RunOutcome, Target, beside, run_dir
from kclf.progress import PREFIX as PROGRESS_PREFIX
from kclf.trace.interrupt import caught


class Estimate:
    """Seconds each run is expected to take: its wall time in the last compare into the same
    folder, else its shipped cost (kclf.compare.costs) scaled by how this machine compares so
    far, else the mean of this compare's runs of that experiment, else of all runs so far."""

    def __init__(self, out: Path, keys, edition: str = "2026"):
        self.previous: dict[tuple[str, str], float] = {}
        for name, backend in keys:
            try:
                wall = float(json.loads(beside(run_dir(out, name, backend), OUTCOME).read_text())["wall_s"])
            except (OSError, ValueError, KeyError, TypeError):
                continue
            if math.isfinite(wall) and wall >= 0:  # an edited outcome must not upset the order
                self.previous[(name, backend)] = wall
        self.shipped = {key: c for key in keys if (c := costs.cost(*key, edition)) is not None}
        self.seen: dict[tuple[str, str], float] = {}

    @property
    def speed(self) -> float:
        """This machine's pace against the shipped costs, from the runs finished so far."""
        pairs = [(s, self.shipped[k]) for k, s in self.seen.items()  # whole processes only
                 if k in self.shipped and not costs.shares_a_process(k[0])]
        spent, shipped = sum(p[0] for p in pairs), sum(p[1] for p in pairs)
        if shipped < 30.0:  # a few short runs say little; imports dominate them
            return 1.0
        return min(max(spent / shipped, 0.25), 4.0)

    def of(self, key: tuple[str, str]) -> float | None:
        if key in self.previous:
            return self.previous[key]
        if key in self.shipped:
            return self.shipped[key] * self.speed
        same = [s for k, s in self.seen.items() if k[0] == key[0]]
        pool = same or list(self.seen.values())
        return sum(pool) / len(pool) if pool else None

    def expected(self, key: tuple[str, str]) -> float | None:
        """What a run was expected to take before this compare: its last wall time here, else
        its shipped cost (not scaled: a timeout must not shrink on a fast start)."""
        return self.previous.get(key, self.shipped.get(key))

    def job(self, keys) -> float:
        """A job's expected seconds, for the order; unknown runs count as long (they start first)."""
        guesses = [self.previous.get(k, self.shipped.get(k)) for k in keys]
        return float("inf") if None in guesses else sum(guesses) + self._startup(keys)

    def _startup(self, keys) -> float:
        """The start-up a job of short experiments pays before its first one (their shipped
        costs leave it out; a previous wall time includes it)."""
        first = keys[0]
        if first in self.previous or first not in self.shipped or not costs.shares_a_process(first[0]):
            return 0.0
        return costs.startup(first[1]) * self.speed

    def left(self, queued, active: dict, jobs: int) -> float | None:
        """Seconds until every queued and running run is done: the queue played out on ``jobs``
        processes, each queued job starting when the first process is free."""
        now = time.monotonic()
        free = []
        for running in active.values():
            guess = self.of(running.key)
            if guess is None:
                return None
            rest = [self.of(k) for k in running.left[1:]]
            if None in rest:
                return None
            free.append(max(guess - (now - running.started), 0.0) + sum(rest))
        free += [0.0] * max(jobs - len(free), 0)
        for job in queued:
            guesses = [self.of(k) for k in job]
            if None in guesses:
                return None
            free.sort()
            free[0] += sum(guesses) + self._startup(job)
        return max(free) if free else 0.0


def plan(targets: list[Target], backends: list[str], batch: bool) -> list[list[tuple[str, str]]]:
    """The jobs: a batch per backend of the short experiments (when ``batch``), the rest alone."""
    from kclf import registry

    known = registry.discover()
    short = [t.name for t in targets if batch and t.script is None and t.name in known
             and not known[t.name].starts]
    jobs = [[(t.name, b)] for t in targets for b in backends if t.name not in short]
    if len(short) > 1:
        jobs += [[(n, b) for n in short] for b in backends]
    else:
        jobs += [[(n, b)] for n in short for b in backends]
    return jobs


def _launch(job, by_name: dict[str, Target], out: Path, settings: runs.Settings) -> runs.Job:
    if len(job) == 1:
        (name, backend), = job
        return runs.start(by_name[name], backend, run_dir(out, name, backend), settings)
    backend = job[0][1]
    return runs.start_batch([n for n, _ in job], backend, [run_dir(out, n, backend) for n, _ in job],
                            settings)


TIMEOUT_FACTOR = 4.0  # a run's default timeout: this many times its expected cost, if longer


def _step(running: runs.Job, timeout: float | Callable):
    """(finished outcomes, runs to start again alone, whether the process is done).
    ``timeout``: seconds, or a function of the current run's key giving them."""
    finished = running.collect()
    if running.done:
        running.close()
        return finished, [], True
    if callable(timeout):
        timeout = timeout(running.key)
    if running.exited():
        finished.append(running.finish())
    elif time.monotonic() - running.started > timeout:
        running.stop()
        finished.append(running.finish("timeout", f"exceeded the per-run timeout of {timeout:g} s"))
    else:
        return finished, [], False
    return finished, [[key] for key in running.left], True


@contextmanager
def _stopped_as_by_ctrl_c():
    """SIGTERM and SIGHUP (kill, a closed terminal) stop the compare as Ctrl-C does: the runs
    are in sessions of their own, so a compare killed outright would leave them running,
    still writing into OUT/runs/, and no report."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


HEARTBEAT_S = 10.0  # a "still running" line this often while no run finishes


@dataclass
class Running:
    """A run in progress, for the heartbeat: its key, how long it has run, and the last
    progress line its process wrote (kclf.progress), if any."""

    name: str
    backend: str
    seconds: float
    doing: str


def _running(active: dict) -> list[Running]:
    now = time.monotonic()
    out = []
    for job in active.values():
        if job.done:
            continue
        last = procs.tail(beside(job.folder, "stderr.log"), 1)
        doing = last[0] if last and last[0].startswith(PROGRESS_PREFIX) else ""
        out.append(Running(*job.key, now - job.started, doing.removeprefix(PROGRESS_PREFIX).strip()))
    return out


def execute(
    targets: list[Target], backends: list[str], out: Path, *, jobs: int = 1,
    timeout: float | None = None, progress=None, settings: runs.Settings | None = None,
    batch: bool = True, heartbeat=None, every_s: float = HEARTBEAT_S,
) -> tuple[dict[tuple[str, str], RunOutcome], bool]:
    """Run every (target, backend), ``jobs`` processes at a time, the longest first;
    returns (outcomes, interrupted). ``timeout``: seconds per run; None: DEFAULT_TIMEOUT_S, or
    TIMEOUT_FACTOR times the run's expected cost where that is longer (a loaded machine must
    not fail the 2026 stroke demo, 14 minutes unloaded). ``progress(done, total, elapsed, outcome, left)`` when a
    run ends; ``heartbeat(done, total, elapsed, left, running)`` before the first run starts
    (the estimate of the whole) and every ``every_s`` seconds in which no run ended."""
    settings = settings or runs.Settings()
    by_name = {t.name: t for t in targets}
    estimate = Estimate(out, [(t.name, b) for t in targets for b in backends], settings.edition)
    queue = sorted(plan(targets, backends, batch), key=lambda job: -estimate.job(job))  # stable
    total = sum(len(job) for job in queue)
    outcomes: dict[tuple[str, str], RunOutcome] = {}
    active: dict[int, runs.Job] = {}
    begun = time.monotonic()
    said = [begun]  # when the last line was printed

    def done(result: RunOutcome) -> None:
        key = (result.experiment, result.backend)
        outcomes[key] = result
        if result.wall_s is not None:
            estimate.seen[key] = result.wall_s
        if progress:
            progress(len(outcomes), total, time.monotonic() - begun, result,
                     estimate.left(queue, active, jobs))
        said[0] = time.monotonic()

    limit = timeout if timeout is not None else (
        lambda key: max(runs.DEFAULT_TIMEOUT_S, TIMEOUT_FACTOR * (estimate.expected(key) or 0.0)))
    if heartbeat:
        heartbeat(0, total, 0.0, estimate.left(queue, {}, jobs), [])
    try:
        with _stopped_as_by_ctrl_c():
            while queue or active:
                while queue and len(active) < jobs:
                    running = _launch(queue.pop(0), by_name, out, settings)
                    active[id(running)] = running
                for ident, running in list(active.items()):
                    finished, again, over = _step(running, limit)
                    if over:
                        active.pop(ident)
                    queue[:0] = again
                    for result in finished:
                        done(result)
                now = time.monotonic()
                if heartbeat and active and now - said[0] >= every_s:
                    heartbeat(len(outcomes), total, now - begun, estimate.left(queue, active, jobs),
                              _running(active))
                    said[0] = now
                time.sleep(0.05)
    except KeyboardInterrupt:
        caught()
        for running in active.values():
            running.stop()
            result = running.finish("interrupted", "Ctrl-C before it finished")
            outcomes[(result.experiment, result.backend)] = result
            queue.append(running.left)
        for name, backend in (key for job in queue for key in job):
            outcomes[(name, backend)] = RunOutcome(
                name, backend, str(run_dir(out, name, backend)),
                error="the compare was interrupted before it started")
        return outcomes, True
    return outcomes, False
