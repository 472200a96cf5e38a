"""kclf.callbacks.TrainingTrace: what each optimizer step recorded, held against the update
rule θ ← θ − η∇L, kclf.reference's losses and gradients, and the slides' own SGD numbers.

Every fit reads its batches in order (shuffle=False), so the batch of step s is known and
the reference can recompute the step's loss and gradient at the recorded weight_before.
Keras is imported inside the tests, never while this file is collected: the backend-free
test process must not import it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest

from kclf import reference
from kclf.data import SGD_PICKS_X, SGD_PICKS_Y, linear_data

pytestmark = pytest.mark.backend

COLUMNS = [
    "step", "epoch", "batch", "variable", "index",
    "weight_before", "gradient", "weight_after", "loss", "learning_rate",
]
RING = 64  # the trace copies device values to the host at least once per 64 steps

# 12 rows in 3 batches of 4, over 2 epochs: 6 steps, the last 3 in the second epoch.
BATCH_SIZE = 4
EPOCHS = 2
_rng = np.random.default_rng(20240611)
X = _rng.normal(size=(12, 3)).astype("float32")
Y_REGRESSION = (X @ [[1.0], [-2.0], [0.5]] + 0.3 + 0.1 * _rng.normal(size=(12, 1))).astype("float32")
Y_BINARY = (X[:, :1] - X[:, 1:2] > 0).astype("float32")
LABELS = _rng.integers(0, 3, size=12).astype("int32")
ONE_HOT = reference.one_hot(LABELS, 3).astype("float32")


# --- the reference: (loss, gradients) at given weights on one batch ------------------


def linear_mse(X, y, W, b):
    return reference.mse(reference.linear(X, W, b), y), reference.mse_gradients(X, y, W, b)


def logistic_bce(X, y, W, b):
    p = reference.sigmoid(reference.linear(X, W, b))
    return reference.binary_cross_entropy(p, y), reference.binary_cross_entropy_gradients(X, y, W, b)


def softmax_sparse(X, labels, W, b):
    P = reference.softmax(reference.linear(X, W, b))
    loss = reference.categorical_cross_entropy(P, reference.one_hot(labels, P.shape[1]))
    return loss, reference.sparse_categorical_cross_entropy_gradients(X, labels, W, b)


def softmax_categorical(X, Y, W, b):
    P = reference.softmax(reference.linear(X, W, b))
    return reference.categorical_cross_entropy(P, Y), reference.categorical_cross_entropy_gradients(X, Y, W, b)


def dense_relu_sparse(X, labels, W1, b1, W2, b2):
    h = np.maximum(reference.linear(X, W1, b1), 0.0)
    P = reference.softmax(reference.linear(h, W2, b2))
    Y = reference.one_hot(labels, P.shape[1])
    return reference.categorical_cross_entropy(P, Y), reference.dense_relu_classifier_gradients(X, Y, W1, b1, W2, b2)


@dataclass(frozen=True)
class Case:
    """A slide model, its task (which picks the loss), its targets and its reference."""

    model: Callable  # kclf.models -> an uncompiled keras.Model
    task: str
    y: np.ndarray
    reference: Callable  # (X, y, *weights) -> (loss, gradients)
    from_logits: bool = False


CASES = {
    "linear-mse": Case(lambda m: m.linear_regression(3, seed=1), "regression", Y_REGRESSION, linear_mse),
    "logistic-bce": Case(lambda m: m.logistic_regression(3, seed=2), "binary", Y_BINARY, logistic_bce),
    "logistic-bce-from-logits": Case(
        lambda m: m.logistic_regression(3, from_logits=True, seed=2), "binary", Y_BINARY, logistic_bce,
        from_logits=True,
    ),
    "softmax-sparse": Case(lambda m: m.softmax_regression(3, 3, seed=3), "sparse", LABELS, softmax_sparse),
    "softmax-categorical": Case(
        lambda m: m.softmax_regression(3, 3, seed=3), "categorical", ONE_HOT, softmax_categorical
    ),
    "dense-relu": Case(
        lambda m: m.dense_classifier(3, 3, hidden=(4,), seed=4), "sparse", LABELS, dense_relu_sparse
    ),
}


# --- helpers --------------------------------------------------------------------------------


def build(case: Case, optimizer, **compile_kwargs):
    """The case's model, compiled with the slides' loss for its task."""
    from kclf import models

    model = case.model(models)
    return models.compile_model(
        model, case.task, optimizer=optimizer, from_logits=case.from_logits, **compile_kwargs
    )


def sgd(learning_rate=0.05, **kwargs):
    import keras

    return keras.optimizers.SGD(learning_rate, **kwargs)


def fit_with_trace(model, x, y, *, trace=None, callbacks=(), batch_size=BATCH_SIZE, epochs=EPOCHS, **kwargs):
    """fit() in batch order with a TrainingTrace first among the callbacks; returns the trace."""
    from kclf.callbacks import TrainingTrace

    trace = TrainingTrace() if trace is None else trace
    model.fit(
        x, y, batch_size=batch_size, epochs=epochs, shuffle=False, verbose=0,
        callbacks=[trace, *callbacks], **kwargs,
    )
    return trace


def batch_of(step: int, x, y, batch_size: int = BATCH_SIZE):
    """The batch that 1-based ``step`` trained on: the same batches, in order, every epoch."""
    n_batches = -(-len(x) // batch_size)
    i = (step - 1) % n_batches
    rows = slice(i * batch_size, (i + 1) * batch_size)
    return x[rows], y[rows]


def reference_at_step(trace, i: int, case_reference, x, y, batch_size: int = BATCH_SIZE):
    """The reference's (loss, gradients) for the i-th recorded step, at its weight_before."""
    step = int(trace.steps()[i])
    before = [trace.weights_before(path)[i] for path in trace.variable_paths]
    return case_reference(*batch_of(step, x, y, batch_size), *before)


def assert_close(actual, expected, rtol=2e-5, what=""):
    """float32 against the float64 reference: relative, with an absolute floor at the scale
    of the largest element (a small result of a sum of larger terms keeps fewer digits)."""
    expected = np.asarray(expected, "float64")
    scale = float(np.max(np.abs(expected))) if expected.size else 0.0
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=rtol * scale + 1e-12, err_msg=what)


def assert_matches_reference(trace, case_reference, x, y, batch_size: int = BATCH_SIZE):
    """Every recorded step's loss and gradients equal the reference at its weight_before."""
    steps = range(trace.steps_recorded)
    expected = [reference_at_step(trace, i, case_reference, x, y, batch_size) for i in steps]
    assert_close(trace.losses(), [loss for loss, _ in expected], what="losses")
    for k, path in enumerate(trace.variable_paths):
        gradients = [gradient[k] for _, gradient in expected]
        assert_close(trace.gradients(path), gradients, what=f"{path} gradients")


def assert_sgd_update(frame):
    """weight_after = weight_before − learning_rate × gradient for every element and step."""
    before, gradient, after, lr = (
        frame[c].to_numpy("float64") for c in ("weight_before", "gradient", "weight_after", "learning_rate")
    )
    change = lr * gradient
    scale = np.maximum(np.abs(before), np.abs(change))
    np.testing.assert_array_less(np.abs(after - (before - change)), 1e-6 * scale + 1e-12)


def assert_steps_chain(trace, initial_weights):
    """Step 1 starts from the initial weights; each step starts where the previous one ended."""
    for path, initial in zip(trace.variable_paths, initial_weights):
        before, after = trace.weights_before(path), trace.weights_after(path)
        np.testing.assert_array_equal(before[0], initial, err_msg=path)
        np.testing.assert_array_equal(before[1:], after[:-1], err_msg=path)


def interrupt_at(step: int):
    """A callback that raises KeyboardInterrupt (Ctrl-C) at the end of ``step``."""
    import keras

    class InterruptAt(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.seen = 0

        def on_train_batch_end(self, batch, logs=None):
            self.seen += 1
            if self.seen == step:
                raise KeyboardInterrupt

    return InterruptAt()


def iterations(model) -> int:
    from keras import ops

    return int(ops.convert_to_numpy(model.optimizer.iterations))


JIT = [pytest.param(False, id="eager"), pytest.param(True, id="jit")]


def skip_slow_torch_compile(backend_name: str, jit_compile: bool, case_name: str) -> None:
    if backend_name == "torch" and jit_compile and case_name != "linear-mse":
        pytest.skip("torch.compile takes 20 to 60 s per model on CPU; linear-mse covers it")


# --- every step against the update rule and the reference ---------------------------------


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


# --- what is recorded: every k-th step, chosen variables ------------------------------------------


def test_every_k_records_steps_1_plus_multiples_of_k_with_the_full_traces_values():
    import pandas as pd

    from kclf.callbacks import TrainingTrace
    from kclf.models import compile_model, linear_regression

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
    from kclf.callbacks import TrainingTrace

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
    from kclf.callbacks import TrainingTrace

    case = CASES["linear-mse"]
    with pytest.raises(ValueError, match="dense/kernal") as error:
        fit_with_trace(build(case, sgd()), X, case.y, trace=TrainingTrace(variables=["dense/kernal"]))
    assert "dense/kernel" in str(error.value) and "dense/bias" in str(error.value)


# --- the table -------------------------------------------------------------------------------------


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


def test_to_csv_round_trips(tmp_path):
    import pandas as pd

    case = CASES["dense-relu"]
    trace = fit_with_trace(build(case, sgd()), X, case.y, epochs=1)
    path = tmp_path / "trace.csv"

    trace.to_csv(path)

    pd.testing.assert_frame_equal(pd.read_csv(path), trace.to_frame(), check_dtype=False, rtol=1e-6)


# --- how a fit can end: divergence, Ctrl-C -----------------------------------------------------------


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
    from kclf.callbacks import TrainingTrace

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


# --- reuse ------------------------------------------------------------------------------------------


def test_trace_reused_in_a_second_fit_continues_the_record_with_a_fit_column():
    from kclf.callbacks import TrainingTrace

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


def kclf_leftovers(model, n_optimizer_variables: int) -> list[str]:
    """What a TrainingTrace would leave behind: extra optimizer variables, the loss recorder."""
    leftovers = [v.path for v in model.optimizer.variables[n_optimizer_variables:]]
    return leftovers + [m.name for m in model.metrics if m.name.startswith("kclf")]


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


# --- interrupted fits, reads during fit, weight decay ------------------------------------------------


def test_interrupted_is_true_as_soon_as_fit_raises():
    from kclf.callbacks import TrainingTrace

    case = CASES["linear-mse"]
    trace = TrainingTrace()
    with pytest.raises(KeyboardInterrupt):
        fit_with_trace(build(case, sgd()), X, case.y, trace=trace, callbacks=[interrupt_at(5)])

    assert trace.interrupted is True


def test_fit_without_the_trace_after_an_interrupted_fit_leaves_no_hooks():
    case = CASES["linear-mse"]
    model = build(case, sgd())
    model.fit(X, case.y, batch_size=BATCH_SIZE, verbose=0)
    n_variables = len(model.optimizer.variables)
    with pytest.raises(KeyboardInterrupt):
        fit_with_trace(model, X, case.y, callbacks=[interrupt_at(2)])

    model.fit(X, case.y, batch_size=BATCH_SIZE, verbose=0)

    assert kclf_leftovers(model, n_variables) == []


def test_reading_the_trace_during_fit_leaves_training_running():
    import keras

    case = CASES["linear-mse"]
    seen = []

    class ReadTrace(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.append(trace.steps_recorded)

    from kclf.callbacks import TrainingTrace

    trace = TrainingTrace()
    fit_with_trace(build(case, sgd()), X, case.y, trace=trace, callbacks=[ReadTrace()])

    assert seen == [3, 6]
    assert trace.steps_recorded == 6 and trace.interrupted is False


def test_weight_before_is_the_steps_starting_weight_with_weight_decay():
    case = CASES["linear-mse"]
    model = build(case, sgd(weight_decay=0.1))
    initial = model.get_weights()

    trace = fit_with_trace(model, X, case.y)

    assert_steps_chain(trace, initial)
    assert_matches_reference(trace, case.reference, X, case.y)


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
