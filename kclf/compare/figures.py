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
MAX_WEIGHT_SERIES = 4  # lines per panel a projector can tell apart; the caption names the rest
PER_ROW = 3
PANEL = (3.6, 2.7)  # inches per panel: 3 panels at DPI make 1080 px, the report's width
DPI = 100
FONT = 10  # points at DPI, shown at 1:1 in the report: ticks and legends ≥ 8 pt
SMALL = 9


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
    fig.set_layout_engine("constrained")  # keeps the suptitle and the legend off the panels
    fig.savefig(buf, format="png", dpi=DPI)
    plt.close(fig)
    return buf.getvalue()


def _panels(n: int, title: str, height: float = PANEL[1]):
    """A figure of ``n`` panels, at most PER_ROW a row, readable at the size the report shows."""
    import matplotlib.pyplot as plt

    from kclf import plots  # noqa: F401  (matplotlib's file backend)

    cols = max(1, min(n, PER_ROW))
    rows = max(1, math.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(max(PANEL[0] * cols, 6.0), height * rows + 0.9),
                             squeeze=False)
    fig.suptitle(title, fontsize=FONT + 1)
    flat = list(axes.ravel())
    for ax in flat[n:]:
        ax.set_visible(False)
    for ax in flat[:n]:
        ax.tick_params(labelsize=SMALL)
        ax.grid(True, alpha=0.3)
    return fig, flat[:n]


def _integer_steps(ax) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True, nbins=6))


def _legend_below(fig, handles, labels) -> None:
    """One legend for every panel, below them: never over the data."""
    if handles:
        per_row = max(1, int(fig.get_size_inches()[0] / 2.1))  # ~2 inches an entry at SMALL
        fig.legend(handles, labels, loc="outside lower center", ncol=min(len(labels), per_row),
                   fontsize=SMALL, frameon=False)


def _run_labels(frames: dict) -> list[str]:
    labels: dict[str, None] = {}
    for frame in frames.values():
        labels.update(dict.fromkeys(frame["run"]))
    return list(labels)[:MAX_RUNS_PLOTTED]


def _title(label: str, width: int = 38) -> str:
    return label if len(label) <= width else label[: width - 1] + "…"


def loss_figure(name: str, frames: dict, note: str = "") -> bytes:
    """Loss per step, one line per backend, one panel per training run."""
    labels = _run_labels(frames)
    fig, axes = _panels(len(labels), f"{name}{note}: loss per step")
    handles: dict = {}
    for ax, label in zip(axes, labels):
        values = []
        for i, (backend, frame) in enumerate(frames.items()):
            rows = frame[frame["run"] == label].drop_duplicates("step")
            (line,) = ax.plot(rows["step"], rows["loss"], color=_color(backend),
                              linestyle=("-", "--", ":")[i % 3],
                              marker="." if len(rows) < 60 else None)
            handles.setdefault(backend, line)
            values += [v for v in rows["loss"] if math.isfinite(v)]
        if values and min(values) > 0 and max(values) > 100 * min(values):
            ax.set_yscale("log")  # a diverging run or a steep first step would flatten the rest
        ax.set_title(_title(label), fontsize=FONT)
        ax.set_xlabel("step", fontsize=FONT)
        ax.set_ylabel("loss", fontsize=FONT)
        _integer_steps(ax)
    _legend_below(fig, list(handles.values()), list(handles))
    return _png(fig)


def weight_series(frames: dict) -> tuple[list[tuple], int]:
    """The (run, variable, index) series the weights figure draws, and how many there are."""
    keys: dict[tuple, None] = {}
    for frame in frames.values():
        keys.update(dict.fromkeys(frame[["run", "variable", "index"]].drop_duplicates()
                                  .itertuples(index=False, name=None)))
    every = list(keys)
    return every[:MAX_WEIGHT_SERIES], len(every)


def weights_figure(name: str, frames: dict, note: str = "") -> bytes:
    """weight_after per step, one panel per backend, at most MAX_WEIGHT_SERIES lines each."""
    shown, _ = weight_series(frames)
    several = len({run for run, _, _ in shown}) > 1
    fig, axes = _panels(len(frames), f"{name}{note}: weights per step")
    handles: dict = {}
    for ax, (backend, frame) in zip(axes, frames.items()):
        for n, (run, variable, index) in enumerate(shown):
            rows = frame[(frame["run"] == run) & (frame["variable"] == variable) & (frame["index"] == index)]
            (line,) = ax.plot(rows["step"], rows["weight_after"], color=f"C{n}")
            handles.setdefault(f"{run}: " * several + f"{variable}[{index}]", line)
        ax.set_title(backend, fontsize=FONT)
        ax.set_xlabel("step", fontsize=FONT)
        ax.set_ylabel("weight after the step", fontsize=FONT)
        _integer_steps(ax)
    _legend_below(fig, list(handles.values()), [_title(k, 48) for k in handles])
    return _png(fig)


def difference_figure(experiment: ExperimentComparison, note: str = "") -> bytes | None:
    """Max |difference| against the reference per step, log scale, one panel per run."""
    pairs = {b: p for b, p in experiment.pairs.items() if p.traces and p.traces.per_step}
    if not pairs:
        return None
    labels: dict[str, None] = {}
    for pair in pairs.values():
        labels.update(dict.fromkeys(pair.traces.per_step))
    labels = list(labels)[:MAX_RUNS_PLOTTED]
    fig, axes = _panels(len(labels), f"{experiment.name}{note}: max |difference| vs "
                        f"{experiment.reference} per step (exact zeros leave gaps)")
    atols = sorted({q.atol for pair in pairs.values() for q in pair.traces.quantities.values()})
    handles: dict = {}
    for ax, label in zip(axes, labels):
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
                (line,) = ax.plot(series.steps, ys, color=_color(backend), marker=marker,
                                  markersize=3, linewidth=0.7, alpha=0.8)
                handles.setdefault(f"{backend} {quantity}", line)
        for n, atol in enumerate(atols):
            line = ax.axhline(atol, color="grey", linewidth=0.9, linestyle=("-.", ":")[n % 2])
            handles.setdefault(f"atol {atol:g}", line)
        if not nonzero:
            ax.text(0.5, 0.5, "identical to the reference\nat every step", transform=ax.transAxes,
                    ha="center", va="center", fontsize=FONT)
        if steps and min(steps) < max(steps):
            ax.set_xlim(min(steps), max(steps))
        ax.set_yscale("log")
        ax.set_title(_title(label), fontsize=FONT)
        ax.set_xlabel("step", fontsize=FONT)
        ax.set_ylabel("max |difference|", fontsize=FONT)
        _integer_steps(ax)
    _legend_below(fig, list(handles.values()), list(handles))
    return _png(fig)


def make_figures(experiment: ExperimentComparison, note: str = "") -> list[Figure]:
    """The experiment's figures, from the traces it diffed (none without traces); ``note``
    goes into every title (" (synthetic data)")."""
    name, frames = experiment.name, experiment.frames
    if not frames:
        return []
    stem = "figures/" + re.sub(r"[^A-Za-z0-9_.-]", "_", name)
    shown, total = weight_series(frames)
    weights = "weight trajectories per backend"
    if total > len(shown):
        weights += (f": the first {len(shown)} of {total} weight series "
                    f"({', '.join(f'{r}: {v}[{i}]' for r, v, i in shown)}); every series is in "
                    f"runs/{name}/BACKEND/trace.csv")
    runs = _run_labels(frames)
    every_run = {label for frame in frames.values() for label in frame["run"]}
    loss = "loss per step, one line per backend"
    if len(every_run) > len(runs):
        loss += f" (the first {len(runs)} of {len(every_run)} training runs)"
    figures = [
        Figure(f"{stem}-loss.png", loss, loss_figure(name, frames, note)),
        Figure(f"{stem}-weights.png", weights, weights_figure(name, frames, note)),
    ]
    diff = difference_figure(experiment, note)
    if diff is not None:
        figures.append(Figure(f"{stem}-difference.png", f"max |difference| against "
                              f"{experiment.reference} per step (log scale)", diff))
    return figures
