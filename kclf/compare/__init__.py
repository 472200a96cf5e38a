"""``kclf compare``: run each experiment once per backend and diff the runs step by step.

Every run is its own process with KERAS_BACKEND set before keras is imported. Each
backend is then aligned against the first one listed (the reference): the traces on
(run, step, variable, index) for weights, gradients and loss, and the results leaf by
leaf. The verdict per experiment is agree, differ (and where) or failed.

    kclf compare sgd bgd --backends jax,torch --jobs 2
    kclf compare path/to/my_script.py        # a script that calls kclf.runner.save

Exit code: 0 when every requested run agrees, 1 when one differs or failed, 2 for a
usage error, 130 when interrupted (the partial report is written, marked INCOMPLETE).
This package does not import keras: the runs do, in their own processes.
The parts: tolerances (when numbers agree, declared by each experiment), diff (numbers,
results, traces: ResultsDiff, TraceDiff), runs (one run's process and outcome: Job,
RunOutcome), schedule (which runs when, in how many processes), batch (the child running
several experiments), verdict (the comparison as data: Comparison, ExperimentComparison,
PairComparison), figures, report (report.html, comparison.md and .json), cli.
"""

from kclf.compare.cli import DEFAULT_OUT, add_arguments, main
from kclf.compare.diff import (
    QuantityDiff,
    ResultsDiff,
    TraceDiff,
    compare_results,
    compare_traces,
    diffs,
    flatten,
    read_trace,
)
from kclf.compare.runs import (
    DEFAULT_TIMEOUT_S,
    RunOutcome,
    Target,
    resolve_backends,
    resolve_targets,
    reuse,
)
from kclf.compare.schedule import execute
from kclf.compare.tolerances import (
    DETERMINISTIC,
    IRIS,
    LECTURE_START,
    LONG_TRAINING,
    NAMED,
    NON_ZERO_DERIVATIVES,
    OWN_DRAWS,
    START_MODES,
    STROKE,
    Tolerance,
    tolerance_for,
)
from kclf.compare.verdict import (
    Comparison,
    ExperimentComparison,
    PairComparison,
    Parting,
    build,
    compare_experiment,
    compare_pair,
    parting_text,
    run_timing,
    where_they_part,
)

__all__ = [
    "DEFAULT_OUT", "DEFAULT_TIMEOUT_S", "DETERMINISTIC", "IRIS", "LECTURE_START",
    "LONG_TRAINING", "NAMED", "NON_ZERO_DERIVATIVES", "OWN_DRAWS", "START_MODES", "STROKE",
    "Comparison", "ExperimentComparison", "PairComparison", "Parting", "QuantityDiff",
    "ResultsDiff", "RunOutcome", "Target", "TraceDiff", "Tolerance", "add_arguments", "build",
    "compare_experiment",
    "compare_pair", "compare_results", "compare_traces", "diffs", "execute", "flatten", "main",
    "parting_text", "read_trace", "resolve_backends", "resolve_targets", "reuse", "run_timing",
    "tolerance_for", "where_they_part",
]


def __getattr__(attr: str):
    """TOLERANCES and START_TOLERANCES: the experiments' declarations, read when asked for."""
    from kclf.compare import tolerances

    return getattr(tolerances, attr)
