"""The main user path in a real headless Chromium: upload, preview, histogram, bad file, recover.

Drives the real `ftui serve` subprocess (see conftest.app_server) with Playwright and Debian's
chromium. Screenshots land in the test's tmp dir.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import SAMPLES

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def upload(page, path: Path) -> None:
    page.locator("#data-upload input[type=file]").set_input_files(str(path))


def test_upload_preview_histogram_then_bad_file_then_recover(page, app_server, tmp_path):
    from playwright.sync_api import expect

    status = page.locator("#data-status")
    triage = tmp_path / "triage.jsonl"
    shutil.copy(SAMPLES / "triage" / "train.jsonl", triage)
    first_input = triage.read_text().splitlines()[0]

    upload(page, triage)
    expect(status).to_contain_text("format alpaca", timeout=90_000)
    expect(status).to_contain_text("rows")
    table = page.locator("#data-preview")
    expect(table).to_contain_text("instruction")
    assert page.locator("#data-preview [role=row]").count() >= 6, "header and 5+ rows"
    import json

    expect(table).to_contain_text(json.loads(first_input)["input"][:30])
    page.get_by_role("tab", name="Example as the model sees it").click()
    expect(page.locator("#data-example")).to_contain_text("category")
    page.get_by_role("tab", name="Statistics").click()
    histogram = page.locator("#data-histogram")
    expect(histogram.locator("canvas, svg").first).to_be_visible()
    page.screenshot(path=tmp_path / "triage.png", full_page=True)

    bad = tmp_path / "broken.jsonl"
    bad.write_text('{"instruction": "a", "output": "b"}\n{"instruction": "c", "output": \n')
    upload(page, bad)
    expect(status).to_contain_text("line 2", timeout=60_000)
    expect(status).to_contain_text("cannot be used")
    page.screenshot(path=tmp_path / "broken.png", full_page=True)

    page.get_by_label("Or try a sample").click()
    page.get_by_role("option", name="Support reply preferences (DPO pairs)").click()
    expect(status).to_contain_text("format preference", timeout=60_000)
    page.get_by_role("tab", name="Method").click()
    expect(page.locator("#method-selection")).to_contain_text("pairs.jsonl")
    page.screenshot(path=tmp_path / "recovered.png", full_page=True)
    uploads = list((app_server[1] / "uploads").iterdir())
    assert len(uploads) == 2, "uploads are stored inside the workspace"
    assert any((app_server[1] / ".gradio").rglob("*.jsonl")), "gradio's upload cache too"
