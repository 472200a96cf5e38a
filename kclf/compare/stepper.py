"""Step through an optimisation in report.html: the recorded steps of every backend, side by side.

For the experiments that train on the slides' problems, the report gets a step control (a
slider, ◀ ▶ and the arrow keys) over each training run's recorded steps. At step k it moves
each backend's point on the loss curve (one parameter θ: the point at f(θ) and the tangent
whose slope is the gradient the optimizer applied, as the course's old "show derivatives"
slider drew it) or on the MSE contour (θ = (w, b): the point θ_{k−1} and the step −η∇ to
θ_k), and shows θ_{k−1}, ∇, the step's loss, η and θ_k for each backend from its trace.

The curve or contour is drawn here, with matplotlib, into a PNG whose axes sit at a known
place (:class:`Background`); stepper.js, shipped beside this module and inlined into the page,
draws the points over it. Everything is in the page: no network, no other file.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

SCRIPT = Path(__file__).with_name("stepper.js")
COLORS = {"jax": "#1f77b4", "tensorflow": "#ff7f0e", "torch": "#2ca02c"}  # matplotlib's C0-C2
MAX_INDICES = 32  # copies of θ in one run (minibatch-noise: one per seed)
DPI = 100


@dataclass(frozen=True)
class Curve:
    """One parameter θ, loss f(θ): the points sit on f, the tangent has the recorded slope."""

    f: Callable[[np.ndarray], np.ndarray]
    lo: float
    hi: float
    title: str
    index_label: str = "copy"  # what the indices of a run's θ are (minibatch-noise: seeds)


@dataclass(frozen=True)
class Contour:
    """θ = (w, b) of ŷ = wx + b: the contours of the MSE on ``data()``."""

    data: Callable[[], tuple[np.ndarray, np.ndarray]]
    w: tuple[float, float]
    b: tuple[float, float]
    title: str


def _piecewise(theta):
    from kclf import functions

    return functions.piecewise_f(np.asarray(theta, "float64"))


def _lecture_f(x):
    from kclf import functions

    return functions.lecture_f(np.asarray(x, "float64"))


def _well_2025(theta):
    from kclf import functions

    return functions.tilted_well(np.asarray(theta, "float64"), 0.5)


def _sgd_picks():
    from kclf.data import SGD_PICKS_X, SGD_PICKS_Y

    return SGD_PICKS_X, SGD_PICKS_Y


def _bgd():
    from kclf.data import bgd_data

    return bgd_data()


def _linear():
    from kclf.data import linear_data

    return linear_data(100)


def _schedule():
    from kclf.data import schedule_data

    return schedule_data(100)


_PITFALLS = Curve(_piecewise, -3.3, 7.6, "f(θ), the slides' gradient_descent_plot()")
_LECTURE_F = Curve(_lecture_f, 0.0, 100.0, "f(x) = (x/100)² sin(x/5), the guessing demo's")
# name -> {edition or "*": problem}: the experiments that train on the slides' problems.
PROBLEMS: dict[str, dict[str, Curve | Contour]] = {
    "sgd": {"*": Contour(_sgd_picks, (-0.5, 3.5), (-0.5, 1.0), "MSE of the two picks")},
    "bgd": {"*": Contour(_bgd, (-0.5, 2.5), (-1.5, 1.0), "MSE of the three points")},
    "minibatch": {"*": Contour(_linear, (-0.5, 2.6), (-1.6, 1.0), "MSE of the 100 points")},
    "learning-rates": {"*": Contour(_linear, (-0.5, 2.6), (-1.6, 1.0), "MSE of the 100 points")},
    "learning-rate-schedule": {"*": Contour(_schedule, (-0.5, 2.8), (-1.8, 0.6),
                                            "MSE of the 100 points")},
    "gradient-based-learning": {"*": _LECTURE_F},
    "gradient-descent-pitfalls": {"2026": _PITFALLS, "2025": _LECTURE_F},
    "minibatch-noise": {"2026": Curve(_piecewise, -3.3, 7.6, _PITFALLS.title, "seed"),
                        "2025": Curve(_well_2025, -1.9, 1.9, "g(θ) = 0.5 (θ² − 1)² + 0.5 θ",
                                      "seed")},
}


def problem(name: str, edition: str = "2026") -> Curve | Contour | None:
    table = PROBLEMS.get(name, {})
    return table.get(edition, table.get("*"))


# -- the background -----------------------------------------------------------------------------
@dataclass
class Background:
    """A PNG of the curve or contour and where its axes are: pixels (left, top, right, bottom)
    of the data rectangle xlim × ylim."""

    png: bytes
    width: int
    height: int
    box: tuple[float, float, float, float]
    xlim: tuple[float, float]
    ylim: tuple[float, float]

    def to_json(self) -> dict:
        return {"src": "data:image/png;base64," + base64.b64encode(self.png).decode(),
                "width": self.width, "height": self.height, "box": list(self.box),
                "xlim": list(self.xlim), "ylim": list(self.ylim)}


_RECT = (0.11, 0.15, 0.85, 0.75)  # the axes in figure fractions: left, bottom, width, height


def _render(fig, ax, xlim, ylim) -> Background:
    import matplotlib.pyplot as plt

    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    width, height = (int(round(v * DPI)) for v in fig.get_size_inches())
    left, bottom, w, h = _RECT
    box = (left * width, (1 - bottom - h) * height, (left + w) * width, (1 - bottom) * height)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)  # no bbox_inches: the axes stay where _RECT put them
    plt.close(fig)
    return Background(buf.getvalue(), width, height, box, tuple(xlim), tuple(ylim))


def background(p: Curve | Contour) -> Background:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(6.4, 4.0) if isinstance(p, Contour) else (6.4, 3.6))
    ax = fig.add_axes(_RECT)
    ax.tick_params(labelsize=10)
    if isinstance(p, Curve):
        grid = np.linspace(p.lo, p.hi, 2001)
        values = p.f(grid)
        ax.plot(grid, values, color="#444", linewidth=1.6)
        lo, hi = float(np.min(values)), float(np.max(values))
        pad = 0.08 * (hi - lo or 1.0)
        ax.set_xlabel("θ", fontsize=11)
        ax.set_ylabel("loss", fontsize=11)
        ax.set_title(p.title, fontsize=11)
        ax.grid(True, alpha=0.3)
        return _render(fig, ax, (p.lo, p.hi), (lo - pad, hi + pad))
    from kclf import plots

    x, y = p.data()
    plots.mse_contour(ax, x, y, p.w, p.b)
    ax.set_xlabel("w", fontsize=11)
    ax.set_ylabel("b", fontsize=11)
    ax.set_title(f"{p.title}; ★ or ▶: its minimum", fontsize=11)
    return _render(fig, ax, p.w, p.b)


# -- the steps ---------------------------------------------------------------------------------
def _number(v) -> float | str:
    """JSON for a trace value: a number, or "nan", "inf", "-inf" (kclf.jsonio's rule)."""
    v = float(v)
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return v


def _variables(rows) -> list[tuple[str, str]]:
    return list(dict.fromkeys(zip(rows["variable"], rows["index"])))


def _fits(p, variables: list[tuple[str, str]]) -> list[tuple[str, str]] | None:
    """The run's variables in the order the problem reads them, or None if it is not one."""
    if isinstance(p, Curve):
        names = {v for v, _ in variables}
        return variables if len(names) == 1 and len(variables) <= MAX_INDICES else None
    kernel = [v for v in variables if "kernel" in v[0]]
    bias = [v for v in variables if "bias" in v[0]]
    return kernel + bias if len(kernel) == 1 and len(bias) == 1 and len(variables) == 2 else None


@dataclass
class Stepper:
    """One experiment's step-through: its problem, background and every run's steps."""

    name: str
    kind: str  # "curve" or "contour"
    backends: list[str]
    runs: list[dict] = field(default_factory=list)
    background: Background | None = None
    index_label: str = "copy"

    @property
    def id(self) -> str:
        return "step-" + re.sub(r"[^a-z0-9-]", "-", self.name.lower())

    def to_json(self) -> dict:
        return {"name": self.name, "kind": self.kind, "backends": self.backends,
                "colors": {b: COLORS.get(b, "#d62728") for b in self.backends},
                "index_label": self.index_label, "runs": self.runs,
                "image": self.background.to_json() if self.background else None}


def build(name: str, frames: dict, edition: str = "2026", backends: list[str] | None = None
          ) -> Stepper | None:
    """The step-through of experiment ``name`` from its traces (``frames``: trace DataFrames by
    backend, the reference first), or None when it trains on none of the slides' problems."""
    p = problem(name, edition)
    if p is None or not frames:
        return None
    order = [b for b in (backends or list(frames)) if b in frames]
    first = frames[order[0]]
    stepper = Stepper(name, "curve" if isinstance(p, Curve) else "contour", order,
                      index_label=getattr(p, "index_label", "copy"))
    for label in dict.fromkeys(first["run"]):
        rows = first[first["run"] == label]
        variables = _fits(p, _variables(rows))
        if variables is None:
            continue
        steps = sorted(int(s) for s in dict.fromkeys(rows["step"]))
        run = {"label": str(label), "steps": steps,
               "variables": [{"name": v, "index": i} for v, i in variables], "data": {}}
        for backend in order:
            run["data"][backend] = _steps(frames[backend], label, variables, steps,
                                          p.f if isinstance(p, Curve) else None)
        stepper.runs.append(run)
    if not stepper.runs:
        return None
    stepper.background = background(p)
    return stepper


def _steps(frame, label: str, variables, steps: list[int], f) -> dict | None:
    """One backend's run, aligned on the reference's steps (NaN where it has none)."""
    rows = frame[frame["run"] == label]
    if rows.empty:
        return None
    at = {int(s): i for i, s in enumerate(steps)}
    per_step = rows.drop_duplicates("step").set_index("step")

    def series(values) -> list:
        out = [math.nan] * len(steps)
        for step, value in values.items():
            if int(step) in at:
                out[at[int(step)]] = value
        return [_number(v) for v in out]

    out = {"loss": series(per_step["loss"]), "learning_rate": series(per_step["learning_rate"]),
           "variables": []}
    for variable, index in variables:
        chosen = rows[(rows["variable"] == variable) & (rows["index"] == index)].set_index("step")
        entry = {q: series(chosen[column]) for q, column in
                 (("before", "weight_before"), ("gradient", "gradient"), ("after", "weight_after"))}
        if f is not None:  # where the point sits on the curve: f(θ) before and after the step
            with np.errstate(all="ignore"):
                for q in ("before", "after"):
                    theta = np.array([v if isinstance(v, float) else math.nan for v in entry[q]])
                    entry["f_" + q] = [_number(v) for v in f(theta)]
        out["variables"].append(entry)
    return out


# -- HTML --------------------------------------------------------------------------------------
def render(stepper: Stepper) -> str:
    """The stepper's markup; its data rides in a JSON script tag that stepper.js reads."""
    payload = json.dumps(stepper.to_json(), separators=(",", ":"), allow_nan=False)
    payload = payload.replace("</", "<\\/")  # a label cannot end the script element
    options = "".join(f"<option value='{i}'>{html.escape(run['label'])}</option>"
                      for i, run in enumerate(stepper.runs))
    hidden = "" if len(stepper.runs) > 1 else " hidden"
    return (
        f"<div class='stepper' id='{stepper.id}' tabindex='0' data-experiment='{html.escape(stepper.name)}'>"
        f"<div class='stepper-controls'>"
        f"<label{hidden}>training run <select class='run'>{options}</select></label> "
        f"<label class='index-label' hidden>{html.escape(stepper.index_label)} "
        f"<select class='index'></select></label> "
        f"<button type='button' class='prev' aria-label='previous step'>◀</button>"
        f"<input type='range' class='step' min='1' max='1' value='1' aria-label='step'>"
        f"<button type='button' class='next' aria-label='next step'>▶</button> "
        f"<span class='step-label'></span></div>"
        f"<div class='stepper-body'><svg class='stepper-plot' role='img'></svg>"
        f"<table class='stepper-values'></table></div>"
        f"<p class='stepper-note'></p>"
        f"<script type='application/json' class='stepper-data'>{payload}</script></div>"
    )


def script() -> str:
    """stepper.js, for one <script> element at the end of the page."""
    return SCRIPT.read_text(encoding="utf-8")


CSS = """
.stepper { border: 1px solid #ccc; border-radius: 6px; padding: 0.6em 0.8em; margin: 0.8em 0 1.2em; }
.stepper:focus { outline: 2px solid #5b9bd5; }
.stepper-controls { display: flex; flex-wrap: wrap; gap: 0.5em; align-items: center; font-size: 0.95em; }
.stepper-controls input[type=range] { width: 22em; max-width: 60vw; }
.stepper-controls button { font-size: 1em; padding: 0.1em 0.6em; }
.stepper-body { display: flex; flex-wrap: wrap; gap: 1em; align-items: flex-start; margin-top: 0.5em; }
.stepper-plot { width: 560px; max-width: 100%; height: auto; }
.stepper-values td, .stepper-values th { font-variant-numeric: tabular-nums; white-space: nowrap; }
.stepper-note { color: #555; font-size: 0.9em; margin: 0.3em 0 0; }
"""
