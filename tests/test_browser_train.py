"""The Train tab in a real headless Chromium: start a run, watch it, reload, see it finish.

Drives the real `ftui serve` subprocess (conftest.app_server) with Playwright. The run is
real training of the bundled SmolLM2-135M, kept short: 40 triage rows chosen in the Data tab,
batch size 2 set in the Method tab, 6 steps with an eval every 3, started from the Train tab's
"Current selection". Screenshots land in the test's tmp dir.
"""

from __future__ import annotations

import re

import pytest
from conftest import SAMPLES

from ftui.config import load_config
from ftui.ui.runs_view import EVAL_SERIES, TRAIN_SERIES
from ftui.ui.train_layout import LOSS_COLORS

pytestmark = [pytest.mark.browser, pytest.mark.slow]

STEPS = 6
# The points drawn in the plot (the legend's symbols are outside the marks group), each
# series in its colour: [points of colours[0], points of colours[1], ...].
COUNT_POINTS = """([selector, colours]) => {
  const paths = [...document.querySelectorAll(selector + ' g.mark-symbol.role-mark path')];
  return colours.map(c => paths.filter(p => p.getAttribute('stroke') === c).length);
}"""
SERIES_COLOURS = [LOSS_COLORS[TRAIN_SERIES], LOSS_COLORS[EVAL_SERIES]]


def loss_points(page) -> list[int]:
    """Points per series of the live loss plot: [train, eval]."""
    return page.evaluate(COUNT_POINTS, ["#train-loss-plot", SERIES_COLOURS])


def wait_for_points(page, more_than: int, timeout: float = 180_000) -> int:
    page.wait_for_function(
        f"([n, colours]) => ({COUNT_POINTS})(['#train-loss-plot', colours])"
        ".reduce((a, b) => a + b, 0) > n",
        arg=[more_than, SERIES_COLOURS],
        timeout=timeout,
    )
    return sum(loss_points(page))


def fill(page, elem_id: str, text: str) -> None:
    page.locator(f"#{elem_id} textarea, #{elem_id} input").first.fill(text)


def choose(page, elem_id: str, option: str) -> None:
    page.locator(f"#{elem_id} input").click()
    page.get_by_role("option", name=option, exact=True).click()


def test_start_watch_reload_and_finish_a_run(page, app_server, tmp_path):
    from playwright.sync_api import expect

    url, workspace = app_server
    folder = workspace / "mydata"
    folder.mkdir(exist_ok=True)
    rows = (SAMPLES / "triage" / "train.jsonl").read_text().splitlines()[:40]
    (folder / "triage40.jsonl").write_text("\n".join(rows) + "\n")

    fill(page, "data-source", "mydata/triage40.jsonl")
    page.get_by_role("button", name="Load", exact=True).click()
    expect(page.locator("#data-status")).to_contain_text("format alpaca", timeout=90_000)
    page.get_by_role("tab", name="Method").click()
    batch = page.get_by_label("number input for Batch size")
    batch.fill("2")
    batch.press("Enter")

    page.get_by_role("tab", name="Train").click()
    choose(page, "train-start-from", "Current selection")
    expect(page.locator("#train-selection")).to_contain_text("triage40.jsonl")
    name = page.locator("#train-name textarea, #train-name input").first
    expect(name).to_have_value("lora-triage40")  # the form follows the starting point
    fill(page, "train-name", "browser-run")
    fill(page, "train-max-steps", str(STEPS))
    fill(page, "train-eval-every", "3")
    fill(page, "train-save-every", "3")

    page.locator("#train-preview").click()
    expect(page.locator("#train-status")).to_contain_text("Saved")
    expect(page.locator("#train-command")).to_contain_text("ftui train")
    expect(page.locator("#train-command")).to_contain_text("configs/browser-run-")
    expect(page.locator("#train-yaml")).to_contain_text("name: browser-run")
    expect(page.locator("#train-yaml")).to_contain_text("triage40.jsonl")
    # The code view draws only the lines in sight: the rest is checked in the saved file,
    # the text the view shows.
    (saved,) = (workspace / "configs").glob("browser-run-*.yaml")
    config = load_config(saved)
    assert config.train.batch_size == 2 and config.train.max_steps == STEPS
    assert (config.train.eval_every, config.train.save_every) == (3, 3)

    page.locator("#train-start").click()
    status = page.locator("#train-status")
    expect(status).to_contain_text("Started", timeout=60_000)
    run_id = re.search(r"as (\S+-browser-run)", status.inner_text()).group(1)
    header = page.locator("#train-header")
    expect(header).to_contain_text(run_id)
    expect(header).to_contain_text("running", timeout=30_000)

    first = wait_for_points(page, 0)
    grown = wait_for_points(page, first)
    assert grown > first, "the loss curve grows as steps are logged"
    expect(page.locator("#train-progress")).to_contain_text(f"/ {STEPS}")
    expect(page.locator("#train-cancel")).to_be_enabled()
    page.screenshot(path=tmp_path / "train-running.png", full_page=True)

    page.reload()
    page.get_by_role("tab", name="Train").click()
    expect(header).to_contain_text(run_id, timeout=30_000)
    after_reload = wait_for_points(page, grown - 1, timeout=30_000)
    assert after_reload >= grown, "a reload shows the whole curve so far"
    expect(page.locator("#train-log")).to_contain_text(f"/{STEPS} [")  # the trainer's tqdm
    page.screenshot(path=tmp_path / "train-reloaded.png", full_page=True)

    expect(header).to_contain_text("completed", timeout=240_000)
    expect(page.locator("#train-progress")).to_contain_text(f"step {STEPS} / {STEPS}")
    train_points, eval_points = loss_points(page)
    assert train_points == STEPS and eval_points == 2, "eval loss at steps 3 and 6"
    history = page.locator("#train-history")
    expect(history).to_contain_text(run_id)
    expect(history).to_contain_text("completed")
    expect(page.locator("#train-delete")).to_be_enabled()
    expect(page.locator("#train-cancel")).to_be_disabled()
    page.screenshot(path=tmp_path / "train-completed.png", full_page=True)
