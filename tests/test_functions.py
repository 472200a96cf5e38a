"""kclf.functions (the optimisation slides' functions) and plots.mark_minimum, without Keras."""

import numpy as np

from kclf import functions


def test_lecture_derivative_matches_finite_differences():
    x = np.linspace(0.5, 99.5, 199)
    h = 1e-5
    numeric = (functions.lecture_f(x + h) - functions.lecture_f(x - h)) / (2 * h)
    np.testing.assert_allclose(functions.lecture_f_prime(x), numeric, atol=1e-9)


def test_the_demos_fdash_is_off_by_its_first_term():
    x = np.linspace(0, 100, 1001)
    diff = functions.lecture_f_prime(x) - functions.lecture_fdash(x)
    # fDash's first term is 2x/100^3 sin(x/5) instead of 2x/100^2 sin(x/5).
    np.testing.assert_allclose(diff, 0.99 * 2 * x / 100**2 * np.sin(x / 5), atol=1e-15)
    assert 0.017 < np.max(np.abs(diff)) < 0.02


def test_local_minima_of_the_lecture_function():
    minima = functions.local_minima()
    np.testing.assert_allclose(minima, [25.4349, 55.8635, 86.9662], atol=1e-3)
    assert np.all(np.abs(functions.lecture_f_prime(minima)) < 1e-12)
    assert np.argmin(functions.lecture_f(minima)) == 2


def test_tilted_well_has_a_local_and_a_global_minimum():
    minima = functions.local_minima(lambda t: functions.tilted_well_prime(t, 0.5), -2.0, 2.0)
    assert len(minima) == 2
    values = functions.tilted_well(minima, 0.5)
    assert values[0] < values[1] - 0.9  # the left well is the global minimum


def test_dead_units():
    X = np.array([[-1.0], [0.0], [1.0]])
    dead = functions.dead_units(X, [[1.0, 1.0, -1.0]], [-1.0, -0.5, 2.0])
    assert dead.tolist() == [True, False, False]


def test_mark_minimum_off_the_axes_draws_an_edge_marker_inside():
    from kclf import plots

    fig, ax = plots.figure("t")
    plots.mse_contour(ax, [5.0, 9.0], [5.0, 17.0], (-0.5, 3.5), (-0.5, 1.0))
    handles, labels = ax.get_legend_handles_labels()
    (line,) = [h for h, lab in zip(handles, labels) if lab.startswith("MSE minimum")]
    w, b = line.get_xdata()[0], line.get_ydata()[0]
    assert -0.5 < w < 3.5 and -0.5 < b < 1.0  # visible
    assert line.get_marker() == "v"  # the minimum (3, -10) lies below
    assert "(3, -10)" in line.get_label()
