"""The optimisation slides' non-convex functions, in plain NumPy (no Keras).

The lecture's in-browser demo (minimise-with-gradients.py) hides

    f(x) = (x/100)² sin(x/5)  on [0, 100],

lets the student guess x, and shows the derivative it calls ``fDash``. Differentiating f
by the product rule gives

    f'(x) = 2x/100² · sin(x/5) + (x/100)² · cos(x/5)/5,

while the demo's ``fDash`` is ``2 (1/100)² (x/100) sin(x/5) + (1/5)(x/100)² cos(x/5)``: its
first term is 2x/100³ · sin(x/5), a factor 100 too small. ``lecture_fdash`` keeps the demo's
formula verbatim so the experiments can measure that difference.

Every function takes an array module (``np`` or ``keras.ops``) for the operations, so the
Keras models compute exactly the formula written here.

    >>> round(float(lecture_f(50.0)), 4)
    -0.136
"""

from __future__ import annotations

import numpy as np

X_RANGE = (0.0, 100.0)


def lecture_f(x, xp=np):
    """f(x) = (x/100)² sin(x/5), the demo's hidden function."""
    return (x / 100.0) ** 2 * xp.sin(x / 5.0)


def lecture_f_prime(x):
    """f'(x) = 2x/100² sin(x/5) + (x/100)² cos(x/5)/5 (product and chain rule), float64."""
    x = np.asarray(x, "float64")
    return 2.0 * x / 100.0**2 * np.sin(x / 5.0) + (x / 100.0) ** 2 * np.cos(x / 5.0) / 5.0


def lecture_fdash(x):
    """The demo's own ``fDash``, verbatim from minimise-with-gradients.py (float64)."""
    x = np.asarray(x, "float64")
    return 2 * (1 / 100) ** 2 * (x / 100) * np.sin(x / 5) + (1 / 5) * (x / 100) ** 2 * np.cos(x / 5)


def local_minima(f_prime=lecture_f_prime, lo: float = X_RANGE[0], hi: float = X_RANGE[1], n: int = 100_001):
    """The interior minima of a function on [lo, hi]: where f' changes sign from − to +,
    refined by bisection to float64 precision."""
    grid = np.linspace(lo, hi, n)
    d = f_prime(grid)
    minima = []
    for i in np.nonzero((d[:-1] < 0) & (d[1:] >= 0))[0]:
        a, b = grid[i], grid[i + 1]
        for _ in range(80):
            m = 0.5 * (a + b)
            if f_prime(m) < 0:
                a = m
            else:
                b = m
        minima.append(0.5 * (a + b))
    return np.array(minima)


# --- a loss with data whose full-batch version has a local minimum -----------------
#
# Each training example i is a number s_i, a "tilt"; its loss is
#     ℓ_i(θ) = A (θ² − 1)² + s_i θ.
# The mean over the data is the tilted double well g(θ) = A (θ² − 1)² + s̄ θ: with s̄ > 0 its
# left well is the deeper one (the global minimum) and its right well a local minimum. A
# batch's gradient is g'(θ) plus the batch's tilt minus s̄: the exact gradient plus noise.

WELL_DEPTH = 0.5


def tilted_well(theta, tilt, xp=np, depth: float = WELL_DEPTH):
    """ℓ(θ; s) = depth·(θ² − 1)² + s·θ."""
    return depth * (theta * theta - 1.0) ** 2 + tilt * theta


def tilted_well_prime(theta, tilt, depth: float = WELL_DEPTH):
    """dℓ/dθ = 4·depth·θ(θ² − 1) + s."""
    theta = np.asarray(theta, "float64")
    return 4.0 * depth * theta * (theta * theta - 1.0) + tilt


# --- ReLU units -------------------------------------------------------------------------


def dead_units(X, kernel, bias) -> np.ndarray:
    """Boolean per hidden unit: its pre-activation x·w + b is ≤ 0 for every row of X, so a
    ReLU outputs 0 and passes back a zero gradient for every example (a dead unit)."""
    z = np.asarray(X, "float64") @ np.asarray(kernel, "float64") + np.asarray(bias, "float64")
    return np.all(z <= 0.0, axis=0)
