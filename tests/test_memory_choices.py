"""The GPU memory choices (ftui.runs.memory_choices), decided on CPU with the real estimator
and the bundled model's real architecture, and the padding-free batches checked on real tiny
models: a joined batch gives the padded batch's loss for the methods that get it, and TRL's
own truncation is what the trainer does to padding-free rows.
"""

from __future__ import annotations

import copy

import pytest
import torch
from conftest import TINY_LLAMA
from transformers import AutoModelForCausalLM, LlamaConfig
from trl import SFTConfig, SFTTrainer
from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

from ftui.config import (
    DataConfig,
    FtuiConfig,
    MethodConfig,
    ModelConfig,
    TrainConfig,
    config_to_dict,
)
from ftui.estimate.gpus import GPU
from ftui.estimate.plan import estimate_run
from ftui.methods import METHODS
from ftui.runs.memory_choices import (
    LONG_CONTEXT_TOKENS,
    attention_kernel,
    choose_memory_settings,
    flash_attention_installed,
    offloads_activations,
    padding_free_rows,
    truncate_rows,
)
from ftui.translate import apply_method

GB = 10**9


@pytest.fixture(scope="module")
def bundled():
    """SmolLM2-135M's real architecture (config only, no weights)."""
    from ftui.params import load_architecture

    return load_architecture("default")


def needed(config: FtuiConfig, hf_config, checkpointing: bool) -> int:
    changed = copy.deepcopy(config)
    changed.train.gradient_checkpointing = checkpointing
    gpu = GPU("test", 80 * GB, 100.0, True, 0.0)
    estimate = estimate_run(changed, hf_config, device="cuda", gpu=gpu, with_suggestions=False)
    return estimate.memory.required_bytes()


def lora(**train) -> FtuiConfig:
    return FtuiConfig(train=TrainConfig(**train), data=DataConfig(max_length=1024))


# ---------------------------------------------------------------- checkpointing and offloading


def test_checkpointing_is_turned_on_when_the_run_fits_only_with_it(bundled):
    config = lora()
    without, with_it = needed(config, bundled, False), needed(config, bundled, True)
    assert with_it < without, "checkpointing must save memory in the estimate"
    free = (without + with_it) // 2
    choice = choose_memory_settings(config, bundled, free)
    assert choice.config.train.gradient_checkpointing
    assert choice.config.train.activation_offloading == "auto", "it fits with checkpointing"
    assert not config.train.gradient_checkpointing, "the user's config is left as written"
    (note,) = choice.notes
    assert note.startswith("Gradient checkpointing turned on")
    for size in (without, with_it, free):
        assert f"{size / 1e9:.1f} GB" in note
    assert "train.auto_checkpointing: false" in note


@pytest.mark.parametrize(
    ("config", "why"),
    [
        (lora(auto_checkpointing=False), "auto checkpointing is off"),
        (FtuiConfig(method=MethodConfig(name="prefix")), "peft refuses checkpointing"),
        (lora(accelerate_config="fsdp.yaml"), "the estimate is of one unsharded device"),
    ],
)
def test_nothing_changes_when_checkpointing_may_not_be_turned_on(bundled, config, why):
    choice = choose_memory_settings(config, bundled, 1 * GB)  # far too little for any of them
    assert config_to_dict(choice.config) == config_to_dict(config), why
    assert choice.notes == (), why


def test_nothing_changes_when_the_run_fits(bundled):
    config = lora()
    choice = choose_memory_settings(config, bundled, needed(config, bundled, False) + GB)
    assert config_to_dict(choice.config) == config_to_dict(config)
    assert choice.notes == ()


def test_offloading_is_turned_on_when_even_checkpointing_does_not_fit(bundled):
    config = lora()
    free = needed(config, bundled, True) // 2
    choice = choose_memory_settings(config, bundled, free)
    train = choice.config.train
    assert train.gradient_checkpointing and train.activation_offloading == "on"
    assert len(choice.notes) == 2 and choice.notes[1].startswith("Activation offloading turned")
    assert offloads_activations(choice.config, "cuda")

    config.train.activation_offloading = "off"
    kept = choose_memory_settings(config, bundled, free)
    assert kept.config.train.activation_offloading == "off" and len(kept.notes) == 1


def test_long_rows_with_checkpointing_offload_and_the_log_says_so(bundled):
    config = lora(gradient_checkpointing=True)
    config.data.max_length = LONG_CONTEXT_TOKENS
    choice = choose_memory_settings(config, bundled, needed(config, bundled, True) + GB)
    assert choice.config.train.activation_offloading == "auto"  # the rule, not the estimate
    (note,) = choice.notes
    assert note.startswith("Activation offloading on: max length 16,384")


@pytest.mark.parametrize(
    ("setting", "checkpointing", "max_length", "on_gpu"),
    [
        ("auto", True, LONG_CONTEXT_TOKENS, True),
        ("auto", True, LONG_CONTEXT_TOKENS - 1, False),
        ("auto", False, LONG_CONTEXT_TOKENS, False),  # would ship every activation
        ("on", False, 512, True),
        ("off", True, LONG_CONTEXT_TOKENS, False),
    ],
)
def test_offloading_rule_and_never_on_cpu(setting, checkpointing, max_length, on_gpu):
    config = lora(gradient_checkpointing=checkpointing, activation_offloading=setting)
    config.data.max_length = max_length
    assert offloads_activations(config, "cuda") is on_gpu
    assert offloads_activations(config, "cuda:1") is on_gpu
    assert offloads_activations(config, "cpu") is False


# ---------------------------------------------------------------- attention and padding-free


def installed() -> bool:
    return True


def missing() -> bool:
    return False


@pytest.mark.parametrize(
    ("device", "dtype", "flash", "kernel"),
    [
        ("cuda", torch.bfloat16, installed, "flash_attention_2"),
        ("cuda:0", torch.float16, installed, "flash_attention_2"),
        ("cuda", torch.bfloat16, missing, "sdpa"),
        ("cuda", torch.float32, installed, "sdpa"),  # flash attention computes in 16 bits
        ("cpu", torch.float32, installed, "sdpa"),
        ("cpu", torch.bfloat16, installed, "sdpa"),
    ],
)
def test_auto_attention_is_flash_only_on_a_16_bit_gpu_with_flash_attn_installed(
    device, dtype, flash, kernel
):
    assert attention_kernel(FtuiConfig(), device, dtype, flash) == kernel


def test_a_named_kernel_is_kept_and_fp32_quantized_compute_gets_sdpa():
    for name in ("eager", "sdpa", "flash_attention_2"):
        config = FtuiConfig(model=ModelConfig(attn_implementation=name))
        assert attention_kernel(config, "cpu", torch.float32, installed) == name
    fp32_layers = FtuiConfig(method=MethodConfig(name="qlora", compute_dtype="float32"))
    assert attention_kernel(fp32_layers, "cuda", torch.bfloat16, installed) == "sdpa"


def test_the_real_lookup_says_what_is_installed_here():
    import importlib.util

    assert flash_attention_installed() is (importlib.util.find_spec("flash_attn") is not None)
    assert attention_kernel(FtuiConfig(), "cuda", torch.bfloat16) == (
        "flash_attention_2" if flash_attention_installed() else "sdpa"
    )


@pytest.mark.parametrize("name", [n for n, m in METHODS.items() if m.trains])
def test_padding_free_rows_for_every_method_but_virtual_tokens(name):
    config = FtuiConfig(method=MethodConfig(name=name))
    expected = not METHODS[name].virtual_tokens
    assert padding_free_rows(config, "cuda", "flash_attention_2") is expected
    assert not padding_free_rows(config, "cuda", "sdpa")
    assert not padding_free_rows(config, "cpu", "flash_attention_2")


def test_no_padding_free_rows_for_packed_text_dpo_or_one_row_batches():
    flash = "flash_attention_2"
    for objective in ("domain", "dpo"):
        config = FtuiConfig(method=MethodConfig(objective=objective))
        assert not padding_free_rows(config, "cuda", flash)
    assert not padding_free_rows(lora(batch_size=1), "cuda", flash)
    assert padding_free_rows(lora(batch_size=2), "cuda", flash)


PADDING_FREE_CASES = {
    "lora": {},
    "ia3": {},
    "llama_adapter": {"adapter_len": 4, "adapter_layers": 2},
    "bottleneck": {"bottleneck_size": 8},
    "prefix": {"num_virtual_tokens": 4},
    "prompt": {"num_virtual_tokens": 4},
}


@pytest.mark.parametrize("name", list(PADDING_FREE_CASES))
def test_joined_rows_give_the_padded_loss_exactly_where_padding_free_is_used(name):
    """TRL's padding-free batch on a tiny Llama (SDPA keeps the joined rows apart by their
    position ids, as flash attention does on a GPU): the same loss as the padded batch for
    the methods that get padding-free rows, a different one for virtual-token methods."""
    config = FtuiConfig(method=MethodConfig(name=name, **PADDING_FREE_CASES[name]))
    torch.manual_seed(0)
    model = apply_method(AutoModelForCausalLM.from_config(LlamaConfig(**TINY_LLAMA)), config)
    for param in model.parameters():
        if param.requires_grad:  # adapters away from their do-nothing start
            torch.nn.init.normal_(param, std=0.1)
    rows = [torch.randint(1, 256, (length,)).tolist() for length in (5, 11, 8)]
    rows = [{"input_ids": ids, "labels": ids} for ids in rows]
    padded = DataCollatorForLanguageModeling(pad_token_id=0)(rows)
    joined = DataCollatorForLanguageModeling(pad_token_id=0, padding_free=True)(rows)
    assert joined["input_ids"].shape == (1, 24) and "attention_mask" not in joined
    model.eval()
    with torch.no_grad():
        losses = [model(**batch, use_cache=False).loss.item() for batch in (padded, joined)]
    same = abs(losses[0] - losses[1]) < 1e-5
    assert same is padding_free_rows(config, "cuda", "flash_attention_2"), losses


def test_truncating_padding_free_rows_matches_trls_own_truncation(tiny_model_dir, tmp_path):
    """TRL refuses max_length with padding-free rows; `truncate_rows` on the rows TRL prepared
    without it gives what TRL's truncation gives, dropping a row whose prompt fills it."""
    from datasets import Dataset

    rows = Dataset.from_dict(
        {
            "prompt": ["word " * 3, "word " * 30, "word " * 8, "word " * 50],
            "completion": [" yes" * 2, " yes" * 5, " yes" * 9, " yes" * 3],
        }
    )
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)

    def prepared(max_length, padding_free):
        args = SFTConfig(
            output_dir=str(tmp_path), max_length=max_length, padding_free=padding_free,
            use_cpu=True, report_to=[],
        )  # fmt: skip
        return SFTTrainer(model=model, args=args, train_dataset=rows).train_dataset

    with pytest.raises(ValueError, match="max_length"):
        prepared(16, padding_free=True)  # why the trainer truncates the rows itself
    ours = truncate_rows(prepared(None, padding_free=True), 16)
    trls = prepared(16, padding_free=False)
    assert ours["input_ids"] == trls["input_ids"] and ours["labels"] == trls["labels"]
    assert max(len(ids) for ids in ours["input_ids"]) == 16 and len(ours) < len(rows)
    assert truncate_rows(None, 16) is None
