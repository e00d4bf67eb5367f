"""The Method tab in a real headless Chromium: counts, memory chart, fits, price, recommender.

Drives the real `ftui serve` subprocess (see conftest.app_server) with Playwright. Nothing
loads weights: every number comes from the meta-device estimator. Screenshots land in the
test's tmp dir.
"""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]

FULL_TRAINABLE = "134,515,008 trainable"  # SmolLM2-135M, every weight
LORA_TRAINABLE = "4,884,480 trainable"  # r=16 on all linear layers


def wait_until_idle(page) -> None:
    """No event still running (the comparison table and the chart update last)."""
    from playwright.sync_api import expect

    expect(page.locator(".progress-text")).to_have_count(0, timeout=60_000)


def choose_method(page, title: str) -> None:
    page.locator("#method-name input").click()
    page.get_by_role("option", name=title, exact=True).click()


def test_method_counts_chart_fits_price_and_recommender(page, tmp_path):
    from playwright.sync_api import expect

    page.get_by_role("tab", name="Method").click()
    counts = page.locator("#method-counts")
    expect(counts).to_contain_text(LORA_TRAINABLE, timeout=90_000)  # the page-load estimate

    choose_method(page, "Full fine-tuning")
    expect(counts).to_contain_text(FULL_TRAINABLE)
    expect(page.locator("#method-info")).to_contain_text("Update every weight")
    choose_method(page, "LoRA (+ DoRA, rsLoRA)")
    expect(counts).to_contain_text(LORA_TRAINABLE)
    expect(page.get_by_label("LoRA rank r").first).to_be_visible()

    expect(page.locator("#method-memory-chart").locator("canvas, svg").first).to_be_visible()
    fits = page.locator("#method-fits")
    expect(fits).to_contain_text("H100")
    expect(fits).to_contain_text("T4 16GB")
    expect(page.locator("#method-compare")).to_contain_text("bottleneck")
    wait_until_idle(page)
    page.screenshot(path=tmp_path / "method-lora.png", full_page=True)

    time = page.locator("#method-time")
    expect(time).to_contain_text("$3.00 per GPU-hour")
    before = time.inner_text()
    page.locator("#method-price input").fill("300")
    expect(time).to_contain_text("$300.00 per GPU-hour")
    assert time.inner_text() != before
    cost_line = [line for line in time.inner_text().splitlines() if "1,000 steps" in line]
    assert cost_line and cost_line[0] not in before, "the cost itself follows the price"

    page.locator("#method-rec-rows input").fill("100000")
    page.locator("#method-performance").get_by_label("best").check()
    page.locator("#method-recommend-button").click()
    recommendation = page.locator("#method-recommendation")
    expect(recommendation).to_contain_text("Recommended: Full fine-tuning")
    expect(recommendation).to_contain_text("100,000 rows")
    page.locator("#method-apply-button").click()
    expect(page.locator("#method-name input")).to_have_value("Full fine-tuning")
    expect(counts).to_contain_text(FULL_TRAINABLE)
    wait_until_idle(page)
    page.screenshot(path=tmp_path / "method-applied.png", full_page=True)
