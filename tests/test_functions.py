"""kclf.functions (the optimisation slides' functions) and plots.mark_minimum, without Keras."""

import numpy as np
import pytest

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


def test_piecewise_function_is_the_2026_slides_np_piecewise():
    theta = np.linspace(-3, 8, 1001)
    slides = np.piecewise(theta, [theta < 1.5, (theta >= 1.5) & (theta <= 2.5), theta > 2.5], [
        lambda x: 0.3 * (x + 1) ** 4 - 0.8 * (x + 1) ** 2 + 2, lambda x: 1.5,
        lambda x: 0.2 * (x - 5) ** 4 + 0.1 * (x - 5) ** 2 - 5])
    np.testing.assert_allclose(functions.piecewise_f(theta), slides, rtol=1e-14, atol=1e-14)
    assert functions.piecewise_f(1.5) == 1.5 and functions.piecewise_f(2.5) == 1.5  # edges: plateau


def test_piecewise_minima_walls_and_derivative():
    minima = functions.local_minima(functions.piecewise_f_prime, -3.0, 8.0)
    np.testing.assert_allclose(minima, [-1 - np.sqrt(4 / 3), -1 + np.sqrt(4 / 3), 5.0], atol=1e-12)
    np.testing.assert_allclose(functions.piecewise_f(minima), [22 / 15, 22 / 15, -5.0], atol=1e-12)
    assert functions.LOCAL_MINIMUM == pytest.approx(-2.1547005, abs=1e-7)
    # The jumps at the plateau's edges: the pieces' limits, not the plateau's 1.5.
    assert functions.piecewise_f(np.nextafter(1.5, -np.inf)) == pytest.approx(8.71875, abs=1e-12)
    assert functions.piecewise_f(np.nextafter(2.5, np.inf)) == pytest.approx(3.4375, abs=1e-12)
    # f' by hand against central differences, away from the jumps.
    theta = np.concatenate([np.linspace(-3, 1.45, 300), np.linspace(1.55, 2.45, 50), np.linspace(2.55, 8, 300)])
    h = 1e-6
    numeric = (functions.piecewise_f(theta + h) - functions.piecewise_f(theta - h)) / (2 * h)
    np.testing.assert_allclose(functions.piecewise_f_prime(theta), numeric, atol=1e-6)
    assert functions.piecewise_f_prime([1.5, 2.5, -1.0]).tolist() == [0.0, 0.0, 0.0]
    assert functions.piecewise_basin([-3, -1, 0.5, 1.5, 2.5, 2.6]).tolist() == [
        "local minimum", "hilltop", "twin minimum", "plateau", "plateau", "global minimum"]


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
