"""report.html in a real browser: the step-through shows each backend's trace at the chosen step.

One headless Chromium (Debian's ``chromium``, or KCLF_CHROMIUM), driven by Playwright for
Python, opens the report of a real ``kclf compare sgd``, moves the step control with the arrow
keys to step 2 and reads θ1, ∇, the loss, η and θ2 for each backend: each must be the value
trace.csv holds at step 2, and θ2 the slides' (2.732, 0.348). Skipped, with the reason, where
no browser can be had (make install installs Playwright; .ci/run installs chromium).
"""

import json
import os
import shutil

import pandas as pd
import pytest

from kclf import cli

pytestmark = pytest.mark.browser

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
QUANTITIES = {"weight_before": "weight_before", "gradient": "gradient", "weight_after": "weight_after"}


def chromium() -> str:
    path = os.environ.get("KCLF_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        pytest.skip("no Chromium: install Debian's chromium (apt-get install chromium) or set KCLF_CHROMIUM")
    return path


@pytest.fixture
def browser_page(tmp_path):
    """A page in a fresh headless Chromium profile; skipped when none can be started."""
    try:
        from playwright.sync_api import Error, sync_playwright
    except ImportError:
        pytest.skip("Playwright for Python is not installed (make install installs the dev extra)")
    executable = chromium()
    with sync_playwright() as p:
        try:
            context = p.chromium.launch_persistent_context(
                str(tmp_path / "profile"), executable_path=executable, args=FLAGS,
                headless=True, viewport={"width": 1280, "height": 1000})
        except Error as exc:
            pytest.skip(f"Chromium at {executable} did not start: {str(exc).splitlines()[0]}")
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        try:
            yield page, errors
        finally:
            context.close()


def shown(page, backend: str, quantity: str) -> list[dict]:
    """The numbers the step table shows for ``backend``: value, text, variable, index."""
    cell = page.locator(f"#step-sgd td[data-backend='{backend}'][data-quantity='{quantity}']")
    return cell.locator("span.num").evaluate_all(
        "spans => spans.map(s => ({value: s.dataset.value, text: s.textContent, "
        "variable: s.dataset.variable || null, index: s.dataset.index || null}))")


def as_float(text: str) -> float:
    return float(text.replace("−", "-"))


def test_stepping_the_sgd_shows_each_backends_trace_at_that_step(browser_page, tmp_path):
    page, errors = browser_page
    out = tmp_path / "compare"
    code = cli.main(["compare", "sgd", "--jobs", "2", "--out", str(out)])
    report = json.loads((out / "comparison.json").read_text())
    assert code == 0, report["experiments"]["sgd"]["where"]
    backends = report["backends"]

    page.goto((out / "report.html").as_uri())
    slider = page.locator("#step-sgd input.step")
    slider.focus()
    page.keyboard.press("ArrowRight")  # the arrow keys move the step control: step 1 → 2
    assert page.locator("#step-sgd").get_attribute("data-step") == "2"

    k = 2
    for backend in backends:
        trace = pd.read_csv(out / "runs" / "sgd" / backend / "trace.csv", dtype={"index": str})
        rows = trace[(trace["run"] == "main") & (trace["step"] == k)]
        for quantity, column in QUANTITIES.items():
            numbers = shown(page, backend, quantity)
            assert [(n["variable"], n["index"]) for n in numbers] == \
                list(zip(rows["variable"], rows["index"])), (backend, quantity)
            for number, expected in zip(numbers, rows[column]):
                assert float(number["value"]) == expected, (backend, quantity, number)
                assert as_float(number["text"]) == float(f"{expected:.6g}"), (backend, quantity, number)
        for quantity in ("loss", "learning_rate"):
            (number,) = shown(page, backend, quantity)
            assert float(number["value"]) == rows[quantity].iloc[0], (backend, quantity)
            assert as_float(number["text"]) == float(f"{rows[quantity].iloc[0]:.6g}")
        theta_2 = [as_float(n["text"]) for n in shown(page, backend, "weight_after")]
        assert theta_2 == [2.732, 0.348], backend  # the slides' θ2, on every backend

    page.locator("#step-sgd").screenshot(path=str(tmp_path / "step-sgd.png"))
    assert (tmp_path / "step-sgd.png").stat().st_size > 0
    assert errors == []
