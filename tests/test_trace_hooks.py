"""kclf.trace.hooks: what the trace adds to the train step records what the step computed and
left: the unscaled values a loss-scale optimizer applied (and no row for a step it skipped),
a custom train_step's own loss, the weights after an EMA overwrite or a constraint, the
weights before weight decay; the hooks come off after a fit and a new trace reuses them.

The slide cases and the checks are tests/_trace_cases.py's.
"""

from __future__ import annotations

import numpy as np
import pytest
from _trace_cases import (
    BATCH_SIZE,
    CASES,
    Y_REGRESSION,
    X,
    assert_close,
    assert_matches_reference,
    assert_one_line,
    assert_sgd_update,
    assert_steps_chain,
    assert_untouched,
    build,
    counter_model,
    fit_with_trace,
    interrupt_at,
    iterations,
    kclf_leftovers,
    linear_mse,
    reference_at_step,
    sgd,
)

pytestmark = pytest.mark.backend


# --- loss scaling: the values applied, unscaled -----------------------------------


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
        loss, gradients = reference_at_step(trace, i, case.reference, X, case.y)
        assert_close(trace.losses()[i], loss, rtol=1e-2, what=f"loss at step {i + 1}")
        for path, gradient in zip(trace.variable_paths, gradients):
            assert_close(trace.gradients(path)[i], gradient, rtol=2e-2, what=f"{path} at step {i + 1}")


# --- a custom train_step written the way the Keras guides show --------------------


def guide_model(style: str):
    """A linear model whose train_step is the Keras guide's ("Customizing what happens in
    fit()") for this backend: with its own loss ("own-loss", compiled without one), with
    compute_loss ("compute-loss"; on JAX inside jax.value_and_grad, as the guide does),
    with stateless_compute_loss (JAX), or computing the compiled loss twice ("two-losses")."""
    import keras

    backend = keras.backend.backend()

    class Guide(keras.Model):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.loss_tracker = keras.metrics.Mean(name="loss")
            self.loss_fn = keras.losses.MeanSquaredError()

        @property
        def metrics(self):
            return [self.loss_tracker] if style == "own-loss" else super().metrics

        def guide_loss(self, x, y, y_pred):
            if style == "own-loss":
                return self.loss_fn(y, y_pred)
            loss = self.compute_loss(x=x, y=y, y_pred=y_pred)
            return loss + 0.0 * self.compute_loss(x=x, y=y, y_pred=y_pred) if style == "two-losses" else loss

        def guide_logs(self, loss, y, y_pred):
            for metric in self.metrics:
                if metric.name == "loss":
                    metric.update_state(loss)
                else:
                    metric.update_state(y, y_pred)
            return {m.name: m.result() for m in self.metrics}

        if backend == "tensorflow":
            def train_step(self, data):
                import tensorflow as tf

                x, y = data
                with tf.GradientTape() as tape:
                    y_pred = self(x, training=True)
                    loss = self.guide_loss(x, y, y_pred)
                gradients = tape.gradient(loss, self.trainable_variables)
                self.optimizer.apply(gradients, self.trainable_variables)
                return self.guide_logs(loss, y, y_pred)

        elif backend == "torch":
            def train_step(self, data):
                import torch

                x, y = data
                self.zero_grad()
                y_pred = self(x, training=True)
                loss = self.guide_loss(x, y, y_pred)
                loss.backward()
                weights = list(self.trainable_weights)
                with torch.no_grad():
                    self.optimizer.apply([v.value.grad for v in weights], weights)
                return self.guide_logs(loss, y, y_pred)

        else:
            def compute_loss_and_updates(self, trainable, non_trainable, metrics, x, y, training=False):
                y_pred, non_trainable = self.stateless_call(trainable, non_trainable, x, training=training)
                if style in ("stateless-compute-loss", "two-losses"):
                    loss, (_, non_trainable, metrics) = self.stateless_compute_loss(
                        trainable, non_trainable, metrics, x=x, y=y, y_pred=y_pred)
                    if style == "two-losses":
                        again, (_, non_trainable, metrics) = self.stateless_compute_loss(
                            trainable, non_trainable, metrics, x=x, y=y, y_pred=y_pred)
                        loss = loss + 0.0 * again
                else:
                    loss = self.guide_loss(x, y, y_pred)
                return loss, (y_pred, non_trainable, metrics)

            def train_step(self, state, data):
                import jax

                trainable, non_trainable, optimizer_variables, metrics = state
                x, y = data
                grad_fn = jax.value_and_grad(self.compute_loss_and_updates, has_aux=True)
                (loss, (y_pred, non_trainable, metrics)), grads = grad_fn(
                    trainable, non_trainable, metrics, x, y, training=True)
                trainable, optimizer_variables = self.optimizer.stateless_apply(
                    optimizer_variables, grads, trainable)
                new_metrics, logs = [], {}
                for metric in self.metrics:
                    mine = metrics[len(new_metrics):len(new_metrics) + len(metric.variables)]
                    if metric.name == "loss":
                        mine = metric.stateless_update_state(mine, loss)
                    else:
                        mine = metric.stateless_update_state(mine, y, y_pred)
                    logs[metric.name] = metric.stateless_result(mine)
                    new_metrics += mine
                return logs, (trainable, non_trainable, optimizer_variables, new_metrics)

    inputs = keras.Input((3,))
    outputs = keras.layers.Dense(1, name="dense", kernel_initializer=keras.initializers.GlorotUniform(1))(inputs)
    model = Guide(inputs, outputs, name="guide")
    model.compile(optimizer=sgd(), **({} if style == "own-loss" else {"loss": "mse", "metrics": ["mae"]}))
    return model


RECORDS = {("compute-loss", "tensorflow"), ("compute-loss", "torch"), ("stateless-compute-loss", "jax")}


@pytest.mark.parametrize("style", ["own-loss", "compute-loss", "stateless-compute-loss", "two-losses"])
def test_a_custom_train_step_records_its_real_loss_or_is_refused_before_it_trains(style, backend_name):
    from kclf.errors import KclfError
    from kclf.trace.callback import TrainingTrace

    if style == "stateless-compute-loss" and backend_name != "jax":
        pytest.skip("stateless_compute_loss is the JAX guide's way")
    model = guide_model(style)
    initial = model.get_weights()
    trace = TrainingTrace()

    if (style, backend_name) in RECORDS:
        fit_with_trace(model, X, Y_REGRESSION, trace=trace)
        np.testing.assert_array_equal(trace.steps(), np.arange(1, 7))
        assert np.all(trace.losses() > 0)
        assert_steps_chain(trace, initial)
        assert_sgd_update(trace.to_frame())
        assert_matches_reference(trace, linear_mse, X, Y_REGRESSION)  # the real batch losses
        return
    with pytest.raises(KclfError) as error:
        fit_with_trace(model, X, Y_REGRESSION, trace=trace)
    text = assert_one_line(error)
    assert "'guide'" in text and "compute_loss" in text and "expected" in text
    if style == "two-losses":
        assert "2 losses" in text
    assert_untouched(model, initial, trace)
    model.fit(X, Y_REGRESSION, batch_size=BATCH_SIZE, verbose=0)  # without the trace it trains
    assert iterations(model) == 3


# --- what the step left in the weights, and where it started ----------------------


def test_weights_after_is_what_the_step_left_also_on_ema_overwrite_steps():
    case = CASES["linear-mse"]
    model = build(case, sgd(use_ema=True, ema_momentum=0.99, ema_overwrite_frequency=2))
    initial = model.get_weights()

    trace = fit_with_trace(model, X, case.y)

    assert_steps_chain(trace, initial)  # each step starts from what the one before left
    assert_matches_reference(trace, case.reference, X, case.y)
    frame = trace.to_frame()
    assert_sgd_update(frame.query("step % 2 == 1"))
    # Steps 2, 4, 6 end on the moving average of the SGD results (Keras overwrites the
    # weights with it every second step); the average starts at step 1's result.
    for path in trace.variable_paths:
        before, after = trace.weights_before(path).astype("float64"), trace.weights_after(path)
        sgd_result = before - trace.learning_rates().reshape((-1,) + (1,) * (before.ndim - 1)) * trace.gradients(path)
        average = sgd_result[0]
        for i in range(1, len(before)):
            average = 0.99 * average + 0.01 * sgd_result[i]
            if (i + 1) % 2 == 0:
                np.testing.assert_allclose(after[i], average, rtol=1e-5, atol=1e-7, err_msg=f"{path} step {i + 1}")
                assert not np.allclose(after[i], sgd_result[i], rtol=1e-3, atol=0)


def test_weights_after_includes_a_weight_constraint():
    import keras

    from kclf.models import compile_model

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(
        1, name="dense", kernel_constraint=keras.constraints.NonNeg(),
        kernel_initializer=keras.initializers.Constant(0.1))])
    compile_model(model, "regression", optimizer=sgd(0.2))
    initial = model.get_weights()

    trace = fit_with_trace(model, X, Y_REGRESSION)

    assert_steps_chain(trace, initial)
    kernel = trace.weights_after("dense/kernel")
    assert kernel.min() == 0.0  # the weight of the −2 feature is held at 0
    unconstrained = trace.weights_before("dense/kernel") - 0.2 * trace.gradients("dense/kernel")
    assert unconstrained.min() < 0
    np.testing.assert_allclose(kernel, np.maximum(unconstrained, 0), rtol=1e-6, atol=1e-7)


def test_weight_before_is_the_steps_starting_weight_with_weight_decay():
    case = CASES["linear-mse"]
    model = build(case, sgd(weight_decay=0.1))
    initial = model.get_weights()

    trace = fit_with_trace(model, X, case.y)

    assert_steps_chain(trace, initial)
    assert_matches_reference(trace, case.reference, X, case.y)


# --- a variable without gradient --------------------------------------------------


def test_a_float_variable_without_gradient_is_refused_in_one_line_or_recorded_as_applied(backend_name):
    from kclf.errors import KclfError
    from kclf.trace.callback import TrainingTrace

    model = counter_model("float32")
    initial = model.get_weights()
    trace = TrainingTrace()
    if backend_name == "jax":  # JAX's gradient of an unused weight is 0, and the optimizer applies it
        fit_with_trace(model, X, Y_REGRESSION, trace=trace)
        np.testing.assert_array_equal(trace.gradients("counter"), 0.0)
        assert_steps_chain(trace, initial)
        return
    with pytest.raises(KclfError) as error:
        fit_with_trace(model, X, Y_REGRESSION, trace=trace)
    text = assert_one_line(error)
    assert "counted/counter']" in text and "no gradient" in text and "variables=[" in text
    assert_untouched(model, initial, trace)
    # What the line suggests works.
    chosen = fit_with_trace(model, X, Y_REGRESSION, trace=TrainingTrace(variables=["counted/kernel"]))
    assert chosen.steps_recorded == 6


# --- on and off: no hooks left after a fit, reused by a new trace -----------------


def test_fit_without_the_trace_after_a_traced_fit_leaves_no_hooks():
    case = CASES["linear-mse"]
    model = build(case, sgd())
    model.fit(X, case.y, batch_size=BATCH_SIZE, verbose=0)
    n_variables = len(model.optimizer.variables)
    fit_with_trace(model, X, case.y)
    before = model.get_weights()

    history = model.fit(X, case.y, batch_size=BATCH_SIZE, verbose=0)

    assert np.isfinite(history.history["loss"]).all()
    assert not np.array_equal(model.get_weights()[0], before[0])
    assert len(model.optimizer.variables) == n_variables
    assert kclf_leftovers(model, n_variables) == []


def test_fit_without_the_trace_after_an_interrupted_fit_leaves_no_hooks():
    case = CASES["linear-mse"]
    model = build(case, sgd())
    model.fit(X, case.y, batch_size=BATCH_SIZE, verbose=0)
    n_variables = len(model.optimizer.variables)
    with pytest.raises(KeyboardInterrupt):
        fit_with_trace(model, X, case.y, callbacks=[interrupt_at(2)])

    model.fit(X, case.y, batch_size=BATCH_SIZE, verbose=0)

    assert kclf_leftovers(model, n_variables) == []


def test_a_new_trace_reuses_the_compiled_train_function_and_removing_it_restores_the_plain_one():
    import keras

    from kclf.trace.callback import TrainingTrace

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


# --- several steps per call --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "n_batches",
    # Keras reports the last, shorter execution of an epoch as a full one
    # (on_train_batch_end(11) after 2 steps): the trace must not invent steps.
    [8, 10],
    ids=["multiple-of-4", "not-a-multiple"],
)
def test_steps_per_execution_records_every_step_with_the_same_values(n_batches, backend_name):
    if backend_name == "torch":
        pytest.skip("Keras's torch backend rejects steps_per_execution > 1")
    import pandas as pd

    case = CASES["linear-mse"]
    x, y = X[:n_batches], case.y[:n_batches]  # batches of 1

    frames = [
        fit_with_trace(build(case, sgd(), steps_per_execution=k), x, y, batch_size=1).to_frame()
        for k in (4, 1)
    ]

    np.testing.assert_array_equal(frames[0].step.unique(), np.arange(1, 2 * n_batches + 1))
    pd.testing.assert_frame_equal(frames[0], frames[1], check_exact=True)
