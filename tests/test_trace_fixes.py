"""TrainingTrace, issue 11 and 12: loss scaling, Ctrl-C inside a garbage-collection callback,
Sequential paths, a trace reused without recompiling, the keras version check.

The helpers and the slide cases are tests/test_callbacks.py's.
"""

from __future__ import annotations

import numpy as np
import pytest
from test_callbacks import (
    BATCH_SIZE,
    CASES,
    X,
    assert_close,
    assert_matches_reference,
    assert_sgd_update,
    assert_steps_chain,
    build,
    fit_with_trace,
    kclf_leftovers,
    sgd,
)

pytestmark = pytest.mark.backend


# --- (1) loss scaling: the values applied, unscaled -------------------------------------------


def test_loss_scale_optimizer_records_the_unscaled_values_it_applied():
    import keras

    case = CASES["dense-relu"]
    model = build(case, keras.optimizers.LossScaleOptimizer(sgd(), initial_scale=2.0**10))
    initial = model.get_weights()

    trace = fit_with_trace(model, X, case.y)

    np.testing.assert_array_equal(trace.steps(), np.arange(1, 7))
    np.testing.assert_allclose(trace.learning_rates(), 0.05, rtol=1e-7)
    assert_steps_chain(trace, initial)
    assert_sgd_update(trace.to_frame())
    assert_matches_reference(trace, case.reference, X, case.y)  # the gradients are not × 1024


def test_steps_a_loss_scale_optimizer_skips_have_no_row_and_the_others_keep_their_numbers():
    import keras

    case = CASES["linear-mse"]
    # Scaled by 2^127, the loss overflows float32 until the scale has halved a few times.
    model = build(case, keras.optimizers.LossScaleOptimizer(sgd(), initial_scale=2.0**127))
    initial = model.get_weights()

    trace = fit_with_trace(model, X, case.y, epochs=4)

    steps = trace.steps()
    applied = int(keras.ops.convert_to_numpy(model.optimizer.iterations))
    assert 0 < len(steps) == applied < 12
    assert set(steps) < set(range(1, 13)) and np.all(np.diff(steps) > 0)
    frame = trace.to_frame().groupby("step").first()  # Keras's epoch and batch of each step
    np.testing.assert_array_equal(frame.epoch, (steps - 1) // 3)
    np.testing.assert_array_equal(frame.batch, (steps - 1) % 3)
    assert_steps_chain(trace, initial)  # a skipped step changed nothing
    assert_sgd_update(trace.to_frame())
    assert_matches_reference(trace, case.reference, X, case.y)


def test_mixed_float16_records_non_zero_unscaled_values():
    import keras

    case = CASES["dense-relu"]
    policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    try:
        model = build(case, sgd())
        initial = model.get_weights()
        trace = fit_with_trace(model, X, case.y)
    finally:
        keras.config.set_dtype_policy(policy)

    assert model.optimizer.__class__.__name__ == "LossScaleOptimizer"
    # A step whose scaled gradients overflow float16 is skipped (the scale halves): it
    # applies nothing and has no row; the steps keep Keras's numbering.
    steps = trace.steps()
    assert len(steps) >= 4 and set(steps) <= set(range(1, 7))
    applied = int(keras.ops.convert_to_numpy(model.optimizer.iterations))
    assert len(steps) == applied
    np.testing.assert_allclose(trace.learning_rates(), 0.05, rtol=1e-7)
    assert all(np.abs(trace.gradients(p)).max() > 0 for p in trace.variable_paths)
    assert_steps_chain(trace, initial)
    assert_sgd_update(trace.to_frame())  # the float32 weights move by η × the recorded gradient
    # float16 forward and backward passes: three significant digits of the reference.
    for i in range(trace.steps_recorded):
        from test_callbacks import reference_at_step

        loss, gradients = reference_at_step(trace, i, case.reference, X, case.y)
        assert_close(trace.losses()[i], loss, rtol=1e-2, what=f"loss at step {i + 1}")
        for path, gradient in zip(trace.variable_paths, gradients):
            assert_close(trace.gradients(path)[i], gradient, rtol=2e-2, what=f"{path} at step {i + 1}")


# --- (5) Ctrl-C while Python runs a garbage-collection callback -----------------------------------


def test_ctrl_c_inside_a_gc_callback_stops_the_fit_at_the_next_step():
    import gc
    import os
    import signal

    import keras

    from kclf.callbacks import TrainingTrace

    if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        pytest.skip("this process handles Ctrl-C itself")
    fired = []

    def ctrl_c_during_gc(phase, info):
        if phase == "start" and armed and not fired:
            fired.append(True)
            os.kill(os.getpid(), signal.SIGINT)
            for _ in range(10_000):  # Python runs the signal handler here, inside the callback
                pass

    class CollectAtStep2(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            nonlocal armed
            if batch == 1 and not fired:
                armed = True
                gc.collect()

    armed = False
    gc.callbacks.append(ctrl_c_during_gc)
    case = CASES["linear-mse"]
    trace = TrainingTrace()
    try:
        with pytest.raises(KeyboardInterrupt):
            fit_with_trace(build(case, sgd()), X, case.y, trace=trace, callbacks=[CollectAtStep2()], epochs=3)
    finally:
        gc.callbacks.remove(ctrl_c_during_gc)

    assert fired == [True]
    # Ctrl-C came after step 2's trace callback: the fit stops at the end of step 3.
    assert trace.steps_recorded == 3 and trace.interrupted is True
    assert_matches_reference(trace, case.reference, X, case.y)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_ctrl_c_after_a_fit_that_raised_interrupts_at_once():
    import os
    import signal
    import time

    from test_callbacks import interrupt_at

    case = CASES["linear-mse"]
    with pytest.raises(KeyboardInterrupt):  # another callback raised: the trace never ended
        fit_with_trace(build(case, sgd()), X, case.y, callbacks=[interrupt_at(2)])

    with pytest.raises(KeyboardInterrupt):
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(5)  # not reached: Ctrl-C outside a gc callback raises where Python is


# --- (7) Sequential: layer names and path ends ------------------------------------------------------


def sequential(*units, seed=0):
    import keras

    layers = [keras.layers.Dense(u, name=f"layer_{i}" if len(units) > 1 else "dense",
                                 kernel_initializer=keras.initializers.GlorotUniform(seed))
              for i, u in enumerate(units)]
    model = keras.Sequential([keras.Input((3,)), *layers])
    model.compile(optimizer=sgd(), loss="mse")
    return model


@pytest.mark.parametrize("variables", [["dense"], ["dense/kernel"], "dense/kernel"])
def test_sequential_layer_names_and_path_ends_select_variables(variables):
    from kclf.callbacks import TrainingTrace

    case = CASES["linear-mse"]
    full = fit_with_trace(sequential(1), X, case.y)
    chosen = fit_with_trace(sequential(1), X, case.y, trace=TrainingTrace(variables=variables))

    prefix = full.variable_paths[0].split("/")[0]
    assert prefix.startswith("sequential") and full.variable_paths == [f"{prefix}/dense/kernel", f"{prefix}/dense/bias"]
    want = ["kernel", "bias"] if variables == ["dense"] else ["kernel"]
    assert [p.split("/")[-1] for p in chosen.variable_paths] == want
    np.testing.assert_array_equal(chosen.gradients("dense/kernel"), full.gradients("dense/kernel"))
    np.testing.assert_array_equal(full.gradients("dense/kernel"), full.gradients(full.variable_paths[0]))
    np.testing.assert_array_equal(full.weights_after("bias"), full.weights_after(full.variable_paths[1]))


def test_an_ambiguous_name_lists_the_candidates():
    from kclf.callbacks import TrainingTrace

    case = CASES["linear-mse"]
    trace = fit_with_trace(sequential(2, 1), X, case.y)

    with pytest.raises(KeyError, match="layer_0/kernel") as error:
        trace.gradients("kernel")
    assert "layer_1/kernel" in str(error.value)
    with pytest.raises(ValueError, match="ambiguous"):
        fit_with_trace(sequential(2, 1), X, case.y, trace=TrainingTrace(variables=["kernel"]))


# --- issue 11, item 2: a new trace reuses the hooks and the compiled train function ---------------


def test_a_new_trace_reuses_the_compiled_train_function_and_removing_it_restores_the_plain_one():
    import keras

    from kclf.callbacks import TrainingTrace

    case = CASES["linear-mse"]
    model = build(case, sgd())
    seen = []
    capture = keras.callbacks.LambdaCallback(on_train_begin=lambda logs: seen.append(model.train_function))
    plain = dict(x=X, y=case.y, batch_size=BATCH_SIZE, shuffle=False, verbose=0, callbacks=[capture])

    model.fit(**plain)
    n_variables = len(model.optimizer.variables)
    fit_with_trace(model, X, case.y, callbacks=[capture])
    initial = model.get_weights()
    second = fit_with_trace(model, X, case.y, trace=TrainingTrace(), callbacks=[capture])
    model.fit(**plain)
    fit_with_trace(model, X, case.y, trace=TrainingTrace(variables=["dense/kernel"]), callbacks=[capture])

    assert seen[1] is not seen[0]  # the first trace compiled a traced function
    assert seen[2] is seen[1]  # a new trace of the same variables reused it
    assert seen[3] is seen[0]  # without the trace, the plain function came back
    assert seen[4] is not seen[1] and seen[4] is not seen[0]  # other variables: compiled once more
    np.testing.assert_array_equal(second.steps(), np.arange(1, 7))
    assert_steps_chain(second, initial)
    assert_sgd_update(second.to_frame())
    assert_matches_reference(second, case.reference, X, case.y)
    assert kclf_leftovers(model, n_variables) == []


# --- issue 12, item 4: the keras version ------------------------------------------------------------


def test_an_unsupported_keras_is_named_in_one_line_before_anything_changes(monkeypatch):
    import keras

    from kclf.errors import KclfError

    case = CASES["linear-mse"]
    model = build(case, sgd())
    model.fit(X, case.y, batch_size=BATCH_SIZE, verbose=0)
    n_variables = len(model.optimizer.variables)
    monkeypatch.setattr(keras, "__version__", "3.3.3")

    with pytest.raises(KclfError, match=r"needs keras >= 3\.\d+\.\d+; found keras 3\.3\.3") as error:
        fit_with_trace(model, X, case.y)
    assert "\n" not in str(error.value)
    assert kclf_leftovers(model, n_variables) == []


def test_a_model_without_weights_yet_is_traced_or_refused_in_one_line(backend_name):
    """An Input-less Sequential: JAX and PyTorch build it before the callbacks start, and the
    trace records it; TensorFlow builds it inside the first step, and the trace says how to
    give it weights first instead of Keras's "Unknown variable" from the optimizer."""
    import keras
    import numpy as np

    from kclf.callbacks import TrainingTrace
    from kclf.errors import KclfError

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
