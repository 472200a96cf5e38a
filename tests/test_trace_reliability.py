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
    Y_REGRESSION,
    X,
    assert_matches_reference,
    assert_sgd_update,
    build,
    fit_with_trace,
    iterations,
    linear_mse,
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


# --- (9) variables that get no gradient -------------------------------------------------------------


def counter_model(unused_dtype: str):
    """A linear layer with a second trainable weight the loss does not use."""
    import keras

    class WithCounter(keras.layers.Layer):
        def build(self, input_shape):
            self.kernel = self.add_weight(shape=(3, 1), initializer="ones", name="kernel")
            self.counter = self.add_weight(shape=(), initializer="zeros", dtype=unused_dtype,
                                           trainable=True, name="counter")

        def call(self, x):
            return x @ self.kernel

    model = keras.Sequential([keras.Input((3,)), WithCounter(name="counted")])
    model.compile(optimizer=sgd(), loss="mse")
    return model


def test_a_trainable_int32_variable_is_named_in_one_line_before_training(backend_name):
    from kclf.callbacks import TrainingTrace
    from kclf.errors import KclfError

    if backend_name == "torch":
        pytest.skip("PyTorch refuses a trainable int32 variable itself, when the layer builds it")
    model = counter_model("int32")
    initial = model.get_weights()
    trace = TrainingTrace()

    with pytest.raises(KclfError) as error:
        fit_with_trace(model, X, Y_REGRESSION, trace=trace)
    text = assert_one_line(error)
    assert "counted/counter (int32)" in text and "variables=['sequential" in text and "trainable=False" in text
    assert_untouched(model, initial, trace)


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


# --- (11) models without trainable weights, a subclassed model after build ----------------------------


def test_a_model_without_trainable_weights_is_named_as_such():
    import keras

    from kclf.callbacks import TrainingTrace
    from kclf.errors import KclfError

    frozen = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    frozen.layers[0].trainable = False
    activation = keras.Sequential([keras.Input((3,)), keras.layers.Activation("relu")])
    for model, why in ((frozen, "its 2 weights are all non-trainable"), (activation, "it has no weights at all")):
        model.compile(optimizer=sgd(), loss="mse")
        with pytest.raises(KclfError) as error:
            fit_with_trace(model, X, Y_REGRESSION, trace=TrainingTrace())
        text = assert_one_line(error)
        assert "no trainable weights" in text and why in text and "model.build" not in text


def test_a_subclassed_model_after_build_is_traced():
    import keras

    class Subclassed(keras.Model):
        def __init__(self):
            super().__init__(name="subclassed")
            self.dense = keras.layers.Dense(1, name="dense", kernel_initializer=keras.initializers.GlorotUniform(1))

        def call(self, x):
            return self.dense(x)

    model = Subclassed()
    model.build((None, 3))
    model.compile(optimizer=sgd(), loss="mse")

    trace = fit_with_trace(model, X, Y_REGRESSION)

    np.testing.assert_array_equal(trace.steps(), np.arange(1, 7))
    assert_sgd_update(trace.to_frame())
    assert_matches_reference(trace, linear_mse, X, Y_REGRESSION)


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
