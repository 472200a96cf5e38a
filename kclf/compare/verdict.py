"""The verdict: each backend against the reference, per experiment, and the whole comparison.

The comparison is data (:class:`Comparison`, :class:`ExperimentComparison`,
:class:`PairComparison`, with kclf.compare.diff's diffs inside); ``to_json()`` gives what
comparison.json holds.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from kclf.compare.diagnosis import Diagnosis, start_problem
from kclf.compare.diff import (
    ResultsDiff,
    TraceDiff,
    TraceError,
    compare_results,
    compare_traces,
    diffs,
    flatten,
    read_trace,
)
from kclf.compare.envelope import Envelope
from kclf.compare.runs import RunOutcome, Target
from kclf.compare.tolerances import Tolerance
from kclf.jsonio import is_number, number


@dataclass
class Timing:
    """A run's wall time split (:func:`run_timing`); None where the run did not say."""

    startup_s: float | None  # everything outside the experiment: interpreter, imports, writing
    first_step_s: float | None  # tracing/compilation included, summed over the training runs
    steady_steps_per_s: float | None  # after each training run's first step
    steps: int | None
    experiment_s: float | None
    total_s: float | None  # the process's wall time


def run_timing(outcome: RunOutcome) -> Timing:
    """Wall time split: start-up (everything outside the experiment: interpreter, imports,
    writing outputs), first step (tracing/compilation), steady steps per second, total."""
    summary = outcome.summary or {}
    experiment_s = (summary.get("timing") or {}).get("experiment_s")
    traces = [t.get("timing") or {} for t in (summary.get("traces") or {}).values()]
    firsts = [t.get("first_step_s") for t in traces if t.get("first_step_s") is not None]
    totals = [(t.get("total_s"), t.get("first_step_s"), t.get("steps")) for t in traces]
    steady_steps = sum((s or 0) - 1 for tot, f, s in totals if None not in (tot, f, s) and s > 1)
    steady_time = sum(tot - f for tot, f, s in totals if None not in (tot, f, s) and s > 1)
    wall = outcome.wall_s
    return Timing(
        startup_s=(wall - experiment_s) if wall is not None and experiment_s is not None else None,
        first_step_s=sum(firsts) if firsts else None,
        steady_steps_per_s=steady_steps / steady_time if steady_time > 0 else None,
        steps=sum(t.get("steps") or 0 for t in traces) if traces else None,
        experiment_s=experiment_s,
        total_s=wall,
    )


DECISIONS = ("epochs", "stopped_epoch", "best_epoch")  # early stopping's decisions in results


@dataclass
class StepParting:
    """The first traced step of one quantity beyond tolerance."""

    run: str  # the training run
    step: int
    epoch: int | None = None  # 1-based, from the reference's trace

    def to_json(self) -> dict:
        out = {"run": self.run, "step": self.step}
        return out if self.epoch is None else {**out, "epoch": self.epoch}


@dataclass
class HistoryParting:
    """The first epoch of one history (a fit's metric) beyond tolerance."""

    fit: str
    metric: str
    epoch: int  # 1-based
    reference: float
    backend: float


@dataclass
class Decision:
    """One of early stopping's decisions (DECISIONS) on both sides."""

    path: str
    reference: Any
    backend: Any
    same: bool


@dataclass
class Parting:
    """Where a run that started like the reference first leaves it (:func:`where_they_part`)."""

    steps: dict[str, StepParting] = field(default_factory=dict)  # by quantity
    histories: list[HistoryParting] = field(default_factory=list)
    early_stopping: list[Decision] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"steps": {q: w.to_json() for q, w in self.steps.items()},
                "histories": [asdict(h) for h in self.histories],
                "early_stopping": [asdict(d) for d in self.early_stopping],
                "text": parting_text(self)}


def where_they_part(ref: dict, other: dict, traces: TraceDiff | None, ref_frame,
                    tol: Tolerance) -> Parting:
    """Where a run that started like the reference first leaves it: the first traced step
    (and its epoch) beyond tolerance, the first epoch of each history beyond tolerance, and
    early stopping's decisions side by side. Informational: the verdict is the tolerance's."""
    part = Parting()
    for quantity, q in (traces.quantities if traces else {}).items():
        if q.within:
            continue
        where = StepParting(q.first_run, q.first_step)
        if ref_frame is not None:
            at = (ref_frame["run"] == q.first_run) & (ref_frame["step"] == q.first_step)
            rows = ref_frame[at]
            if len(rows):
                where.epoch = int(rows["epoch"].iloc[0]) + 1
        part.steps[quantity] = where
    for fit, metrics in _histories(ref).items():
        theirs = _histories(other).get(fit)
        for metric, a in metrics.items():
            b = (theirs or {}).get(metric)
            if b is None:
                continue
            n = min(len(a), len(b))
            rtol, atol, _ = tol.for_path(f"histories/{fit}/{metric}")
            _, _, bad = diffs([number(v) for v in a[:n]], [number(v) for v in b[:n]], rtol, atol)
            if bad.any():
                epoch = int(np.argmax(bad))
                part.histories.append(HistoryParting(fit, metric, epoch + 1, number(a[epoch]),
                                                     number(b[epoch])))
    fa, fb = flatten((ref or {}).get("values") or {}), flatten((other or {}).get("values") or {})
    for path, a in fa.items():
        if path.rsplit("/", 1)[-1] in DECISIONS:
            part.early_stopping.append(Decision(path, a, fb.get(path), a == fb.get(path)))
    return part


def _histories(results) -> dict[str, dict[str, list]]:
    """results["histories"] as {fit: {metric: [number per epoch]}}, the shape kclf's demos
    write; a user's results may hold a "histories" of another shape, which is left out here."""
    found = results.get("histories") if isinstance(results, dict) else None
    if not isinstance(found, dict):
        return {}
    return {fit: {m: v for m, v in metrics.items()
                  if isinstance(v, list) and all(is_number(x) for x in v)}
            for fit, metrics in found.items() if isinstance(metrics, dict)}


def parting_text(part: Parting) -> str:
    """One line: where the backend parted from the reference, or that it did not; values
    read "backend vs reference", as the line "Where BACKEND parts from REFERENCE" names them."""
    bits = []
    for quantity, w in part.steps.items():
        epoch = f" (epoch {w.epoch})" if w.epoch is not None else ""
        bits.append(f"{quantity} from fit {w.run!r} step {w.step}{epoch}")
    if part.histories:
        h = min(part.histories, key=lambda h: h.epoch)
        bits.append(f"history {h.fit}/{h.metric} from epoch {h.epoch} "
                    f"({h.backend:.7g} vs {h.reference:.7g})")
    differing = [d for d in part.early_stopping if not d.same]
    if differing:
        bits.append("early stopping decides otherwise: " + ", ".join(
            f"{d.path} {d.backend} vs {d.reference}" for d in differing))
    elif part.early_stopping:
        bits.append("early stopping decides the same (" + ", ".join(
            f"{d.path} {d.reference}" for d in part.early_stopping) + ")")
    if not part.steps and not part.histories:
        bits.insert(0, "never beyond tolerance")
    return "; ".join(bits)


@dataclass
class PairComparison:
    """One backend against the reference (:func:`compare_pair`)."""

    reference: str
    backend: str
    results: ResultsDiff
    traces: TraceDiff | None  # None: neither wrote a trace
    traces_judged: bool  # the traces decide the verdict (else they are informational)
    parting: Parting | None  # where it leaves the reference, for histories and long trainings
    where: str  # why it differs, "" when it agrees
    diagnosis: Diagnosis | None = None  # why it parts (kclf.compare.diagnosis, .drift)

    @property
    def verdict(self) -> str:
        return "differ" if self.where else "agree"

    def to_json(self) -> dict:
        out = {"reference": self.reference, "backend": self.backend,
               "results": self.results.to_json(),
               "traces": self.traces.to_json() if self.traces else None,
               "traces_judged": self.traces_judged}
        if self.parting is not None:
            out["parting"] = self.parting.to_json()
        if self.diagnosis is not None:
            out["diagnosis"] = self.diagnosis.to_json()
        return {**out, "verdict": self.verdict, "where": self.where}


def compare_pair(ref: RunOutcome, other: RunOutcome, tol: Tolerance,
                 frames: dict) -> PairComparison:
    """One backend against the reference: results leaf by leaf, traces step by step."""
    ra, rb = ref.summary.get("results"), other.summary.get("results")
    results = compare_results(ra, rb, tol)
    fa, fb = frames.get(ref.backend), frames.get(other.backend)
    if fa is None and fb is None:
        traces = None
    elif fa is None or fb is None:
        traces = TraceDiff.missing_from(ref.backend if fa is None else other.backend)
    else:
        traces = compare_traces(fa, fb, tol)
    parting = None
    if _histories(ra) or (traces and not tol.step_by_step):
        parting = where_they_part(ra, rb, traces, fa, tol)
    where = []
    diagnosis = None
    if traces is not None and not traces.ok:  # the runs never started alike: say that first
        start = start_problem(fa, fb, tol)
        diagnosis = Diagnosis(other.backend, ref.backend, start=start) if start else None
    if traces is not None and not traces.ok and tol.step_by_step:
        first = traces.first
        if diagnosis is not None:
            where.append(diagnosis.start)
        elif first.step is not None:
            where.append(f"trace {first.run!r} step {first.step}: {first.quantity or ''} "
                         f"{first.variable}[{first.index}] {first.what}".replace("  ", " "))
        else:
            where.append(first.what)
    if results.failing:
        leaf = results.failing[0]
        what = leaf.note or f"{leaf.b!r} vs {leaf.a!r}"  # backend vs reference
        more = f" (+{len(results.failing) - 1} more)" if len(results.failing) > 1 else ""
        where.append(f"result {leaf.path}: {what}{more}")
    return PairComparison(ref.backend, other.backend, results, traces, tol.step_by_step, parting,
                          "; ".join(where), diagnosis)


@dataclass
class RunEntry:
    """One run of an experiment as the comparison reports it."""

    outcome: RunOutcome
    timing: Timing
    versions: dict | None  # what its summary.json says it ran with
    has_trace: bool

    def to_json(self) -> dict:
        outcome = {k: v for k, v in asdict(self.outcome).items() if k != "summary"}
        return {**outcome, "timing": asdict(self.timing), "versions": self.versions,
                "has_trace": self.has_trace}


@dataclass
class ExperimentComparison:
    """One experiment on every backend (:func:`compare_experiment`)."""

    name: str
    reference: str | None  # the first backend whose run can be diffed; None if none can
    tolerance: Tolerance
    runs: dict[str, RunEntry]  # by backend, in the compare's order
    pairs: dict[str, PairComparison]  # every other usable backend against the reference
    frames: dict = field(default_factory=dict, repr=False, compare=False)  # traces, for figures
    script: str | None = None  # a user's script
    envelope: Envelope | None = None  # the reference's own 1-ulp spread (kclf.compare.drift)
    drift_cost: dict | None = None  # the drift phase's processes: seconds each

    @property
    def failed_runs(self) -> list[RunOutcome]:
        return [r.outcome for r in self.runs.values() if not r.outcome.ok]

    @property
    def verdict(self) -> str:
        """incomplete, failed, differ or agree."""
        if any(r.outcome.status in ("interrupted", "not run") for r in self.runs.values()):
            return "incomplete"
        if self.failed_runs:
            return "failed"
        if any(p.verdict == "differ" for p in self.pairs.values()):
            return "differ"
        return "agree"

    @property
    def where(self) -> str:
        """Which runs failed and why, else where each backend differs."""
        if self.failed_runs:
            return "; ".join(f"{r.backend}: {r.status}" + (f" ({r.error})" if r.error else "")
                             for r in self.failed_runs)
        return "; ".join(f"{b} vs {self.reference}: {p.where}"
                         for b, p in self.pairs.items() if p.where)

    def to_json(self) -> dict:
        out = {"name": self.name, "verdict": self.verdict, "where": self.where,
               "reference": self.reference, "tolerance": asdict(self.tolerance),
               "runs": {b: run.to_json() for b, run in self.runs.items()},
               "pairs": {b: pair.to_json() for b, pair in self.pairs.items()}}
        if self.envelope is not None:
            out["envelope"] = self.envelope.to_json()
        if self.drift_cost is not None:
            out["drift_cost_s"] = self.drift_cost
        return out if self.script is None else {**out, "script": self.script}


def compare_experiment(
    name: str, backends: list[str], outcomes: dict[tuple[str, str], RunOutcome], tol: Tolerance,
) -> ExperimentComparison:
    """Verdict, runs and pairs for one experiment, with its trace frames by backend."""
    runs = [outcomes.get((name, b)) or RunOutcome(name, b, "") for b in backends]
    frames = {}
    for run in runs:
        path = Path(run.dir) / "trace.csv" if run.dir else None
        if run.summary is not None and path is not None and path.is_file():
            try:
                frames[run.backend] = read_trace(path)
            except TraceError as exc:  # the run counts as failed, naming the file
                run.status, run.error, run.summary = "failed", str(exc), None
    usable = [r for r in runs if r.summary is not None]
    ref = usable[0] if usable else None
    return ExperimentComparison(
        name, ref.backend if ref else None, tol,
        runs={r.backend: RunEntry(r, run_timing(r), (r.summary or {}).get("versions"),
                                  r.backend in frames) for r in runs},
        pairs={r.backend: compare_pair(ref, r, tol, frames) for r in usable[1:]},
        frames=frames)


@dataclass
class Comparison:
    """The whole comparison: every experiment on every backend (:func:`build`)."""

    kclf: str  # kclf's version
    created: str
    interrupted: bool
    runs_total: int
    runs_finished: int
    runs_ok: int
    backends: list[str]  # the reference first
    skipped_backends: dict[str, str]  # why each was skipped
    versions: dict  # of this process's python, keras and backends
    experiments: dict[str, ExperimentComparison]

    @property
    def reference(self) -> str | None:
        return self.backends[0] if self.backends else None

    @property
    def complete(self) -> bool:
        return not self.interrupted and self.runs_ok == self.runs_total

    @property
    def exit_code(self) -> int:
        """0 when every run finished and every experiment agrees, 1 otherwise, 130 for Ctrl-C."""
        if self.interrupted:
            return 130
        agree = all(e.verdict == "agree" for e in self.experiments.values())
        return 0 if self.complete and agree else 1

    def to_json(self) -> dict:
        """What comparison.json holds."""
        return {"kclf": self.kclf, "created": self.created, "complete": self.complete,
                "interrupted": self.interrupted, "runs_total": self.runs_total,
                "runs_finished": self.runs_finished, "runs_ok": self.runs_ok,
                "backends": self.backends, "reference": self.reference,
                "skipped_backends": self.skipped_backends, "versions": self.versions,
                "experiments": {n: e.to_json() for n, e in self.experiments.items()},
                "exit_code": self.exit_code}


def build(
    targets: list[Target], backends: list[str], skipped: dict[str, str],
    outcomes: dict[tuple[str, str], RunOutcome], tolerances: dict[str, Tolerance],
    *, interrupted: bool = False,
) -> Comparison:
    """The whole comparison, with each experiment's trace frames for the figures."""
    from kclf import __version__
    from kclf.backend import versions

    experiments = {}
    for target in targets:
        experiments[target.name] = compare_experiment(target.name, backends, outcomes,
                                                      tolerances[target.name])
        if target.script is not None:
            experiments[target.name].script = str(target.script)
    return Comparison(
        kclf=__version__,
        created=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        interrupted=interrupted,
        runs_total=len(targets) * len(backends),
        runs_finished=sum(o.status not in ("interrupted", "not run") for o in outcomes.values()),
        runs_ok=sum(o.ok for o in outcomes.values()),
        backends=backends,
        skipped_backends=skipped,
        versions=versions(),
        experiments=experiments,
    )
