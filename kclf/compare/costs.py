"""What each run costs, measured, so that a first ``make compare`` can say how long it will take.

Seconds of wall time per (experiment, backend), measured by ``kclf compare all --jobs 2`` on a
2-core x86-64 machine with other work beside it (keras 3.15.1, torch 2.13.0, tensorflow-cpu
2.21, jax 0.10.2). A demo's figure is its whole process; a short experiment's is its share of
its backend's batch process, whose start-up (the interpreter, keras and the backend) is
STARTUP, paid once per process. kclf.compare.schedule scales them by how fast this machine
turns out to be as runs finish, and prefers a run's own wall time from the last compare into
the same folder.
"""

from __future__ import annotations

STARTUP = {"jax": 7.0, "tensorflow": 10.0, "torch": 10.0}  # seconds before a process's first run
_SHORT = {  # the experiments that share a process per backend (2026 and 2025 alike)
    "logistic-forward": {"jax": 1.3, "tensorflow": 1.1, "torch": 1.8},
    "softmax-forward": {"jax": 1.6, "tensorflow": 1.0, "torch": 0.4},
    "cross-entropy-vs-mse": {"jax": 1.9, "tensorflow": 0.9, "torch": 0.6},
    "sgd": {"jax": 1.9, "tensorflow": 0.8, "torch": 1.0},
    "bgd": {"jax": 1.4, "tensorflow": 1.0, "torch": 0.9},
    "minibatch": {"jax": 3.9, "tensorflow": 6.9, "torch": 4.4},
    "learning-rates": {"jax": 3.5, "tensorflow": 10.5, "torch": 3.3},
    "gradient-based-learning": {"jax": 5.3, "tensorflow": 3.8, "torch": 2.3},
    "gradient-descent-pitfalls": {"jax": 7.9, "tensorflow": 14.4, "torch": 16.9},
    "minibatch-noise": {"jax": 3.3, "tensorflow": 2.8, "torch": 4.4},
    "learning-rate-schedule": {"jax": 3.4, "tensorflow": 8.0, "torch": 4.8},
    "non-zero-derivatives": {"jax": 11.5, "tensorflow": 20.0, "torch": 3.8},
    "data-parallel": {"jax": 5.8, "tensorflow": 1.2, "torch": 1.0},
}
# The demos, replayed (--start torch-2026): the 2026 stroke demo trains 706 epochs. The Kaggle
# file and the synthetic stand-in cost alike (measured: torch 813 and 836 s).
_DEMOS_2026 = {
    "stroke": {"jax": 190.0, "tensorflow": 400.0, "torch": 830.0},
    "iris": {"jax": 50.0, "tensorflow": 90.0, "torch": 65.0},
}
# 2025 (--start tensorflow-2025): the stroke demo's two early-stopped fits (65 and 74 epochs)
# took 65-86 s per backend; its iris adds a 100-epoch one-hot fit to 2026's cells.
_DEMOS_2025 = {
    "stroke": {"jax": 70.0, "tensorflow": 86.0, "torch": 80.0},
    "iris": {"jax": 55.0, "tensorflow": 100.0, "torch": 75.0},
}
COSTS: dict[str, dict[str, dict[str, float]]] = {
    "2026": {**_SHORT, **_DEMOS_2026},
    "2025": {**_SHORT, **_DEMOS_2025},
}


def cost(name: str, backend: str, edition: str = "2026") -> float | None:
    """The measured seconds of experiment ``name`` on ``backend``; None for one not measured
    (a user's script)."""
    return COSTS.get(edition, COSTS["2026"]).get(name, {}).get(backend)


def startup(backend: str) -> float:
    """A process's seconds before its first short experiment runs (imports)."""
    return STARTUP.get(backend, max(STARTUP.values()))


def shares_a_process(name: str) -> bool:
    """Whether ``name`` is one of the short experiments (costed without start-up)."""
    return name in _SHORT
