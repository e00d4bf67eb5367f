"""The first page, the Method tab and the Train tab in headless Chromium: no placeholder tables,
no empty boxes.

A gr.Dataframe without data is headed "1 2 3" with an empty body; a visitor takes it for a
broken page. The Data tab's preview and the Method tab's tables stay hidden until they have
rows; the Train tab's history has its real headers from the start. Drives the real
`ftui serve` subprocess (conftest.app_server); screenshots land in the test's tmp dir.
"""

from __future__ import annotations

import pytest
from conftest import SAMPLES

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PLACEHOLDER = ["1", "2", "3"]
# The header cells of every table in sight, with the id of the component holding it.
VISIBLE_TABLE_HEADERS = """() => [...document.querySelectorAll('table')]
  .filter(table => table.offsetParent !== null)
  .map(table => [
    table.closest('[id]')?.id || '',
    [...table.querySelectorAll('thead th')].map(th => th.innerText.trim()).filter(Boolean),
  ])"""


def visible_tables(page) -> dict[str, list[str]]:
    return {elem_id: headers for elem_id, headers in page.evaluate(VISIBLE_TABLE_HEADERS)}


def assert_no_placeholder(page) -> dict[str, list[str]]:
    tables = visible_tables(page)
    headed_123 = [elem_id for elem_id, headers in tables.items() if headers == PLACEHOLDER]
    assert not headed_123, f"tables headed 1 2 3: {headed_123}"
    return tables


def test_no_table_is_headed_1_2_3_before_it_has_data(page, tmp_path):
    from playwright.sync_api import expect

    expect(page.locator("#data-status")).to_contain_text("Upload a file or pick a sample")
    page.wait_for_timeout(1500)  # the page's load events have run
    assert "data-preview" not in assert_no_placeholder(page)
    expect(page.locator("#data-preview")).to_be_hidden()
    for line in ("#guided-status", "#guided-progress"):  # no empty grey band under "Try it"
        assert page.locator(line).bounding_box()["height"] < 2
    page.screenshot(path=tmp_path / "first-page.png", full_page=True)

    page.get_by_role("tab", name="Method").click()
    expect(page.locator("#method-counts")).to_contain_text("trainable", timeout=120_000)
    expect(page.locator("#method-fits")).to_contain_text("H100", timeout=60_000)
    expect(page.locator("#method-compare")).to_contain_text("bottleneck", timeout=120_000)
    tables = assert_no_placeholder(page)
    assert tables["method-fits"][:2] == ["GPU", "memory GB"]
    assert "method" in tables["method-compare"]
    page.screenshot(path=tmp_path / "method-tab.png", full_page=True)

    page.get_by_role("tab", name="Train").click()
    expect(page.locator("#train-header")).to_contain_text("No runs yet")
    tables = assert_no_placeholder(page)
    assert tables["train-history"][:2] == ["run", "state"], "real headers with no run yet"


def test_the_preview_table_appears_with_the_datasets_columns(page):
    from playwright.sync_api import expect

    source = page.locator("#data-source textarea, #data-source input").first
    source.fill(str(SAMPLES / "triage" / "train.jsonl"))
    page.get_by_role("button", name="Load", exact=True).click()
    expect(page.locator("#data-status")).to_contain_text("format alpaca", timeout=90_000)
    preview = page.locator("#data-preview")
    expect(preview).to_be_visible()
    tables = assert_no_placeholder(page)
    assert "instruction" in tables["data-preview"]

    source.fill("no/such/file.jsonl")  # a failed load hides the table again
    page.get_by_role("button", name="Load", exact=True).click()
    expect(page.locator("#data-status")).not_to_contain_text("format alpaca", timeout=60_000)
    expect(preview).to_be_hidden()
