"""Loading models for real: conversion cache, device/dtype choice, the one loading path for
answering and for training, and a chat reply through the Playground's comparison."""

from __future__ import annotations

import json
import shutil
import time
from types import SimpleNamespace

import pytest
import torch
from conftest import tiny_triage_config

from ftui.config import ModelConfig
from ftui.models import (
    CONVERTED_MARKER,
    ModelLoadError,
    bundled_model_dir,
    choose_device,
    choose_dtype,
    load_model,
    prepare_bundled_model,
    resolve_model_dir,
    with_pad_token,
)
from ftui.runs.rundir import RunDir

QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


def run_with_untrained_adapter(folder, model="default") -> RunDir:
    """A run folder on `model` holding a freshly initialised LoRA adapter, as training saves
    it: its fine-tuned answers equal the base model's (LoRA's B starts at zero)."""
    from peft import get_peft_model

    from ftui.translate import peft_config

    config = tiny_triage_config(folder, model=model)
    run = RunDir(folder / "run")
    run.write_config(config)
    base = load_model(config.model, "cpu").model
    get_peft_model(base, peft_config(config.method, base.config)).save_pretrained(run.adapter)
    return run


@pytest.mark.slow
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


def test_a_tokenizer_without_a_pad_token_pads_with_its_end_token():
    tokenizer = with_pad_token(SimpleNamespace(pad_token=None, eos_token="</s>"))
    assert tokenizer.pad_token == "</s>"
    assert with_pad_token(SimpleNamespace(pad_token="<pad>", eos_token="</s>")).pad_token == "<pad>"


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU error")
def test_asking_for_cuda_without_a_gpu_is_a_clear_error():
    with pytest.raises(ModelLoadError, match="no CUDA GPU"):
        choose_device("cuda")


@pytest.mark.slow
def test_bundled_model_answers_a_chat_prompt_on_cpu():
    loaded = load_model(ModelConfig(device="cpu"))
    assert loaded.device == "cpu" and loaded.dtype == torch.float32
    assert next(loaded.model.parameters()).dtype == torch.float32
    assert not loaded.model.training and loaded.tokenizer.pad_token is not None


@pytest.mark.slow
def test_playground_comparison_answers_a_chat_prompt_on_cpu(tmp_path):
    from ftui.evaluate.compare import Comparison

    compare = Comparison.load(run_with_untrained_adapter(tmp_path), device="cpu")
    try:
        base, tuned = (compare.generate([QUESTION], v, 24)[0] for v in ("base", "fine_tuned"))
    finally:
        compare.close()
    assert "Paris" in base.text and base.new_tokens > 0
    assert tuned.text == base.text  # an untrained adapter changes nothing


@pytest.mark.slow
def test_training_loads_through_the_same_path_with_the_translators_settings():
    from ftui.config import FtuiConfig, MethodConfig
    from ftui.translate import model_load_kwargs

    config = FtuiConfig(model=ModelConfig(device="cpu"), method=MethodConfig(name="qlora"))
    loaded = load_model(config.model, "cpu", model_load_kwargs(config, "cpu"))
    assert loaded.model.is_loaded_in_4bit and loaded.dtype == torch.float32
    assert loaded.tokenizer.pad_token is not None


@pytest.mark.slow
def test_unreachable_hub_id_gives_a_clear_error_offline():
    with pytest.raises(ModelLoadError) as error:
        load_model(ModelConfig(name_or_path="nobody-here/no-such-model", device="cpu"))
    message = str(error.value)
    assert "nobody-here/no-such-model" in message and "HF_HUB_OFFLINE" in message
    assert "local folder" in message


def test_local_folder_without_config_is_refused(tmp_path):
    with pytest.raises(ModelLoadError, match="config.json"):
        resolve_model_dir(str(tmp_path))


@pytest.mark.slow
def test_a_local_folder_that_fails_to_load_says_which_folder(tmp_path, tiny_model_dir):
    """No weights file: the library's reason, about that folder (not the Hub's advice)."""
    for path in tiny_model_dir.iterdir():
        if path.suffix != ".safetensors":
            shutil.copy(path, tmp_path)
    with pytest.raises(ModelLoadError, match="Could not load the model in") as error:
        load_model(ModelConfig(name_or_path=str(tmp_path), device="cpu"))
    assert str(tmp_path) in str(error.value) and "Hub" not in str(error.value)


@pytest.mark.slow
def test_local_model_folder_loads_by_path(tmp_path):
    """Any local folder works: here a tiny random Llama saved as safetensors, answering
    through the Playground's comparison."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from ftui.evaluate.compare import Comparison
    from ftui.models import load_tokenizer

    config = LlamaConfig(
        vocab_size=49152,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
    )
    folder = tmp_path / "tiny"
    LlamaForCausalLM(config).save_pretrained(folder)
    load_tokenizer("default").save_pretrained(folder)
    compare = Comparison.load(run_with_untrained_adapter(tmp_path, model=folder), device="cpu")
    try:
        assert compare.base.get_base_model().config.num_hidden_layers == 2
        answer = compare.generate([[{"role": "user", "content": "hi"}]], "fine_tuned", 4)[0]
    finally:
        compare.close()
    assert isinstance(answer.text, str) and answer.new_tokens > 0
