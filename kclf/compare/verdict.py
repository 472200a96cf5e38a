"""The verdict: each backend against the reference, per experiment, and the whole comparison."""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from kclf.compare.diff import (
    TraceError,
    compare_results,
    compare_traces,
    diffs,
    flatten,
    read_trace,
)
from kclf.compare.runs import RunOutcome, Target
from kclf.compare.tolerances import Tolerance
from kclf.jsonio import is_number, number


def run_timing(outcome: RunOutcome) -> dict:
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
    return {
        "startup_s": (wall - experiment_s) if wall is not None and experiment_s is not None else None,
        "first_step_s": sum(firsts) if firsts else None,
        "steady_steps_per_s": steady_steps / steady_time if steady_time > 0 else None,
        "steps": sum(t.get("steps") or 0 for t in traces) if traces else None,
        "experiment_s": experiment_s,
        "total_s": wall,
    }


DECISIONS = ("epochs", "stopped_epoch", "best_epoch")  # early stopping's decisions in results


def where_they_part(ref: dict, other: dict, traces: dict | None, ref_frame, tol: Tolerance) -> dict:
    """Where a run that started like the reference first leaves it: the first traced step
    (and its epoch) beyond tolerance, the first epoch of each history beyond tolerance, and
    early stopping's decisions side by side. Informational: the verdict is the tolerance's."""
    part: dict[str, Any] = {"steps": {}, "histories": [], "early_stopping": []}
    for quantity, q in ((traces or {}).get("quantities") or {}).items():
        if q.get("first_step") is None:
            continue
        where = {"run": q["first_run"], "step": q["first_step"]}
        if ref_frame is not None:
            rows = ref_frame[(ref_frame["run"] == q["first_run"]) & (ref_frame["step"] == q["first_step"])]
            if len(rows):
                where["epoch"] = int(rows["epoch"].iloc[0]) + 1
        part["steps"][quantity] = where
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
                part["histories"].append({"fit": fit, "metric": metric, "epoch": epoch + 1,
                                          "reference": number(a[epoch]), "backend": number(b[epoch])})
    fa, fb = flatten((ref or {}).get("values") or {}), flatten((other or {}).get("values") or {})
    for path, a in fa.items():
        if path.rsplit("/", 1)[-1] in DECISIONS:
            part["early_stopping"].append({"path": path, "reference": a, "backend": fb.get(path),
                                           "same": a == fb.get(path)})
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


def parting_text(part: dict) -> str:
    """One line: where the backend parted from the reference, or that it did not; values
    read "backend vs reference", as the line "Where BACKEND parts from REFERENCE" names them."""
    bits = []
    for quantity, w in part["steps"].items():
        epoch = f" (epoch {w['epoch']})" if "epoch" in w else ""
        bits.append(f"{quantity} from fit {w['run']!r} step {w['step']}{epoch}")
    if part["histories"]:
        h = min(part["histories"], key=lambda h: h["epoch"])
        bits.append(f"history {h['fit']}/{h['metric']} from epoch {h['epoch']} "
                    f"({h['backend']:.7g} vs {h['reference']:.7g})")
    decisions = part["early_stopping"]
    differing = [d for d in decisions if not d["same"]]
    if differing:
        bits.append("early stopping decides otherwise: " + ", ".join(
            f"{d['path']} {d['backend']} vs {d['reference']}" for d in differing))
    elif decisions:
        bits.append("early stopping decides the same (" + ", ".join(
            f"{d['path']} {d['reference']}" for d in decisions) + ")")
    if not part["steps"] and not part["histories"]:
        bits.insert(0, "never beyond tolerance")
    return "; ".join(bits)


def compare_pair(ref: RunOutcome, other: RunOutcome, tol: Tolerance, frames: dict) -> dict:
    """One backend against the reference: results leaf by leaf, traces step by step."""
    pair: dict[str, Any] = {"reference": ref.backend, "backend": other.backend}
    pair["results"] = compare_results(ref.summary.get("results"), other.summary.get("results"), tol)
    fa, fb = frames.get(ref.backend), frames.get(other.backend)
    if fa is None and fb is None:
        pair["traces"] = None
    elif fa is None or fb is None:
        who = ref.backend if fa is None else other.backend
        pair["traces"] = {"ok": False, "first": {"what": f"no trace.csv from {who}"},
                          "quantities": {}, "per_step": {}, "notes": [], "missing_rows": None}
    else:
        pair["traces"] = compare_traces(fa, fb, tol)
    pair["traces_judged"] = tol.step_by_step
    ra, rb = ref.summary.get("results"), other.summary.get("results")
    if _histories(ra) or (pair["traces"] and not tol.step_by_step):
        pair["parting"] = where_they_part(ra, rb, pair["traces"], fa, tol)
        pair["parting"]["text"] = parting_text(pair["parting"])
    where = []
    traces = pair["traces"]
    if traces is not None and not traces["ok"] and tol.step_by_step:
        first = traces["first"]
        if "step" in first:
            where.append(f"trace {first['run']!r} step {first['step']}: {first.get('quantity', '')} "
                         f"{first['variable']}[{first['index']}] {first['what']}".replace("  ", " "))
        else:
            where.append(first["what"])
    failing = pair["results"]["failing"]
    if failing:
        leaf = failing[0]
        what = leaf.get("note") or f"{leaf['b']!r} vs {leaf['a']!r}"  # backend vs reference
        more = f" (+{len(failing) - 1} more)" if len(failing) > 1 else ""
        where.append(f"result {leaf['path']}: {what}{more}")
    pair["verdict"] = "differ" if where else "agree"
    pair["where"] = "; ".join(where)
    return pair


def compare_experiment(
    name: str, backends: list[str], outcomes: dict[tuple[str, str], RunOutcome], tol: Tolerance,
) -> tuple[dict, dict]:
    """Verdict, runs and pairs for one experiment; also returns its trace frames by backend."""
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
    pairs = {r.backend: compare_pair(ref, r, tol, frames) for r in usable[1:]}
    not_ok = [r for r in runs if not r.ok]
    if any(r.status in ("interrupted", "not run") for r in runs):
        verdict = "incomplete"
    elif not_ok:
        verdict = "failed"
    elif any(p["verdict"] == "differ" for p in pairs.values()):
        verdict = "differ"
    else:
        verdict = "agree"
    if not_ok:
        where = "; ".join(f"{r.backend}: {r.status}" + (f" ({r.error})" if r.error else "") for r in not_ok)
    else:
        where = "; ".join(f"{b} vs {ref.backend}: {p['where']}" for b, p in pairs.items() if p["where"])
    result = {
        "name": name,
        "verdict": verdict,
        "where": where,
        "reference": ref.backend if ref else None,
        "tolerance": asdict(tol),
        "runs": {
            r.backend: {**asdict(r), "timing": run_timing(r),
                        "versions": (r.summary or {}).get("versions"),
                        "has_trace": r.backend in frames}
            for r in runs
        },
        "pairs": pairs,
    }
    for run in result["runs"].values():
        run.pop("summary")
    return result, frames


def build(
    targets: list[Target], backends: list[str], skipped: dict[str, str],
    outcomes: dict[tuple[str, str], RunOutcome], tolerances: dict[str, Tolerance],
    *, interrupted: bool = False,
) -> tuple[dict, dict]:
    """The whole comparison (what comparison.json holds) and the trace frames for figures."""
    from kclf import __version__
    from kclf.backend import versions

    experiments, frames = {}, {}
    for target in targets:
        experiments[target.name], frames[target.name] = compare_experiment(
            target.name, backends, outcomes, tolerances[target.name])
        if target.script is not None:
            experiments[target.name]["script"] = str(target.script)
    finished = sum(o.status not in ("interrupted", "not run") for o in outcomes.values())
    ok = sum(o.ok for o in outcomes.values())
    total = len(targets) * len(backends)
    complete = not interrupted and ok == total
    all_agree = complete and all(e["verdict"] == "agree" for e in experiments.values())
    data = {
        "kclf": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "complete": complete,
        "interrupted": interrupted,
        "runs_total": total,
        "runs_finished": finished,
        "runs_ok": ok,
        "backends": backends,
        "reference": backends[0] if backends else None,
        "skipped_backends": skipped,
        "versions": versions(),
        "experiments": experiments,
        "exit_code": 130 if interrupted else (0 if all_agree else 1),
    }
    return data, frames

