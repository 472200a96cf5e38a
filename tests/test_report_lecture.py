"""report.html as the lecture: the slides' numbers per backend, verdicts in words, the
step-through's data, figures readable where they are shown, the first time-left estimate.

The runs are written here as kclf run writes them (summary.json, trace.csv): no backend runs.
"""

import html
import json
import math
import re

import numpy as np
import pandas as pd
import pytest

from kclf import plots, slides
from kclf.compare import costs, plain, report, schedule, stepper
from kclf.compare.runs import RunOutcome, Target
from kclf.compare.schedule import Estimate
from kclf.compare.tolerances import DETERMINISTIC, LECTURE_START
from kclf.compare.verdict import build

BACKENDS = ["torch", "jax", "tensorflow"]
SGD = {"theta": [[0.0, 0.0], [0.5, 0.099999994], [2.7319999, 0.348]],
       "gradients": [[-50.0, -10.0], [-223.2, -24.8]], "losses": [25.0, 153.76], "learning_rate": 0.01}


def sgd_trace(theta=SGD["theta"], gradients=SGD["gradients"], losses=SGD["losses"]) -> pd.DataFrame:
    rows = []
    for step in (1, 2):
        for i, variable in enumerate(("dense/kernel", "dense/bias")):
            rows.append(["main", step, 0, step - 1, variable, "0", theta[step - 1][i],
                         gradients[step - 1][i], theta[step][i], losses[step - 1], 0.01])
    return pd.DataFrame(rows, columns=["run", "step", "epoch", "batch", "variable", "index",
                                       "weight_before", "gradient", "weight_after", "loss",
                                       "learning_rate"])


def write_run(tmp_path, name, backend, results, trace=None, figures=(), edition="2026"):
    folder = tmp_path / "runs" / name / backend
    folder.mkdir(parents=True)
    summary = {"experiment": name, "backend": backend, "versions": {}, "status": "ok",
               "error": None, "settings": {"start": "lecture", "edition": edition, "data": None},
               "results": results, "figures": list(figures), "timing": {"experiment_s": 0.5},
               "traces": {"main": {"steps": 2, "timing": {}}} if trace is not None else {}}
    (folder / "summary.json").write_text(json.dumps(summary))
    if trace is not None:
        trace.to_csv(folder / "trace.csv", index=False)
    for figure in figures:
        plt_figure(folder / figure)
    return RunOutcome(name, backend, str(folder), status="ok", returncode=0, wall_s=1.0,
                      summary=summary)


def plt_figure(path):
    fig, ax = plots.figure("a slide's figure")
    ax.plot([0, 1], [0, 1], label="a line")
    ax.legend()
    fig.savefig(path)


def comparison(tmp_path, runs: dict, tolerance=DETERMINISTIC):
    """{name: {backend: outcome}} → the Comparison kclf compare would build."""
    outcomes = {(name, b): o for name, by in runs.items() for b, o in by.items()}
    return build([Target(n) for n in runs], BACKENDS, {}, outcomes,
                 {n: tolerance for n in runs})


def written(tmp_path, data) -> tuple[str, str]:
    """(report.html with its entities read back, comparison.md)."""
    page = report.write(tmp_path, data)
    return html.unescape(page.read_text()), (tmp_path / "comparison.md").read_text()


def test_the_report_leads_with_the_slides_numbers_per_backend(tmp_path):
    runs = {"sgd": {b: write_run(tmp_path, "sgd", b, SGD, sgd_trace(), ["sgd_path.png"])
                    for b in BACKENDS}}
    page, markdown = written(tmp_path, comparison(tmp_path, runs))
    order = [page.index(s) for s in ("id='overview'", "id='the-lecture-slide-by-slide'",
                                     "id='across-backends-diagnostics'")]
    assert order == sorted(order)
    overview = page[order[0]:order[1]]
    assert overview.count("5 of 5 ✓") == 3  # one per backend
    lecture_part = page[order[1]:order[2]]
    assert "Stochastic gradient descent (SGD)" in lecture_part
    assert lecture_part.count("[2.732, 0.348] ✓") == 3 and "θ2 = θ1 − 0.01 ∇Loss_i" in lecture_part
    assert "id='step-sgd'" in lecture_part and "sgd_path.png: drawn from torch's run" in lecture_part
    assert "agree: every step's weights, gradients and loss and every result" in lecture_part
    assert "| lecture | torch | jax | tensorflow |" in markdown


def test_a_number_off_the_slide_says_how_far_and_the_backends_differ(tmp_path):
    off = {**SGD, "theta": [[0.0, 0.0], [0.5, 0.1], [2.8, 0.348]]}
    runs = {"sgd": {b: write_run(tmp_path, "sgd", b, off if b == "jax" else SGD, sgd_trace())
                    for b in BACKENDS}}
    data = comparison(tmp_path, runs)
    page, _ = written(tmp_path, data)
    assert "[2.8, 0.348] ✗ (0.025 off)" in page
    assert "4 of 5 ✗" in page
    assert plain.sentence(data.experiments["sgd"]).startswith(
        "differ: jax's theta/2/0 is 2.8 where torch's is 2.7319999, beyond rtol 1e-05")


def test_slides_lookup_reads_keys_with_slashes_and_list_indices():
    results = {"tables": [{"dL/dw": [-1.977, -12.015, -30.09]}]}
    assert slides.lookup(results, "tables/0/dL/dw/1") == -12.015
    assert slides.lookup(results, "tables/1/dL/dw") is None
    rows = slides.check("bgd", {"tables": [{"dL/dw": [-1.977, -12.015, -30.09]}]})
    (dldw,) = [r for r in rows if r["path"] == "tables/0/dL/dw"]
    assert dldw["agrees"]  # rounded to 2 decimals, as df.round(2) prints it
    assert not [r for r in rows if r["path"] == "theta/2"][0]["agrees"]  # not in these results


def stroke_results(synthetic: bool, value: float = 0.5) -> dict:
    rows = [{"path": "parameters", "cell": "model.summary(): total parameters", "lecture": 1217,
             "value": 1217, "agrees": True, "max_rel_diff": 0.0},
            {"path": "plain/evaluate_val", "cell": "model.evaluate(X_val, y_val)",
             "lecture": [0.149], "value": [value], "agrees": False, "max_rel_diff": 2.4}]
    return {"values": {"synthetic": synthetic, "parameters": 1217, "plain": {"evaluate_val": [value]}},
            "lecture": rows, "lecture_agree": 1, "lecture_total": 2}


def test_synthetic_data_is_named_in_the_overview_the_heading_and_the_figure_titles(tmp_path, monkeypatch):
    notes = []
    monkeypatch.setattr(report, "make_figures", lambda exp, note="": notes.append(note) or [])
    runs = {"stroke": {b: write_run(tmp_path, "stroke", b, stroke_results(True), sgd_trace())
                       for b in BACKENDS}}
    data = comparison(tmp_path, runs, LECTURE_START)
    page, _ = written(tmp_path, data)
    top = page[:page.index("id='overview'")]
    assert "stroke: synthetic data. No Kaggle file was given" in top
    assert "healthcare-dataset-stroke-data.csv" in top
    assert "Demonstration: binary classification (stroke prediction) (synthetic data)" in page
    assert "<h3 id='demonstration-binary-classification-stroke-prediction-synthetic-data'>" in page
    assert notes == [" (synthetic data)"]
    section = page[page.index("<h3 id='demonstration-binary"):page.index("id='across-backends")]
    assert "0.5" in section and "✗" not in section  # shown, not judged against the lecture
    assert plain.sentence(data.experiments["stroke"]).startswith("agree on the synthetic stand-in")


def test_data_parallel_on_one_device_is_one_device_and_torch_not_supported(tmp_path, monkeypatch):
    monkeypatch.setattr(plain, "_torch_parallel", lambda: False)
    results = {"devices": 1, "iris classifier": {"steps": 21, "final_loss": 0.438}}
    runs = {"data-parallel": {b: write_run(tmp_path, "data-parallel", b, results) for b in BACKENDS}}
    data = comparison(tmp_path, runs)
    exp = data.experiments["data-parallel"]
    assert exp.verdict == "agree" and plain.label(exp) == "one device"
    assert plain.run_cell(exp, "torch").startswith("not supported: ran on one device")
    assert plain.run_cell(exp, "jax").startswith("one device")
    assert "torch: not supported" in plain.sentence(exp)
    page, _ = written(tmp_path, data)
    assert "agree" not in re.sub(r"<[^>]+>", " ", page).split("Across backends:")[1].split(".")[0]


def test_shown_not_judged_rows_are_not_red_and_largest_names_a_judged_number(tmp_path):
    drift = sgd_trace()
    drift.loc[drift["step"] == 2, "weight_after"] += 1e-3  # beyond float32 tolerance: informational
    by = {}
    for backend in BACKENDS:
        results = stroke_results(False, 0.149 if backend == "torch" else 0.1490001)
        results["lecture_agree"] = 2 if backend == "torch" else 0  # unjudged, far apart
        by[backend] = write_run(tmp_path, "iris", backend, results,
                                drift if backend == "jax" else sgd_trace())
    data = comparison(tmp_path, {"iris": by}, LECTURE_START)
    exp = data.experiments["iris"]
    assert exp.verdict == "agree"
    page, _ = written(tmp_path, data)
    assert "beyond (shown, not judged)" in page and 'class="NO"' not in page
    assert "largest: values/plain/evaluate_val/0" in page and "largest: lecture_agree" not in page
    sentence = plain.sentence(exp)
    assert "every number the lecture prints within rtol 3e-05" in sentence
    assert "the weights drift apart in float32 from step 2 (fit 'main', epoch 1) on jax" in sentence


def test_the_stepper_carries_each_backends_trace_and_its_curve(tmp_path):
    frames = {b: sgd_trace() for b in BACKENDS}
    frames["jax"].loc[frames["jax"]["step"] == 2, "weight_after"] = np.nan
    found = stepper.build("sgd", frames, "2026", BACKENDS)
    (run,) = found.runs
    assert found.kind == "contour" and run["steps"] == [1, 2]
    assert [v["name"] for v in run["variables"]] == ["dense/kernel", "dense/bias"]
    assert run["data"]["torch"]["variables"][0]["after"] == [0.5, 2.7319999]
    assert run["data"]["jax"]["variables"][0]["after"] == [0.5, "nan"]  # kclf.jsonio's rule
    page = stepper.render(found)
    assert "id='step-sgd'" in page and "</script>" not in page.split("stepper-data'>")[1][:-15]
    assert "stepper.js" not in page and "function setup" in stepper.script()

    theta = pd.DataFrame({"run": "plateau (start 2)", "step": [1, 2], "epoch": 0, "batch": [0, 1],
                          "variable": "x/theta", "index": "0", "weight_before": [2.0, 2.0],
                          "gradient": [0.0, 0.0], "weight_after": [2.0, 2.0], "loss": [1.5, 1.5],
                          "learning_rate": 0.3})
    curve = stepper.build("gradient-descent-pitfalls", {"torch": theta}, "2026")
    assert curve.kind == "curve" and curve.runs[0]["data"]["torch"]["variables"][0]["f_before"] == [1.5, 1.5]
    assert stepper.build("softmax-forward", {"torch": theta}) is None  # not a slide's problem


def test_figures_are_readable_where_the_report_shows_them():
    import matplotlib.pyplot as plt
    from matplotlib.text import Text

    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    for ax in axes:
        ax.plot(range(1, 3), [1, 2], label="a line")
        ax.legend(loc="center", fontsize=5)
        ax.set_xlabel("step")
        ax.tick_params(labelsize=5)
    plots.for_projector(fig, dpi=110)
    fig.canvas.draw()
    smallest = plots.min_fontsize(12, 110)
    assert smallest * 110 / 72 * min(1, plots.REPORT_WIDTH_PX / (12 * 110)) >= 8 * 96 / 72 - 1e-9
    texts = [t for t in fig.findobj(Text) if t.get_text()]
    assert min(t.get_fontsize() for t in texts) >= smallest - 1e-9
    for ax in axes:
        assert not plots._inside(ax.get_legend(), ax)  # moved below the data
        ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
        assert all(float(t).is_integer() for t in ticks)  # no step 1.2 on a 2-step plot
    plt.close(fig)


def test_compare_figures_fit_the_report_at_their_size(tmp_path):
    import struct

    from kclf.compare import figures

    frames = {b: pd.concat([sgd_trace().assign(run=f"run {i}") for i in range(6)]) for b in BACKENDS}
    runs = {"sgd": {b: write_run(tmp_path, "sgd", b, SGD, frames[b]) for b in BACKENDS}}
    exp = comparison(tmp_path, runs).experiments["sgd"]
    made = figures.make_figures(exp)
    for figure in made:
        width = struct.unpack(">I", figure.png[16:20])[0]
        assert width <= plots.REPORT_WIDTH_PX  # shown 1:1, so 9-pt text at 100 dpi is 12.5 px
    assert figures.SMALL * figures.DPI / 72 >= 8 * 96 / 72
    assert "the first 4 of 12 weight series" in made[1].caption


def test_the_first_estimate_comes_from_the_shipped_costs(tmp_path):
    keys = [("stroke", b) for b in BACKENDS] + [("sgd", b) for b in BACKENDS]
    estimate = Estimate(tmp_path, keys)
    queue = [[("stroke", "torch")], [("stroke", "jax")], [("stroke", "tensorflow")],
             [("sgd", "torch")], [("sgd", "jax")], [("sgd", "tensorflow")]]
    left = estimate.left(queue, {}, jobs=2)
    # torch's stroke alone on one process; the rest on the other, start-up once per batch
    assert left == pytest.approx(max(830.0, 190 + 400 + sum(
        costs.cost("sgd", b) + costs.startup(b) for b in BACKENDS)))
    # the default timeout follows the cost: torch's 2026 stroke demo gets 4 x 830 s, not 900 s
    assert estimate.expected(("stroke", "torch")) == 830.0 and schedule.TIMEOUT_FACTOR * 830.0 > 900
    assert Estimate(tmp_path, [("my-script", "jax")]).left([[("my-script", "jax")]], {}, 2) is None
    assert math.isinf(estimate.job([("my-script", "jax")]))


def test_no_tensorflow_chatter_in_a_torch_process():
    import subprocess
    import sys

    code = ("from kclf.backend import select_backend; select_backend('torch'); import keras; "
            "keras.utils.set_random_seed(1)")  # imports TensorFlow, when installed, to seed it
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "oneDNN" not in done.stderr and "cpu_feature_guard" not in done.stderr
    assert "absl::InitializeLog" not in done.stderr


def test_each_edition_is_checked_against_its_own_slides():
    pitfalls_2025 = {"runs": {name: {"start": start, "final_x": end, "outcome": name}
                              for name, start, end in (("local minimum", 50.0, 55.86),
                                                       ("global minimum", 90.0, 86.97),
                                                       ("plateau", 3.0, 2.5))},
                     "too_small": {"fraction_of_the_way": 0.3}, "too_large": {"eta_times_curvature": 2.45}}
    rows = slides.check("gradient-descent-pitfalls", pitfalls_2025, "2025")
    assert [r["agrees"] for r in rows] == [True] * 5
    assert rows[0]["value"] == "x0 = 50.0 → 55.86: local minimum"
    assert not any(r["agrees"] for r in slides.check("gradient-descent-pitfalls", pitfalls_2025, "2026"))
    noise_2025 = {"seeds": list(range(24)), "full_batch": {"escaped": False},
                  "minibatch": {"escaped_count": 7}}
    (row,) = slides.check("minibatch-noise", noise_2025, "2025")
    assert row["agrees"] and row["value"] == "full batch stays; mini-batch: 7 of 24 seeds escape"
    assert slides.entries("iris") == () and slides.entries("data-parallel") == ()
