"""kclf.trace.interrupt: Ctrl-C during a traced fit stops it at the end of the running step
with every recorded step readable (exit 130 from kclf run), and a Ctrl-C that lands in a
garbage-collection callback is never lost.

The slide cases and the checks are tests/_trace_cases.py's.
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

import pytest
from _trace_cases import (
    CASES,
    Y_REGRESSION,
    X,
    assert_matches_reference,
    build,
    fit_with_trace,
    interrupt_at,
    sgd,
)

pytestmark = pytest.mark.backend
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def ctrl_c_as_in_a_terminal():
    """Ctrl-C as a user's terminal delivers it. A test runner started in the background by a
    non-interactive shell (``make test &``, a CI script) inherits SIGINT ignored, and so would
    every child these tests start: Python then installs no KeyboardInterrupt at all, and
    there is nothing of kclf's to test. The disposition the run had comes back afterwards."""
    before = signal.getsignal(signal.SIGINT)
    if before in (signal.SIG_IGN, signal.SIG_DFL):
        signal.signal(signal.SIGINT, signal.default_int_handler)  # children start with SIG_DFL
    yield
    if before in (signal.SIG_IGN, signal.SIG_DFL):
        signal.signal(signal.SIGINT, before)


# --- Ctrl-C while Python runs a garbage-collection callback, in a fit -------------


def test_ctrl_c_inside_a_gc_callback_stops_the_fit_at_the_next_step():
    import gc
    import os
    import signal

    import keras

    from kclf.trace.callback import TrainingTrace

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

    case = CASES["linear-mse"]
    with pytest.raises(KeyboardInterrupt):  # another callback raised: the trace never ended
        fit_with_trace(build(case, sgd()), X, case.y, callbacks=[interrupt_at(2)])

    with pytest.raises(KeyboardInterrupt):
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(5)  # not reached: Ctrl-C outside a gc callback raises where Python is


# --- Ctrl-C during a traced fit: exit 130, every recorded step readable -----------


DELAYS = (0.0, 0.02, 0.05, 0.1, 0.2, 0.35, 0.6, 1.0)  # after the first step is recorded


def test_ctrl_c_at_any_moment_of_a_fit_keeps_every_step_and_the_models_weights(backend_name):
    """A child runs eight long traced fits of one model; Ctrl-C (SIGINT from outside) stops
    each at a different moment. Every step it ran is in the trace, the steps chain, and the
    model holds what the last one left: the next fit starts there."""
    child = subprocess.Popen(
        [sys.executable, str(ROOT / "tests" / "_trace_interrupt_child.py"), str(len(DELAYS))],
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
    from kclf.trace.callback import TrainingTrace

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


# --- Ctrl-C inside a garbage-collection callback, outside any fit: never lost -----


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
        from kclf.trace.callback import TrainingTrace

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
