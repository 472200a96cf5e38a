"""kclf bench: the output files and table it writes, and the NumPy reference line's maths.

No timing is asserted here: the benchmark measures, the tests check what it writes.
These tests do not import keras; the quick bench runs its workers in subprocesses.
"""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from kclf import bench
from kclf.backend import is_installed
from kclf.bench import cli as bench_cli
from kclf.bench import numpy_line, report, workers


def test_importing_bench_does_not_import_keras():
    code = "import sys, kclf.bench, kclf.cli; kclf.cli.build_parser(); print('keras' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("model", ["logistic", "iris"])
def test_the_numpy_line_steps_down_the_loss_gradient(model):
    """Its gradient against central differences of its own loss (float64, not
    kclf.reference's gradient formulas), and its update θ ← θ − η ∇L."""
    x, y = numpy_line.make_data(model, 8)
    net = numpy_line.NumpySGD(model)
    net.theta = net.theta.astype("float64")  # the views follow: params and grads in float64
    net.grad = np.zeros_like(net.theta)
    net.params, net.grads, start = [], [], 0
    for p in numpy_line.NumpySGD(model).params:
        net.params.append(net.theta[start:start + p.size].reshape(p.shape))
        net.grads.append(net.grad[start:start + p.size].reshape(p.shape))
        start += p.size
    before = net.theta.copy()

    def loss_at(theta):
        net.theta[...] = theta
        loss = net.step(x, y)
        net.theta[...] = theta
        return loss

    eps = 1e-6
    numeric = np.array([(loss_at(before + eps * e) - loss_at(before - eps * e)) / (2 * eps)
                        for e in np.eye(before.size)])
    net.theta[...] = before
    net.step(x, y)
    np.testing.assert_allclose(net.grad, numeric, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(net.theta, before - numpy_line.LEARNING_RATE * net.grad, rtol=1e-12)


@pytest.mark.parametrize("history", [False, True])
def test_numpy_fit_cycles_through_the_batches(history):
    x, y = numpy_line.make_data("iris", 10)
    net = numpy_line.NumpySGD("iris")
    start = net.theta.copy()
    assert numpy_line.numpy_fit(net, x, y, 2, 7, history=history) > 0
    assert not np.allclose(net.theta, start)


def _fake_case(model, spe, plain, traced, recorded=True):
    runs = {
        "plain": [{"steps_per_s": v, "startup_s": 0.0} for v in plain],
        "traced": [{"steps_per_s": v, "startup_s": 0.3} for v in traced],
    }
    return {"model": model, "batch_size": 1, "steps_per_execution": spe, "jit_compile": True,
            "every_step_recorded": recorded, "repeats": runs, **workers._paired(runs["plain"], runs["traced"])}


def test_assemble_and_table_mark_each_target():
    workers = [
        {"backend": "jax", "versions": {"keras": "3", "jax": "0"}, "cases": [
            _fake_case("logistic", 1, [100, 110, 90], [96, 106, 87]),   # ratios ~0.96: met
            _fake_case("iris", 1, [100, 100, 100], [50, 60, 70]),       # 0.60: missed
            _fake_case("iris", 8, [100, 100, 100], [95, 95, 95], recorded=False),  # fast but incomplete
        ]},
        {"backend": "numpy", "versions": {"numpy": "2"}, "cases": [_fake_case("iris", 1, [10], [9])]},
    ]
    memory = [
        {"backend": "jax", "traced": True, "steps": 1000, "params": 3, "peak_growth_mib": 1.0,
         "steps_recorded": 1000},
        {"backend": "jax", "traced": False, "steps": 1000, "params": 3, "peak_growth_mib": 0.5},
    ]
    machine = {"cpu": "test cpu", "cores": 2, "cores_available": 2, "memory_gib": 1.0,
               "loadavg_start": [0.0, 0.0, 0.0]}
    payload = report.assemble(workers, memory, machine, {"repeats": 3})
    met = [c["meets_target"] for c in payload["timing"][0]["cases"]]
    assert met == [True, False, False]
    assert payload["all_targets_met"] is False
    assert payload["memory"][0]["raw_float32_mib"] == pytest.approx(1000 * 11 * 4 / 2**20)
    assert payload["memory"][0]["within_limit"] is True

    table = report.render_table(payload).splitlines()
    assert table[0].startswith("| backend | model | batch | spe |") and "traced / plain" in table[0]
    rows = [line for line in table if line.startswith("| jax |") or line.startswith("| numpy |")]
    assert len(rows) == 5  # three cases, one reference line, one memory row
    assert "0.96" in rows[0] and "✓" in rows[0]
    assert "0.600" in rows[1] and "✗" in rows[1]
    assert "reference" in rows[3]
    assert "test cpu" in table[-1]


def test_unknown_backend_is_a_usage_error(kclf_cmd):
    out = subprocess.run([*kclf_cmd, "bench", "--backends", "jax,nope"], capture_output=True, text=True)
    assert out.returncode == 2
    assert "unknown backend 'nope'" in out.stderr
    assert "Traceback" not in out.stderr


@pytest.mark.skipif(not is_installed("jax"), reason="jax is not installed")
def test_quick_bench_writes_json_and_table(kclf_cmd, tmp_path):
    out = subprocess.run(
        [*kclf_cmd, "bench", "--quick", "--backends", "jax", "--repeats", "1", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=240,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "bench[jax]" in out.stderr

    payload = json.loads((tmp_path / "bench.json").read_text())
    assert payload["machine"]["cores"] >= 1 and payload["machine"]["cpu"]
    assert set(payload["versions"]) == {"jax", "numpy"} and payload["versions"]["jax"]["keras"]
    backends = [w["backend"] for w in payload["timing"]]
    assert backends == ["jax", "numpy"]
    jax_cases = payload["timing"][0]["cases"]
    assert sorted(c["steps_per_execution"] for c in jax_cases) == [1, workers.SPE_MULTI]
    for case in jax_cases:
        assert case["every_step_recorded"] is True
        assert len(case["repeats"]["plain"]) == len(case["repeats"]["traced"]) == 1
        for kind in ("plain", "traced"):
            figures = case[kind]["steps_per_s"]
            assert figures["min"] <= figures["median"] <= figures["max"]
        assert case["ratio"]["median"] > 0 and isinstance(case["meets_target"], bool)
    (memory,) = payload["memory"]
    assert memory["steps_recorded"] == memory["steps"] == payload["settings"]["memory_steps"]

    (fits,) = payload["fits"]
    assert [r["steps"] for r in fits["whole_fit"]] == [20, 300] and fits["second_fit"]["ratio"] > 0
    assert payload["demos"] == []  # --quick leaves the demos out

    table = (tmp_path / "bench.md").read_text()
    assert table in out.stdout
    assert table.startswith("| backend | fit (compile included) |")
    assert table.count("| jax |") == 7  # three fits, two cases, the memory row, data parallel

    # Data parallelism: DataParallel over 4 JAX CPU devices, its own process.
    dp = payload["data_parallel"]
    assert dp["devices"] == 4 and [c["model"] for c in dp["cases"]] == ["logistic"]
    for case in dp["cases"]:
        assert case["every_step_recorded"] is True and case["ratio"]["median"] > 0
        memory = case["ring_memory"]
        assert memory["devices"] == 4 and memory["total_bytes"] == 4 * memory["per_device_bytes"] > 0
    assert "| jax | 4 | logistic | 32 |" in table and "one full copy per device" in table
    assert "| numpy |" in table and "Machine:" in table


def _fits(backend, whole, second):
    rows = [{"steps": n, "plain_s": 1.0, "traced_s": 1.0 / r, "ratio": r, "ratio_min": r, "ratio_max": r,
             "repeats": 1} for n, r in whole]
    return {"backend": backend, "whole_fit": rows,
            "second_fit": {"steps": 300, "plain_s": 0.1, "traced_s": 0.1 / second, "ratio": second,
                           "ratio_min": second, "ratio_max": second, "repeats": 1}}


def test_whole_fits_second_fits_and_demos_come_first_with_their_targets():
    fits = [_fits("jax", [(20, 0.5), (300, 0.96), (3000, 0.94)], 0.99)]
    demos = [{"backend": "jax", "demo": "iris", "kclf_run_s": 16.0, "plain_cells_s": 15.0, "ok": True}]
    machine = {"cpu": "test cpu", "cores": 2, "cores_available": 2, "memory_gib": 1.0,
               "loadavg_start": [0.0, 0.0, 0.0]}
    payload = report.assemble([], [], machine, {}, fits, demos)

    whole = payload["fits"][0]["whole_fit"]
    assert [r["target"] for r in whole] == [None, report.TARGET_FIT, report.TARGET_FIT]
    assert [r["meets_target"] for r in whole] == [None, True, False]  # 20 steps: compile-bound, no target
    assert payload["fits"][0]["second_fit"]["meets_target"] is True
    assert payload["all_targets_met"] is False

    table = report.render_table(payload).splitlines()
    assert table[0].startswith("| backend | fit (compile included) |")
    assert "| jax | whole fit, fresh model, 3,000 steps | 1.00 | 1.06 | 0.940" in table[4]
    assert "✗" in table[4] and "| — |" in table[2]
    assert table[5].startswith("| jax | second fit, new trace, 300 steps |") and "✓" in table[5]
    demo = next(line for line in table if line.startswith("| jax | iris |"))
    assert "| 16.0 | 15.0 | +1.0 |" in demo


# -- arguments are checked before any work --------------------------------------------
@pytest.mark.parametrize("option, value, wanted", [
    ("--repeats", "abc", "an integer >= 1"),
    ("--repeats", "0", "an integer >= 1"),
    ("--steps", "2.5", "an integer >= 1"),
    ("--min-seconds", "nan", "a number >= 0"),
    ("--min-seconds", "inf", "a number >= 0"),
    ("--min-seconds", "-1", "a number >= 0"),
    ("--memory-steps", "-5", "an integer >= 0"),
])
def test_a_bad_number_is_one_line_before_any_work(kclf_cmd, tmp_path, option, value, wanted):
    out = subprocess.run([*kclf_cmd, "bench", option, value, "--out", str(tmp_path / "o")],
                         capture_output=True, text=True)
    assert out.returncode == 2
    assert out.stderr == (f"kclf: error: argument {option}: got {value!r}; expected {wanted} "
                          "(see kclf --help)\n")
    assert not (tmp_path / "o").exists()


def test_a_bad_out_or_trace_from_is_one_line_before_any_worker(kclf_cmd, tmp_path):
    a_file = tmp_path / "a_file"
    a_file.write_text("mine\n")
    out = subprocess.run([*kclf_cmd, "bench", "--quick", "--out", str(a_file)],
                         capture_output=True, text=True)
    assert out.returncode == 2
    assert out.stderr == (f"kclf: error: --out {a_file} is a file, not a folder; expected a folder to "
                          "write into\n")
    assert a_file.read_text() == "mine\n"

    no_trace = tmp_path / "callbacks.py"
    no_trace.write_text("class Trace:\n    pass\n")
    for path, problem in ((tmp_path / "absent.py", "cannot be read (No such file or directory)"),
                          (no_trace, "defines no TrainingTrace")):
        out = subprocess.run([*kclf_cmd, "bench", "--quick", "--trace-from", str(path),
                              "--out", str(tmp_path / "o")], capture_output=True, text=True)
        assert out.returncode == 2 and out.stderr.startswith(f"kclf: error: --trace-from {path}: {problem}")
        assert out.stderr.count("\n") == 1 and "bench[" not in out.stderr
    bench_cli._check_trace_from(Path(bench.__file__).parent.parent / "callbacks.py")  # kclf's own passes
