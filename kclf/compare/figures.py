"""The comparison report's figures: loss and weights per step per backend, and the
|difference| to the reference per step on a log scale (PNG bytes, for kclf.compare.report)."""

from __future__ import annotations

import io
import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from kclf.backend import BACKENDS

if TYPE_CHECKING:
    from kclf.compare.verdict import ExperimentComparison

MAX_RUNS_PLOTTED = 6
MAX_WEIGHT_SERIES = 8


@dataclass
class Figure:
    path: str  # relative to the report folder
    caption: str
    png: bytes


def _color(backend: str) -> str:
    return f"C{BACKENDS.index(backend)}" if backend in BACKENDS else "C3"


def _png(fig) -> bytes:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.set_layout_engine("constrained")  # keeps the suptitle off the panel titles
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return buf.getvalue()


def _run_labels(frames: dict) -> list[str]:
    labels: dict[str, None] = {}
    for frame in frames.values():
        labels.update(dict.fromkeys(frame["run"]))
    return list(labels)[:MAX_RUNS_PLOTTED]


def loss_figure(name: str, frames: dict) -> bytes:
    """Loss per step, one line per backend, one panel per training run."""
    from kclf import plots

    labels = _run_labels(frames)
    fig, axes = plots.subplots(1, len(labels), f"{name}: loss per step",
                               size=(max(4.5 * len(labels), 6), 3.4))
    for ax, label in zip(axes[0], labels):
        values = []
        for i, (backend, frame) in enumerate(frames.items()):
            rows = frame[frame["run"] == label].drop_duplicates("step")
            ax.plot(rows["step"], rows["loss"], color=_color(backend), label=backend,
                    linestyle=("-", "--", ":")[i % 3], marker="." if len(rows) < 60 else None)
            values += [v for v in rows["loss"] if math.isfinite(v)]
        if values and min(values) > 0 and max(values) > 100 * min(values):
            ax.set_yscale("log")  # a diverging run or a steep first step would flatten the rest
        ax.set(title=label, xlabel="step", ylabel="loss")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="small")
    return _png(fig)


def weights_figure(name: str, frames: dict) -> bytes:
    """weight_after per step, one panel per backend, one line per (run, variable, index)."""
    from kclf import plots

    fig, axes = plots.subplots(1, len(frames), f"{name}: weights per step",
                               size=(4.5 * len(frames), 3.4))
    for ax, (backend, frame) in zip(axes[0], frames.items()):
        several = frame["run"].nunique() > 1
        keys = frame[["run", "variable", "index"]].drop_duplicates().head(MAX_WEIGHT_SERIES)
        for run, variable, index in keys.itertuples(index=False):
            rows = frame[(frame["run"] == run) & (frame["variable"] == variable) & (frame["index"] == index)]
            label = f"{run}: " * several + f"{variable}[{index}]"
            ax.plot(rows["step"], rows["weight_after"], label=label)
        ax.set(title=backend, xlabel="step", ylabel="weight after the step")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="x-small")
    return _png(fig)


def difference_figure(experiment: ExperimentComparison) -> bytes | None:
    """Max |difference| against the reference per step, log scale, one panel per run."""
    from kclf import plots

    pairs = {b: p for b, p in experiment.pairs.items() if p.traces and p.traces.per_step}
    if not pairs:
        return None
    labels: dict[str, None] = {}
    for pair in pairs.values():
        labels.update(dict.fromkeys(pair.traces.per_step))
    labels = list(labels)[:MAX_RUNS_PLOTTED]
    fig, axes = plots.subplots(1, len(labels), f"{experiment.name}: max |difference| vs "
                               f"{experiment.reference} per step (exact zeros leave gaps)",
                               size=(max(4.5 * len(labels), 7), 3.6))
    atols = sorted({q.atol for pair in pairs.values() for q in pair.traces.quantities.values()})
    for ax, label in zip(axes[0], labels):
        steps, nonzero = [], False
        for backend, pair in pairs.items():
            series = pair.traces.per_step.get(label)
            if not series:
                continue
            steps += series.steps
            nonzero = nonzero or any(v for values in series.quantities.values() for v in values)
            for quantity, marker in (("weights", "o"), ("gradients", "^"), ("loss", "s")):
                # NaN (a gap) for 0 and for missing values: a log axis cannot show 0.
                ys = [v if v else math.nan for v in series.quantities[quantity]]
                ax.plot(series.steps, ys, color=_color(backend), marker=marker, markersize=2.5,
                        linewidth=0.6, alpha=0.8, label=f"{backend} {quantity}")
        for atol in atols:
            ax.axhline(atol, color="grey", linewidth=0.8, linestyle="-.", label=f"atol {atol:g}")
        if not nonzero:
            ax.text(0.5, 0.5, "identical to the reference\nat every step", transform=ax.transAxes,
                    ha="center", va="center")
        if steps and min(steps) < max(steps):
            ax.set_xlim(min(steps), max(steps))
        ax.set_yscale("log")
        ax.set(title=label, xlabel="step", ylabel="max |difference|")
        ax.grid(True, alpha=0.3)
    axes[0][0].legend(fontsize="x-small")
    return _png(fig)


def make_figures(experiment: ExperimentComparison) -> list[Figure]:
    """The experiment's figures, from the traces it diffed (none without traces)."""
    name, frames = experiment.name, experiment.frames
    if not frames:
        return []
    stem = "figures/" + re.sub(r"[^A-Za-z0-9_.-]", "_", name)
    figures = [
        Figure(f"{stem}-loss.png", "loss per step, one line per backend", loss_figure(name, frames)),
        Figure(f"{stem}-weights.png", "weight trajectories per backend", weights_figure(name, frames)),
    ]
    diff = difference_figure(experiment)
    if diff is not None:
        figures.append(Figure(f"{stem}-difference.png", f"max |difference| against "
                              f"{experiment.reference} per step (log scale)", diff))
    from kclf.compare import drift_report

    return figures + drift_report.figures(experiment)  # local error, carried drift, envelope
