"""TrainingTrace, issue 17: a correct record, or one line naming what is wrong and what is
expected, before the step changes anything; and Ctrl-C that ends with every recorded step
readable, never lost.

Each section names the issue's item. The helpers and the slide cases are
tests/test_callbacks.py's.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from test_callbacks import (
    CASES,
    X,
    build,
    fit_with_trace,
    iterations,
    sgd,
)

pytestmark = pytest.mark.backend
ROOT = Path(__file__).resolve().parent.parent


def assert_one_line(error) -> str:
    text = str(error.value)
    assert "\n" not in text, text
    return text


def assert_untouched(model, initial, trace) -> None:
    """Refused before training: no step ran, the model kept its weights, nothing recorded."""
    assert iterations(model) == 0
    for before, now in zip(initial, model.get_weights()):
        np.testing.assert_array_equal(now, before)
    assert trace.steps_recorded == 0


# --- (10) variables= takes strings (or a callable) --------------------------------------------------


@pytest.mark.parametrize("variables", [[1], [None], 42, [b"dense"], b"dense"], ids=repr)
def test_a_selector_that_is_not_a_string_is_a_one_line_type_error(variables):
    from kclf.callbacks import TrainingTrace
    from kclf.errors import KclfError

    with pytest.raises(TypeError) as error:
        TrainingTrace(variables=variables)
    assert isinstance(error.value, KclfError)
    assert "expected" in assert_one_line(error) and repr(variables if not isinstance(variables, list)
                                                         else variables[0]) in str(error.value)


def test_a_callable_that_chooses_nothing_is_a_one_line_value_error():
    from kclf.callbacks import TrainingTrace
    from kclf.errors import KclfError

    case = CASES["linear-mse"]
    model = build(case, sgd())
    with pytest.raises(ValueError) as error:
        fit_with_trace(model, X, case.y, trace=TrainingTrace(variables=lambda v: False))
    assert isinstance(error.value, KclfError) and "dense/kernel" in assert_one_line(error)
    assert iterations(model) == 0


# --- (21) kclf.runner.save's trace ------------------------------------------------------------------


@pytest.mark.parametrize("trace", ["not a trace", 42, [None]], ids=repr)
def test_save_says_what_trace_must_be_and_writes_nothing(trace, tmp_path):
    from kclf import runner
    from kclf.errors import KclfError

    with pytest.raises(KclfError) as error:
        runner.save({"loss": 1.0}, trace, out=tmp_path / "mine", name="mine")
    text = assert_one_line(error)
    assert repr(trace) in text and "expected a kclf.callbacks.TrainingTrace" in text
    assert list(tmp_path.iterdir()) == []
