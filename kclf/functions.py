"""The optimisation slides' non-convex functions, in plain NumPy (no Keras).

The 2025 edition's optimisation experiments use the demo's function; the 2026 edition's
use the slides' piecewise function (``piecewise_f``, below). The lecture's in-browser demo (minimise-with-gradients.py) hides

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


# --- the 2026 edition's function ------------------------------------------------------
#
# The 2026 slides "Gradient descent pitfalls" and "Mini-batch gradient descent" draw
# ``gradient_descent_plot()``, a piecewise loss built with np.piecewise:
#
#     f(θ) = 0.3 (θ + 1)⁴ − 0.8 (θ + 1)² + 2     for θ < 1.5
#            1.5                                for 1.5 ≤ θ ≤ 2.5   (the plateau)
#            0.2 (θ − 5)⁴ + 0.1 (θ − 5)² − 5     for θ > 2.5
#
# Its right piece has the global minimum θ = 5, f = −5. The left piece is a quartic in θ + 1
# with f' = (θ + 1)(1.2 (θ + 1)² − 1.6): zero at θ = −1 (a hilltop, f = 2) and at
# θ + 1 = ±√(4/3), two local minima with the same f = 0.3·16/9 − 0.8·4/3 + 2 = 22/15
# ≈ 1.4667. The slide marks the left one (−1 − √(4/3) ≈ −2.1547, "−2.15"); its twin
# −1 + √(4/3) ≈ 0.1547 is unmarked. The pieces do not meet the plateau: the left piece is
# 8.71875 at θ = 1.5 and the right piece 3.4375 at θ = 2.5, so the plateau is a flat pit
# with vertical walls (every point of it is a local minimum, 1.5 lower than just outside).

PLATEAU = (1.5, 2.5)
PLATEAU_F = 1.5
GLOBAL_MINIMUM = 5.0
LOCAL_MINIMUM = -1.0 - np.sqrt(4.0 / 3.0)  # the one the slide marks
TWIN_MINIMUM = -1.0 + np.sqrt(4.0 / 3.0)
HILLTOP = -1.0  # the local maximum between the two


def piecewise_f(theta, xp=np):
    """The 2026 slides' loss: a quartic, a plateau at 1.5 on [1.5, 2.5], another quartic.

    The edges belong to the plateau (np.piecewise's ``x >= 1.5`` and ``x <= 2.5``). Each
    quartic is a quadratic in a square, and every square is ``xp.square``, x·x: the same
    float32 bits on every backend, so the backends' SGD steps agree bit for bit (with
    ``** 4``, JAX multiplies and TensorFlow calls pow, which rounds differently)."""
    left2 = xp.square(theta + 1.0)  # (θ + 1)²
    right2 = xp.square(theta - 5.0)  # (θ − 5)²
    left = 0.3 * xp.square(left2) - 0.8 * left2 + 2.0
    plateau = 0.0 * theta + PLATEAU_F
    right = 0.2 * xp.square(right2) + 0.1 * right2 - 5.0
    return xp.where(theta < PLATEAU[0], left, xp.where(theta <= PLATEAU[1], plateau, right))


def piecewise_f_prime(theta):
    """f'(θ) piece by piece (chain rule), float64: 1.2 (θ+1)³ − 1.6 (θ+1); 0 on the plateau,
    its edges included; 0.8 (θ−5)³ + 0.2 (θ−5). At the edges f has no derivative (it jumps);
    this is what autodiff of ``piecewise_f`` gives there: the plateau's 0."""
    theta = np.asarray(theta, "float64")
    left = 1.2 * (theta + 1.0) ** 3 - 1.6 * (theta + 1.0)
    right = 0.8 * (theta - 5.0) ** 3 + 0.2 * (theta - 5.0)
    return np.where(theta < PLATEAU[0], left, np.where(theta <= PLATEAU[1], 0.0, right))


def piecewise_basin(theta) -> np.ndarray:
    """Where full-batch gradient descent with small steps goes from θ: "local minimum"
    (θ < −1), "twin minimum" (−1 < θ < 1.5), "plateau" (stays), "global minimum" (θ > 2.5);
    "hilltop" at θ = −1 exactly, where f' = 0."""
    theta = np.asarray(theta, "float64")
    return np.select(
        [theta < HILLTOP, theta == HILLTOP, theta < PLATEAU[0], theta <= PLATEAU[1]],
        ["local minimum", "hilltop", "twin minimum", "plateau"], "global minimum")


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
