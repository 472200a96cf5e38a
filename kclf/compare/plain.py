"""The verdict in words: one label and one sentence per experiment that a student can read.

kclf.compare.verdict decides agree, differ, failed or incomplete (and the exit code); this
module says what that rests on: what was judged and to what tolerance, the largest judged
difference, where the traces drift apart when they are shown but not judged, and what was not
compared at all (a data-parallel run on one device; a backend without data parallelism; the
demos' own random draws). The stroke demo on the synthetic stand-in says so.
"""

from __future__ import annotations

from kclf.compare.verdict import ExperimentComparison, PairComparison

SYNTHETIC = "on the synthetic stand-in (no Kaggle file)"


def synthetic(exp: ExperimentComparison) -> bool:
    """Whether a run of ``exp`` trained on kclf's synthetic stand-in for the Kaggle file."""
    for run in exp.runs.values():
        values = ((run.outcome.summary or {}).get("results") or {}).get("values")
        if isinstance(values, dict) and values.get("synthetic"):
            return True
    return False


def devices(exp: ExperimentComparison) -> int | None:
    """The devices the data-parallel experiment's runs used (its results' "devices"), if any."""
    found = {((r.outcome.summary or {}).get("results") or {}).get("devices")
             for r in exp.runs.values() if r.outcome.summary}
    found.discard(None)
    return max(found) if found else None


def _torch_parallel() -> bool:
    from kclf.devices import torch_has_data_parallel

    return torch_has_data_parallel()


def label(exp: ExperimentComparison) -> str:
    """agree, differ, failed, incomplete, one device (a data-parallel experiment that ran on one
    device: nothing parallel was compared) or not judged (each backend drew its own numbers)."""
    verdict = exp.verdict
    if verdict != "agree":
        return verdict
    if devices(exp) == 1:
        return "one device"
    tol = exp.tolerance
    if not tol.step_by_step and tol.final_metrics_only and not tol.metrics:
        return "not judged"
    return "agree"


def run_cell(exp: ExperimentComparison, backend: str) -> str:
    """A run's status for the overview: ok, not supported, ... with its wall time."""
    run = exp.runs[backend]
    wall = run.timing.total_s
    time = f" ({wall:.1f} s)" if wall is not None else ""
    status = run.outcome.status
    if status == "ok" and devices(exp) == 1:
        if backend == "torch" and not _torch_parallel():
            return f"not supported: ran on one device{time}"
        return f"one device{time}"
    return status + time


def _num(value: float | None) -> str:
    return "—" if value is None else f"{value:.2g}"


def _tolerance_words(exp: ExperimentComparison) -> str:
    tol = exp.tolerance
    if tol.step_by_step:
        return (f"every step's weights, gradients and loss and every result within float32 "
                f"precision (rtol {tol.rtol:g})")
    values = [rtol for pattern, rtol, _ in tol.metrics if pattern.startswith("values")]
    if values:
        return f"every number the lecture prints within rtol {values[0]:g}"
    return "the final test metrics within their tolerances (losses rtol 1e-3, accuracy and AUC atol)"


def _largest(exp: ExperimentComparison) -> str:
    """The largest judged differences: per quantity (absolute) when every step is judged,
    else the judged number furthest off (relative), naming it."""
    if exp.tolerance.step_by_step:
        worst: dict[str, float] = {}
        for pair in exp.pairs.values():
            for quantity, q in (pair.traces.quantities if pair.traces else {}).items():
                if q.max_abs is not None:
                    worst[quantity] = max(worst.get(quantity, 0.0), q.max_abs)
            if pair.results.judged_max_abs is not None:
                worst["results"] = max(worst.get("results", 0.0), pair.results.judged_max_abs)
        if not worst:
            return ""
        if not any(worst.values()):
            return "; identical on every backend, bit for bit"
        return "; largest absolute differences: " + ", ".join(
            f"{quantity} {_num(value) if value else '0'}" for quantity, value in worst.items())
    found, where = None, ""
    for backend, pair in exp.pairs.items():
        res = pair.results
        if res.judged_max_rel is not None and (found is None or res.judged_max_rel > found):
            found, where = res.judged_max_rel, f"{res.judged_worst} on {backend}"
    if found is None:
        return ""
    if found == 0:
        return "; the judged numbers are identical on every backend"
    return f"; the largest relative difference is {found:.2g} ({where})"


def _drift(exp: ExperimentComparison) -> str:
    """Where informational traces part, as one clause (empty when they are judged or absent)."""
    if exp.tolerance.step_by_step:
        return ""
    first: tuple | None = None
    traced = False
    for backend, pair in exp.pairs.items():
        if pair.traces is None:
            continue
        traced = True
        steps = pair.parting.steps if pair.parting else {}
        for quantity, where in steps.items():
            key = (where.step, backend, quantity, where)
            if first is None or key[0] < first[0]:
                first = key
    if not traced:
        return ""
    if first is None:
        return "; the traces stay within float32 tolerance at every step"
    step, backend, quantity, where = first
    epoch = f", epoch {where.epoch}" if where.epoch is not None else ""
    return (f"; the {quantity} drift apart in float32 from step {step} (fit {where.run!r}{epoch}) "
            f"on {backend}, shown but not judged: rounding that long training amplifies")


def _early_stopping(exp: ExperimentComparison) -> str:
    decisions = [d for pair in exp.pairs.values() if pair.parting
                 for d in pair.parting.early_stopping]
    if not decisions:
        return ""
    if all(d.same for d in decisions):
        return "; early stopping decides the same on every backend"
    return "; early stopping decides otherwise on " + ", ".join(sorted(
        {b for b, p in exp.pairs.items() if p.parting and not all(d.same for d in p.parting.early_stopping)}))


def _differ(exp: ExperimentComparison) -> str:
    parts = []
    for backend, pair in exp.pairs.items():
        if pair.verdict == "differ":
            parts.append(_pair_words(exp, backend, pair))
    return "; ".join(parts)


def _pair_words(exp: ExperimentComparison, backend: str, pair: PairComparison) -> str:
    ref = exp.reference
    if pair.results.failing:
        leaf = pair.results.failing[0]
        more = len(pair.results.failing) - 1
        rtol, atol, _ = exp.tolerance.for_path(leaf.path)
        what = (f"{backend}'s {leaf.path} is missing ({leaf.note})" if leaf.note else
                f"{backend}'s {leaf.path} is {leaf.b!r} where {ref}'s is {leaf.a!r}, beyond "
                f"rtol {rtol:g}")
        return what + (f", and {more} more number{'s' * (more > 1)}" if more > 0 else "")
    traces = pair.traces
    if traces is not None and not traces.ok:
        first = traces.first
        if first.step is not None:
            return (f"{backend}'s {first.quantity or 'trace'} part from {ref}'s at step {first.step} "
                    f"of {first.run!r} ({first.variable}[{first.index}]: {first.what})")
        return f"{backend}: {first.what}"
    return f"{backend}: {pair.where}"


def sentence(exp: ExperimentComparison) -> str:
    """The verdict in one sentence: "agree: every printed number within rtol 3e-05; ..."."""
    word = label(exp)
    data = f" {SYNTHETIC}" if synthetic(exp) else ""
    if word in ("failed", "incomplete"):
        return f"{word}{data}: {exp.where}"
    if word == "one device":
        torch = "" if _torch_parallel() or "torch" not in exp.runs else (
            "; torch: not supported, keras's torch backend has no data parallelism before Keras 3.16")
        return (f"one device: every backend ran the fits on one device and they agree, but nothing "
                f"data-parallel was compared (kclf compare data-parallel --devices 4 compares 1 "
                f"against 4 devices on JAX and TensorFlow){torch}")
    if word == "not judged":
        return f"not judged{data}: each backend draws its own initial weights and batch order, shown side by side"
    if word == "differ":
        return f"differ{data}: {_differ(exp)}"
    if not exp.pairs:
        return f"agree{data}: one backend ran; nothing to compare it with"
    return (f"agree{data}: {_tolerance_words(exp)}{_largest(exp)}{_early_stopping(exp)}"
            f"{_drift(exp)}")
