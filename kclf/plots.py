"""Figures: matplotlib with a file backend, so experiments run without a screen."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def figure(title: str, *, xlabel: str = "", ylabel: str = "", size=(6.0, 4.0)):
    """A new figure with one labelled axes; returns (fig, ax)."""
    fig, ax = plt.subplots(figsize=size)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    return fig, ax


def subplots(nrows: int, ncols: int, title: str, *, size=None):
    fig, axes = plt.subplots(nrows, ncols, figsize=size or (5.0 * ncols, 4.0 * nrows), squeeze=False)
    fig.suptitle(title)
    return fig, axes


def history_curves(ax, history: dict, metric: str, *, title: str = "", mark_epoch: int | None = None):
    """Training and validation ``metric`` per epoch from a Keras ``History.history`` dict;
    ``mark_epoch`` (1-based) draws a dashed line, e.g. at the epoch early stopping restored."""
    epochs = range(1, len(history[metric]) + 1)
    ax.plot(epochs, history[metric], label="training")
    if f"val_{metric}" in history:
        ax.plot(epochs, history[f"val_{metric}"], label="validation")
    if mark_epoch is not None:
        ax.axvline(mark_epoch, color="grey", linestyle="--", label=f"best epoch ({mark_epoch})")
    if title:
        ax.set_title(title)
    ax.set_xlabel("epoch")
    ax.set_ylabel(metric)
    ax.grid(True, alpha=0.3)
    ax.legend()


def confusion_matrix(ax, y_true, y_pred, class_names, *, title: str = ""):
    """Counts of (actual, predicted) classes; rows are the actual class."""
    from sklearn.metrics import ConfusionMatrixDisplay

    ConfusionMatrixDisplay.from_predictions(
        y_true, y_pred, labels=list(range(len(class_names))), display_labels=list(class_names),
        ax=ax, colorbar=False, cmap="Blues",
    )
    if title:
        ax.set_title(title)


def mse_contour(ax, x, y, w_range, b_range, *, levels: int = 30) -> None:
    """Contours of the full-data MSE of ŷ = wx + b over a (w, b) grid, log-spaced levels."""
    import numpy as np

    x = np.asarray(x, "float64").reshape(-1)
    y = np.asarray(y, "float64").reshape(-1)
    w, b = np.meshgrid(np.linspace(*w_range, 200), np.linspace(*b_range, 200))
    loss = np.mean((w[..., None] * x + b[..., None] - y) ** 2, axis=-1)
    lo, hi = loss.min(), loss.max()
    ax.contour(w, b, loss, levels=lo + (hi - lo) * np.geomspace(1e-4, 1, levels), cmap="viridis", alpha=0.6, linewidths=0.8)
    slope, intercept = np.polyfit(x, y, 1)  # the least-squares minimum
    mark_minimum(ax, slope, intercept, w_range, b_range)
    ax.set_xlim(*w_range)
    ax.set_ylim(*b_range)
    ax.set_xlabel("w")
    ax.set_ylabel("b")


def theta_path(ax, thetas, label: str) -> None:
    """The (w, b) iterates θ0, θ1, ... as a labelled path."""
    import numpy as np

    path = np.asarray(thetas, dtype="float64")
    ax.plot(path[:, 0], path[:, 1], "o-", color="C3", label=label)
    for i, (w, b) in enumerate(path):
        ax.annotate(f"θ{i}", (w, b), textcoords="offset points", xytext=(5, 5))


def mark_minimum(ax, w, b, w_range, b_range, *, label: str = "MSE minimum") -> None:
    """A star at (w, b); when it lies outside the axes, an arrow marker on the nearest edge
    pointing towards it, labelled with its coordinates, so the legend never names a point
    that is not drawn."""
    (w0, w1), (b0, b1) = w_range, b_range
    if w0 <= w <= w1 and b0 <= b <= b1:
        ax.plot([w], [b], "*", color="k", ms=12, label=label)
        return
    margin_w, margin_b = 0.04 * (w1 - w0), 0.04 * (b1 - b0)
    cw = min(max(w, w0 + margin_w), w1 - margin_w)
    cb = min(max(b, b0 + margin_b), b1 - margin_b)
    # The edge it is furthest beyond, relative to the axes' size, sets the arrow's direction.
    beyond = {"<": (w0 - w) / (w1 - w0), ">": (w - w1) / (w1 - w0), "v": (b0 - b) / (b1 - b0), "^": (b - b1) / (b1 - b0)}
    marker = max(beyond, key=beyond.get)
    ax.plot([cw], [cb], marker=marker, color="k", ms=11, linestyle="none",
            label=f"{label} at ({w:.3g}, {b:.3g}), off the axes this way")


# -- readable on a projector ------------------------------------------------------------------
REPORT_WIDTH_PX = 1150  # the widest a figure is shown in report.html (CSS pixels)
MIN_POINTS = 8.0  # the smallest text, in points as the reader sees it (1 pt = 96/72 CSS px)


def min_fontsize(width_in: float, dpi: float, shown_px: float = REPORT_WIDTH_PX) -> float:
    """The smallest matplotlib font size (pt) that is MIN_POINTS when a figure ``width_in``
    inches wide, saved at ``dpi``, is shown at most ``shown_px`` CSS pixels wide."""
    scale = min(1.0, shown_px / (width_in * dpi))
    return MIN_POINTS * 96.0 / (dpi * scale)


def _inside(legend, ax) -> bool:
    """Whether a legend overlaps its axes' data area (drawn first: a figure's layout is known)."""
    a, b = legend.get_window_extent(), ax.get_window_extent()
    return a.x0 < b.x1 and a.x1 > b.x0 and a.y0 < b.y1 and a.y1 > b.y0


def for_projector(fig, dpi: float = 110, shown_px: float = REPORT_WIDTH_PX) -> None:
    """Make ``fig`` readable where report.html (or a projector) shows it: every text at least
    MIN_POINTS at the size shown, legends moved out of the data (below their axes), and integer
    ticks on step, epoch and iteration axes."""
    from matplotlib.text import Text
    from matplotlib.ticker import MaxNLocator

    smallest = min_fontsize(fig.get_size_inches()[0], dpi, shown_px)
    for text in fig.findobj(Text):
        if text.get_fontsize() < smallest:
            text.set_fontsize(smallest)
    for ax in fig.axes:
        for name, axis in (("x", ax.xaxis), ("y", ax.yaxis)):
            labels = axis.get_ticklabels()
            if labels and labels[0].get_fontsize() < smallest:
                ax.tick_params(axis=name, labelsize=smallest)
        if any(w in ax.get_xlabel().lower() for w in ("step", "epoch", "iteration")) \
                and ax.get_xscale() == "linear":
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.canvas.draw()
    moved = False
    for ax in fig.axes:
        legend = ax.get_legend()
        if legend is None or not _inside(legend, ax):
            continue
        handles, labels = legend.legend_handles, [t.get_text() for t in legend.get_texts()]
        size = max([smallest] + [t.get_fontsize() for t in legend.get_texts()][:1])
        legend.remove()
        ax.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, -0.16),
                  ncol=2 if len(labels) > 1 and max(map(len, labels)) <= 28 else 1,
                  fontsize=size, frameon=False)
        moved = True
    if moved and not fig.get_constrained_layout():
        try:  # room for the legends below the axes
            fig.set_layout_engine("constrained")
        except RuntimeError:  # a layout that cannot change (colorbars made under another)
            pass
