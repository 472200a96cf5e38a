"""Running an experiment: where its tables, figures, results and traces go.

An experiment (a file in experiments/) defines ``NAME``, ``DESCRIPTION``, ``SLIDE`` and
``run(ctx: Run) -> dict``. It prints through ``ctx.table``/``ctx.print``, saves figures
with ``ctx.figure`` and attaches its TrainingTraces with ``ctx.attach``; kclf writes
summary.json (and trace.csv) into a fresh folder and swaps it in for the output folder
when the run ends (kclf.fsio.StagedFolder): the folder holds one run's files only.

A user's own script can produce the same files for ``kclf compare`` with :func:`save`:

    trace = TrainingTrace()
    model.fit(x, y, callbacks=[trace])
    kclf.runner.save({"final_loss": float(...)}, trace)   # writes into $KCLF_OUT
"""

from __future__ import annotations

import io
import os
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from kclf.errors import KclfError, TrainingDiverged
from kclf.fsio import StagedFolder, atomic_write
from kclf.jsonio import dumps, to_jsonable
from kclf.trace import interrupt

__all__ = ["Run", "execute", "run_experiment", "save", "atomic_write", "to_jsonable"]

PROCESS_START = time.perf_counter()
OUT_ENV = "KCLF_OUT"
FIGURE_DPI = 110


class Run:
    """One experiment on one backend: its printing, figures, traces and output folder."""

    def __init__(self, name: str, backend: str, out: Path | str, *, json_mode: bool = False,
                 shown: Path | str | None = None, start: str = "lecture",
                 edition: str = "2026", data: Path | str | None = None):
        self.name = name
        self.backend = backend
        # The run's settings, as the command line gave them (kclf.editions): where the demos
        # start, which edition of the lecture, and the data file (None: none given).
        self.start = start
        self.edition = edition
        self.data = Path(data) if data is not None else None
        self.out = Path(out)  # where files go now (the fresh folder, swapped in at the end)
        self.shown = Path(shown or out)  # where they will be: what the printed paths say
        self.json_mode = json_mode
        self.traces: dict[str, Any] = {}
        self.figures: list[str] = []
        self.expected_divergence: set[str] = set()
        self.notes: list[str] = []

    # -- printing -------------------------------------------------------------
    @property
    def stream(self):
        return sys.stderr if self.json_mode else sys.stdout

    def print(self, *args, **kwargs) -> None:
        print(*args, file=self.stream, **kwargs)

    def header(self, title: str) -> None:
        self.print(f"\n## {title}")

    def table(self, frame, title: str | None = None, *, float_format: str | None = None) -> None:
        """Print a pandas DataFrame the way a notebook shows it."""
        if title:
            self.header(title)
        if float_format:
            self.print(frame.to_string(float_format=lambda v: format(v, float_format)))
        else:
            self.print(frame.to_string())

    # -- outputs ----------------------------------------------------------------
    def figure(self, fig, filename: str) -> Path:
        """Save a matplotlib figure into the output folder (atomically) and close it."""
        import matplotlib.pyplot as plt

        from kclf.plots import for_projector

        for_projector(fig, dpi=FIGURE_DPI)  # the report shows it: ≥ 8 pt, legends off the data
        buf = io.BytesIO()
        fig.savefig(buf, format=Path(filename).suffix.lstrip(".") or "png", dpi=FIGURE_DPI,
                    bbox_inches="tight")
        plt.close(fig)
        path = self.out / filename
        atomic_write(path, buf.getvalue())
        self.figures.append(filename)
        self.print(f"figure: {self.shown / filename}")
        return path

    def attach(self, trace, label: str = "main", *, expect_divergence: bool = False) -> None:
        """Include ``trace`` in the outputs under ``label``; a divergence there is an error
        unless the experiment expects it (the learning-rate demo does)."""
        if not is_trace(trace):
            raise KclfError(f"attach: trace is {_described(trace)}; expected a kclf.callbacks.TrainingTrace")
        self.traces[label] = trace
        if expect_divergence:
            self.expected_divergence.add(label)

    def trace_frame(self):
        """All attached traces in one DataFrame, a "run" column naming each; None if none."""
        import pandas as pd

        frames = []
        for label, trace in self.traces.items():
            frame = trace.to_frame()
            frame.insert(0, "run", label)
            frames.append(frame)
        return pd.concat(frames, ignore_index=True) if frames else None

    def unexpected_divergence(self) -> tuple[str, int] | None:
        for label, trace in self.traces.items():
            if trace.diverged_at is not None and label not in self.expected_divergence:
                return label, trace.diverged_at
        return None


def is_trace(value) -> bool:
    """A TrainingTrace: there is none unless kclf.trace.callback (and so Keras) was imported."""
    callback = sys.modules.get("kclf.trace.callback")
    return callback is not None and isinstance(value, callback.TrainingTrace)


def _described(value) -> str:
    text = repr(value)
    return f"{text if len(text) <= 60 else text[:57] + '...'} ({type(value).__name__})"


def versions_for(backend: str) -> dict[str, str]:
    from kclf.backend import versions

    return versions(backend)


def write_outputs(
    run: Run,
    results: dict,
    *,
    status: str = "ok",
    error: str | None = None,
    timing: dict | None = None,
    trace_frame=None,
) -> dict:
    """Write trace.csv and summary.json into run.out; return the summary (without trace).

    Everything is turned into text first: a result JSON cannot hold fails before any file."""
    summary = {
        "experiment": run.name,
        "backend": run.backend,
        "versions": versions_for(run.backend),
        "status": status,
        "error": error,
        "settings": {"start": run.start, "edition": run.edition,
                     "data": str(run.data) if run.data is not None else None},
        "results": to_jsonable(results, "results"),
        "figures": run.figures,
        "traces": {
            label: {
                "steps": int(trace.steps_recorded),
                "diverged_at": trace.diverged_at,
                "interrupted": bool(trace.interrupted),
                "timing": to_jsonable(trace.timing()),
            }
            for label, trace in run.traces.items()
        },
        "timing": to_jsonable(timing or {}),
    }
    text = dumps(summary, indent=2)
    if trace_frame is not None:
        atomic_write(run.out / "trace.csv", trace_frame.to_csv(index=False))
    atomic_write(run.out / "summary.json", text)
    return summary


@contextmanager
def _stdout_to_stderr(enabled: bool):
    """In --json mode stdout carries exactly one JSON object: everything else goes to stderr."""
    if not enabled:
        yield
        return
    saved = sys.stdout
    sys.stdout = sys.stderr
    try:
        yield
    finally:
        sys.stdout = saved


def execute(module, backend: str, out: Path, *, json_mode: bool = False,
            staged: StagedFolder | None = None, settings: dict | None = None) -> tuple[dict, int]:
    """Run an experiment (a module, or a callable returning one), write its outputs into a
    fresh folder and swap it in for ``out``; return (summary, exit code).

    Whatever was recorded before an interrupt, a divergence or a crash is still written.
    ``staged``: the fresh folder, when the caller made it already (kclf run does, to check
    --out before anything runs). ``settings``: the Run's start, edition and data.
    """
    staged = staged or StagedFolder(out)
    try:
        if callable(module):
            with _stdout_to_stderr(json_mode):
                module = module()
        run = Run(module.NAME, backend, staged.path, json_mode=json_mode, shown=out,
                  **(settings or {}))
        started = time.perf_counter()
        status, error, code, results = "ok", None, 0, {}
        with _stdout_to_stderr(json_mode):
            try:
                results = module.run(run) or {}
                if interrupt.lost():  # a library caught the Ctrl-C's KeyboardInterrupt on its way
                    raise KeyboardInterrupt
            except KeyboardInterrupt:
                interrupt.caught()
                status, error, code = "interrupted", "interrupted by the user (Ctrl-C)", 130
            except KclfError as exc:
                status, error, code = "failed", str(exc), exc.exit_code
            except Exception as exc:  # a crash still leaves a summary and one line, not a traceback
                status, error, code = "failed", f"{type(exc).__name__}: {exc}", 1
            diverged = run.unexpected_divergence()
            if diverged and status == "ok":
                label, step = diverged
                exc = TrainingDiverged(f"training run {label!r} diverged at step {step} (loss or gradient NaN/inf)")
                status, error, code = "diverged", str(exc), exc.exit_code
            timing = {
                "startup_s": started - PROCESS_START,
                "experiment_s": time.perf_counter() - started,
            }
            frame = run.trace_frame()
            try:
                summary = write_outputs(run, results, status=status, error=error, timing=timing,
                                        trace_frame=frame)
            except KclfError as exc:  # results JSON cannot hold: say so, keep the rest
                status, error, code = "failed", str(exc), exc.exit_code
                summary = write_outputs(run, {}, status=status, error=error, timing=timing,
                                        trace_frame=frame)
        staged.commit()
    except BaseException:
        staged.discard()
        raise
    rows = frame.to_dict(orient="records") if (json_mode and frame is not None) else []
    summary["trace"] = to_jsonable(rows)
    return summary, code


def save(results: dict, trace=None, *, out: str | Path | None = None, name: str | None = None) -> Path:
    """Write a user script's results (and TrainingTrace) where ``kclf compare`` reads them.

    ``out`` defaults to $KCLF_OUT (set by kclf compare) or results/<script name>/<backend>/.
    The folder is replaced whole, and only once everything could be written.
    """
    if trace is not None and not is_trace(trace):
        raise KclfError(f"save: trace is {_described(trace)}; expected a kclf.callbacks.TrainingTrace "
                        "or None (no trace)")
    if not isinstance(results, dict):
        raise KclfError(f"save: results is {_described(results)}; expected a dict of results "
                        "(name -> value)")
    import keras

    backend = keras.backend.backend()
    name = name or Path(sys.argv[0]).stem
    out = Path(out or os.environ.get(OUT_ENV) or Path("results") / name / backend)
    staged = StagedFolder(out)
    try:
        run = Run(name, backend, staged.path, shown=out)
        if trace is not None:
            run.attach(trace)
        diverged = run.unexpected_divergence()
        status = "diverged" if diverged else "ok"
        write_outputs(
            run,
            results,
            trace_frame=run.trace_frame(),
            status=status,
            error=f"diverged at step {diverged[1]}" if diverged else None,
            timing={"startup_s": None, "experiment_s": time.perf_counter() - PROCESS_START},
        )
        staged.commit()
    except BaseException:
        staged.discard()
        raise
    return out


def run_experiment(info, backend: str, out: Path, settings: dict, *, json_mode: bool = False,
                   note: str | None = None) -> int:
    """``kclf run NAME`` once its options are checked and its backend selected: the header,
    the run into ``out`` (checked before anything trains), the outputs line (or the one JSON
    object), the error line; returns the exit code. ``info``: the experiment's
    kclf.registry.ExperimentInfo; ``settings``: the Run's start, edition and data."""
    import json

    from kclf import registry
    from kclf.backend import versions

    staged = StagedFolder(out)  # --out is checked here, before anything trains
    if not json_mode:
        v = versions(backend)
        print(f"# {info.name} — {info.description}")
        if info.slide:
            print(f"# slides: {info.slide}")
        print(f"# backend: {backend} {v[backend]} (keras {v['keras']})")
        if info.editions:
            print(f"# edition: {settings['edition']}"
                  + (f"; start: {settings['start']}" if info.starts else ""))
    if note:
        print(f"# note: {note}", file=sys.stderr if json_mode else sys.stdout)
    summary, code = execute(lambda: registry.load(info), backend, out, json_mode=json_mode,
                            staged=staged, settings=settings)
    if json_mode:
        payload = {k: summary[k] for k in ("experiment", "backend", "versions", "results", "trace")}
        payload["status"] = summary["status"]
        if summary["error"]:
            payload["error"] = summary["error"]
        json.dump(payload, sys.stdout, allow_nan=False)
        sys.stdout.write("\n")
    else:
        print(f"\noutputs: {out}/ (summary.json{', trace.csv' if summary['traces'] else ''}"
              f"{', ' + ', '.join(summary['figures']) if summary['figures'] else ''})")
    if summary["error"]:
        print(f"kclf: error: {summary['error']}", file=sys.stderr)
    return code
