"""The report's first part: the lecture, slide by slide, on every backend.

For each experiment with a slide, in the lecture's order: the slide's title, the lecture's
numbers beside each backend's (✓ or how far off: the demos' rows from their own runs,
kclf.demos.published; the other slides' from kclf.slides), the step-through where the
experiment trains on the slides' problems (kclf.compare.stepper), and the slide's figures as
kclf drew them. What was judged across backends, and how, follows in the report's second part.
"""

from __future__ import annotations

from pathlib import Path

from kclf import slides
from kclf.compare import plain
from kclf.compare.blocks import Cell, Table
from kclf.compare.figures import Figure
from kclf.compare.verdict import Comparison, ExperimentComparison

KAGGLE = ("the Kaggle \"Stroke Prediction Dataset\" file, healthcare-dataset-stroke-data.csv: "
          "make compare STROKE_CSV=path/to/it, or KCLF_STROKE_CSV, or kclf compare --data")


def _registry() -> dict:
    from kclf import registry

    try:
        return registry.discover()
    except Exception:  # a report of a user's scripts needs no experiments folder
        return {}


def edition_of(exp: ExperimentComparison) -> str:
    for run in exp.runs.values():
        edition = ((run.outcome.summary or {}).get("settings") or {}).get("edition")
        if edition:
            return str(edition)
    return "2026"


def rows(exp: ExperimentComparison) -> dict[str, list[dict]]:
    """Each backend's rows: the lecture's numbers and claims beside its run's (none for a run
    without results). The demos wrote theirs; the other slides' are checked here."""
    out = {}
    for backend, run in exp.runs.items():
        summary = run.outcome.summary
        if summary is None:
            continue
        results = summary.get("results") or {}
        if isinstance(results.get("lecture"), list):
            out[backend] = results["lecture"]
        elif slides.entries(exp.name, edition_of(exp)):
            out[backend] = slides.check(exp.name, results, edition_of(exp))
    return out


def count(rows_by_backend: dict[str, list[dict]], backend: str, synthetic: bool) -> Cell:
    found = rows_by_backend.get(backend)
    if found is None:
        return Cell("—", "na")
    if synthetic:
        return Cell(f"synthetic data: {sum(r['agrees'] for r in found)} of {len(found)}", "na")
    agree = sum(bool(r["agrees"]) for r in found)
    return Cell(f"{agree} of {len(found)}" + (" ✓" if agree == len(found) else " ✗"),
                "ok" if agree == len(found) else "bad")


def short(value, decimals=None) -> str:
    """A value as the table shows it: 6 significant digits (or ``decimals`` places, as the slide
    prints it), lists in brackets."""
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, (int, float)) and isinstance(decimals, int):
        return f"{value:.{decimals}f}"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(short(v, decimals) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {short(v)}" for k, v in value.items()) + "}"
    return str(value)


def _cell(row: dict | None, synthetic: bool) -> Cell:
    if row is None:
        return Cell("—", "na")
    text = short(row["value"])
    if synthetic:
        return Cell(text, "na")
    if row["agrees"]:
        return Cell(f"{text} ✓", "ok")
    rel = row.get("max_rel_diff")
    return Cell(f"{text} ✗" + (f" ({rel:.2g} off)" if rel else ""), "bad")


def table(exp: ExperimentComparison, rows_by_backend: dict[str, list[dict]]) -> Table | None:
    """The slide's numbers: what it shows, the lecture's value, each backend's with ✓ or ✗."""
    if not rows_by_backend:
        return None
    backends = [b for b in exp.runs if b in rows_by_backend]
    first = rows_by_backend[backends[0]]
    synthetic = plain.synthetic(exp)
    body = []
    for i, row in enumerate(first):
        lecture = row["lecture"] if isinstance(row["lecture"], str) else short(row["lecture"],
                                                                                 row.get("decimals"))
        cells = []
        for backend in backends:
            theirs = rows_by_backend[backend]
            cells.append(_cell(theirs[i] if i < len(theirs) else None, synthetic))
        body.append([row["cell"], lecture, *cells])
    return Table(["on the slide", "lecture", *backends], body)


def run_figures(exp: ExperimentComparison, out: Path) -> list[Figure]:
    """The slide's figures as the experiment drew them, from the first backend's run that has
    them; the caption names the others' copies."""
    for backend, run in exp.runs.items():
        summary = run.outcome.summary
        if not summary or not summary.get("figures"):
            continue
        folder = Path(run.outcome.dir)
        figures = []
        for name in summary["figures"]:
            path = folder / name
            try:
                png = path.read_bytes()
            except OSError:
                continue
            others = [f"runs/{exp.name}/{b}/{name}" for b in exp.runs if b != backend
                      and (Path(exp.runs[b].outcome.dir or ".") / name).is_file()]
            caption = (f"{name}: drawn from {backend}'s run"
                       + (f" (the same figure from the other backends: {', '.join(others)})"
                          if others else ""))
            try:
                relative = path.resolve().relative_to(Path(out).resolve()).as_posix()
            except ValueError:
                relative = path.as_posix()
            figures.append(Figure(relative, caption, png))
        return figures
    return []


def overview(data: Comparison) -> Table:
    """One row per experiment: its slide, the lecture's numbers per backend, the verdict."""
    known = _registry()
    body = []
    for name, exp in sorted(data.experiments.items(), key=lambda kv: _position(known, kv[0])):
        info = known.get(name) if exp.script is None else None
        slide = _slide(info)
        found = rows(exp)
        synthetic = plain.synthetic(exp)
        cells = [count(found, b, synthetic) if found else Cell("—", "na") for b in data.backends]
        word = plain.label(exp)
        body.append([slide + (" (synthetic data)" if synthetic else ""), name, *cells,
                     Cell(word, word.replace(" ", "-"))])
    return Table(["slide", "experiment", *(f"lecture's numbers: {b}" for b in data.backends),
                  "across backends"], body)


def _slide(info) -> str:
    if info is None or not info.slide or info.slide.startswith("(none"):
        return "—"
    return info.slide


def _position(known: dict, name: str) -> int:
    info = known.get(name)
    return info.position if info is not None else 10**6


def blocks(data: Comparison, out: Path, steppers: dict) -> list[tuple[str, object]]:
    """The lecture part: per experiment with a slide, in the lecture's order."""
    known = _registry()
    found: list[tuple[str, object]] = [("h2", "The lecture, slide by slide")]
    found.append(("p", "Each section is one slide section of \"Classification & Optimisation\": "
                       "the lecture's numbers beside each backend's (✓: as the lecture prints "
                       "them; ✗: how far off, relative), a step-through where the slide trains "
                       "on its own problem, and the figures kclf draws for it."))
    for name, exp in sorted(data.experiments.items(), key=lambda kv: _position(known, kv[0])):
        info = known.get(name) if exp.script is None else None
        slide = _slide(info)
        if slide == "—":
            continue
        synthetic = plain.synthetic(exp)
        found.append(("h3", f"{slide}" + (" — synthetic data" if synthetic else "")))
        found.append(("p", f"kclf run {name} on {', '.join(exp.runs)} ({edition_of(exp)} "
                           f"edition). Across backends: {plain.sentence(exp)}."))
        if synthetic:
            found.append(("note", "Synthetic data: no Kaggle file was given, so this ran on kclf's "
                                  "synthetic stand-in (the same columns, made up rows). The lecture's "
                                  "numbers are for the Kaggle file and cannot agree: they are shown, "
                                  f"not judged. For the lecture's numbers, give {KAGGLE}."))
        by_backend = rows(exp)
        lecture = table(exp, by_backend)
        if lecture is not None:
            counts = ", ".join(f"{b} {count(by_backend, b, synthetic).text}" for b in by_backend)
            found.append(("p", f"The lecture's numbers: {counts}."))
            found.append(("table", lecture))
        if name in steppers:
            found.append(("stepper", steppers[name]))
        for figure in run_figures(exp, out):
            found.append(("figure", figure))
    return found
