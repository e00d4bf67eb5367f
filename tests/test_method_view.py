"""The Method tab's plain functions: estimates, tables and messages on the bundled model.

No browser and no weights: the estimator works on the meta device. The bundled SmolLM2-135M
architecture is read from the package's GGUF (or its converted folder).
"""

from __future__ import annotations

import pytest
from transformers import Qwen2Config

from ftui.config import ConfigError, MethodConfig, config_from_dotted, field_choices
from ftui.estimate.gpus import CATALOG
from ftui.methods import METHODS, TRAINING_METHODS
from ftui.recommend import recommend
from ftui.ui.catalog_view import (
    compare_for_ui,
    method_markdown,
    recommend_for_ui,
    tradeoff_frame,
)
from ftui.ui.method_view import (
    COMPONENTS,
    FITS_COLUMNS,
    epoch_tokens,
    estimate_for_ui,
)

# Batch 1 x 256 tokens: weights and optimizer states dominate. (At the default 8 x 1024 the
# activations of a 135M model dominate and LoRA's dropout copies make it the larger one.)
SMALL_STEP = {"train.batch_size": 1, "data.max_length": 256}


def estimate(method: str, device: str = "cuda", price: float = 3.0, **settings):
    return estimate_for_ui(
        {"model.name_or_path": "default", "method.name": method, **SMALL_STEP, **settings},
        device=device,
        gpu_name="H100 80GB",
        price=price,
        dataset_rows=300,
    )


def test_full_trains_more_and_peaks_higher_than_lora():
    full, lora = estimate("full"), estimate("lora")
    assert full["ok"] and lora["ok"]
    assert full["trainable_params"] == 134_515_008
    assert lora["trainable_params"] == 4_884_480  # r=16 on every linear layer
    assert full["trainable_params"] > lora["trainable_params"]
    assert full["peak_bytes"] > lora["peak_bytes"]
    assert "134,515,008 trainable" in full["counts"]
    assert "4,884,480 trainable" in lora["counts"] and "3.5%" in lora["counts"]
    assert full["model_params"] == lora["model_params"] == 134_515_008


def test_memory_components_are_a_chart_ready_frame():
    frame = estimate("lora")["components"]
    assert list(frame.columns) == ["component", "GB", "held"]
    assert list(frame["component"]) == [label for label, _ in COMPONENTS.values()]
    assert (frame["GB"] >= 0).all() and frame["GB"].sum() > 0
    weights = frame.set_index("component").loc["Weights", "GB"]
    assert weights == pytest.approx(0.269, abs=0.01)  # 134.5M parameters in bf16


def test_fits_table_has_every_catalog_gpu_with_time_and_cost():
    view = estimate("full", price=10.0)
    fits = view["fits"]
    assert tuple(fits.columns) == FITS_COLUMNS
    for gpu in CATALOG:
        assert fits["GPU"].str.startswith(gpu.name).any(), gpu.name
    assert set(fits["fits"]) <= {"yes", "no"}
    chosen = fits[fits["GPU"] == "H100 80GB (chosen)"].iloc[0]
    assert chosen["$ / hour"] == "10.00", "the typed price is used for the chosen GPU"
    assert chosen["time / epoch"] != "-" and chosen["cost / epoch"].startswith("$")
    assert "Fits on H100 80GB" in view["suggestions"]


def test_time_and_cost_follow_the_price_and_state_the_assumption():
    cheap, dear = estimate("lora", price=1.0), estimate("lora", price=100.0)
    assert "$1.00 per GPU-hour" in cheap["time"] and "$100.00 per GPU-hour" in dear["time"]
    assert cheap["time"] != dear["time"]
    assert "300 steps (300 rows, one per batch slot)" in cheap["time"], "padded: rows / batch"
    assert "half the max length" in cheap["time"]


def test_the_time_counts_optimizer_steps_as_the_trainer_does():
    view = estimate("lora", **{"train.gradient_accumulation": 2})
    assert "per optimizer step of 2 accumulated batches of 1 x 256 tokens" in view["time"]
    assert "150 steps (300 rows, one per batch slot)" in view["time"]


def test_a_config_that_does_not_fit_gets_concrete_fixes():
    view = estimate_for_ui(
        {"model.name_or_path": "default", "method.name": "full", "train.batch_size": 64},
        device="cuda",
        gpu_name="T4 16GB",
        price=None,
        dataset_rows=1000,
    )
    assert view["ok"]
    assert "Does not fit on T4 16GB" in view["suggestions"]
    assert "→ needs" in view["suggestions"] and "- " in view["suggestions"]


def test_cpu_estimate_still_judges_gpus_in_bf16():
    cpu, gpu = estimate("lora", device="cpu"), estimate("lora")
    assert "Speed on CPU" in cpu["time"] and "machine-hour" in cpu["time"]
    assert "free RAM" in cpu["memory"]
    assert "this machine's memory" in cpu["suggestions"], "the RAM verdict"
    assert cpu["peak_bytes"] > gpu["peak_bytes"], "fp32 on CPU"
    assert list(cpu["fits"]["needs GB"]) == list(gpu["fits"]["needs GB"])


def test_unknown_offline_hub_model_is_a_message_not_an_exception():
    view = estimate_for_ui(
        {"model.name_or_path": "nobody-here/no-such-model", "method.name": "lora"},
        device="cuda",
        gpu_name="H100 80GB",
        price=3.0,
        dataset_rows=100,
    )
    assert not view["ok"]
    assert "nobody-here/no-such-model" in view["message"]
    assert view["counts"].startswith("**No estimate:**")
    assert view["fits"].empty and view["components"] is None


def test_few_shot_is_a_message():
    view = estimate("few_shot")
    assert not view["ok"] and "trains nothing" in view["message"]


def test_invalid_settings_are_a_message():
    view = estimate("lora", **{"train.batch_size": 0})
    assert not view["ok"] and "batch_size" in view["message"]


def test_compare_lists_every_method_for_the_chosen_model():
    table, message = compare_for_ui(
        {"model.name_or_path": "default", "method.name": "lora", **SMALL_STEP},
        device="cuda",
        gpu_name="H100 80GB",
        price=3.0,
        dataset_rows=300,
    )
    assert message == ""
    assert list(table["method"]) == [*TRAINING_METHODS, "few_shot"]
    rows = table.set_index("method")
    assert rows.loc["full", "trainable"] == "134,515,008"
    assert rows.loc["lora", "trainable"] == "4,884,480"
    assert rows.loc["prompt", "trainable"] == f"{20 * 576:,}", "fewer than LoRA's"
    assert rows.loc["qlora", "trainable"] == rows.loc["lora_8bit", "trainable"] == "4,884,480"
    assert rows.loc["full", "fits H100 80GB"] == "yes"
    assert rows.loc["few_shot", "trainable"] == "0"


def test_compare_keeps_going_when_an_architecture_lacks_a_method(tmp_path):
    Qwen2Config(
        vocab_size=256,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
    ).save_pretrained(tmp_path)
    table, _ = compare_for_ui(
        {"model.name_or_path": str(tmp_path), "method.name": "lora"},
        device="cpu",
        gpu_name="H100 80GB",
        price=1.0,
        dataset_rows=0,
    )
    rows = table.set_index("method")
    assert rows.loc["llama_adapter", "trainable"] == "not available"
    assert "qwen2" in rows.loc["llama_adapter", "note"]
    assert rows.loc["lora", "trainable"] != "not available"


def test_compare_of_an_unknown_model_is_a_message():
    table, message = compare_for_ui(
        {"model.name_or_path": "nobody-here/no-such-model", "method.name": "lora"},
        device="cuda",
        gpu_name="H100 80GB",
        price=3.0,
        dataset_rows=0,
    )
    assert table.empty and "no-such-model" in message


def test_settings_from_widgets_become_a_strict_config():
    config = config_from_dotted({"method.lora_r": 32.0, "data.max_length": 512.0})
    assert config.method.lora_r == 32 and isinstance(config.method.lora_r, int)
    with pytest.raises(ConfigError, match="lora_rank"):
        config_from_dotted({"method.lora_rank": 8})
    with pytest.raises(ConfigError, match="lora_r: unknown setting"):
        config_from_dotted({"lora_r": 8})


def test_epoch_tokens():
    assert epoch_tokens(300, 1024) == 300 * 512
    assert epoch_tokens(300, 1024, mean_tokens=200) == 300 * 200
    assert epoch_tokens(0, 1024) == 0


def test_every_method_has_its_explanation_and_trade_offs():
    for name in field_choices(MethodConfig, "name"):
        text = method_markdown(name)
        assert METHODS[name].title in text and "**When to use:**" in text
        assert "**Inference latency:**" in text
    frame = tradeoff_frame()
    assert len(frame) == len(METHODS)
    assert "inference latency (merged or not)" in frame.columns


def test_recommendation_for_the_bundled_model_and_an_unknown_one():
    rec, text = recommend_for_ui("default", "H100 80GB", 100_000, "general", "best", "alpaca")
    assert rec is not None and rec.method == "full"
    assert "Recommended: Full fine-tuning" in text and "**Why:**" in text
    rec, text = recommend_for_ui("default", "CPU only", 100, "narrow", "good")
    assert rec is not None and rec.method == "prefix"
    rec, text = recommend_for_ui("nobody-here/no-such-model", "T4 16GB", 100, "narrow", "good")
    assert rec is None and "No recommendation" in text


def test_the_tab_has_a_widget_for_every_key_the_recommender_sets():
    import gradio as gr

    from ftui.ui.method_tab import build_method_tab

    with gr.Blocks():
        tab = build_method_tab(gr.State({}), gr.Textbox("default"))
    keys = set()
    for gpu in (None, 12, 24, 80):
        for rows in (5, 100, 5_000, 100_000):
            for params in (134_515_008, 3_000_000_000, 70_000_000_000):
                for fmt in (None, "text", "preference"):
                    rec = recommend(
                        gpu_memory_gb=gpu,
                        dataset_rows=rows,
                        task_specificity="domain" if fmt == "text" else "narrow",
                        performance="best" if rows > 50_000 else "good",
                        model_params=params,
                        data_format=fmt,
                    )
                    keys |= set(rec.settings)
    assert keys <= set(tab.settings), keys - set(tab.settings)
    defaults = {key: widget.value for key, widget in tab.settings.items()}
    assert config_from_dotted(defaults).method.name == MethodConfig.name
