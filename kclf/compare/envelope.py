"""The reference's own noise: how far float32 rounding alone moves its training.

The reference backend trains again from initial weights moved by one float32 ulp (every
element one step up or down, the direction drawn from a seeded generator), K times with K
seeds; each run is diffed against the reference's own run step by step, like another
backend. The spread of those runs per step is the *envelope*: how far a last-bit change
travels on this problem with this arithmetic. A backend whose difference stays within it
(times :data:`MARGIN`) differs from the reference by no more than the reference differs
from itself (the idea of TTrace, 2025, applied across backends).

A perturbed run is an ordinary ``kclf run`` of the demo under its replay start, with
``KCLF_PERTURB=SEED`` (the replay perturbs every fit's start) and ``KCLF_HORIZON=STEPS``
(each fit stops after that many steps; 0 or unset: whole fits, whose printed numbers then
have an envelope of their own).
"""

from __future__ import annotations

import math
import os
import zlib
from dataclasses import dataclass, field

import numpy as np

PERTURB_ENV = "KCLF_PERTURB"
HORIZON_ENV = "KCLF_HORIZON"
MARGIN = 10.0  # a backend agrees where its difference is at most MARGIN x the envelope
DEFAULT_RUNS = 3  # perturbations per experiment
DEFAULT_HORIZON = 1500  # steps per fit: past the first partings measured (step 289; 1276)


def perturbation() -> tuple[int | None, int | None]:
    """(seed, horizon) from the environment: the run being a perturbed one, or (None, None)."""
    seed = os.environ.get(PERTURB_ENV)
    horizon = os.environ.get(HORIZON_ENV)
    return (int(seed) if seed else None), (int(horizon) if horizon and int(horizon) > 0 else None)


def perturbed(weights: list, seed: int, label: str) -> list[np.ndarray]:
    """``weights`` with every float element moved one ulp up or down (float32 ulps for
    float32 arrays), the directions drawn from ``seed`` and the fit's ``label``."""
    rng = np.random.default_rng([seed, zlib.crc32(label.encode())])
    out = []
    for w in weights:
        w = np.asarray(w)
        if not np.issubdtype(w.dtype, np.floating):
            out.append(w.copy())
            continue
        up = rng.random(w.shape) < 0.5
        out.append(np.where(up, np.nextafter(w, np.inf), np.nextafter(w, -np.inf)).astype(w.dtype))
    return out


# -- the envelope, from the perturbed runs' traces --------------------------------------------
@dataclass
class Envelope:
    """Per fit: the largest |difference| of the perturbed runs from the reference per
    traced step (weights after the step, max over elements and runs); per result leaf the
    largest |difference| (whole fits only)."""

    runs: int  # perturbed runs that finished
    horizon: int | None  # steps per fit (None: whole fits)
    steps: dict[str, np.ndarray] = field(default_factory=dict)  # by fit: traced steps
    weights: dict[str, np.ndarray] = field(default_factory=dict)  # by fit: spread per step
    loss: dict[str, np.ndarray] = field(default_factory=dict)
    gradients: dict[str, np.ndarray] = field(default_factory=dict)
    results: dict[str, float] = field(default_factory=dict)  # by result path: max |difference|
    # by trace quantity: the largest |difference| and the earliest step where a perturbed run
    # passes the hand-chosen tolerance (kclf.compare.diff's criterion, as for a backend)
    beyond: dict[str, dict] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def add_beyond(self, quantity: str, max_abs, max_rel, run, step) -> None:
        """Fold in one perturbed run's diff of ``quantity`` against the reference."""
        seen = self.beyond.setdefault(quantity, {"max_abs": 0.0, "max_rel": 0.0, "run": None,
                                                 "step": None})
        seen["max_abs"] = max(seen["max_abs"], max_abs or 0.0)
        seen["max_rel"] = max(seen["max_rel"], max_rel or 0.0)
        if step is not None and (seen["step"] is None or step < seen["step"]):
            seen["run"], seen["step"] = run, step

    def at(self, fit: str, quantity: str = "weights") -> dict[int, float]:
        series = getattr(self, quantity).get(fit)
        if series is None:
            return {}
        return dict(zip(self.steps[fit].tolist(), series.tolist()))

    def to_json(self) -> dict:
        return {"runs": self.runs, "horizon": self.horizon, "margin": MARGIN,
                "fits": {fit: {"step": self.steps[fit].tolist(),
                               "weights": _listed(self.weights[fit]),
                               "gradients": _listed(self.gradients.get(fit)),
                               "loss": _listed(self.loss.get(fit))} for fit in self.steps},
                "results": self.results, "beyond": self.beyond, "problems": self.problems}


def _listed(values) -> list | None:
    if values is None:
        return None
    return [float(v) if math.isfinite(v) else None for v in np.asarray(values, dtype="float64")]


def per_step(ref, other, column: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per fit of two trace frames: (steps on both, max |a − b| of ``column`` per step).
    Variables are matched by position within a fit (as kclf.compare.diff does when the
    names differ)."""
    out = {}
    for fit in dict.fromkeys(ref["run"]):
        a = ref[ref["run"] == fit]
        b = other[other["run"] == fit]
        if not len(b):
            continue
        a = a.assign(_pos=a.groupby("step").cumcount())
        b = b.assign(_pos=b.groupby("step").cumcount())
        merged = a[["step", "_pos", column]].merge(b[["step", "_pos", column]], on=["step", "_pos"],
                                                   suffixes=("_a", "_b"))
        if not len(merged):
            continue
        d = (merged[f"{column}_a"] - merged[f"{column}_b"]).abs()
        same = merged[f"{column}_a"].eq(merged[f"{column}_b"])  # inf = inf, as kclf.compare.diff
        d = d.where(~same, 0.0).fillna(np.inf)
        worst = d.groupby(merged["step"]).max()
        out[fit] = (worst.index.to_numpy(dtype="int64"), worst.to_numpy(dtype="float64"))
    return out


def measure(ref, perturbed_frames: list, ref_results: dict | None = None,
            perturbed_results: list | None = None, horizon: int | None = None) -> Envelope:
    """The envelope of ``perturbed_frames`` (trace frames of the perturbed runs) around
    ``ref`` (the reference's own run); with whole fits (``horizon`` None) also around each
    result leaf of ``ref_results``."""
    from kclf.compare.diff import flatten
    from kclf.jsonio import is_number, number

    env = Envelope(runs=len(perturbed_frames), horizon=horizon)
    spread: dict[str, dict[str, dict[int, float]]] = {}  # quantity -> fit -> step -> max
    for frame in perturbed_frames:
        for quantity, column in (("weights", "weight_after"), ("gradients", "gradient"),
                                 ("loss", "loss")):
            for fit, (steps, worst) in per_step(ref, frame, column).items():
                seen = spread.setdefault(quantity, {}).setdefault(fit, {})
                for step, value in zip(steps.tolist(), worst.tolist()):
                    seen[step] = max(seen.get(step, 0.0), value)
    for fit, seen in spread.get("weights", {}).items():
        env.steps[fit] = np.array(sorted(seen), dtype="int64")
        for quantity in ("weights", "gradients", "loss"):
            values = spread.get(quantity, {}).get(fit, {})
            getattr(env, quantity)[fit] = np.array([values.get(s, np.nan) for s in env.steps[fit].tolist()])
    if horizon is None and ref_results is not None:
        flat = flatten(ref_results.get("values") or {}, "values")
        for results in perturbed_results or []:
            theirs = flatten((results or {}).get("values") or {}, "values")
            for path, a in flat.items():
                b = theirs.get(path)
                if is_number(a) and is_number(b) and not isinstance(a, bool):
                    d = abs(number(a) - number(b))
                    if math.isfinite(d):
                        env.results[path] = max(env.results.get(path, 0.0), d)
    return env
