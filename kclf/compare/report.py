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
from dataclasses import dataclass
from pathlib import Path

from kclf.compare import drift_report
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


@dataclass
class Table:
    columns: list[str]
    rows: list[list[str]]


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


def _overview(data: Comparison) -> Table:
    backends, skipped = data.backends, data.skipped_backends
    rows = []
    for exp in data.experiments.values():
        cells = []
        for b in backends:
            run = exp.runs[b]
            wall = run.timing.total_s
            cells.append(run.outcome.status + (f" ({wall:.1f} s)" if wall is not None else ""))
        rows.append([exp.name, exp.verdict, exp.where or "—", *cells, *skipped.values()])
    return Table(["experiment", "verdict", "where", *backends, *skipped], rows)


def _differences(exp: ExperimentComparison) -> Table | None:
    rows = []
    for backend, pair in exp.pairs.items():
        traces = pair.traces
        judged = "" if pair.traces_judged else " (informational)"
        if traces is not None:
            for quantity, q in traces.quantities.items():
                rows.append([backend, quantity + judged, _num(q.max_abs), _num(q.max_rel),
                             f"{q.rtol:g}, {q.atol:g}", _first_step(q),
                             "yes" if q.within else "NO"])
            if traces.missing_rows:
                rows.append([backend, "trace rows" + judged, "—", "—", "—",
                             f"{traces.missing_rows} rows on one side only", "NO"])
            if not traces.quantities:
                rows.append([backend, "trace" + judged, "—", "—", "—", traces.first.what, "NO"])
        res = pair.results
        worst = f"largest: {res.worst}" if res.max_abs else "—"
        rows.append([backend, f"results ({res.judged} of {res.leaves} judged)", _num(res.max_abs),
                     _num(res.max_rel), "by name", worst, "yes" if res.ok else "NO"])
    if not rows:
        return None
    return Table(["backend", "what", "max abs diff", "max rel diff", "rtol, atol",
                  "first step beyond tolerance", "within tolerance"], rows)


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
        rows.append([backend, run.outcome.status, _secs(t.startup_s), _secs(t.first_step_s),
                     _num(t.steady_steps_per_s), _secs(t.total_s), version])
    for backend, why in data.skipped_backends.items():
        rows.append([backend, why, "—", "—", "—", "—", ""])
    return Table(["backend", "status", "start-up s", "first step s", "steady steps/s", "total s",
                  "version"], rows)


def build_blocks(data: Comparison, figures: dict[str, list[Figure]]) -> list[tuple[str, object]]:
    ref = data.reference
    blocks: list[tuple[str, object]] = [("h1", "Backend comparison"), _status_line(data)]
    versions = data.versions
    names = ", ".join(f"{b} {versions.get(b, '')}" + (" (reference)" if b == ref else "")
                      for b in data.backends)
    blocks.append(("p", f"Backends: {names}; keras {versions.get('keras')}, python "
                        f"{versions.get('python')}. Created {data.created} by kclf {data.kclf}."))
    for backend, why in data.skipped_backends.items():
        blocks.append(("p", f"{backend}: {why}."))
    verdicts = [e.verdict for e in data.experiments.values()]
    counts = ", ".join(f"{verdicts.count(v)} {v}" for v in dict.fromkeys(verdicts))
    blocks.append(("p", f"Verdict: {counts or 'nothing compared'}."))
    blocks += [("h2", "Overview"), ("table", _overview(data))]
    for name, exp in data.experiments.items():
        blocks.append(("h2", name))
        if exp.script:
            blocks.append(("p", f"Script: {exp.script}"))
        blocks.append(("p", f"Verdict: {exp.verdict}" + (f" ({exp.where})" if exp.where else "")))
        tol = exp.tolerance
        blocks.append(("p", f"Tolerance: rtol {tol.rtol:g}, atol {tol.atol:g}; {tol.why}. "
                            f"Reference: {exp.reference or 'none (no run finished)'}."))
        table = _differences(exp)
        if table:
            blocks += [("h3", f"Differences against {exp.reference}"), ("table", table)]
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
            blocks += [("h3", "Results beyond tolerance"), ("table", leaves)]
        blocks += [("h3", "Time per backend"), ("table", _timing(exp, data)), ("p", TIMING_NOTE)]
        failed = {b: r.outcome for b, r in exp.runs.items() if r.outcome.status != "ok"}
        if failed:
            blocks.append(("h3", "Failures"))
            for backend, run in failed.items():
                logs = (f" (logs: {run.dir}.stderr.log, .stdout.log)"
                        if run.returncode is not None else "")
                error = f": {run.error}" if run.error else ""
                blocks.append(("p", f"{backend}: {run.status}{error}{logs}"))
                if run.stderr_tail:
                    blocks.append(("pre", "\n".join(run.stderr_tail)))
        if figures.get(name):
            blocks.append(("h3", "Figures"))
            blocks += [("figure", fig) for fig in figures[name]]
    return blocks


# -- rendering --------------------------------------------------------------------------------
def _md_cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def render_markdown(blocks) -> str:
    lines: list[str] = []
    for kind, payload in blocks:
        if kind in ("h1", "h2", "h3"):
            lines += ["#" * int(kind[1]) + " " + payload, ""]
        elif kind == "p":
            lines += [payload, ""]
        elif kind == "banner":
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
    return "\n".join(lines)


_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
pre { background: #f6f6f6; padding: 0.6em; overflow-x: auto; font-size: 0.85em; }
.banner { background: #b00020; color: white; padding: 0.8em 1em; font-size: 1.3em; font-weight: bold; }
.agree { color: #1b7e1b; font-weight: bold; } .differ, .failed, .incomplete, .NO { color: #b00020; font-weight: bold; }
figure { margin: 1em 0; } figure img { max-width: 100%; } figcaption { color: #555; font-size: 0.9em; }
"""

_MARKED = {"agree", "differ", "failed", "incomplete", "NO"}


def _html_cell(text: str) -> str:
    css = f' class="{text}"' if text in _MARKED else ""
    return f"<td{css}>{html.escape(str(text))}</td>"


def render_html(blocks, incomplete: bool) -> str:
    title = "Backend comparison" + (" (INCOMPLETE)" if incomplete else "")
    parts = [f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>{title}</title>"
             f"<style>{_CSS}</style></head><body>"]
    for kind, payload in blocks:
        if kind in ("h1", "h2", "h3"):
            anchor = re.sub(r"[^a-z0-9-]", "-", payload.lower()) if kind == "h2" else ""
            attr = f" id='{anchor}'" if anchor else ""
            parts.append(f"<{kind}{attr}>{html.escape(payload)}</{kind}>")
        elif kind == "p":
            parts.append(f"<p>{html.escape(payload)}</p>")
        elif kind == "banner":
            parts.append(f"<div class='banner'>{html.escape(payload)}</div>")
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
    parts.append("</body></html>\n")
    return "\n".join(parts)


def write(out: Path, data: Comparison) -> Path:
    """Write figures, comparison.json, comparison.md and report.html into ``out``; return the page."""
    out = Path(out)
    figures = {name: make_figures(exp) for name, exp in data.experiments.items()}
    blocks = build_blocks(data, figures)
    markdown = render_markdown(blocks)
    page = render_html(blocks, incomplete=not data.complete)
    payload = dumps(data.to_json(), indent=1)  # kclf.jsonio: NaN, inf, -inf as "nan", "inf", "-inf"
    with ctrl_c_waits():
        for figs in figures.values():
            for fig in figs:
                atomic_write(out / fig.path, fig.png)
        atomic_write(out / "comparison.json", payload)
        atomic_write(out / "comparison.md", markdown)
        atomic_write(out / "report.html", page)
    return out / "report.html"
