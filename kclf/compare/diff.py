"""Diffing two runs: numbers, results leaf by leaf, traces step by step.

NaN, +inf and −inf are numbers here (kclf.jsonio writes them "nan", "inf", "-inf"): NaN
agrees with NaN and an infinity with the same infinity, nothing else.
"""

from __future__ import annotations

import math
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


def compare_results(ref: dict, other: dict, tol: Tolerance) -> dict:
    """Every leaf of two results dicts: numbers (with "nan", "inf", "-inf", and None as NaN
    from older files) within tolerance, anything else equal."""
    fa, fb = flatten(ref or {}), flatten(other or {})
    paths = list(fa) + [p for p in fb if p not in fa]
    leaves = []
    for path in paths:
        rtol, atol, judged = tol.for_path(path)
        leaf = {"path": path, "a": fa.get(path), "b": fb.get(path), "judged": judged,
                "abs": None, "rel": None}
        if path not in fa or path not in fb:
            leaf["ok"] = False
            leaf["note"] = "missing on " + ("the reference" if path not in fa else "this backend")
        elif is_number(fa[path]) and is_number(fb[path]):
            d, rel, bad = diffs(number(fa[path]), number(fb[path]), rtol, atol)
            leaf.update(abs=float(d), rel=float(rel), ok=not bool(bad))
        else:
            leaf["ok"] = fa[path] == fb[path]
        leaves.append(leaf)
    failing = [leaf for leaf in leaves if leaf["judged"] and not leaf["ok"]]
    numeric = [leaf for leaf in leaves if leaf["abs"] is not None]
    worst = max(numeric, key=lambda leaf: leaf["abs"], default=None)
    return {
        "leaves": len(leaves),
        "judged": sum(leaf["judged"] for leaf in leaves),
        "max_abs": _finite_max(leaf["abs"] for leaf in numeric),
        "max_rel": _finite_max(leaf["rel"] for leaf in numeric),
        "worst": worst["path"] if worst else None,
        "ok": not failing,
        "failing": failing[:50],
        "details": leaves if len(leaves) <= 200 else failing[:50],
    }


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


def compare_traces(ref, other, tol: Tolerance) -> dict:
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
    summary: dict[str, Any] = {"rows": int(len(merged)), "missing_rows": int((~present).sum()),
                               "notes": notes, "quantities": {}}
    per_step_cols = {}
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
        first = _first(merged, bad_q, tol)
        summary["quantities"][quantity] = {
            "max_abs": _nanmax(d_q), "max_rel": _nanmax(rel_q),
            "first_step": first["step"] if first else None,
            "first_run": first["run"] if first else None,
            "rtol": rtol, "atol": atol,
        }
        per_step_cols[quantity] = d_q
    summary["first"] = _first(merged, bad_any, tol, detail=True)
    summary["ok"] = summary["first"] is None
    summary["per_step"] = _per_step(merged, per_step_cols)
    return summary


def _nanmax(values: np.ndarray) -> float | None:
    finite = values[~np.isnan(values)]
    return float(finite.max()) if finite.size else None


def _first(merged, bad: np.ndarray, tol: Tolerance, detail: bool = False) -> dict | None:
    """The earliest step (any run, in run order at a tie) where ``bad`` holds."""
    if not bad.any():
        return None
    rows = merged[bad]
    row = rows.loc[rows["step"].idxmin()]
    first = {"run": row["run"], "step": int(row["step"])}
    if not detail:
        return first
    first.update(variable=row["variable"], index=row["index"])
    if row["_merge"] != "both":
        side = "the reference" if row["_merge"] == "right_only" else "this backend"
        first["what"] = f"row missing on {side}"
        return first
    for quantity, columns in QUANTITIES.items():
        for col in columns:
            if f"{col}_a" not in row or f"{col}_b" not in row:
                continue
            a, b = row[f"{col}_a"], row[f"{col}_b"]
            _, _, out = diffs(a, b, *tol.for_quantity(quantity))
            if bool(out):
                first.update(quantity=quantity, column=col, a=float(a), b=float(b))
                # This backend's value first: the verdict names them "backend vs reference".
                first["what"] = f"{col} {b:.7g} vs {a:.7g}"
                return first
    first["what"] = "difference"
    return first


def _per_step(merged, columns: dict[str, np.ndarray]) -> dict[str, dict[str, list]]:
    """Max |difference| per (run, step) and quantity: what the log-scale figure draws."""
    import pandas as pd

    frame = pd.DataFrame({"run": merged["run"], "step": merged["step"], **columns})
    out = {}
    for label, group in frame.groupby("run", sort=False):
        steps = group.groupby("step", sort=True).max(numeric_only=True)
        out[str(label)] = {"step": [int(s) for s in steps.index]}
        for quantity in columns:
            out[str(label)][quantity] = [None if not math.isfinite(v) else float(v)
                                         for v in steps[quantity]]
    return out
