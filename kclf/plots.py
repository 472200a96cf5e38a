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
