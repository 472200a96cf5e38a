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

__all__ = ["DEFAULT_OUT", "add_arguments", "main"]  # what the kclf command needs of it
