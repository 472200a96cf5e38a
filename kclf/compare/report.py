"""The comparison report: comparison.md, comparison.json, report.html and the figures.

Built from the comparison (kclf.compare.verdict.Comparison) as a list of blocks (headings,
paragraphs, tables, figures), rendered once as Markdown and once as one self-contained HTML
page (images inlined as base64, readable offline). Everything is rendered in memory first and then
written with kclf.fsio.atomic_write while Ctrl-C waits, so an interrupted compare
leaves the previous report or a whole new one, never a torn file.
"""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path

from kclf.compare import drift_report, lecture, plain, stepper
from kclf.compare.blocks import Cell, Table
from kclf.compare.diff import QuantityDiff
from kclf.compare.figures import Figure, make_figures
from kclf.compare.verdict import Comparison, ExperimentComparison, parting_text
from kclf.fsio import atomic_write, ctrl_c_waits
from kclf.jsonio import dumps

TIMING_NOTE = (
    "start-up: the run's process time outside the experiment (interpreter, imports, writing "
    "outputs); first step: tracing/compilation included, summed over the experiment's training "
    "runs; steady: steps per second after each run's first step; total: the process's wall time."
)


# -- numbers as text --------------------------------------------------------------------
def _num(value) -> str:
    if value is None:
        return "—"
    if value == 0:
        return "0"
    return f"{value:.3g}"


def _secs(value) -> str:
    return "—" if value is None else f"{value:.2f}"


def _first_step(q: QuantityDiff) -> str:
    if q.within:
        return "—"
    return f"{q.first_run!r} step {q.first_step}"


# -- blocks -----------------------------------------------------------------------------------
def _status_line(data: Comparison) -> tuple[str, str]:
    total, ok = data.runs_total, data.runs_ok
    if data.complete:
        return "p", f"Complete: all {total} runs finished."
    why = "compare was interrupted; " if data.interrupted else ""
    return "banner", f"INCOMPLETE: {why}{ok} of {total} runs finished ok; the others are marked below."


def _what_ran(data: Comparison) -> list[tuple[str, object]]:
    """What was run, in words: the edition, the backends, and the data (synthetic named)."""
    ref, versions = data.reference, data.versions
    names = ", ".join(f"{b} {versions.get(b, '')}" + (" (the reference)" if b == ref else "")
                      for b in data.backends)
    editions = sorted({lecture.edition_of(e) for e in data.experiments.values()})
    out = [("p", f"The {' and '.join(editions)} edition of \"Classification & Optimisation\" on "
                 f"{names}; keras {versions.get('keras')}, python {versions.get('python')}. "
                 f"Created {data.created} by kclf {data.kclf}.")]
    for backend, why in data.skipped_backends.items():
        out.append(("p", f"{backend}: {why}."))
    files = {}
    for name, exp in data.experiments.items():
        for run in exp.runs.values():
            given = ((run.outcome.summary or {}).get("settings") or {}).get("data")
            if given and not plain.synthetic(exp):
                files.setdefault(given, []).append(name)
                break
    for path, names in files.items():
        out.append(("p", f"Data: {', '.join(names)} read {path}."))
    synthetic = [name for name, e in data.experiments.items() if plain.synthetic(e)]
    if synthetic:
        out.append(("note", f"{', '.join(synthetic)}: synthetic data. No Kaggle file was given, so "
                            f"{'it' if len(synthetic) == 1 else 'they'} ran on kclf's synthetic "
                            "stand-in, whose numbers cannot be the lecture's. For the lecture's "
                            f"numbers, give {lecture.KAGGLE}."))
    words = [plain.label(e) for e in data.experiments.values()]
    counts = ", ".join(f"{words.count(v)} {v}" for v in dict.fromkeys(words))
    out.append(("p", f"Across backends: {counts or 'nothing compared'}."))
    return out


def _runs(data: Comparison) -> Table:
    backends, skipped = data.backends, data.skipped_backends
    rows = []
    for exp in data.experiments.values():
        cells = [plain.run_cell(exp, b) for b in backends]
        word = plain.label(exp)
        rows.append([exp.name, Cell(word, word.replace(" ", "-")), exp.where or "—", *cells,
                     *skipped.values()])
    return Table(["experiment", "verdict", "where", *backends, *skipped], rows)


NOT_JUDGED = Cell("beyond (shown, not judged)", "na")


def _differences(exp: ExperimentComparison) -> Table | None:
    rows = []
    for backend, pair in exp.pairs.items():
        traces = pair.traces
        judged = pair.traces_judged
        suffix = "" if judged else " (shown, not judged)"
        if traces is not None:
            for quantity, q in traces.quantities.items():
                within = Cell("yes") if q.within else (Cell("NO", "NO") if judged else NOT_JUDGED)
                rows.append([backend, quantity + suffix, _num(q.max_abs), _num(q.max_rel),
                             f"{q.rtol:g}, {q.atol:g}", _first_step(q), within])
            if traces.missing_rows:
                rows.append([backend, "trace rows" + suffix, "—", "—", "—",
                             f"{traces.missing_rows} rows on one side only",
                             Cell("NO", "NO") if judged else NOT_JUDGED])
            if not traces.quantities:
                rows.append([backend, "trace" + suffix, "—", "—", "—", traces.first.what,
                             Cell("NO", "NO") if judged else NOT_JUDGED])
        res = pair.results
        largest = f"largest: {res.judged_worst}" if res.judged_max_rel else "—"
        rows.append([backend, f"results ({res.judged} of {res.leaves} judged)",
                     _num(res.judged_max_abs), _num(res.judged_max_rel), "by name", largest,
                     Cell("yes") if res.ok else Cell("NO", "NO")])
    if not rows:
        return None
    return Table(["backend", "what", "max abs diff", "max rel diff", "rtol, atol",
                  "first step beyond tolerance (or the judged result furthest off)",
                  "within tolerance"], rows)


def _failing_leaves(exp: ExperimentComparison) -> Table | None:
    rows = []
    for backend, pair in exp.pairs.items():
        for leaf in pair.results.failing[:10]:
            rows.append([backend, leaf.path, repr(leaf.a), repr(leaf.b),
                         leaf.note or _num(leaf.abs_diff), _num(leaf.rel_diff)])
    return Table(["backend", "result", "reference", "this backend", "abs diff", "rel diff"], rows) if rows else None


def _timing(exp: ExperimentComparison, data: Comparison) -> Table:
    rows = []
    for backend, run in exp.runs.items():
        t = run.timing
        version = (run.versions or {}).get(backend) or data.versions.get(backend, "")
        rows.append([backend, plain.run_cell(exp, backend).rsplit(" (", 1)[0], _secs(t.startup_s),
                     _secs(t.first_step_s), _num(t.steady_steps_per_s), _secs(t.total_s), version])
    for backend, why in data.skipped_backends.items():
        rows.append([backend, why, "—", "—", "—", "—", ""])
    return Table(["backend", "status", "start-up s", "first step s", "steady steps/s", "total s",
                  "version"], rows)


def _diagnostics(exp: ExperimentComparison, data: Comparison, figures: list[Figure]) -> list:
    blocks: list[tuple[str, object]] = [("h3", exp.name + (" (synthetic data)" if plain.synthetic(exp) else ""))]
    if exp.script:
        blocks.append(("p", f"Script: {exp.script}"))
    blocks.append(("p", f"Verdict: {plain.sentence(exp)}."))
    tol = exp.tolerance
    blocks.append(("p", f"Tolerance: rtol {tol.rtol:g}, atol {tol.atol:g}; {tol.why}. "
                        f"Reference: {exp.reference or 'none (no run finished)'}."))
    table = _differences(exp)
    if table:
        blocks += [("h4", f"Differences against {exp.reference}"), ("table", table)]
        for backend, pair in exp.pairs.items():
            for note in pair.traces.notes if pair.traces else []:
                blocks.append(("p", f"{backend}: {note}"))
    for backend, pair in exp.pairs.items():
        if pair.parting:
            blocks.append(("p", f"Where {backend} parts from {exp.reference}: "
                                f"{parting_text(pair.parting)}."))
    blocks += drift_report.blocks(exp)  # where and why they part; measured tolerances
    leaves = _failing_leaves(exp)
    if leaves:
        blocks += [("h4", "Results beyond tolerance"), ("table", leaves)]
    blocks += [("h4", "Time per backend"), ("table", _timing(exp, data)), ("p", TIMING_NOTE)]
    failed = {b: r.outcome for b, r in exp.runs.items() if r.outcome.status != "ok"}
    if failed:
        blocks.append(("h4", "Failures"))
        for backend, run in failed.items():
            logs = (f" (logs: {run.dir}.stderr.log, .stdout.log)"
                    if run.returncode is not None else "")
            error = f": {run.error}" if run.error else ""
            blocks.append(("p", f"{backend}: {run.status}{error}{logs}"))
            if run.stderr_tail:
                blocks.append(("pre", "\n".join(run.stderr_tail)))
    if figures:
        blocks.append(("h4", "Figures across backends"))
        blocks += [("figure", fig) for fig in figures]
    return blocks


def build_blocks(data: Comparison, figures: dict[str, list[Figure]], out: Path | None = None,
                 steppers: dict | None = None) -> list[tuple[str, object]]:
    """The report: what was run, the overview, the lecture slide by slide, then the
    cross-backend diagnostics, each experiment under its own heading."""
    title = "Classification & Optimisation on " + ", ".join(data.backends or ["no backend"])
    blocks: list[tuple[str, object]] = [("h1", title), _status_line(data), *_what_ran(data)]
    blocks += [("h2", "Overview"), ("table", lecture.overview(data))]
    blocks += lecture.blocks(data, Path(out or "."), steppers or {})
    blocks += [("h2", "Across backends: diagnostics"),
               ("p", "Each experiment ran once per backend, in a process of its own; every "
                     "backend is aligned with the reference step by step and number by number."),
               ("table", _runs(data))]
    for name, exp in data.experiments.items():
        blocks += _diagnostics(exp, data, figures.get(name, []))
    return blocks


# -- rendering --------------------------------------------------------------------------------
def _md_cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def render_markdown(blocks) -> str:
    lines: list[str] = []
    for kind, payload in blocks:
        if kind in ("h1", "h2", "h3", "h4"):
            lines += ["#" * int(kind[1]) + " " + payload, ""]
        elif kind == "p":
            lines += [payload, ""]
        elif kind in ("banner", "note"):
            lines += [f"> **{payload}**", ""]
        elif kind == "pre":
            lines += ["```", payload, "```", ""]
        elif kind == "table":
            lines.append("| " + " | ".join(map(_md_cell, payload.columns)) + " |")
            lines.append("|" + "---|" * len(payload.columns))
            lines += ["| " + " | ".join(map(_md_cell, row)) + " |" for row in payload.rows]
            lines.append("")
        elif kind == "figure":
            lines += [f"![{payload.caption}]({payload.path})", ""]
        elif kind == "stepper":
            lines += [f"Step through every recorded step of {payload.name} on each backend: open "
                      "report.html in a browser (the slider, or the arrow keys).", ""]
    return "\n".join(lines)


_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
pre { background: #f6f6f6; padding: 0.6em; overflow-x: auto; font-size: 0.85em; }
h2 { border-bottom: 2px solid #ddd; padding-bottom: 0.2em; margin-top: 2em; }
h3 { margin-top: 1.8em; }
.banner { background: #b00020; color: white; padding: 0.8em 1em; font-size: 1.3em; font-weight: bold; }
.note { background: #fff4d6; border-left: 4px solid #e0a800; padding: 0.6em 1em; margin: 0.6em 0; }
.agree { color: #1b7e1b; font-weight: bold; } .ok { color: #1b7e1b; }
.differ, .failed, .incomplete, .NO, .bad { color: #b00020; font-weight: bold; }
.na, .one-device, .not-judged { color: #666; }
figure { margin: 1em 0; } figure img { max-width: 100%; } figcaption { color: #555; font-size: 0.9em; }
""" + stepper.CSS


def _html_cell(value) -> str:
    if isinstance(value, Cell):
        css = f' class="{html.escape(value.css)}"' if value.css else ""
        return f"<td{css}>{html.escape(value.text)}</td>"
    return f"<td>{html.escape(str(value))}</td>"


def _anchor(text: str) -> str:
    return re.sub(r"-+", "-", re.sub(r"[^a-z0-9-]", "-", text.lower())).strip("-")


def render_html(blocks, incomplete: bool) -> str:
    title = blocks[0][1] if blocks and blocks[0][0] == "h1" else "Backend comparison"
    title += " (INCOMPLETE)" if incomplete else ""
    parts = [f"<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
             f"<meta name='viewport' content='width=device-width, initial-scale=1'>"
             f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>"]
    anchors: set[str] = set()
    steppers = False
    for kind, payload in blocks:
        if kind in ("h1", "h2", "h3", "h4"):
            anchor = _anchor(payload) if kind in ("h2", "h3") else ""
            while anchor in anchors:
                anchor += "-"
            anchors.add(anchor)
            attr = f" id='{anchor}'" if anchor else ""
            parts.append(f"<{kind}{attr}>{html.escape(payload)}</{kind}>")
        elif kind == "p":
            parts.append(f"<p>{html.escape(payload)}</p>")
        elif kind in ("banner", "note"):
            parts.append(f"<div class='{kind}'>{html.escape(payload)}</div>")
        elif kind == "pre":
            parts.append(f"<pre>{html.escape(payload)}</pre>")
        elif kind == "table":
            head = "".join(f"<th>{html.escape(c)}</th>" for c in payload.columns)
            body = "".join("<tr>" + "".join(map(_html_cell, row)) + "</tr>" for row in payload.rows)
            parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
        elif kind == "figure":
            data = base64.b64encode(payload.png).decode()
            parts.append(f"<figure><img alt='{html.escape(payload.caption)}' src='data:image/png;base64,{data}'>"
                         f"<figcaption>{html.escape(payload.caption)}</figcaption></figure>")
        elif kind == "stepper":
            parts.append(stepper.render(payload))
            steppers = True
    if steppers:
        parts.append(f"<script>{stepper.script()}</script>")
    parts.append("</body></html>\n")
    return "\n".join(parts)


def write(out: Path, data: Comparison) -> Path:
    """Write figures, comparison.json, comparison.md and report.html into ``out``; return the page."""
    out = Path(out)
    figures = {name: make_figures(exp, " (synthetic data)" if plain.synthetic(exp) else "")
               + drift_report.figures(exp)  # local error, carried drift, envelope
               for name, exp in data.experiments.items()}
    steppers = {}
    for name, exp in data.experiments.items():
        if exp.script is None:
            found = stepper.build(name, exp.frames, lecture.edition_of(exp), list(exp.runs))
            if found is not None:
                steppers[name] = found
    blocks = build_blocks(data, figures, out, steppers)
    markdown = render_markdown(blocks)
    page = render_html(blocks, incomplete=not data.complete)
    summary = data.to_json()
    for name, exp in data.experiments.items():  # the report's words, beside the verdict
        summary["experiments"][name]["sentence"] = plain.sentence(exp)
        summary["experiments"][name]["lecture"] = lecture.rows(exp)
    payload = dumps(summary, indent=1)  # kclf.jsonio: NaN, inf, -inf as "nan", "inf", "-inf"
    with ctrl_c_waits():
        for figs in figures.values():
            for fig in figs:
                atomic_write(out / fig.path, fig.png)
        atomic_write(out / "comparison.json", payload)
        atomic_write(out / "comparison.md", markdown)
        atomic_write(out / "report.html", page)
    return out / "report.html"
