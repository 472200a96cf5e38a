"""The drift phase in the report: the diagnosis per backend, the split per fit, the
tolerances beside the envelope, and the figure (local error and carried drift per step,
the envelope shaded). kclf.compare.report and .figures each call one function here."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from kclf.compare.diagnosis import PART_WORDS, _g
from kclf.compare.envelope import MARGIN

if TYPE_CHECKING:
    from kclf.compare.verdict import ExperimentComparison

MAX_FITS_PLOTTED = 6


def _diagnosed(exp: ExperimentComparison) -> dict:
    return {b: p.diagnosis for b, p in exp.pairs.items() if p.diagnosis is not None}


def _split_rows(exp: ExperimentComparison) -> list[list[str]]:
    rows = []
    for backend, diag in _diagnosed(exp).items():
        for fit, d in diag.fits.items():
            updates = [u for u in d.update if u is not None]
            parting = "—"
            if d.parting:
                p = d.parting
                parting = (f"step {p.step}: {p.kind} (local {_g(p.local)}, carried {_g(p.carried)}"
                           + (f"; first: {p.parts.first})" if p.kind == "local" else ")"))
            envelope = "—" if not d.compared else f"{d.inside} of {d.compared}"
            rows.append([backend, fit, f"{d.replayed} of {d.recorded}",
                         f"{_g(d.local_max)} ({d.local_ulps:.0f} ulps)", str(d.identical_steps),
                         _g(max(d.forward, default=None)),
                         f"{_g(max(d.gradient, default=None))} ({d.gradient_variable or '—'})",
                         _g(max(updates, default=None)), parting,
                         "—" if not d.decade_steps else f"~{d.decade_steps:.0f}", envelope])
    return rows


def tolerance_rows(exp: ExperimentComparison) -> list[list[str]]:
    """Each hand-chosen trace tolerance beside what rounding alone does (the envelope) and
    what each backend does: where the first passes it, the tolerance is stricter than the
    reference's own noise."""
    env, tol = exp.envelope, exp.tolerance
    if env is None:
        return []
    rows = []
    for quantity in ("weights", "gradients", "loss"):
        rtol, atol = tol.for_quantity(quantity)
        seen = env.beyond.get(quantity)
        if seen is None:
            continue
        own = "never" if seen["step"] is None else f"{seen['run']!r} step {seen['step']}"
        backends = []
        for backend, pair in exp.pairs.items():
            q = (pair.traces.quantities if pair.traces else {}).get(quantity)
            if q is not None:
                backends.append(f"{backend}: " + ("never" if q.within else
                                                  f"{q.first_run!r} step {q.first_step}"))
        if seen["step"] is None:
            verdict = "agree: rounding alone stays within it"
        else:
            verdict = ("disagree: rounding alone passes it (stricter than the reference's own "
                       "noise); judge by the envelope")
        rows.append([quantity, f"rtol {rtol:g}, atol {atol:g}", _g(seen["max_abs"]),
                     _g(seen["max_rel"]), own, "; ".join(backends) or "—", verdict])
    return rows


def result_rows(exp: ExperimentComparison) -> list[list[str]]:
    """The printed numbers whose envelope was measured (whole fits): hand-chosen tolerance,
    the reference's own spread, the largest backend difference."""
    env = exp.envelope
    if env is None or not env.results:
        return []
    rows = []
    for path, spread in env.results.items():
        rtol, atol, judged = exp.tolerance.for_path(path)
        worst = 0.0
        for pair in exp.pairs.values():
            for leaf in pair.results.details:
                if leaf.path == path and leaf.abs_diff is not None:
                    worst = max(worst, leaf.abs_diff)
        if spread == 0 and worst == 0:
            continue
        measured = "cannot be measured (spread 0): hand-chosen kept" if spread == 0 else \
            f"atol {MARGIN * spread:.2g}"
        rows.append([path, f"rtol {rtol:g}, atol {atol:g}", _g(spread), measured, _g(worst),
                     "yes" if spread and worst <= MARGIN * spread else ("—" if not spread else "NO")])
    return rows


def blocks(exp: ExperimentComparison) -> list[tuple[str, object]]:
    """The report's section for one experiment (nothing when no diagnosis was made)."""
    from kclf.compare.blocks import Table

    diagnosed = _diagnosed(exp)
    if not diagnosed and exp.envelope is None:
        return []
    out: list[tuple[str, object]] = [("h4", f"Where and why the backends part from {exp.reference}")]
    for backend, diag in diagnosed.items():
        out.append(("p", f"{backend}: {diag.text()}."))
    rows = _split_rows(exp)
    if rows:
        out.append(("table", Table(
            ["backend", "fit", "replayed of recorded", "local max", "bit-identical steps",
             "forward (loss, rel)", "backward (gradient, rel)", "update from same gradient",
             "first parting", "x10 every steps", f"inside envelope x{MARGIN:g}"], rows)))
        out.append(("p", "local: the backend's step from the reference's state against the "
                         "reference's step; carried: the backend's own run against its step from "
                         "the reference's state (the two add up to the difference between the "
                         "runs). A parting step is local when the local error alone passes the "
                         "weights' tolerance. Forward, backward, update: "
                         + "; ".join(f"{k}: {v}" for k, v in PART_WORDS.items() if k) + "."))
    same = [[b, f.fit, str(f.steps), str(f.identical),
             "—" if f.first is None else str(f.first.step),
             "—" if f.first is None else f.first.first,
             "—" if f.first is None else (f"{_g(f.first.forward)} rel" if f.first.first == "forward"
                                          else f"{_g(f.first.gradient)} rel ({f.first.gradient_variable})"
                                          if f.first.first == "gradient" else _g(f.first.local)),
             _g(f.total), "—" if not f.decade_steps else f"~{f.decade_steps:.0f}"]
            for b, d in diagnosed.items() for f in d.same_start]
    if same:
        out.append(("table", Table(["backend", "fit", "steps", "bit-identical steps from the start",
                                    "first step that differs", "what differs first",
                                    "by", "weights after: max |difference|", "x10 every steps"],
                                   same)))
        out.append(("p", "Read from the traces alone (every step traced, the same start, plain "
                         "SGD carries no state besides the weights): while the weights before a "
                         "step are bit-identical, what differs in it is the step's own arithmetic, "
                         "in the order the step runs: the batch loss (forward), the gradient "
                         "(backward), the update from the same gradient (optimizer)."))
    first = next(iter(diagnosed.values()), None)
    notes = [n for n in (first.sampling if first else None,
                         *(d.self_check for d in diagnosed.values())) if n]
    if notes:
        out.append(("p", "Sampling and checks: " + "; ".join(notes) + "."))
    problems = sorted({p for d in diagnosed.values() for p in d.problems})
    for problem in problems:
        out.append(("p", f"Drift phase problem: {problem}"))
    tol = tolerance_rows(exp)
    if tol:
        out += [("h4", "Tolerances: hand-chosen and measured"),
                ("table", Table(["trace quantity", "hand-chosen", "envelope max abs",
                                 "envelope max rel", "rounding alone passes it at",
                                 "backends pass it at", "hand-chosen vs envelope"], tol))]
    res = result_rows(exp)
    if res:
        out.append(("table", Table(["printed number", "hand-chosen", "reference's own spread",
                                    f"measured tolerance (x{MARGIN:g})", "largest backend difference",
                                    "within"], res)))
    elif exp.envelope is not None:
        out.append(("p", f"The printed numbers keep their hand-chosen tolerance: the envelope "
                         f"covered the first {exp.envelope.horizon} steps of each fit, not whole "
                         "fits (--envelope-steps 0 measures them)."))
    if exp.drift_cost:
        spent = sum(v for v in exp.drift_cost.values() if v is not None)
        reused = sum(v is None for v in exp.drift_cost.values())
        out.append(("p", f"Cost of the drift phase: {len(exp.drift_cost)} processes, "
                         f"{spent:.0f} s in all" + (f" ({reused} reused)" if reused else "") + ": "
                         + "; ".join(f"{k.split(': ', 1)[-1]} {'reused' if v is None else f'{v:.0f} s'}"
                                     for k, v in exp.drift_cost.items()) + "."))
    return out


def _gaps(values) -> list[float]:
    """0 and None as NaN: a log axis cannot show them."""
    return [v if v else math.nan for v in values]


def figure(exp: ExperimentComparison) -> bytes | None:
    """Per fit: total difference, local error and carried drift per step on a log axis, one
    colour per backend, the envelope (and MARGIN x it) shaded."""
    from kclf import plots
    from kclf.compare.figures import _color, _png

    diagnosed = {b: d for b, d in _diagnosed(exp).items() if d.fits}
    if not diagnosed:
        return None
    fits = list(dict.fromkeys(f for d in diagnosed.values() for f in d.fits))[:MAX_FITS_PLOTTED]
    cols = min(len(fits), 3)
    rows = math.ceil(len(fits) / cols)
    fig, axes = plots.subplots(rows, cols, f"{exp.name}: where the difference to {exp.reference} "
                               "comes from (exact zeros leave gaps)", size=(5.2 * cols, 3.8 * rows))
    env = exp.envelope
    for n, fit in enumerate(fits):
        ax = axes[n // cols][n % cols]
        if env is not None and fit in env.steps and len(env.steps[fit]):
            steps, spread = env.steps[fit], env.weights[fit]
            floor = 1e-12
            ax.fill_between(steps, floor, [max(v, floor) for v in spread], color="0.85",
                            label=f"envelope ({env.runs} x 1 ulp)", step=None)
            ax.plot(steps, [MARGIN * v if v else math.nan for v in spread], color="0.5",
                    linestyle="-.", linewidth=0.8, label=f"envelope x{MARGIN:g}")
        for backend, diag in diagnosed.items():
            d = diag.fits.get(fit)
            if d is None:
                continue
            color = _color(backend)
            ax.plot(d.steps, _gaps(d.carried), color=color, linewidth=1.2, label=f"{backend} carried")
            ax.plot(d.steps, _gaps(d.local), color=color, linewidth=0.9, linestyle="--",
                    marker="." if len(d.steps) < 80 else None, label=f"{backend} local")
            if d.parting:
                ax.axvline(d.parting.step, color=color, linewidth=0.7, linestyle=":")
        ax.set_yscale("log")
        ax.set(title=fit, xlabel="step", ylabel="max |difference| of the weights after the step")
        ax.grid(True, alpha=0.3)
    for n in range(len(fits), rows * cols):
        axes[n // cols][n % cols].set_visible(False)
    axes[0][0].legend(fontsize="x-small")
    return _png(fig)


def figures(exp: ExperimentComparison) -> list:
    """The drift figure as kclf.compare.figures lists them (none without a diagnosis)."""
    import re

    from kclf.compare.figures import Figure

    png = figure(exp)
    if png is None:
        return []
    stem = "figures/" + re.sub(r"[^A-Za-z0-9_.-]", "_", exp.name)
    return [Figure(f"{stem}-drift.png", f"local error (dashed) and carried drift (solid) per "
                   f"step against {exp.reference}, the reference's 1-ulp envelope shaded", png)]
