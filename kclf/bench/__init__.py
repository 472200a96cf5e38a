"""``kclf bench``: what TrainingTrace costs on each backend, measured, never asserted.

cli (the command, its options, the parent that starts the workers), workers (steady-state
steps per second and memory, one process each), fits (whole fits and the lecture's demos as a
user feels them), data_parallel (traced / plain under JAX's DataParallel), numpy_line (the
models, data and the NumPy reference loop), report (bench.json and the tables).
"""

from kclf.bench.cli import add_arguments, main

__all__ = ["add_arguments", "main"]
