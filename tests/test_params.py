"""Meta-device parameter counts against real instantiated models, and architecture loading."""

from __future__ import annotations

import json
import time

import pytest
import torch
from conftest import TINY_LLAMA as TINY
from transformers import AutoModelForCausalLM, LlamaConfig, Qwen2Config

from ftui.config import FtuiConfig, MethodConfig
from ftui.models import ModelLoadError
from ftui.params import ParamCounts, count_parameters, load_architecture
from ftui.translate import apply_method, model_load_kwargs

BUNDLED_TOTAL = 134_515_008  # SmolLM2-135M: tied embeddings counted once

METHOD_CASES = {
    "full": ("full", {}),
    "freeze": ("freeze", {"freeze_trainable_layers": 2}),
    "lora": ("lora", {}),
    "dora": ("lora", {"use_dora": True, "target_modules": "q_proj,k_proj,down_proj"}),
    "rslora": ("lora", {"use_rslora": True, "lora_r": 4}),
    "ia3": ("ia3", {}),
    "prefix": ("prefix", {}),
    "prompt": ("prompt", {"num_virtual_tokens": 5}),
    "llama_adapter": ("llama_adapter", {"adapter_len": 4}),
    "bottleneck": ("bottleneck", {"bottleneck_size": 16}),
}


def ftui_config(name: str, **method) -> FtuiConfig:
    return FtuiConfig(method=MethodConfig(name=name, **method))


def real_counts(model) -> tuple[int, int]:
    params = list(model.parameters())  # tied weights appear once
    return sum(p.numel() for p in params), sum(p.numel() for p in params if p.requires_grad)


@pytest.mark.parametrize("tied", [False, True], ids=["untied", "tied"])
@pytest.mark.parametrize("case", list(METHOD_CASES))
def test_meta_count_matches_the_real_model(case, tied):
    hf_config = LlamaConfig(**TINY, tie_word_embeddings=tied)
    name, method = METHOD_CASES[case]
    config = ftui_config(name, **method)
    real_base = AutoModelForCausalLM.from_config(hf_config)
    base_total, _ = real_counts(real_base)
    model = apply_method(real_base, config)
    total, trainable = real_counts(model)

    counts = count_parameters(hf_config, config)
    assert (counts.total, counts.trainable, counts.base_total) == (total, trainable, base_total)
    assert 0 < counts.trainable <= counts.total
    if hasattr(model, "get_nb_trainable_parameters"):
        assert model.get_nb_trainable_parameters() == (trainable, total)


@pytest.mark.parametrize("name", ["qlora", "lora_8bit"])
def test_quantized_methods_count_logical_parameters_like_peft(name, tmp_path):
    hf_config = LlamaConfig(**TINY)
    AutoModelForCausalLM.from_config(hf_config).save_pretrained(tmp_path)
    config = ftui_config(name)
    quantized = AutoModelForCausalLM.from_pretrained(tmp_path, **model_load_kwargs(config, "cpu"))
    model = apply_method(quantized, config)
    layer_types = {type(m).__name__ for m in model.modules()}
    assert layer_types & {"Linear4bit", "Linear8bitLt"}, "the base must stay quantized"

    counts = count_parameters(hf_config, config)
    assert model.get_nb_trainable_parameters() == (counts.trainable, counts.total)
    lora = count_parameters(hf_config, ftui_config("lora"))
    assert (counts.total, counts.trainable) == (lora.total, lora.trainable)


def test_few_shot_trains_nothing():
    counts = count_parameters(LlamaConfig(**TINY), ftui_config("few_shot"))
    assert counts.trainable == 0 and counts.total == counts.base_total
    assert counts.trainable_percent == 0.0


def test_trainable_percent():
    assert ParamCounts(total=200, trainable=3, base_total=190).trainable_percent == 1.5


# ---------------------------------------------------------------- the bundled model


@pytest.fixture(scope="module")
def bundled():
    return load_architecture("default")


def test_bundled_model_total_and_full_counts(bundled):
    counts = count_parameters(bundled, ftui_config("full"))
    assert counts.base_total == counts.total == counts.trainable == BUNDLED_TOTAL


def test_bundled_lora_count_has_the_closed_form(bundled):
    hidden, inter = bundled.hidden_size, bundled.intermediate_size
    q_out = bundled.num_attention_heads * bundled.head_dim
    kv_out = bundled.num_key_value_heads * bundled.head_dim
    shapes = [  # (in, out) of the 7 Llama projections
        (hidden, q_out),
        (hidden, kv_out),
        (hidden, kv_out),
        (q_out, hidden),
        (hidden, inter),
        (hidden, inter),
        (inter, hidden),
    ]
    r = 16
    expected = bundled.num_hidden_layers * sum(r * (i + o) for i, o in shapes)
    counts = count_parameters(bundled, ftui_config("lora", lora_r=r, target_modules="all-linear"))
    assert counts.trainable == expected == 4_884_480
    assert counts.total == BUNDLED_TOTAL + expected


@pytest.mark.slow  # reading the 98 MB GGUF's metadata takes ~5 s on 2 cores
def test_bundled_architecture_read_from_the_gguf_before_conversion(monkeypatch, tmp_path, bundled):
    monkeypatch.setenv("FTUI_CACHE_DIR", str(tmp_path))  # nothing converted here
    from_gguf = load_architecture("default")
    assert not any(tmp_path.iterdir()), "reading the architecture must not convert the model"
    for name in ("lora", "prefix", "freeze"):
        config = ftui_config(name)
        assert count_parameters(from_gguf, config) == count_parameters(bundled, config)


@pytest.mark.parametrize(
    ("name", "trainable"),
    [
        ("prefix", 20 * 30 * 2 * 192),  # virtual tokens x layers x (key, value) x kv width
        ("prompt", 20 * 576),  # virtual tokens x hidden size
        ("llama_adapter", 8 * (10 * 576 + 1)),  # layers x (adapter_len x hidden + gate)
    ],
)
def test_bundled_counts_of_the_small_adapters_have_their_closed_forms(bundled, name, trainable):
    counts = count_parameters(bundled, ftui_config(name))
    assert counts.trainable == trainable
    assert counts.base_total == BUNDLED_TOTAL and counts.total == BUNDLED_TOTAL + trainable


def test_a_method_the_architecture_lacks_is_a_clear_error():
    with pytest.raises(ValueError, match="qwen2"):
        count_parameters(Qwen2Config(**TINY), ftui_config("llama_adapter"))


def test_an_8b_config_counts_in_seconds():
    llama3_8b = LlamaConfig(
        vocab_size=128256,
        hidden_size=4096,
        intermediate_size=14336,
        num_hidden_layers=32,
        num_attention_heads=32,
        num_key_value_heads=8,
    )
    started = time.perf_counter()
    counts = count_parameters(llama3_8b, ftui_config("lora"))
    assert time.perf_counter() - started < 3.0
    assert counts.base_total == 8_030_261_248
    assert counts.trainable == 41_943_040


# ---------------------------------------------------------------- loading architectures


def test_a_config_json_only_folder_and_the_file_itself_both_work(tmp_path):
    LlamaConfig(**TINY).save_pretrained(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["config.json"]
    from_folder = load_architecture(str(tmp_path))
    from_file = load_architecture(str(tmp_path / "config.json"))
    assert from_folder.hidden_size == from_file.hidden_size == 64
    assert from_file.model_type == "llama"
    config = ftui_config("lora")
    assert count_parameters(from_file, config) == count_parameters(LlamaConfig(**TINY), config)


def test_a_folder_without_config_json_is_a_clear_error(tmp_path):
    with pytest.raises(ModelLoadError, match="no config.json here"):
        load_architecture(str(tmp_path))


def test_a_config_without_model_type_is_a_clear_error(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"hidden_size": 64}))
    with pytest.raises(ModelLoadError, match="not a usable model config.json"):
        load_architecture(str(path))


def test_an_unknown_hub_id_offline_is_a_clear_error():
    with pytest.raises(ModelLoadError, match=r"HF_HUB_OFFLINE=1.*config\.json"):
        load_architecture("nobody-here/no-such-model-xyz")


def test_the_meta_device_does_not_leak_out_of_counting():
    count_parameters(LlamaConfig(**TINY), ftui_config("lora"))
    assert torch.empty(0).device.type == "cpu"
