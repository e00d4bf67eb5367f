"""The Method tab: its widgets from the config's fields, then in a real headless Chromium.

The first tests build the tab inside `gr.Blocks()` (unit tier): every field declared
`tab="method"` has its widget, and the method menu shows the settings the catalog lists. The
browser test drives the real `ftui serve` subprocess (see conftest.app_server) with
Playwright: counts, memory chart, fits, price, recommender. Nothing loads weights: every
number comes from the meta-device estimator. Screenshots land in the test's tmp dir.
"""

from __future__ import annotations

import gradio as gr
import pytest

from ftui.config import FtuiConfig, schema_fields
from ftui.methods import METHODS
from ftui.ui.method_tab import MethodTab, build_method_tab

FULL_TRAINABLE = "134,515,008 trainable"  # SmolLM2-135M, every weight
LORA_TRAINABLE = "4,884,480 trainable"  # r=16 on all linear layers


METHOD_TAB_FIELDS = [spec for spec in schema_fields(FtuiConfig) if spec.tab == "method"]


def built_tab() -> tuple[gr.Blocks, MethodTab]:
    with gr.Blocks() as blocks:
        tab = build_method_tab(gr.State({}), gr.Textbox("default"))
    return blocks, tab


def test_every_method_tab_field_has_a_widget_made_from_the_field():
    _, tab = built_tab()
    assert {"method.lora_r", "train.batch_size", "data.max_length"} <= {
        spec.key for spec in METHOD_TAB_FIELDS
    }
    chosen_apart = {"model.name_or_path", "method.name", "method.objective"}
    assert set(tab.settings) == chosen_apart | {spec.key for spec in METHOD_TAB_FIELDS}
    for spec in METHOD_TAB_FIELDS:
        widget = tab.settings[spec.key]
        assert (widget.label, widget.info) == (spec.label, spec.help), spec.key
        assert widget.value == spec.default, spec.key
        if spec.slider is not None:
            assert (widget.minimum, widget.maximum, widget.step) == spec.slider, spec.key
    assert tab.method.elem_id == "method-name"
    assert tab.method.choices == [(METHODS[n].title, n) for n in METHODS], "titles shown"


def test_the_method_menu_shows_the_settings_the_catalog_lists():
    blocks, tab = built_tab()
    per_method = [spec.key for spec in METHOD_TAB_FIELDS if spec.key.startswith("method.")]
    always = [spec.key for spec in METHOD_TAB_FIELDS if spec.key not in per_method]
    default = tab.method.value
    for key in per_method:  # as the page opens
        assert tab.settings[key].visible == (key[len("method.") :] in METHODS[default].settings)
    assert all(tab.settings[key].visible for key in always)

    (on_choice,) = [fn for fn in blocks.fns.values() if (tab.method._id, "input") in fn.targets]
    note = next(b for b in on_choice.outputs if "no settings of its own" in str(b.value))
    for name, method in METHODS.items():
        updates = dict(zip((b._id for b in on_choice.outputs), on_choice.fn(name), strict=True))
        visible = {key for key in per_method if updates[tab.settings[key]._id]["visible"]}
        assert visible == {f"method.{setting}" for setting in method.settings}, name
        assert updates[note._id]["visible"] == (not method.settings), name


def wait_until_idle(page) -> None:
    """No event still running (the comparison table and the chart update last)."""
    from playwright.sync_api import expect

    expect(page.locator(".progress-text")).to_have_count(0, timeout=60_000)


def choose_method(page, title: str) -> None:
    page.locator("#method-name input").click()
    page.get_by_role("option", name=title, exact=True).click()


@pytest.mark.browser
@pytest.mark.slow
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
