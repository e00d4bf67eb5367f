"""The Playground tab in headless Chromium: three answers, the score table, the HTML report.

A short real training run of the bundled model is queued into the running app's workspace
(the same SQLite index the server reads); the browser then picks it, compares the three
variants, evaluates a few validation rows and downloads the report, which must open as a page
holding the scores. Before that, a page loaded while the run trained finds the tab ready when
it is opened: the run chosen, a validation ticket as the prompt, Compare on; and what stops a
button is said beside it.
"""

from __future__ import annotations

import json
import re

import pytest
from conftest import REPO_ROOT, SAMPLES, tiny_triage_config

from ftui.runs.jobs import Jobs
from ftui.runs.runner import wait_for
from ftui.workspace import Workspace

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# tiny_triage_config keeps the first validation rows: the Playground's prompt is the first
VALIDATION_ROW = (SAMPLES / "triage" / "validation.jsonl").read_text().splitlines()[0]


@pytest.fixture(scope="module")
def finished_run(app_server, tmp_path_factory):
    config = tiny_triage_config(tmp_path_factory.mktemp("pg-data"), rows=24)
    config.name = "playground-check"
    config.train.max_steps = 4
    config.eval.max_new_tokens = 24
    run = Jobs(Workspace.open(app_server[1])).submit(config, cwd=REPO_ROOT)
    assert wait_for(run, timeout=600)["state"] == "completed", run.log_path.read_text()[-2000:]
    return run


def test_the_playground_is_ready_when_opened_after_a_run(page, finished_run, tmp_path):
    """The page was loaded before the run finished: opening the tab selects it."""
    from playwright.sync_api import expect

    page.get_by_role("tab", name="Playground").click()
    shown = re.compile(re.escape(finished_run.run_id))  # the menu shows "<id> (lora, ...)"
    expect(page.locator("#pg-run input")).to_have_value(shown)
    ticket = json.loads(VALIDATION_ROW)
    prompt = page.locator("#pg-prompt textarea")
    expect(prompt).to_have_value(re.compile(re.escape(ticket["input"]) + "$"))
    expect(page.locator("#pg-compare")).to_be_enabled()
    expect(page.locator("#pg-compare-note")).to_have_text("")
    expect(page.locator("#pg-scores")).to_have_count(0)  # no empty "1 2 3" table
    page.screenshot(path=str(tmp_path / "playground-ready.png"), full_page=True)

    prompt.fill("")  # no prompt: Compare is off and says why, in words
    expect(page.locator("#pg-compare")).to_be_disabled()
    expect(page.locator("#pg-compare-note")).to_contain_text("Type a prompt")

    page.locator("#pg-folder textarea, #pg-folder input").first.fill("../outside")
    page.locator("#pg-merge").click()  # a folder outside the workspace: said beside Merge
    expect(page.locator("#pg-export")).to_contain_text("outside", timeout=30_000)


def test_compare_evaluate_and_download_the_report(page, finished_run, tmp_path):
    from playwright.sync_api import expect

    page.get_by_role("tab", name="Playground").click()
    page.get_by_role("button", name="Refresh runs").click()
    page.locator("#pg-run input").click()
    page.get_by_role("option", name=finished_run.run_id, exact=False).click()
    expect(page.locator("#pg-prompt textarea")).not_to_have_value("")  # a validation question

    page.locator("#pg-compare").click()
    for variant in ("base", "few_shot", "fine_tuned"):
        expect(page.locator(f"#pg-{variant}-stats")).to_contain_text("tokens/s", timeout=180_000)
        expect(page.locator(f"#pg-{variant} textarea")).not_to_have_value("")
    page.screenshot(path=str(tmp_path / "playground-compare.png"), full_page=True)

    page.locator("#pg-evaluate").click()  # "Rows scored" starts at the run's eval.limit: 4
    scores = page.locator("#pg-scores")
    for title in ("Base", "Few-shot", "Fine-tuned", "exact_match", "json_valid"):
        expect(scores).to_contain_text(title, timeout=300_000)
    expect(page.locator("#pg-cases")).to_contain_text("Best cases")
    page.screenshot(path=str(tmp_path / "playground-scores.png"), full_page=True)

    with page.expect_download(timeout=60_000) as download:
        page.locator("#pg-report a[download]").first.click()
    report = tmp_path / "report.html"
    download.value.save_as(report)
    page.goto(report.as_uri())
    expect(page.locator("h1")).to_contain_text("base vs few-shot vs fine-tuned")
    expect(page.locator("table").first).to_contain_text("Fine-tuned")
    expect(page.locator("table").first).to_contain_text("exact_match")
