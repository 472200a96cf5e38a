"""TrainingTrace, issue 17: a correct record, or one line naming what is wrong and what is
expected, before the step changes anything; and Ctrl-C that ends with every recorded step
readable, never lost.

Each section names the issue's item. The helpers and the slide cases are
tests/test_callbacks.py's.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from test_callbacks import (
    BATCH_SIZE,
    CASES,
    Y_REGRESSION,
    X,
    assert_matches_reference,
    assert_sgd_update,
    assert_steps_chain,
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


# --- (1) a custom train_step written the way the Keras guides show ----------------------------


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
    from kclf.callbacks import TrainingTrace
    from kclf.errors import KclfError

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


# --- (2) what the step left in the weights: an EMA overwrite, a constraint -------------------------


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


def test_a_float_variable_without_gradient_is_refused_in_one_line_or_recorded_as_applied(backend_name):
    from kclf.callbacks import TrainingTrace
    from kclf.errors import KclfError

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


# --- (7) Ctrl-C during a traced fit: exit 130, every recorded step readable -------------------------

DELAYS = (0.0, 0.02, 0.05, 0.1, 0.2, 0.35, 0.6, 1.0)  # after the first step is recorded


def test_ctrl_c_at_any_moment_of_a_fit_keeps_every_step_and_the_models_weights(backend_name):
    """A child runs eight long traced fits of one model; Ctrl-C (SIGINT from outside) stops
    each at a different moment. Every step it ran is in the trace, the steps chain, and the
    model holds what the last one left: the next fit starts there."""
    child = subprocess.Popen(
        [sys.executable, str(ROOT / "tests" / "_ctrl_c_child.py"), str(len(DELAYS))],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=dict(os.environ, KERAS_BACKEND=backend_name, PYTHONPATH=str(ROOT)), cwd=ROOT)
    found = []
    watchdog = threading.Timer(240, child.kill)  # a lost Ctrl-C would leave the fit running
    watchdog.start()
    try:
        for delay in DELAYS:
            line = child.stdout.readline()
            assert line.strip() == "recording", line + child.stderr.read()
            time.sleep(delay)
            child.send_signal(signal.SIGINT)
            found.append(json.loads(child.stdout.readline()))
        assert child.wait(timeout=120) == 0, child.stderr.read()
    finally:
        watchdog.cancel()
        child.kill()
    for delay, result in zip(DELAYS, found):
        assert "error" not in result, (delay, result)
        assert result["interrupted"] and result["chain"] and result["starts"] and result["model_kept"], (delay, result)
        assert result["steps"] == result["iterations"] >= 1, (delay, result)
        assert result["rows"] == result["steps"] * result["elements"], (delay, result)


LONG_FIT = """
    import keras
    import numpy as np
    from kclf.callbacks import TrainingTrace

    NAME = "long_fit"
    POSITION = 1
    TOLERANCE = "deterministic"
    DESCRIPTION = "a short traced fit, then a long one"

    class SayRecording(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.said = False

        def on_train_batch_end(self, batch, logs=None):
            if not self.said:
                self.said = True
                print("recording", flush=True)

    def run(ctx):
        x = np.random.default_rng(0).normal(size=(1024, 3)).astype("float32")
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
        model.compile(keras.optimizers.SGD(0.01), "mse")
        first = TrainingTrace()
        ctx.attach(first, "first")
        model.fit(x[:64], x[:64, :1], batch_size=8, epochs=2, verbose=0, callbacks=[first])
        long = TrainingTrace()  # 256 steps an epoch: Ctrl-C mostly lands inside one
        ctx.attach(long, "long")
        model.fit(x, x[:, :1], batch_size=4, epochs=100_000, verbose=0, callbacks=[long, SayRecording()])
        return {"finished": True}
    """


def test_kclf_run_interrupted_in_a_traced_fit_exits_130_and_writes_every_fits_steps(backend_name, tmp_path):
    import pandas as pd

    folder = tmp_path / "experiments"
    folder.mkdir()
    (folder / "long_fit.py").write_text(textwrap.dedent(LONG_FIT))
    out = tmp_path / "out"
    child = subprocess.Popen(
        [sys.executable, "-m", "kclf", "run", "long_fit", "--backend", backend_name, "--out", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
        env=dict(os.environ, KCLF_EXPERIMENTS=str(folder), PYTHONPATH=str(ROOT)))
    watchdog = threading.Timer(240, child.kill)  # a lost Ctrl-C would leave the fit running
    watchdog.start()
    try:
        for line in child.stdout:
            if line.strip() == "recording":
                break
        time.sleep(0.3)
        child.send_signal(signal.SIGINT)
        _, stderr = child.communicate()
    finally:
        watchdog.cancel()
        child.kill()

    assert child.returncode == 130, stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "interrupted"
    assert summary["traces"]["first"]["steps"] == 16 and not summary["traces"]["first"]["interrupted"]
    assert summary["traces"]["long"]["steps"] >= 1 and summary["traces"]["long"]["interrupted"]
    trace = pd.read_csv(out / "trace.csv")
    steps = trace.groupby("run").step.nunique()
    assert steps["first"] == 16 and steps["long"] == summary["traces"]["long"]["steps"]


# --- (8) Ctrl-C inside a garbage-collection callback, outside any fit: never lost -------------------

GC_CTRL_C = """
    import gc
    import os
    import signal
    import time

    NAME = "gc_ctrl_c"
    POSITION = 1
    TOLERANCE = "deterministic"
    DESCRIPTION = "Ctrl-C lands in a garbage-collection callback at a chosen moment"

    def run(ctx):
        import keras
        import numpy as np
        from kclf.callbacks import TrainingTrace

        armed = [False]

        def ctrl_c_in_gc(phase, info):
            if phase == "start" and armed[0]:
                armed[0] = False
                os.kill(os.getpid(), signal.SIGINT)
                for _ in range(10_000):  # Python runs the signal handler here, in the callback
                    pass

        def moment(name):
            if name == os.environ["KCLF_TEST_MOMENT"]:
                armed[0] = True
                gc.collect()

        class Moments(keras.callbacks.Callback):
            def on_train_batch_end(self, batch, logs=None):
                moment(f"batch {batch}")

            def on_epoch_end(self, epoch, logs=None):
                moment(f"epoch {epoch} end")

        gc.callbacks.append(ctrl_c_in_gc)
        try:
            moment("start")
            x = np.linspace(0.0, 1.0, 64, dtype="float32").reshape(64, 1)
            model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
            moment("built")
            model.compile(keras.optimizers.SGD(0.01), "mse")
            trace = TrainingTrace()
            ctx.attach(trace)
            moment("compiled")
            model.fit(x, x, batch_size=1, epochs=2, verbose=0, callbacks=[trace, Moments()])
            moment("fitted")
            ctx.print(f"{trace.steps_recorded} steps")
            moment("printed")
            time.sleep(0.5)  # where a Ctrl-C kept in the last moment is raised
        finally:
            gc.callbacks.remove(ctrl_c_in_gc)
        return {"steps": trace.steps_recorded}
    """
MOMENTS = ("start", "built", "compiled", "batch 0", "batch 40", "epoch 0 end", "fitted", "printed")


def test_ctrl_c_in_a_gc_callback_at_any_moment_of_kclf_run_exits_130(backend_name, tmp_path, monkeypatch, capsys):
    """kclf run, in this process: Ctrl-C lands in a gc callback before, during or after the
    traced fit; each time the run ends with 130, none runs to its end as if nothing happened,
    and a Ctrl-C in the fit keeps its steps."""
    from kclf import cli

    current = signal.getsignal(signal.SIGINT)
    if current is not signal.default_int_handler and getattr(current, "__module__", None) != "kclf.trace.interrupt":
        pytest.skip("this process handles Ctrl-C itself")
    # The backend's one-time set-up first: a process that Ctrl-C stopped in the middle of it
    # could not run again, and a kclf run is one process.
    fit_with_trace(build(CASES["linear-mse"], sgd()), X, Y_REGRESSION)
    folder = tmp_path / "experiments"
    folder.mkdir()
    (folder / "gc_ctrl_c.py").write_text(textwrap.dedent(GC_CTRL_C))
    monkeypatch.setenv("KCLF_EXPERIMENTS", str(folder))
    ended = {}
    for i, name in enumerate(MOMENTS):
        monkeypatch.setenv("KCLF_TEST_MOMENT", name)
        out = tmp_path / f"out-{i}"
        code = cli.main(["run", "gc_ctrl_c", "--backend", backend_name, "--out", str(out)])
        summary = json.loads((out / "summary.json").read_text())
        ended[name] = (code, summary["status"], summary["traces"].get("main", {}).get("steps"))
    capsys.readouterr()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert all(code == 130 and status == "interrupted" for code, status, _ in ended.values()), ended
    # In the fit it stops at the end of the step where the Ctrl-C came (or the next one).
    assert ended["batch 0"][2] in (1, 2) and ended["batch 40"][2] in (41, 42), ended
    assert ended["epoch 0 end"][2] in (64, 65) and ended["fitted"][2] == ended["printed"][2] == 128, ended
