"""Diffing two runs: numbers, results leaf by leaf, traces step by step.

NaN, +inf and −inf are numbers here (kclf.jsonio writes them "nan", "inf", "-inf"): NaN
agrees with NaN and an infinity with the same infinity, nothing else.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from kclf.compare.tolerances import Tolerance
from kclf.errors import KclfError
from kclf.jsonio import is_number, number

TINY = 1e-30  # keeps |a - b| / max(|a|, |b|) finite when both are 0


def diffs(a, b, rtol: float, atol: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Element-wise (|a − b|, |a − b| / max(|a|, |b|), beyond tolerance).

    NaN against NaN and inf against the same inf count as equal; NaN or inf against
    anything else is an infinite difference.
    """
    a = np.asarray(a, dtype="float64")
    b = np.asarray(b, dtype="float64")
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        same = (a == b) | (np.isnan(a) & np.isnan(b))
        d = np.where(same, 0.0, np.abs(a - b))
        d = np.where(np.isnan(d), np.inf, d)
        scale = np.maximum(np.maximum(np.abs(a), np.abs(b)), TINY)
        scale = np.where(np.isnan(scale), np.inf, scale)
        rel = np.where(d == 0, 0.0, d / scale)
        rel = np.where(np.isnan(rel), np.inf, rel)
        bad = np.isinf(d) | (d > atol + rtol * np.where(np.isinf(scale), 0.0, scale))
    return d, rel, bad


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dicts and lists → {"a/b/0": leaf}."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(flatten(item, f"{prefix}/{key}" if prefix else str(key)))
        return out
    if isinstance(value, (list, tuple)):
        out = {}
        for i, item in enumerate(value):
            out.update(flatten(item, f"{prefix}/{i}" if prefix else str(i)))
        return out
    return {prefix or "(value)": value}


def _finite_max(values) -> float | None:
    values = [v for v in values if v is not None]
    return max(values) if values else None


@dataclass
class LeafDiff:
    """One leaf of two results: ``a`` the reference's value, ``b`` this backend's."""

    path: str  # "a/b/0", as flatten names it
    a: Any
    b: Any
    judged: bool  # it decides the verdict (else it is shown only)
    ok: bool
    abs_diff: float | None = None  # when both are numbers
    rel_diff: float | None = None
    note: str | None = None  # why it has no counterpart: "missing on the reference", ...

    def to_json(self) -> dict:
        out = {"path": self.path, "a": self.a, "b": self.b, "judged": self.judged,
               "abs": self.abs_diff, "rel": self.rel_diff, "ok": self.ok}
        return out if self.note is None else {**out, "note": self.note}


@dataclass
class ResultsDiff:
    """Two results dicts leaf by leaf (:func:`compare_results`)."""

    leaves: int  # on either side
    judged: int  # of them, those that decide the verdict
    max_abs: float | None  # over the numeric leaves
    max_rel: float | None
    worst: str | None  # the path of the largest |difference|
    failing: list[LeafDiff]  # judged and beyond tolerance: the first 50
    details: list[LeafDiff]  # every leaf, or the failing ones when there are over 200
    # The same over the judged numeric leaves only: what the verdict rests on.
    judged_max_abs: float | None = None
    judged_max_rel: float | None = None
    judged_worst: str | None = None  # the judged leaf with the largest relative difference

    @property
    def ok(self) -> bool:
        return not self.failing

    def to_json(self) -> dict:
        return {"leaves": self.leaves, "judged": self.judged, "max_abs": self.max_abs,
                "max_rel": self.max_rel, "worst": self.worst,
                "judged_max_abs": self.judged_max_abs, "judged_max_rel": self.judged_max_rel,
                "judged_worst": self.judged_worst, "ok": self.ok,
                "failing": [leaf.to_json() for leaf in self.failing],
                "details": [leaf.to_json() for leaf in self.details]}


def compare_results(ref: dict, other: dict, tol: Tolerance) -> ResultsDiff:
    """Every leaf of two results dicts: numbers (with "nan", "inf", "-inf", and None as NaN
    from older files) within tolerance, anything else equal."""
    fa, fb = flatten(ref or {}), flatten(other or {})
    paths = list(fa) + [p for p in fb if p not in fa]
    leaves = []
    for path in paths:
        rtol, atol, judged = tol.for_path(path)
        a, b = fa.get(path), fb.get(path)
        if path not in fa or path not in fb:
            where = "the reference" if path not in fa else "this backend"
            leaf = LeafDiff(path, a, b, judged, ok=False, note=f"missing on {where}")
        elif is_number(a) and is_number(b):
            d, rel, bad = diffs(number(a), number(b), rtol, atol)
            leaf = LeafDiff(path, a, b, judged, ok=not bool(bad), abs_diff=float(d),
                            rel_diff=float(rel))
        else:
            leaf = LeafDiff(path, a, b, judged, ok=a == b)
        leaves.append(leaf)
    failing = [leaf for leaf in leaves if leaf.judged and not leaf.ok]
    numeric = [leaf for leaf in leaves if leaf.abs_diff is not None]
    worst = max(numeric, key=lambda leaf: leaf.abs_diff, default=None)
    judged = [leaf for leaf in numeric if leaf.judged]
    judged_worst = max(judged, key=lambda leaf: (leaf.rel_diff, leaf.abs_diff), default=None)
    return ResultsDiff(
        leaves=len(leaves),
        judged=sum(leaf.judged for leaf in leaves),
        max_abs=_finite_max(leaf.abs_diff for leaf in numeric),
        max_rel=_finite_max(leaf.rel_diff for leaf in numeric),
        worst=worst.path if worst else None,
        failing=failing[:50],
        details=leaves if len(leaves) <= 200 else failing[:50],
        judged_max_abs=_finite_max(leaf.abs_diff for leaf in judged),
        judged_max_rel=_finite_max(leaf.rel_diff for leaf in judged),
        judged_worst=judged_worst.path if judged_worst else None,
    )


# -- comparing traces -------------------------------------------------------------------
KEYS = ["run", "step", "variable", "index"]
QUANTITIES = {"weights": ("weight_before", "weight_after"), "gradients": ("gradient",), "loss": ("loss",)}
NUMERIC = ("epoch", "batch", "weight_before", "gradient", "weight_after", "loss", "learning_rate")


class TraceError(KclfError):
    """A trace.csv that cannot be read (truncated, edited, not kclf's)."""


def read_trace(path: Path):
    """trace.csv as a DataFrame: keys as text, the rest as floats (empty → NaN).

    Raises TraceError naming the file when it is not a whole trace."""
    import pandas as pd

    try:
        frame = pd.read_csv(path, dtype={"run": str, "variable": str, "index": str},
                            keep_default_na=False, na_values={c: ["", "nan", "NaN"] for c in NUMERIC})
        missing = [c for c in KEYS if c not in frame.columns]
        if missing:
            raise ValueError(f"no column {', '.join(missing)}")
        frame["step"] = frame["step"].astype("int64")
    except (ValueError, TypeError, OSError, pd.errors.ParserError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise TraceError(f"{path}: not a readable trace ({first}); expected the trace.csv a "
                         f"run writes, with columns {', '.join(KEYS)} and the traced numbers") from None
    return frame


def _labels(frame) -> list[str]:
    return list(dict.fromkeys(frame["run"]))


def _match_variables(ref, other) -> tuple[Any, list[str]]:
    """Backends name a layer's variables alike; if not, match them by order of appearance."""
    notes, other = [], other.copy()
    for label in _labels(ref):
        va = list(dict.fromkeys(ref.loc[ref["run"] == label, "variable"]))
        rows = other["run"] == label
        vb = list(dict.fromkeys(other.loc[rows, "variable"]))
        if set(va) != set(vb) and len(va) == len(vb):
            other.loc[rows, "variable"] = other.loc[rows, "variable"].map(dict(zip(vb, va)))
            notes.append(f"run {label!r}: variables matched by position ({', '.join(vb)} → {', '.join(va)})")
    return other, notes


@dataclass
class QuantityDiff:
    """Weights, gradients or loss of two traces: the largest differences and the first step
    beyond tolerance."""

    max_abs: float | None  # over the rows on both sides
    max_rel: float | None
    first_step: int | None  # None: within tolerance at every step
    first_run: str | None  # the training run of first_step
    rtol: float
    atol: float

    @property
    def within(self) -> bool:
        return self.first_step is None

    def to_json(self) -> dict:
        return asdict(self)


@dataclass
class FirstDifference:
    """Where two traces first part: the row (run, step, variable, index) and what differs."""

    what: str  # "gradient 0.101 vs 0.1" (this backend's value first), "row missing on ..."
    run: str | None = None  # None: no row to name ("no trace.csv from torch")
    step: int | None = None
    variable: str | None = None
    index: str | None = None
    quantity: str | None = None  # the first quantity beyond tolerance, when both have the row
    column: str | None = None
    a: float | None = None  # the reference's value
    b: float | None = None  # this backend's

    def to_json(self) -> dict:
        keys = ("run", "step", "variable", "index", "quantity", "column", "a", "b", "what")
        return {k: getattr(self, k) for k in keys if getattr(self, k) is not None}


@dataclass
class StepSeries:
    """One training run's max |difference| per step and quantity: what the log-scale figure
    draws (None where it is not finite)."""

    steps: list[int]
    quantities: dict[str, list[float | None]]

    def to_json(self) -> dict:
        return {"step": self.steps, **self.quantities}


@dataclass
class TraceDiff:
    """Two traces aligned on (run, step, variable, index) (:func:`compare_traces`), or one
    side without a trace (:meth:`missing_from`)."""

    quantities: dict[str, QuantityDiff]
    first: FirstDifference | None = None  # None: within tolerance at every step
    per_step: dict[str, StepSeries] = field(default_factory=dict)  # by training run
    notes: list[str] = field(default_factory=list)
    rows: int | None = None  # aligned rows; None when a side wrote no trace.csv
    missing_rows: int | None = None  # rows on one side only

    @classmethod
    def missing_from(cls, backend: str) -> TraceDiff:
        return cls({}, FirstDifference(f"no trace.csv from {backend}"))

    @property
    def ok(self) -> bool:
        return self.first is None

    def to_json(self) -> dict:
        first = self.first.to_json() if self.first else None
        quantities = {q: d.to_json() for q, d in self.quantities.items()}
        per_step = {label: series.to_json() for label, series in self.per_step.items()}
        if self.rows is None:  # the order comparison.json has always had for a missing trace
            return {"ok": self.ok, "first": first, "quantities": quantities, "per_step": per_step,
                    "notes": self.notes, "missing_rows": self.missing_rows}
        return {"rows": self.rows, "missing_rows": self.missing_rows, "notes": self.notes,
                "quantities": quantities, "first": first, "ok": self.ok, "per_step": per_step}


def compare_traces(ref, other, tol: Tolerance) -> TraceDiff:
    """Align two trace frames on (run, step, variable, index) and diff weights, gradients, loss.

    A row present on one side only is a difference at its step. The first difference's
    "what" gives ``other``'s value, then ``ref``'s ("backend vs reference").
    """
    other, notes = _match_variables(ref, other)
    order = {label: i for i, label in enumerate(_labels(ref) + _labels(other))}
    merged = ref.merge(other, on=KEYS, how="outer", suffixes=("_a", "_b"), indicator=True)
    merged["_order"] = merged["run"].map(order)
    merged = merged.sort_values(["_order", "step"], kind="stable").reset_index(drop=True)
    present = (merged["_merge"] == "both").to_numpy()
    bad_any = ~present
    quantities, per_step_cols = {}, {}
    for quantity, columns in QUANTITIES.items():
        d_q = np.zeros(len(merged))
        rel_q = np.zeros(len(merged))
        bad_q = np.zeros(len(merged), dtype=bool)
        rtol, atol = tol.for_quantity(quantity)
        for col in columns:
            if f"{col}_a" not in merged or f"{col}_b" not in merged:
                continue
            d, rel, bad = diffs(merged[f"{col}_a"], merged[f"{col}_b"], rtol, atol)
            d_q, rel_q, bad_q = np.maximum(d_q, d), np.maximum(rel_q, rel), bad_q | bad
        d_q[~present], rel_q[~present], bad_q[~present] = np.nan, np.nan, False
        bad_any = bad_any | bad_q
        row = _first_row(merged, bad_q)
        quantities[quantity] = QuantityDiff(
            _nanmax(d_q), _nanmax(rel_q), first_step=None if row is None else int(row["step"]),
            first_run=None if row is None else row["run"], rtol=rtol, atol=atol)
        per_step_cols[quantity] = d_q
    return TraceDiff(quantities, first=_first(merged, bad_any, tol),
                     per_step=_per_step(merged, per_step_cols), notes=notes,
                     rows=int(len(merged)), missing_rows=int((~present).sum()))


def _nanmax(values: np.ndarray) -> float | None:
    finite = values[~np.isnan(values)]
    return float(finite.max()) if finite.size else None


def _first_row(merged, bad: np.ndarray):
    """The earliest row (any run, in run order at a tie) where ``bad`` holds, or None."""
    if not bad.any():
        return None
    rows = merged[bad]
    return rows.loc[rows["step"].idxmin()]


def _first(merged, bad: np.ndarray, tol: Tolerance) -> FirstDifference | None:
    """The earliest step where ``bad`` holds, and what differs there."""
    row = _first_row(merged, bad)
    if row is None:
        return None
    where = {"run": row["run"], "step": int(row["step"]), "variable": row["variable"],
             "index": row["index"]}
    if row["_merge"] != "both":
        side = "the reference" if row["_merge"] == "right_only" else "this backend"
        return FirstDifference(f"row missing on {side}", **where)
    for quantity, columns in QUANTITIES.items():
        for col in columns:
            if f"{col}_a" not in row or f"{col}_b" not in row:
                continue
            a, b = row[f"{col}_a"], row[f"{col}_b"]
            _, _, out = diffs(a, b, *tol.for_quantity(quantity))
            if bool(out):
                # This backend's value first: the verdict names them "backend vs reference".
                return FirstDifference(f"{col} {b:.7g} vs {a:.7g}", **where, quantity=quantity,
                                       column=col, a=float(a), b=float(b))
    return FirstDifference("difference", **where)


def _per_step(merged, columns: dict[str, np.ndarray]) -> dict[str, StepSeries]:
    """Max |difference| per (run, step) and quantity: what the log-scale figure draws."""
    import pandas as pd

    frame = pd.DataFrame({"run": merged["run"], "step": merged["step"], **columns})
    out = {}
    for label, group in frame.groupby("run", sort=False):
        steps = group.groupby("step", sort=True).max(numeric_only=True)
        out[str(label)] = StepSeries(
            [int(s) for s in steps.index],
            {quantity: [None if not math.isfinite(v) else float(v) for v in steps[quantity]]
             for quantity in columns})
    return out
