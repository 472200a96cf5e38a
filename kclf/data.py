"""The lecture's data sets: the slides' small tables, and the demos' data (iris, stroke)."""

from __future__ import annotations

import numpy as np

# The logistic and softmax slides' 3-row data.
SLIDES_X = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], dtype="float32")
SLIDES_Y = np.array([0, 1, 1])

# The SGD slides' two picks, in order: (x=5, y=5) then (x=9, y=17).
SGD_PICKS_X = np.array([[5.0], [9.0]], dtype="float32")
SGD_PICKS_Y = np.array([[5.0], [17.0]], dtype="float32")


def bgd_data() -> tuple[np.ndarray, np.ndarray]:
    """x = 1, 2, 3; y = 2x − 1 + 0.01 ε with np.random.seed(111) (legacy global RNG, as the slides)."""
    np.random.seed(111)
    x = np.arange(1, 4)
    y = 2 * x - 1 + 0.01 * np.random.randn(3)
    return x.astype("float64"), y


def linear_data(n: int = 100, seed: int = 42, noise: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """About-100-point data like the slides': y = 2x − 1 + noise, x in [0, 10)."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 10, size=n)
    y = 2 * x - 1 + noise * rng.standard_normal(n)
    return x.astype("float32").reshape(-1, 1), y.astype("float32").reshape(-1, 1)


def schedule_data(n: int = 100, seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    """The learning-rate-schedule experiment's points: x ~ N(0, 1), y = 2x − 1 + N(0, 1)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(n)
    y = 2 * x - 1 + rng.standard_normal(n)
    return x.astype("float32").reshape(-1, 1), y.astype("float32").reshape(-1, 1)
