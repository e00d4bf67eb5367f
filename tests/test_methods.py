"""The method catalog (plain data) and ftui's own bottleneck adapters on a tiny real Llama."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import pytest
import torch
from conftest import TINY_LLAMA
from transformers import AutoModelForCausalLM, LlamaConfig

from ftui.adapters.bottleneck import (
    CONFIG_NAME,
    WEIGHTS_NAME,
    AdaptedMLP,
    BottleneckAdapter,
    add_bottleneck_adapters,
    find_decoder_blocks,
    load_bottleneck_adapters,
    save_bottleneck_adapters,
    set_bottleneck_enabled,
)
from ftui.config import ConfigError, DataConfig, FtuiConfig, MethodConfig, field_choices
from ftui.data.layouts import FORMATS
from ftui.methods import (
    METHODS,
    OBJECTIVES,
    TRAINING_METHODS,
    MethodInfo,
    compatible_formats,
    method_table,
    objective_for_format,
)
from ftui.translate import peft_config, quantization_config, uses_peft


def tiny_llama(seed: int = 0) -> torch.nn.Module:
    config = LlamaConfig(
        vocab_size=256,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=3,
        num_attention_heads=4,
        num_key_value_heads=2,
    )
    torch.manual_seed(seed)
    return AutoModelForCausalLM.from_config(config).eval()


# ---------------------------------------------------------------- catalog


def test_every_configurable_method_has_a_complete_entry_in_config_order():
    names = field_choices(MethodConfig, "name")
    assert list(METHODS) == names
    for name, info in METHODS.items():
        assert info.name == name
        for field in dataclasses.fields(MethodInfo):
            value = getattr(info, field.name)
            if field.type in ("str", str):
                assert value.strip(), f"{name}.{field.name} is empty"


def test_every_name_a_method_uses_is_a_real_setting_or_objective():
    fields = set(MethodConfig.__dataclass_fields__)
    objectives = field_choices(MethodConfig, "objective")
    for name in field_choices(MethodConfig, "name"):
        info = METHODS[name]
        assert set(info.settings) <= fields, f"{name}: {set(info.settings) - fields}"
        assert info.top_layers_setting in (None, *info.settings), name
        assert info.objectives and set(info.objectives) <= set(objectives), name


def test_only_few_shot_trains_nothing_and_only_bitsandbytes_methods_are_quantized():
    assert [n for n, i in METHODS.items() if not i.trains] == ["few_shot"]
    assert {n: i.quantized_bits for n, i in METHODS.items() if i.quantized} == {
        "qlora": 4,
        "lora_8bit": 8,
    }
    assert "few_shot" not in TRAINING_METHODS and len(TRAINING_METHODS) == 10
    assert [n for n, i in METHODS.items() if i.trains_base] == ["full", "freeze"]
    assert [n for n, i in METHODS.items() if i.virtual_tokens] == ["prefix", "prompt"]


def test_the_translator_builds_what_the_catalog_says():
    """ftui.translate reads the catalog: LoRA adapters where it says lora, bitsandbytes
    where it says quantized (4 or 8 bits); peft for neither full, freeze, bottleneck nor
    few-shot."""
    from transformers import LlamaConfig

    architecture = LlamaConfig(**TINY_LLAMA)
    for name, info in METHODS.items():
        method = MethodConfig(name=name)
        built = peft_config(method, architecture) if uses_peft(name) else None
        assert (type(built).__name__ == "LoraConfig") == info.lora, name
        assert uses_peft(name) != (info.trains_base or name in ("bottleneck", "few_shot")), name
    for name, info in METHODS.items():
        quantization = quantization_config(MethodConfig(name=name), torch.bfloat16)
        assert (quantization is not None) == info.quantized, name
        if quantization is not None:
            assert quantization.load_in_4bit == (info.quantized_bits == 4), name


def test_gradient_checkpointing_is_refused_exactly_where_the_catalog_says():
    for name, info in METHODS.items():
        config = FtuiConfig(method=MethodConfig(name=name))
        config.train.gradient_checkpointing = True
        if info.gradient_checkpointing:
            config.check()
        else:
            with pytest.raises(ConfigError, match="gradient_checkpointing"):
                config.check()


def test_trade_off_texts_say_what_matters():
    assert "merged" in METHODS["lora"].inference_latency
    assert "cannot be merged" in METHODS["prefix"].inference_latency.lower()
    assert "num_virtual_tokens" in METHODS["prefix"].inference_latency
    assert "cannot be merged" in METHODS["bottleneck"].inference_latency.lower()


def test_method_table_has_one_row_per_method_with_the_trade_off_columns():
    rows = method_table()
    assert len(rows) == 11
    assert [row["name"] for row in rows] == list(METHODS)
    columns = {"name", "title", "trainable_params", "compute_cost", "structure_change"}
    columns |= {"training_time", "inference_latency"}
    assert all(set(row) == columns and all(row.values()) for row in rows)


def test_objectives_and_their_data_formats():
    assert list(OBJECTIVES) == field_choices(MethodConfig, "objective")
    assert compatible_formats("instruction") == ["alpaca", "chat", "sharegpt", "prompt_completion"]
    assert compatible_formats("domain") == ["text"]
    assert compatible_formats("dpo") == ["preference"]
    assert compatible_formats("kto") == ["kto"]
    assert sorted(sum((compatible_formats(o) for o in OBJECTIVES), [])) == sorted(FORMATS)
    assert METHODS["lora"].objectives == ("instruction", "domain", "dpo", "kto")
    assert METHODS["few_shot"].objectives == ("instruction",)
    with pytest.raises(ValueError, match="unknown objective"):
        compatible_formats("rlhf")
    assert objective_for_format("text") == "domain"
    assert objective_for_format("preference") == "dpo"
    assert objective_for_format("kto") == "kto"
    assert objective_for_format("alpaca") == objective_for_format("chat") == "instruction"
    assert objective_for_format(None) is objective_for_format("auto") is None


def test_the_config_offers_every_data_format_and_auto():
    """The config cannot import ftui.data, so its Literal is checked against FORMATS here."""
    assert field_choices(DataConfig, "format") == ["auto", *FORMATS]


@pytest.mark.slow
def test_importing_the_catalog_and_counters_does_not_import_torch():
    code = (
        "import sys, ftui.methods, ftui.translate, ftui.params\n"
        "print(sorted(m for m in ('torch', 'transformers', 'peft', 'bitsandbytes') "
        "if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


# ---------------------------------------------------------------- bottleneck adapters


def test_adapter_is_the_identity_at_initialisation():
    adapter = BottleneckAdapter(hidden_size=16, size=4)
    hidden = torch.randn(2, 3, 16)
    assert torch.equal(adapter(hidden), hidden)
    with pytest.raises(ValueError, match="activation"):
        BottleneckAdapter(16, 4, activation="gelu")


@pytest.mark.slow
def test_model_output_is_unchanged_at_initialisation_and_only_adapters_train():
    model = tiny_llama()
    tokens = torch.randint(0, 256, (2, 10))
    with torch.no_grad():
        before = model(input_ids=tokens).logits
    trainable = add_bottleneck_adapters(model, size=8, activation="relu")
    assert trainable == 3 * (2 * 64 * 8 + 64 + 8)
    with torch.no_grad():
        after = model(input_ids=tokens).logits
    assert torch.equal(before, after)
    assert all(isinstance(block.mlp, AdaptedMLP) for block in model.model.layers)
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    assert names and all(".mlp.adapter." in n for n in names)
    with pytest.raises(ValueError, match="already has bottleneck adapters"):
        add_bottleneck_adapters(model, size=8)


def _randomise_adapters(model: torch.nn.Module) -> None:
    with torch.no_grad():
        for name, param in model.named_parameters():
            if ".adapter." in name:
                param.normal_(std=0.5)


@pytest.mark.slow
def test_save_and_load_round_trip_restores_outputs(tmp_path):
    model = tiny_llama()
    add_bottleneck_adapters(model, size=8)
    _randomise_adapters(model)
    tokens = torch.randint(0, 256, (2, 10))
    with torch.no_grad():
        trained = model(input_ids=tokens).logits
        set_bottleneck_enabled(model, False)
        base = model(input_ids=tokens).logits
        set_bottleneck_enabled(model, True)
    assert not torch.allclose(trained, base), "random adapters must change the output"

    folder = save_bottleneck_adapters(model, tmp_path / "adapter")
    assert (folder / WEIGHTS_NAME).is_file()
    saved = json.loads((folder / CONFIG_NAME).read_text())
    assert saved == {
        "type": "bottleneck",
        "num_layers": 3,
        "size": 8,
        "activation": "silu",
        "hidden_size": 64,
    }

    fresh = load_bottleneck_adapters(tiny_llama(), folder)
    with torch.no_grad():
        assert torch.equal(fresh(input_ids=tokens).logits, trained)
    with pytest.raises(ValueError, match="saved with size 8, not 4"):
        load_bottleneck_adapters(tiny_llama(), folder, size=4)


@pytest.mark.slow
def test_loading_from_a_folder_without_adapters_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a bottleneck adapter folder"):
        load_bottleneck_adapters(tiny_llama(), tmp_path)


@pytest.mark.slow
def test_blocks_are_found_generically_or_refused_clearly():
    model = tiny_llama()
    assert find_decoder_blocks(model) == ("model.layers", model.model.layers)

    class Custom(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.heads = torch.nn.ModuleList([torch.nn.Linear(2, 2)])
            self.blocks = torch.nn.ModuleList([torch.nn.Linear(2, 2) for _ in range(4)])

    name, blocks = find_decoder_blocks(Custom())
    assert name == "blocks" and len(blocks) == 4
    with pytest.raises(ValueError, match="no list of decoder blocks"):
        find_decoder_blocks(torch.nn.Linear(2, 2))
