"""kclf.trace.refusals: a model the trace cannot record is refused in one line naming what is
wrong and what is expected, before the step changes anything; a model it can record after
all (built at its first batch, a subclassed model after build) is traced.

The slide cases and the checks are tests/_trace_cases.py's.
"""

from __future__ import annotations

import numpy as np
import pytest
from _trace_cases import (
    Y_REGRESSION,
    X,
    assert_matches_reference,
    assert_one_line,
    assert_sgd_update,
    assert_untouched,
    counter_model,
    fit_with_trace,
    linear_mse,
    sgd,
)

pytestmark = pytest.mark.backend


# --- a trainable integer variable -------------------------------------------------


def test_a_trainable_int32_variable_is_named_in_one_line_before_training(backend_name):
    from kclf.errors import KclfError
    from kclf.trace.callback import TrainingTrace

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


# --- models without trainable weights, or without weights yet ----------


def test_a_model_without_trainable_weights_is_named_as_such():
    import keras

    from kclf.errors import KclfError
    from kclf.trace.callback import TrainingTrace

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


def test_a_model_without_weights_yet_is_traced_or_refused_in_one_line(backend_name):
    """An Input-less Sequential: JAX and PyTorch build it before the callbacks start, and the
    trace records it; TensorFlow builds it inside the first step, and the trace says how to
    give it weights first instead of Keras's "Unknown variable" from the optimizer."""
    import keras
    import numpy as np

    from kclf.errors import KclfError
    from kclf.trace.callback import TrainingTrace

    x = np.random.default_rng(0).normal(size=(32, 4)).astype("float32")
    y = (x[:, :1] > 0).astype("float32")
    model = keras.Sequential([keras.layers.Dense(3, activation="relu"),
                              keras.layers.Dense(1, activation="sigmoid")])
    model.compile("sgd", "binary_crossentropy")
    trace = TrainingTrace()
    if model.built or backend_name != "tensorflow":
        model.fit(x, y, batch_size=16, epochs=1, verbose=0, callbacks=[trace])
        assert trace.steps_recorded == 2
        return
    with pytest.raises(KclfError) as err:
        model.fit(x, y, batch_size=16, epochs=1, verbose=0, callbacks=[trace])
    assert "\n" not in str(err.value) and "keras.Input(shape)" in str(err.value)
