"""``kclf bench``: traced / plain under data parallelism (JAX, ``keras.distribution.DataParallel``
over 4 virtual CPU devices), and the trace's ring memory, counted once per device.

The worker runs in a process of its own whose environment gives JAX the devices before it
starts (kclf.devices.environment); the cases are the timing worker's (kclf.bench.workers),
at batch 32 (8 rows a device), built, compiled and fit inside the distribution.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from kclf import devices, procs
from kclf.bench.numpy_line import MODELS
from kclf.errors import KclfError

DEVICES = 4  # Keras's own CI: JAX_NUM_CPU_DEVICES=4
BACKEND = "jax"
BATCH = 32


def cases(quick: bool) -> list[dict]:
    models = ["logistic"] if quick else list(MODELS)
    return [{"model": m, "batch_size": BATCH, "steps_per_execution": 1, "devices": DEVICES} for m in models]


def ring_memory(model_name: str) -> dict:
    """Bytes of the trace's rings (row ring, loss ring and counters) per device, on how many
    devices, and in all: each device holds a full copy (replicated, not sharded)."""
    import keras

    from kclf.bench.numpy_line import LEARNING_RATE, make_data
    from kclf.models import compile_model, dense_classifier, logistic_regression
    from kclf.trace.callback import TrainingTrace

    features, hidden, classes = MODELS[model_name]
    x, y = make_data(model_name, BATCH)
    with devices.data_parallel(DEVICES):
        if model_name == "logistic":
            model, task = logistic_regression(features, seed=0), "binary"
        else:
            model, task = dense_classifier(features, classes, hidden, seed=0), "sparse"
        compile_model(model, task, optimizer=keras.optimizers.SGD(LEARNING_RATE))
        trace = TrainingTrace(verbose=False)
        model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0, callbacks=[trace])
    hooks = trace._hooks
    rings = [hooks.rows, hooks.skips, hooks.loss.losses, hooks.loss.count]
    per_device, copies, total = 0, set(), 0
    for v in rings:
        shards = v.value.addressable_shards
        per_device += shards[0].data.nbytes
        copies.add(len(shards))
        total += sum(s.data.nbytes for s in shards)
    if len(copies) != 1:
        raise KclfError(f"the trace's rings live on {sorted(copies)} devices; expected each on all {DEVICES}")
    return {"per_device_bytes": per_device, "devices": copies.pop(), "total_bytes": total,
            "ring_steps": hooks.ring}


def run_dp_worker(steps: int, repeats: int, min_seconds: float, quick: bool, trace_from: str | None = None) -> dict:
    from kclf.backend import select_backend

    select_backend(BACKEND)
    devices.configure(DEVICES)
    from kclf.bench.workers import _keras_case, _versions

    results = []
    for case in cases(quick):
        with devices.data_parallel(DEVICES):
            result = _keras_case({k: case[k] for k in ("model", "batch_size", "steps_per_execution")},
                                 steps, repeats, min_seconds, f"{BACKEND}-dp{DEVICES}", trace_from)
        results.append({**result, "devices": DEVICES, "ring_memory": ring_memory(case["model"])})
    return {"backend": BACKEND, "devices": DEVICES, "versions": _versions(BACKEND), "cases": results}


def run_child(common: list[str], out: Path) -> dict:
    """Start the worker with the devices in its environment; its result."""
    with tempfile.TemporaryDirectory() as tmp:
        result_path = Path(tmp) / "result.json"
        cmd = procs.kclf_command("bench", "--dp-worker", BACKEND, *common, "--result", str(result_path))
        env = devices.environment(DEVICES, procs.python_env(KERAS_BACKEND=BACKEND))
        code, tail = procs.run_logged(cmd, out / "logs" / f"{BACKEND}-dp{DEVICES}.log", env=env,
                                      forward=lambda line: line.startswith("bench["))
        if code != 0 or not result_path.exists():
            raise KclfError(f"the {BACKEND} data-parallel worker failed (exit {code}); its last lines:\n{tail}")
        return json.loads(result_path.read_text())


def render(worker: dict | None) -> list[str]:
    """The markdown table's lines (none without the worker)."""
    if not worker:
        return []
    lines = [
        "",
        f"Data parallel: keras.distribution.DataParallel on {worker['devices']} virtual CPU devices "
        f"({worker['backend']}), batch {BATCH}; the trace's rings are replicated: one full copy per device.",
        "",
        "| backend | devices | model | batch | plain steps/s (min–max) | traced steps/s (min–max) "
        "| traced / plain | every step | ring KiB per device × devices = total |",
        "|---|---:|---|---:|---:|---:|---:|---|---:|",
    ]

    def rate(s):
        return f"{s['median']:,.0f} ({s['min']:,.0f}–{s['max']:,.0f})"

    for c in worker["cases"]:
        m = c["ring_memory"]
        lines.append(
            f"| {worker['backend']} | {c['devices']} | {c['model']} | {c['batch_size']} | "
            f"{rate(c['plain']['steps_per_s'])} | {rate(c['traced']['steps_per_s'])} | "
            f"{c['ratio']['median']:.3f} | {'✓' if c['every_step_recorded'] else '✗'} | "
            f"{m['per_device_bytes'] / 1024:.1f} × {m['devices']} = {m['total_bytes'] / 1024:.1f} |")
    return lines
