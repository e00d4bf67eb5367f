"""Loading the bundled model for real: conversion cache, device/dtype choice, a chat reply."""

from __future__ import annotations

import json
import time

import pytest
import torch

from ftui.config import ModelConfig
from ftui.models import (
    CONVERTED_MARKER,
    ModelLoadError,
    bundled_model_dir,
    choose_device,
    choose_dtype,
    generate_reply,
    load_model,
    prepare_bundled_model,
    resolve_model_dir,
)

pytestmark = pytest.mark.slow


def test_bundled_model_is_converted_once_into_safetensors():
    target = prepare_bundled_model()
    marker = target / CONVERTED_MARKER
    assert (target / "model.safetensors").is_file()
    assert json.loads(marker.read_text())["name"] == "SmolLM2-135M-Instruct"
    before = marker.stat().st_mtime_ns
    calls = []
    started = time.perf_counter()
    again = prepare_bundled_model(progress=lambda stage, fraction: calls.append(stage))
    assert again == target == bundled_model_dir()
    assert marker.stat().st_mtime_ns == before, "a second start must not convert again"
    assert calls == [], "no conversion progress is reported when the cache is ready"
    assert time.perf_counter() - started < 1.0


def test_cpu_defaults_to_float32():
    assert choose_device("cpu") == "cpu"
    assert choose_dtype("auto", "cpu") == torch.float32
    assert choose_dtype("bfloat16", "cpu") == torch.bfloat16


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU error")
def test_asking_for_cuda_without_a_gpu_is_a_clear_error():
    with pytest.raises(ModelLoadError, match="no CUDA GPU"):
        choose_device("cuda")


def test_bundled_model_answers_a_chat_prompt_on_cpu():
    loaded = load_model(ModelConfig(device="cpu"))
    assert loaded.device == "cpu" and loaded.dtype == torch.float32
    assert next(loaded.model.parameters()).dtype == torch.float32
    reply = generate_reply(
        loaded, [{"role": "user", "content": "What is the capital of France?"}], 24
    )
    assert "Paris" in reply


def test_unreachable_hub_id_gives_a_clear_error_offline():
    with pytest.raises(ModelLoadError) as error:
        load_model(ModelConfig(name_or_path="nobody-here/no-such-model", device="cpu"))
    message = str(error.value)
    assert "nobody-here/no-such-model" in message and "HF_HUB_OFFLINE" in message
    assert "local folder" in message


def test_local_folder_without_config_is_refused(tmp_path):
    with pytest.raises(ModelLoadError, match="config.json"):
        resolve_model_dir(str(tmp_path))


def test_local_model_folder_loads_by_path(tmp_path):
    """Any local folder works: here a tiny random Llama saved as safetensors."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from ftui.models import load_tokenizer

    config = LlamaConfig(
        vocab_size=49152,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
    )
    LlamaForCausalLM(config).save_pretrained(tmp_path)
    load_tokenizer("default").save_pretrained(tmp_path)
    loaded = load_model(ModelConfig(name_or_path=str(tmp_path), device="cpu"))
    assert loaded.model.config.num_hidden_layers == 2
    assert isinstance(generate_reply(loaded, [{"role": "user", "content": "hi"}], 4), str)
