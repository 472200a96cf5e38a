"""kclf.trace.callback.TrainingTrace: what each optimizer step recorded, held against the
update rule θ ← θ − η∇L, kclf.reference's losses and gradients, and the slides' own SGD
numbers; which steps and variables it keeps, its table, how a fit can end, reuse.

The slide cases and the checks are tests/_trace_cases.py's.
"""

from __future__ import annotations

import numpy as np
import pytest
from _trace_cases import (
    CASES,
    COLUMNS,
    JIT,
    RING,
    X,
    assert_close,
    assert_matches_reference,
    assert_one_line,
    assert_sgd_update,
    assert_steps_chain,
    build,
    fit_with_trace,
    interrupt_at,
    iterations,
    kclf_leftovers,
    linear_mse,
    reference_at_step,
    sgd,
    skip_slow_torch_compile,
)

from kclf.data import SGD_PICKS_X, SGD_PICKS_Y, linear_data

pytestmark = pytest.mark.backend


# --- the public name ---------------------------------------------------------------------------------


def test_kclf_callbacks_is_the_public_name_of_the_trace_wings_callback():
    import kclf.callbacks
    from kclf.trace.callback import TrainingTrace

    assert kclf.callbacks.TrainingTrace is TrainingTrace
    assert kclf.callbacks.__all__ == ["TrainingTrace"]


# --- every step against the update rule and the reference --------------------------------------------


@pytest.mark.parametrize("jit_compile", JIT)
@pytest.mark.parametrize("case_name", list(CASES))
def test_sgd_steps_follow_the_update_rule_and_the_reference(case_name, jit_compile, backend_name):
    skip_slow_torch_compile(backend_name, jit_compile, case_name)
    case = CASES[case_name]
    model = build(case, sgd(), jit_compile=jit_compile)
    initial = model.get_weights()

    trace = fit_with_trace(model, X, case.y)

    np.testing.assert_array_equal(trace.steps(), np.arange(1, 7))
    assert_steps_chain(trace, initial)
    assert_sgd_update(trace.to_frame())
    assert_matches_reference(trace, case.reference, X, case.y)


STATEFUL_OPTIMIZERS = {
    "adam": lambda keras: keras.optimizers.Adam(0.05),
    "sgd-momentum": lambda keras: keras.optimizers.SGD(0.05, momentum=0.9),
}


@pytest.mark.parametrize("optimizer_name", list(STATEFUL_OPTIMIZERS))
def test_gradient_is_analytic_with_stateful_optimizers(optimizer_name):
    import keras

    optimizer = STATEFUL_OPTIMIZERS[optimizer_name](keras)
    case = CASES["dense-relu"]
    model = build(case, optimizer)
    initial = model.get_weights()

    trace = fit_with_trace(model, X, case.y)

    assert_steps_chain(trace, initial)
    assert_matches_reference(trace, case.reference, X, case.y)
    # The weights move by something other than −η∇L (from step 2 on, for momentum too).
    frame = trace.to_frame().query("step >= 2")
    plain_sgd = frame.weight_before - frame.learning_rate * frame.gradient
    assert not np.allclose(frame.weight_after, plain_sgd, rtol=1e-3, atol=0)


def test_reproduces_the_slides_sgd_steps(backend_name):
    from kclf.models import compile_model, linear_regression

    model = compile_model(linear_regression(1, weights=([[0.0]], [0.0])), "regression", optimizer=sgd(0.01))
    trace = fit_with_trace(model, SGD_PICKS_X, SGD_PICKS_Y, batch_size=1, epochs=1)

    np.testing.assert_allclose(trace.losses(), [25.0, 153.76], atol=1e-5, rtol=0)
    np.testing.assert_allclose(trace.gradients("dense/kernel").ravel(), [-50.0, -223.2], atol=1e-5, rtol=0)
    np.testing.assert_allclose(trace.gradients("dense/bias").ravel(), [-10.0, -24.8], atol=1e-5, rtol=0)
    np.testing.assert_allclose(trace.weights_after("dense/kernel").ravel(), [0.5, 2.732], atol=1e-5, rtol=0)
    np.testing.assert_allclose(trace.weights_after("dense/bias").ravel(), [0.1, 0.348], atol=1e-5, rtol=0)


def test_loss_is_the_steps_own_batch_loss_at_its_starting_weights():
    import keras

    case = CASES["linear-mse"]
    logged = []
    log_loss = keras.callbacks.LambdaCallback(on_train_batch_end=lambda batch, logs: logged.append(logs["loss"]))

    trace = fit_with_trace(build(case, sgd()), X, case.y, callbacks=[log_loss], epochs=1)

    step_2_before = [trace.weights_before(path)[1] for path in trace.variable_paths]
    batch_2 = X[4:8], case.y[4:8]
    assert_close(trace.losses()[1], linear_mse(*batch_2, *step_2_before)[0])
    # Keras's logs carry the running mean of the epoch's batch losses instead.
    assert_close(logged[1], trace.losses()[:2].mean(), rtol=1e-5)
    assert not np.isclose(trace.losses()[1], logged[1], rtol=1e-3)


@pytest.mark.parametrize("schedule", ["exponential", "piecewise"])
def test_learning_rate_column_follows_the_schedule(schedule):
    import keras
    from keras import ops

    schedules = keras.optimizers.schedules
    if schedule == "exponential":
        lr = schedules.ExponentialDecay(0.1, decay_steps=2, decay_rate=0.5)
    else:
        lr = schedules.PiecewiseConstantDecay(boundaries=[1, 3], values=[0.1, 0.05, 0.01])
    case = CASES["linear-mse"]

    trace = fit_with_trace(build(case, sgd(lr)), X, case.y)

    expected = [float(ops.convert_to_numpy(lr(step - 1))) for step in trace.steps()]
    np.testing.assert_allclose(trace.learning_rates(), expected, rtol=1e-6)
    assert len(set(expected)) >= 3  # the schedule really changed the rate
    assert_sgd_update(trace.to_frame())


# --- what is recorded: every k-th step, chosen variables ---------------------------------------------


def test_every_k_records_steps_1_plus_multiples_of_k_with_the_full_traces_values():
    import pandas as pd

    from kclf.models import compile_model, linear_regression
    from kclf.trace.callback import TrainingTrace

    # 70 steps per epoch, 140 in all: more than one ring of device buffers per epoch.
    x, y = linear_data(n=70, seed=3)

    def run(trace):
        model = compile_model(linear_regression(1, weights=([[0.5]], [0.0])), "regression", optimizer=sgd(0.002))
        return fit_with_trace(model, x, y, trace=trace, batch_size=1)

    full, every_3 = run(TrainingTrace()), run(TrainingTrace(every=3))

    np.testing.assert_array_equal(full.steps(), np.arange(1, 141))
    assert_sgd_update(full.to_frame())
    assert_matches_reference(full, linear_mse, x, y, batch_size=1)
    np.testing.assert_array_equal(every_3.steps(), np.arange(1, 141, 3))
    expected = full.to_frame().query("step % 3 == 1").reset_index(drop=True)
    pd.testing.assert_frame_equal(every_3.to_frame(), expected, check_exact=False, rtol=1e-6)


@pytest.mark.parametrize(
    "case_name, variables, paths",
    [
        ("linear-mse", ["dense/kernel"], ["dense/kernel"]),
        ("dense-relu", "hidden_1", ["hidden_1/kernel", "hidden_1/bias"]),
    ],
    ids=["path", "layer-name"],
)
def test_variables_records_only_the_chosen_ones(case_name, variables, paths):
    from kclf.trace.callback import TrainingTrace

    case = CASES[case_name]
    # The reference needs every weight: take them from a full trace of the same run.
    full = fit_with_trace(build(case, sgd()), X, case.y, epochs=1)
    chosen = fit_with_trace(build(case, sgd()), X, case.y, trace=TrainingTrace(variables=variables), epochs=1)

    assert chosen.variable_paths == paths
    assert sorted(chosen.to_frame().variable.unique()) == sorted(paths)
    for i, step in enumerate(chosen.steps()):
        loss, gradients = reference_at_step(full, i, case.reference, X, case.y)
        assert_close(chosen.losses()[i], loss, what=f"loss at step {step}")
        for path, gradient in zip(paths, gradients):
            assert_close(chosen.gradients(path)[i], gradient, what=f"{path} gradient at step {step}")


def test_unknown_variable_name_raises_listing_the_paths():
    from kclf.trace.callback import TrainingTrace

    case = CASES["linear-mse"]
    with pytest.raises(ValueError, match="dense/kernal") as error:
        fit_with_trace(build(case, sgd()), X, case.y, trace=TrainingTrace(variables=["dense/kernal"]))
    assert "dense/kernel" in str(error.value) and "dense/bias" in str(error.value)


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
    from kclf.trace.callback import TrainingTrace

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
    from kclf.trace.callback import TrainingTrace

    case = CASES["linear-mse"]
    trace = fit_with_trace(sequential(2, 1), X, case.y)

    with pytest.raises(KeyError, match="layer_0/kernel") as error:
        trace.gradients("kernel")
    assert "layer_1/kernel" in str(error.value)
    with pytest.raises(ValueError, match="ambiguous"):
        fit_with_trace(sequential(2, 1), X, case.y, trace=TrainingTrace(variables=["kernel"]))


@pytest.mark.parametrize("variables", [[1], [None], 42, [b"dense"], b"dense"], ids=repr)
def test_a_selector_that_is_not_a_string_is_a_one_line_type_error(variables):
    from kclf.errors import KclfError
    from kclf.trace.callback import TrainingTrace

    with pytest.raises(TypeError) as error:
        TrainingTrace(variables=variables)
    assert isinstance(error.value, KclfError)
    assert "expected" in assert_one_line(error) and repr(variables if not isinstance(variables, list)
                                                         else variables[0]) in str(error.value)


def test_a_callable_that_chooses_nothing_is_a_one_line_value_error():
    from kclf.errors import KclfError
    from kclf.trace.callback import TrainingTrace

    case = CASES["linear-mse"]
    model = build(case, sgd())
    with pytest.raises(ValueError) as error:
        fit_with_trace(model, X, case.y, trace=TrainingTrace(variables=lambda v: False))
    assert isinstance(error.value, KclfError) and "dense/kernel" in assert_one_line(error)
    assert iterations(model) == 0


# --- the table ---------------------------------------------------------------------------------------


def test_to_frame_has_one_row_per_step_variable_and_element():
    case = CASES["softmax-categorical"]  # a 3 × 3 kernel, so the element order shows
    trace = fit_with_trace(build(case, sgd()), X, case.y)

    frame = trace.to_frame()

    assert list(frame.columns) == COLUMNS
    assert len(frame) == 6 * (9 + 3)
    kernel = frame[frame.variable == "dense/kernel"]
    np.testing.assert_array_equal(kernel.step, np.repeat(np.arange(1, 7), 9))  # 1-based across epochs
    np.testing.assert_array_equal(kernel.epoch, np.repeat([0, 0, 0, 1, 1, 1], 9))
    np.testing.assert_array_equal(kernel.batch, np.repeat([0, 1, 2, 0, 1, 2], 9))  # resets per epoch
    np.testing.assert_array_equal(kernel["index"], np.tile(np.arange(9), 6))
    # index is the flat C-order position: kernel[i, j] is at 3 i + j.
    step_1 = kernel[kernel.step == 1]
    _, (kernel_gradient, _) = reference_at_step(trace, 0, case.reference, X, case.y)
    np.testing.assert_array_equal(step_1.weight_before, trace.weights_before("dense/kernel")[0].ravel(order="C"))
    assert_close(step_1.gradient.to_numpy(), kernel_gradient.ravel(order="C"))
    assert_close(step_1.loss.to_numpy(), np.full(9, trace.losses()[0]))


def test_the_csv_holds_every_recorded_float32_exactly(tmp_path):
    """trace.csv is what compare and the report read: each weight, gradient and loss must come
    back as the very float32 the step recorded (pandas' default repr keeps 17 digits; a
    rounded format would lose the last bits that tell two backends apart)."""
    import pandas as pd

    case = CASES["dense-relu"]
    trace = fit_with_trace(build(case, sgd()), X, case.y, epochs=1)
    path = tmp_path / "trace.csv"

    trace.to_csv(path)

    back = pd.read_csv(path)
    steps = trace.steps()
    assert list(back.columns) == list(trace.to_frame().columns)
    assert list(back.variable.unique()) == ["hidden_1/kernel", "hidden_1/bias", "output/kernel",
                                            "output/bias"]
    for name in back.variable.unique():
        rows = back[back.variable == name]  # step by step, each in C order
        for column, recorded in (("weight_before", trace.weights_before(name)),
                                 ("weight_after", trace.weights_after(name)),
                                 ("gradient", trace.gradients(name))):
            read = rows[column].to_numpy().astype(np.float32).reshape(len(steps), -1)
            np.testing.assert_array_equal(read, recorded.reshape(len(steps), -1))
    first = back.groupby("step", sort=True)["loss"].first().to_numpy().astype(np.float32)
    np.testing.assert_array_equal(first, trace.losses())
    assert sorted(back.step.unique()) == steps.tolist()


# --- how a fit can end: divergence, an exception from another callback -------------------------------


def test_divergence_keeps_steps_up_to_the_first_non_finite_one_and_stops_training(capsys):
    from kclf.models import compile_model, linear_regression

    x, y = linear_data(n=100, seed=0)  # x in [0, 10): SGD(10) overshoots further every step
    model = compile_model(linear_regression(1, weights=([[0.0]], [0.0])), "regression", optimizer=sgd(10.0))
    epochs, n_batches = 50, 10

    trace = fit_with_trace(model, x, y, batch_size=10, epochs=epochs)

    diverged = trace.diverged_at
    assert diverged is not None
    np.testing.assert_array_equal(trace.steps(), np.arange(1, diverged + 1))
    finite = np.isfinite(trace.losses())
    for path in trace.variable_paths:
        finite &= np.isfinite(trace.gradients(path)).reshape(len(finite), -1).all(axis=1)
    np.testing.assert_array_equal(finite, np.arange(1, diverged + 1) < diverged)
    # Stopped: values are read once per ring, so up to RING - 1 more steps may have run.
    assert diverged <= iterations(model) <= diverged + RING - 1
    assert iterations(model) < epochs * n_batches
    assert f"step {diverged}" in capsys.readouterr().err


def test_keyboard_interrupt_keeps_the_steps_done_so_far():
    from kclf.trace.callback import TrainingTrace

    case = CASES["linear-mse"]
    model = build(case, sgd())
    initial = model.get_weights()
    trace = TrainingTrace()
    with pytest.raises(KeyboardInterrupt):
        fit_with_trace(model, X, case.y, trace=trace, callbacks=[interrupt_at(5)], epochs=3)

    assert trace.steps_recorded == 5
    assert trace.interrupted is True
    frame = trace.to_frame()
    assert sorted(frame.step.unique()) == [1, 2, 3, 4, 5]
    assert frame.query("step == 5").epoch.unique().tolist() == [1]
    assert frame.query("step == 5").batch.unique().tolist() == [1]
    assert_steps_chain(trace, initial)
    assert_sgd_update(frame)
    assert_matches_reference(trace, case.reference, X, case.y)


def test_interrupted_is_true_as_soon_as_fit_raises():
    from kclf.trace.callback import TrainingTrace

    case = CASES["linear-mse"]
    trace = TrainingTrace()
    with pytest.raises(KeyboardInterrupt):
        fit_with_trace(build(case, sgd()), X, case.y, trace=trace, callbacks=[interrupt_at(5)])

    assert trace.interrupted is True


# --- reuse, and reads during a fit -------------------------------------------------------------------


def test_trace_reused_in_a_second_fit_continues_the_record_with_a_fit_column():
    from kclf.trace.callback import TrainingTrace

    case = CASES["dense-relu"]
    model = build(case, sgd())
    initial = model.get_weights()
    trace = TrainingTrace()
    fit_with_trace(model, X, case.y, trace=trace)
    first = trace.to_frame()

    fit_with_trace(model, X, case.y, trace=trace)

    assert trace.variable_paths == ["hidden_1/kernel", "hidden_1/bias", "output/kernel", "output/bias"]
    np.testing.assert_array_equal(trace.steps(), np.arange(1, 13))  # the first fit's 6 are kept
    assert trace.diverged_at is None and trace.interrupted is False
    assert_steps_chain(trace, initial)  # the second fit starts where the first one ended
    frame = trace.to_frame()
    assert list(frame.columns) == COLUMNS + ["fit"]
    np.testing.assert_array_equal(frame.groupby("step").fit.first(), np.repeat([0, 1], 6))
    np.testing.assert_array_equal(frame.groupby("step").epoch.first(), np.tile(np.repeat([0, 1], 3), 2))
    import pandas as pd

    pd.testing.assert_frame_equal(frame.query("fit == 0")[COLUMNS].reset_index(drop=True), first)
    assert_sgd_update(frame)
    assert_matches_reference(trace, case.reference, X, case.y)


def test_a_trace_attached_to_another_model_refuses_in_one_line():
    from kclf.errors import KclfError

    case = CASES["linear-mse"]
    trace = fit_with_trace(build(case, sgd()), X, case.y)
    other = build(case, sgd())

    with pytest.raises(KclfError, match="new TrainingTrace") as error:
        fit_with_trace(other, X, case.y, trace=trace)
    assert "\n" not in str(error.value)
    np.testing.assert_array_equal(trace.steps(), np.arange(1, 7))
    assert kclf_leftovers(other, len(other.optimizer.variables)) == []


def test_reading_the_trace_during_fit_leaves_training_running():
    import keras

    case = CASES["linear-mse"]
    seen = []

    class ReadTrace(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.append(trace.steps_recorded)

    from kclf.trace.callback import TrainingTrace

    trace = TrainingTrace()
    fit_with_trace(build(case, sgd()), X, case.y, trace=trace, callbacks=[ReadTrace()])

    assert seen == [3, 6]
    assert trace.steps_recorded == 6 and trace.interrupted is False


# --- kclf.runner.save's trace ----------------------------------------------------


@pytest.mark.parametrize("trace", ["not a trace", 42, [None]], ids=repr)
def test_save_says_what_trace_must_be_and_writes_nothing(trace, tmp_path):
    from kclf import runner
    from kclf.errors import KclfError

    with pytest.raises(KclfError) as error:
        runner.save({"loss": 1.0}, trace, out=tmp_path / "mine", name="mine")
    text = assert_one_line(error)
    assert repr(trace) in text and "expected a kclf.callbacks.TrainingTrace" in text
    assert list(tmp_path.iterdir()) == []
