"""Why two backends part: one step's own error against the drift carried from earlier steps.

For a replayed step k (kclf.compare.replay: backend B's step from the reference's state),
with B's compared run, the reference's run and the replay aligned on (fit, step, element):

- total   T_k = max |B's weights after k − the reference's|           (the two runs)
- local   L_k = max |B's step from the reference's state − the reference's step|
- carried C_k = max |B's weights after k − B's step from the reference's state|

T = L + C element by element: L is what step k's arithmetic adds, C what came in from
steps before it. The local error splits again by what differs first in the step, in the
order the step runs: the batch loss from the same weights (forward), the gradient from the
same weights and batch (backward), the update from the same gradient (the optimizer).

A parting step (the first traced step beyond the weights' tolerance) is *local* when B's
step from the reference's state alone is beyond the tolerance there, else *carried*.

Without a replay, the traces still say when the runs never started alike: weights that
differ before the first step (a start diagnosis), or the same weights giving another batch
loss at the first step (the batches differ).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

from kclf.compare.envelope import MARGIN, Envelope
from kclf.compare.tolerances import Tolerance


# -- one fit's rows as arrays -----------------------------------------------------------------
@dataclass
class Steps:
    """One fit of a trace frame: per traced step, every element in row order."""

    steps: np.ndarray  # (n,)
    before: np.ndarray  # (n, m)
    gradient: np.ndarray
    after: np.ndarray
    loss: np.ndarray  # (n,)
    variables: list[str]  # (m,): the variable each element belongs to
    update: np.ndarray | None = None  # a replay's update from the reference's gradient

    def at(self, steps) -> Steps:
        index = np.searchsorted(self.steps, steps)
        update = None if self.update is None else self.update[index]
        return Steps(np.asarray(steps), self.before[index], self.gradient[index],
                     self.after[index], self.loss[index], self.variables, update)


def fit_steps(frame, fit: str) -> Steps | None:
    """Fit ``fit`` of a trace frame as arrays; None when it has no rows or ragged steps."""
    rows = frame[frame["run"] == fit]
    if not len(rows):
        return None
    rows = rows.sort_values("step", kind="stable")
    steps, counts = np.unique(rows["step"].to_numpy(), return_counts=True)
    if counts.min() != counts.max():
        return None
    n, m = len(steps), int(counts[0])

    def grid(column):
        return rows[column].to_numpy(dtype="float64").reshape(n, m)

    update = grid("update_after") if "update_after" in rows else None
    return Steps(steps, grid("weight_before"), grid("gradient"), grid("weight_after"),
                 grid("loss")[:, 0], rows["variable"].iloc[:m].tolist(), update)


def _absdiff(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    d = np.abs(a - b)
    return np.where((a == b) | (np.isnan(a) & np.isnan(b)), 0.0, np.where(np.isnan(d), np.inf, d))


def _rowmax(d: np.ndarray) -> np.ndarray:
    return d.max(axis=1) if d.size else np.zeros(len(d))


def _beyond(a: np.ndarray, b: np.ndarray, rtol: float, atol: float) -> np.ndarray:
    scale = np.maximum(np.abs(a), np.abs(b))
    return _absdiff(a, b) > atol + rtol * np.where(np.isfinite(scale), scale, 0.0)


def _ulps(d: np.ndarray, ref: np.ndarray) -> float:
    """The largest difference in float32 ulps of the reference's value."""
    if not d.size:
        return 0.0
    spacing = np.spacing(np.abs(ref).astype("float32")).astype("float64")
    ratio = np.where(d == 0, 0.0, d / np.maximum(spacing, np.finfo("float32").tiny))
    return float(ratio.max())


# -- the split and the parting ---------------------------------------------------------------------
PARTS = ("forward", "gradient", "update")
PART_WORDS = {"forward": "the batch loss from the same weights (forward)",
              "gradient": "the gradient from the same weights and batch (backward)",
              "update": "the update from the same gradient (optimizer)",
              None: "nothing: the step is bit-identical"}


@dataclass
class StepParts:
    """What differs in one replayed step, in the order the step runs."""

    step: int
    forward: float  # |Δ batch loss|, relative to the reference's loss
    gradient: float  # max |Δ gradient| relative to the variable's largest |gradient|
    gradient_variable: str | None  # the variable with the largest relative difference
    update: float | None  # max |Δ weights| of the update from the same gradient
    local: float  # max |Δ weights after|
    first: str | None  # the first part that differs at all (bitwise): forward, gradient, update

    def text(self) -> str:
        bits = [f"forward {_g(self.forward)} (relative)",
                f"gradient {_g(self.gradient)} (relative"
                + (f", largest on {self.gradient_variable})" if self.gradient_variable else ")")]
        if self.update is not None:
            bits.append(f"update from the same gradient {_g(self.update)}")
        return ", ".join(bits)


@dataclass
class PartingCause:
    """The first parting step of a fit, classified."""

    fit: str
    step: int
    kind: str  # local | carried
    total: float
    local: float
    carried: float
    parts: StepParts

    def to_json(self) -> dict:
        return {**{k: v for k, v in asdict(self).items() if k != "parts"}, "parts": asdict(self.parts)}


@dataclass
class FitDrift:
    """One fit of one backend against the reference: the split at every replayed step."""

    fit: str
    steps: list[int]
    total: list[float | None]  # None where the compared runs have no row
    local: list[float]
    carried: list[float | None]
    forward: list[float]
    gradient: list[float]
    update: list[float | None]
    envelope: list[float | None]
    recorded: int  # steps with a recorded state (the traced ones)
    fit_steps: int | None  # the fit's last traced step
    local_max: float = 0.0
    local_max_step: int | None = None
    local_ulps: float = 0.0
    identical_steps: int = 0  # replayed steps bit-identical to the reference's
    first_parts: dict[str, int] = field(default_factory=dict)  # part -> steps where it differs first
    gradient_variable: str | None = None
    decade_steps: float | None = None  # the total difference grows x10 every this many steps
    inside: int | None = None  # steps with T <= MARGIN x envelope (None: no envelope)
    compared: int | None = None  # steps with both T and an envelope
    first_outside: int | None = None
    parting: PartingCause | None = None
    origin: StepParts | None = None  # the first replayed step whose local error is not 0

    @property
    def replayed(self) -> int:
        return len(self.steps)

    def to_json(self) -> dict:
        out = asdict(self)
        out["parting"] = self.parting.to_json() if self.parting else None
        out["origin"] = asdict(self.origin) if self.origin else None
        return {k: _clean(v) for k, v in out.items()}


def _clean(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def _parts(step: int, ref: Steps, rep: Steps, i: int, j: int) -> StepParts:
    """Step ``step``: the reference's row ``i``, the replay's row ``j``."""
    loss_a, loss_b = ref.loss[i], rep.loss[j]
    forward = float(_absdiff(np.array([loss_a]), np.array([loss_b]))[0] / max(abs(loss_a), 1e-30))
    dg = _absdiff(ref.gradient[i], rep.gradient[j])
    names = np.array(ref.variables)
    worst, where = 0.0, None
    for name in dict.fromkeys(ref.variables):
        mask = names == name
        scale = max(float(np.abs(ref.gradient[i][mask]).max()), 1e-30)
        rel = float(dg[mask].max()) / scale
        if rel > worst:
            worst, where = rel, name
    update = None
    if rep.update is not None and np.isfinite(rep.update[j]).all():
        update = float(_absdiff(ref.after[i], rep.update[j]).max())
    local = float(_absdiff(ref.after[i], rep.after[j]).max())
    first = ("forward" if loss_a != loss_b else "gradient" if dg.max() > 0
             else "update" if update else None)
    return StepParts(step, forward, worst, where, update, local, first)


def split_fit(fit: str, ref: Steps, other: Steps | None, rep: Steps, tol: Tolerance,
              parting_step: int | None, envelope: Envelope | None,
              recorded: int | None = None) -> FitDrift:
    """The split at every step the replay ran, the growth of the total, the parting."""
    steps = np.intersect1d(rep.steps, ref.steps)
    r, p = ref.at(steps), rep.at(steps)
    local_d = _absdiff(r.after, p.after)
    local = _rowmax(local_d)
    total = np.full(len(steps), np.nan)
    carried = np.full(len(steps), np.nan)
    if other is not None:
        both = np.isin(steps, other.steps)
        o = other.at(steps[both])
        total[both] = _rowmax(_absdiff(r.after[both], o.after))
        carried[both] = _rowmax(_absdiff(o.after, p.after[both]))
    parts = [_parts(int(s), r, p, i, i) for i, s in enumerate(steps)]
    env = envelope.at(fit) if envelope is not None else {}
    drift = FitDrift(
        fit, [int(s) for s in steps], _opt(total), [float(v) for v in local], _opt(carried),
        [q.forward for q in parts], [q.gradient for q in parts], [q.update for q in parts],
        [env.get(int(s)) for s in steps], recorded=recorded or len(rep.steps),
        fit_steps=int(ref.steps.max()) if len(ref.steps) else None)
    if len(steps):
        k = int(np.argmax(local))
        drift.local_max, drift.local_max_step = float(local[k]), int(steps[k])
        drift.local_ulps = _ulps(local_d, r.after)
        drift.identical_steps = int(sum(q.first is None and q.local == 0 for q in parts))
        for q in parts:
            if q.first:
                drift.first_parts[q.first] = drift.first_parts.get(q.first, 0) + 1
        worst = max(parts, key=lambda q: q.gradient)
        drift.gradient_variable = worst.gradient_variable
        drift.origin = next((q for q in parts if q.local > 0 or q.first), None)
    drift.decade_steps = _decade(steps, total, parting_step)
    if env:
        pairs = [(int(s), t, env.get(int(s))) for s, t in zip(steps, total)
                 if math.isfinite(t) and env.get(int(s)) is not None]
        drift.compared = len(pairs)
        drift.inside = sum(t <= MARGIN * e for _, t, e in pairs)
        drift.first_outside = next((s for s, t, e in pairs if t > MARGIN * e), None)
    if parting_step is not None and parting_step in set(steps.tolist()):
        i = int(np.searchsorted(steps, parting_step))
        rtol, atol = tol.for_quantity("weights")
        alone = bool(_beyond(r.after[i], p.after[i], rtol, atol).any())
        drift.parting = PartingCause(fit, parting_step, "local" if alone else "carried",
                                     float(total[i]), float(local[i]), float(carried[i]), parts[i])
    return drift


def _opt(values: np.ndarray) -> list[float | None]:
    return [float(v) if math.isfinite(v) else None for v in values]


def _decade(steps: np.ndarray, total: np.ndarray, until: int | None) -> float | None:
    """Steps per ×10 of the total difference: a least-squares line through log10 of the
    non-zero totals up to ``until`` (the parting step; all steps without one)."""
    keep = np.isfinite(total) & (total > 0)
    if until is not None:
        keep &= steps <= until
    if keep.sum() < 3 or np.ptp(steps[keep]) == 0:
        return None
    slope = np.polyfit(steps[keep].astype("float64"), np.log10(total[keep]), 1)[0]
    return float(1.0 / slope) if slope > 0 else None


# -- from the traces alone: the steps taken from the same state ---------------------------------
@dataclass
class SameStart:
    """A fit whose runs start alike, read from the traces alone: while the weights before a
    step are bit-identical (and the optimizer keeps no state of its own, as SGD), the step's
    difference is its own; the first step that differs says which part differs first."""

    fit: str
    steps: int  # traced steps on both sides
    identical: int  # leading steps bit-identical in every traced column
    first: StepParts | None  # the first step that differs, from the same weights
    total: float | None  # the largest |difference| of the weights after, over the fit
    decade_steps: float | None

    def text(self) -> str:
        if self.first is None:
            return f"fit {self.fit!r}: bit-identical at all {self.steps} steps"
        f = self.first
        what = {"forward": f"the batch loss ({_g(f.forward)} relative)",
                "gradient": f"the gradient ({_g(f.gradient)} relative, on {f.gradient_variable})",
                "update": f"the update from the same gradient ({_g(f.local)})"}[f.first]
        text = (f"fit {self.fit!r}: bit-identical for {self.identical} of {self.steps} steps; at "
                f"step {f.step}, from the same weights, {what} differs first")
        if self.total:
            text += f"; the weights after differ by up to {_g(self.total)} over the fit"
        if self.decade_steps:
            text += f", growing x10 every ~{self.decade_steps:.0f} steps"
        return text

    def to_json(self) -> dict:
        out = asdict(self)
        out["text"] = self.text()
        return out


def same_start(ref_frame, other_frame) -> list[SameStart]:
    """Per fit of two traces with every step traced: the leading bit-identical steps and the
    first step that differs from the same weights, classified (kclf's own experiments, whose
    SGD carries no state besides the weights)."""
    out = []
    for fit in dict.fromkeys(ref_frame["run"]):
        a, b = fit_steps(ref_frame, fit), fit_steps(other_frame, fit)
        if a is None or b is None or a.after.shape[1] != b.after.shape[1]:
            continue
        steps = np.intersect1d(a.steps, b.steps)
        if not len(steps) or steps[0] != 1 or not np.array_equal(steps, np.arange(1, len(steps) + 1)):
            continue  # only a trace of every step shows where the first difference comes in
        x, y = a.at(steps), b.at(steps)
        identical, first = 0, None
        for i, step in enumerate(steps.tolist()):
            if not np.array_equal(x.before[i], y.before[i]):
                break
            parts = _parts(step, x, y, i, i)
            if parts.first is None and np.array_equal(x.after[i], y.after[i]):
                identical += 1
                continue
            if parts.first is None:
                parts.first = "update"  # same weights, loss and gradient, other weights after
            first = parts
            break
        total = _rowmax(_absdiff(x.after, y.after))
        out.append(SameStart(fit, len(steps), identical, first,
                             float(total.max()) if len(total) else None,
                             _decade(steps, total, None)))
    return out


# -- a backend against the reference -------------------------------------------------------------
@dataclass
class Diagnosis:
    """Why one backend parts from the reference (:func:`diagnose_pair`)."""

    backend: str
    reference: str
    start: str | None = None  # the runs never started alike (weights, or batches)
    fits: dict[str, FitDrift] = field(default_factory=dict)
    self_check: str | None = None  # does the replay reproduce the backend's own step 1
    sampling: str | None = None  # which steps were replayed
    problems: list[str] = field(default_factory=list)
    same_start: list[SameStart] = field(default_factory=list)  # from the traces alone

    @property
    def parting(self) -> PartingCause | None:
        causes = [f.parting for f in self.fits.values() if f.parting]
        return causes[0] if causes else None

    def text(self) -> str:
        return diagnosis_text(self)

    def to_json(self) -> dict:
        return {"backend": self.backend, "reference": self.reference, "start": self.start,
                "self_check": self.self_check, "sampling": self.sampling,
                "problems": self.problems, "text": self.text(),
                "same_start": [f.to_json() for f in self.same_start],
                "fits": {k: v.to_json() for k, v in self.fits.items()}}


def _first_step(frame, fit: str) -> Steps | None:
    rows = frame[frame["run"] == fit]
    if not len(rows):
        return None
    return fit_steps(rows[rows["step"] == rows["step"].min()], fit)


def start_problem(ref_frame, other_frame, tol: Tolerance) -> str | None:
    """From the traces alone: the runs did not start from the same weights (the first
    step's weights before differ beyond tolerance), or the same weights gave another batch
    loss at the first step (the batches differ). None when neither."""
    if ref_frame is None or other_frame is None:
        return None
    rtol, atol = tol.for_quantity("weights")
    lrtol, latol = tol.for_quantity("loss")
    batches = None
    for fit in dict.fromkeys(ref_frame["run"]):
        a, b = _first_step(ref_frame, fit), _first_step(other_frame, fit)
        if a is None or b is None or a.before.shape[1] != b.before.shape[1]:
            continue
        first = np.intersect1d(a.steps, b.steps)
        if not len(first) or first[0] != a.steps[0]:
            continue
        i, j = 0, int(np.searchsorted(b.steps, first[0]))
        d = _absdiff(a.before[i], b.before[j])
        if _beyond(a.before[i], b.before[j], rtol, atol).any():
            return (f"the runs started from different weights (fit {fit!r}: before its first step "
                    f"the weights differ by up to {_g(float(d.max()))}): seed them with kclf.models "
                    "or set_weights, so every backend starts from the same numbers")
        if batches is None and _beyond(np.array([a.loss[i]]), np.array([b.loss[j]]), lrtol, latol)[0]:
            batches = (f"the same weights gave different batch losses at step {int(first[0])} of "
                       f"fit {fit!r} ({_g(float(b.loss[j]))} vs {_g(float(a.loss[i]))}): the "
                       "batches differ (order or data); feed the same rows in the same order "
                       "(shuffle=False, or shuffle with NumPy)")
    return batches


# -- words -------------------------------------------------------------------------------------------
def _g(value) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    return "0" if value == 0 else f"{value:.2g}"


def parting_words(p: PartingCause, where: str, backend: str, reference: str) -> str:
    """A first parting in words: drift carried from earlier steps, or the step itself."""
    if p.kind == "carried":
        return (f"the difference at {where} ({_g(p.total)}) is drift carried from earlier steps "
                f"(local there: {_g(p.local)}; carried: {_g(p.carried)})")
    return (f"at {where} the step itself parts: {backend}'s step from {reference}'s state is "
            f"{_g(p.local)} off (carried: {_g(p.carried)}); what differs first: "
            f"{PART_WORDS[p.parts.first]}")


def fit_text(d: FitDrift, backend: str, reference: str) -> str:
    """One fit in words: local error, what part differs, the parting, growth, envelope."""
    if not d.steps:
        return f"fit {d.fit!r}: no step replayed"
    bits = [f"fit {d.fit!r}: {backend}'s own steps from {reference}'s state agree with "
            f"{reference}'s to {_g(d.local_max)} (local, max over {d.replayed} replayed steps, "
            f"{d.local_ulps:.0f} ulps; {d.identical_steps} of them bit-identical)"]
    if d.local_max > 0:
        bits.append(parts_text(d))
    if d.parting:
        bits.append(parting_words(d.parting, f"step {d.parting.step}", backend, reference))
    if d.decade_steps:
        bits.append(f"growing x10 every ~{d.decade_steps:.0f} steps")
    if d.compared:
        if d.inside == d.compared:
            bits.append(f"inside the envelope of a 1-ulp perturbation of {reference} itself "
                        f"(x{MARGIN:g}) at all {d.compared} steps it covers")
        else:
            bits.append(f"inside the envelope of {reference}'s own 1-ulp perturbations (x{MARGIN:g}) "
                        f"at {d.inside} of {d.compared} steps; first outside at step {d.first_outside}")
    return "; ".join(bits)


def parts_text(d: FitDrift) -> str:
    """Forward, gradient, update: in how many replayed steps each differs, and by how much."""
    n = d.replayed
    forward = sum(v > 0 for v in d.forward)
    gradient = sum(v > 0 for v in d.gradient)
    updates = [u for u in d.update if u is not None]
    text = (f"forward: the batch loss from the same weights differs in {forward} of {n} steps "
            f"(up to {_g(max(d.forward))} relative); backward: the gradient in {gradient} "
            f"(up to {_g(max(d.gradient))} relative, most on {d.gradient_variable})")
    if updates:
        text += (f"; optimizer: the update from the same gradient in {sum(u > 0 for u in updates)} "
                 f"of {len(updates)} (up to {_g(max(updates))})")
    return text


def diagnosis_text(diag: Diagnosis) -> str:
    """The pair in words: a start problem alone; else the local error over every replayed
    step, what part of a step differs, and the first parting (or the longest fit): local or
    carried, how fast the difference grows, whether it stays inside the envelope."""
    if diag.start:
        return diag.start
    fits = [f for f in diag.fits.values() if f.steps]
    if not fits and diag.same_start:
        return same_start_text(diag.same_start, diag.backend, diag.reference)
    if not fits:
        return "; ".join(diag.problems) or "no step replayed"
    b, ref = diag.backend, diag.reference
    n = sum(f.replayed for f in fits)
    worst = max(fits, key=lambda f: f.local_max)
    identical = sum(f.identical_steps for f in fits)
    bits = [f"{b}'s own steps from {ref}'s state agree with {ref}'s to {_g(worst.local_max)} "
            f"(local, max over {n} replayed steps of {len(fits)} fits, "
            f"{max(f.local_ulps for f in fits):.0f} ulps"
            + (f"; {identical} bit-identical" if identical else "") + ")"]
    if worst.local_max > 0:
        bits.append(_parts_over(fits))
    parted = [f for f in fits if f.parting]
    shown = parted[0] if parted else max(fits, key=lambda f: f.fit_steps or 0)
    if parted:
        p = shown.parting
        bits.append(parting_words(p, f"step {p.step} of fit {shown.fit!r}", b, ref)
                    + ("" if p.kind == "carried" else f"; {p.parts.text()}"))
    else:
        bits.append("the weights never part beyond their tolerance")
    if shown.decade_steps:
        bits.append(f"{'growing' if parted else f'in fit {shown.fit!r} the difference grows'} "
                    f"x10 every ~{shown.decade_steps:.0f} steps")
    compared = sum(f.compared or 0 for f in fits)
    if compared:
        inside = sum(f.inside or 0 for f in fits)
        outside = [f for f in fits if f.first_outside is not None]
        if inside == compared:
            bits.append(f"inside the envelope of a 1-ulp perturbation of {ref} itself "
                        f"(x{MARGIN:g}) at all {compared} steps it covers")
        else:
            bits.append(f"inside the envelope of {ref}'s own 1-ulp perturbations (x{MARGIN:g}) "
                        f"at {inside} of {compared} steps; first outside at step "
                        f"{outside[0].first_outside} of fit {outside[0].fit!r}")
    return "; ".join(bits)


def same_start_text(fits: list[SameStart], backend: str, reference: str) -> str:
    """Every fit read from the traces alone, in one sentence."""
    whole = [f for f in fits if f.first is None]
    parted = [f for f in fits if f.first is not None]
    bits = [f"{len(whole)} of {len(fits)} fits bit-identical to {reference}'s at every step"]
    if parted:
        kinds = {k: [f for f in parted if f.first.first == k] for k in PARTS}
        low, high = min(f.identical for f in parted), max(f.identical for f in parted)
        span = f"{low}" if low == high else f"{low} to {high}"
        bits.append(f"in the other {len(parted)}, after {span} bit-identical step"
                    f"{'s' * (high != 1)}, the first step that differs does so, from the same "
                    "weights, first in its "
                    + ", ".join(f"{k} ({len(v)} fit{'s' * (len(v) != 1)})"
                                for k, v in kinds.items() if v))
        if kinds["update"]:
            f = kinds["update"][0]
            bits.append(f"{backend}'s optimizer turns the same weights and gradient into other "
                        f"weights (fit {f.fit!r}, step {f.first.step}: {_g(f.first.local)})")
        worst = max(parted, key=lambda f: f.total or 0)
        if worst.total:
            bits.append(f"the weights after differ by up to {_g(worst.total)} (fit {worst.fit!r})")
        else:
            bits.append("the weights after stay bit-identical (what differs does not reach them)")
    return "; ".join(bits)


def _parts_over(fits: list[FitDrift]) -> str:
    n = sum(f.replayed for f in fits)
    forward = [v for f in fits for v in f.forward]
    gradient = [v for f in fits for v in f.gradient]
    updates = [u for f in fits for u in f.update if u is not None]
    most = max(fits, key=lambda f: max(f.gradient, default=0)).gradient_variable
    text = (f"forward: the batch loss from the same weights differs in {sum(v > 0 for v in forward)} "
            f"of {n} steps (up to {_g(max(forward))} relative); backward: the gradient in "
            f"{sum(v > 0 for v in gradient)} (up to {_g(max(gradient))} relative, most on {most})")
    if updates:
        text += (f"; optimizer: the update from the same gradient in {sum(u > 0 for u in updates)} "
                 f"of {len(updates)} (up to {_g(max(updates))})")
    return text
