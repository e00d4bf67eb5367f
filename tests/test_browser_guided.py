"""The guided first run in headless Chromium, from the first page to the three answers.

A real `ftui serve` (its own workspace) with FTUI_GUIDED_MAX_STEPS=3, so the bundled
SmolLM2-135M trains 3 real steps of the flagship preset through the real queue. Before the
click the Playground is checked empty but calm (Compare off, a sentence instead of an error,
no placeholder tables); one click then loads the sample in the Data tab, shows the Method
tab's estimate, starts the run and shows it in the Train tab; when it completes the Playground
opens on it with a validation ticket, and Compare answers in all three columns. Screenshots go
to the test's tmp dir.
"""

from __future__ import annotations

import json
import os
import re

import pytest
from conftest import SAMPLES, browser_page, ftui_server

from ftui.guided import BUTTON
from ftui.ui.playground_actions import NO_RUN

pytestmark = [pytest.mark.browser, pytest.mark.slow]

GUIDED_STEPS = 3


@pytest.fixture(scope="module")
def guided_server(tmp_path_factory):
    from ftui.models import prepare_bundled_model

    prepare_bundled_model()
    workspace = tmp_path_factory.mktemp("guided-workspace")
    env = {**os.environ, "FTUI_GUIDED_MAX_STEPS": str(GUIDED_STEPS)}
    with ftui_server(workspace, env, workspace.parent / "guided-server.log") as url:
        yield url + "/", workspace


@pytest.fixture
def guided_page(guided_server):
    with browser_page(guided_server[0]) as page:
        yield page


def first_validation_ticket() -> str:
    row = json.loads((SAMPLES / "triage" / "validation.jsonl").read_text().splitlines()[0])
    return row["input"]


def selected_tab(page, name: str):
    return page.get_by_role("tab", name=name, exact=True)


def test_the_guided_run_from_the_first_page_to_three_answers(guided_page, tmp_path):
    from playwright.sync_api import expect

    page = guided_page
    expect(page.locator("#guided-intro")).to_contain_text("fine-tunes an open LLM")
    expect(page.locator("#guided-start")).to_have_text(BUTTON)
    page.screenshot(path=str(tmp_path / "guided-1-first-page.png"), full_page=True)

    # Before any run: the Playground says what to do, Compare is off, no "1 2 3" tables.
    selected_tab(page, "Playground").click()
    expect(page.locator("#pg-compare-note")).to_contain_text(NO_RUN[:40])
    expect(page.locator("#pg-compare")).to_be_disabled()
    expect(page.locator("#pg-scores")).to_have_count(0)
    expect(page.locator("#pg-examples")).to_have_count(0)

    page.locator("#guided-start").click()
    expect(page.locator("#data-status")).to_contain_text("alpaca", timeout=120_000)
    expect(page.locator("#data-source input, #data-source textarea").first).to_have_value(
        str(SAMPLES / "triage" / "train.jsonl")
    )
    expect(page.locator("#guided-status")).to_contain_text("Started", timeout=180_000)
    expect(page.locator("#guided-status")).to_contain_text(f"{GUIDED_STEPS} of the preset's")
    expect(page.locator("#method-counts")).to_contain_text("trainable")  # the estimate ran
    expect(selected_tab(page, "Train")).to_have_attribute("aria-selected", "true")
    run_id = page.locator("#guided-status code").first.inner_text()
    expect(page.locator("#guided-progress")).to_contain_text(run_id, timeout=30_000)
    expect(page.locator("#guided-start")).to_be_disabled()  # one click, one run
    expect(page.locator("#train-header")).to_contain_text("triage-lora", timeout=60_000)
    shown = re.compile(re.escape(run_id))  # a menu shows "<id> (<state>...)"
    expect(page.locator("#train-run input")).to_have_value(shown, timeout=60_000)
    page.screenshot(path=str(tmp_path / "guided-2-training.png"), full_page=True)

    playground = selected_tab(page, "Playground")
    expect(playground).to_have_attribute("aria-selected", "true", timeout=600_000)
    expect(page.locator("#guided-progress")).to_contain_text("completed")
    expect(page.locator("#pg-run input")).to_have_value(shown, timeout=30_000)
    prompt = page.locator("#pg-prompt textarea")
    held_out = re.compile(re.escape(first_validation_ticket()) + "$")  # after the instruction
    expect(prompt).to_have_value(held_out, timeout=60_000)
    expect(page.locator("#pg-compare")).to_be_enabled()

    page.locator("#pg-compare").click()
    for variant in ("base", "few_shot", "fine_tuned"):
        expect(page.locator(f"#pg-{variant}-stats")).to_contain_text("tokens/s", timeout=240_000)
        expect(page.locator(f"#pg-{variant} textarea")).not_to_have_value("")
    expect(page.locator("#pg-compare-note")).to_have_text("")
    expect(page.locator("#guided-start")).to_be_enabled()
    page.screenshot(path=str(tmp_path / "guided-3-answers.png"), full_page=True)
