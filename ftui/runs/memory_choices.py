"""The GPU settings ftui picks to need less memory: checkpointing, offloading, attention.

Small decisions, each a plain function of the config (and, where it matters, the estimate,
the GPU's free memory or what is installed), so they are tested on CPU and read the same in
the trainer (ftui.runs.train) and the translator (ftui.translate):

- `choose_memory_settings`: gradient checkpointing turned on when the estimate says the run
  would not fit in the GPU's free memory without it (`train.auto_checkpointing`), and
  activation offloading when it would not fit even with it (`train.activation_offloading`).
  The trainer trains the returned copy; the run's config.yaml stays as the user wrote it.
- `attention_kernel` / `padding_free_rows`: flash_attention_2 with padding-free batches when
  the flash-attn package is installed here (nothing is fetched), SDPA otherwise.
- `offloads_activations`: TRL's activation offloading, on CUDA only.

CPU runs are left exactly as written.
"""

from __future__ import annotations

import copy
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ftui.config import FtuiConfig
from ftui.methods import METHODS

# At this many tokens per row the activations kept at checkpoints dominate GPU memory.
LONG_CONTEXT_TOKENS = 16384
HALF_PRECISION = ("bfloat16", "float16")  # the dtypes flash attention computes in


@dataclass(frozen=True)
class MemoryChoice:
    config: FtuiConfig  # the config to train: a copy, changed where a note says so
    notes: tuple[str, ...] = ()  # one line each, in plain words, for train.log


def choose_memory_settings(config: FtuiConfig, hf_config: Any, free_bytes: int) -> MemoryChoice:
    """The config to train on a GPU with `free_bytes` free, and why it differs, if it does.

    Checkpointing is turned on when it is off, `train.auto_checkpointing` is on, the method
    allows it (peft refuses it for prefix tuning) and the estimate without it is more than
    the free memory; the estimator's own figures (`required_bytes`: peak plus headroom) are
    compared. Activation offloading on `auto` is turned on when checkpointing is on and the
    estimate with it is still more than the free memory. A run with an accelerate config is
    left alone: the estimate is of one unsharded device.
    """
    chosen = copy.deepcopy(config)
    train = chosen.train
    offload_if_needed = train.activation_offloading == "auto" and train.gradient_checkpointing
    if train.accelerate_config or not (_may_turn_checkpointing_on(chosen) or offload_if_needed):
        return MemoryChoice(chosen)  # nothing the estimate could change
    notes = []
    needed = _required_bytes(chosen, hf_config, free_bytes)
    if needed > free_bytes and _may_turn_checkpointing_on(chosen):
        train.gradient_checkpointing = True
        without, needed = needed, _required_bytes(chosen, hf_config, free_bytes)
        notes.append(
            f"Gradient checkpointing turned on for this run: the estimate needs "
            f"{_gb(without)} without it and {_gb(needed)} with it, and the GPU has "
            f"{_gb(free_bytes)} free (train.auto_checkpointing: false keeps it off)."
        )
    if train.activation_offloading == "auto" and train.gradient_checkpointing:
        if needed > free_bytes:
            train.activation_offloading = "on"
            notes.append(
                f"Activation offloading turned on for this run: the estimate needs "
                f"{_gb(needed)} even with gradient checkpointing, and the GPU has "
                f"{_gb(free_bytes)} free; saved activations go to CPU memory."
            )
        elif chosen.data.max_length >= LONG_CONTEXT_TOKENS:
            notes.append(
                f"Activation offloading on: max length {chosen.data.max_length:,} is "
                f"{LONG_CONTEXT_TOKENS:,} tokens or more (train.activation_offloading: off "
                "turns it off)."
            )
    return MemoryChoice(chosen, tuple(notes))


def _may_turn_checkpointing_on(config: FtuiConfig) -> bool:
    train = config.train
    allowed = METHODS[config.method.name].gradient_checkpointing
    return train.auto_checkpointing and not train.gradient_checkpointing and allowed


def _required_bytes(config: FtuiConfig, hf_config: Any, free_bytes: int) -> int:
    """What the estimator says a GPU must have free for this config (peak plus headroom)."""
    from ftui.estimate.gpus import GPU
    from ftui.estimate.plan import estimate_run

    gpu = GPU("this process's GPU", free_bytes, 100.0, True, 0.0)  # memory does not use speed
    estimate = estimate_run(config, hf_config, device="cuda", gpu=gpu, with_suggestions=False)
    return estimate.memory.required_bytes()


def _gb(size: int) -> str:
    return f"{size / 1e9:.1f} GB"


def offloads_activations(config: FtuiConfig, device: str) -> bool:
    """Whether TRL's activation offloading is on: never on CPU (it needs CUDA streams and
    pinned memory); `on` on a GPU; `auto` on a GPU when checkpointing is on and rows are
    long. With checkpointing only one tensor per block is kept for the backward pass, so
    offloading moves a small, predictable amount over PCIe while the GPU recomputes; without
    it every activation would travel and pin as much CPU memory as it saves on the GPU."""
    setting = config.train.activation_offloading
    if not device.startswith("cuda") or setting == "off":
        return False
    if setting == "on":
        return True
    long_rows = config.data.max_length >= LONG_CONTEXT_TOKENS
    return config.train.gradient_checkpointing and long_rows


def flash_attention_installed() -> bool:
    """Whether the flash-attn package is installed here (looked up, not imported or fetched)."""
    return importlib.util.find_spec("flash_attn") is not None


def attention_kernel(
    config: FtuiConfig,
    device: str,
    dtype: Any,
    flash_installed: Callable[[], bool] = flash_attention_installed,
) -> str:
    """The attn_implementation to load the model with. A named kernel is kept; `auto` is
    flash_attention_2 on a GPU computing in bf16/fp16 when flash-attn is installed (its
    varlen kernel is what makes padding-free batches pay), else SDPA."""
    wanted = config.model.attn_implementation
    if wanted != "auto":
        return wanted
    method = config.method
    compute = str(dtype).removeprefix("torch.")
    if METHODS[method.name].quantized and method.compute_dtype != "auto":
        compute = method.compute_dtype  # the 4/8-bit layers' outputs feed attention
    if device.startswith("cuda") and compute in HALF_PRECISION and flash_installed():
        return "flash_attention_2"
    return "sdpa"


def padding_free_rows(config: FtuiConfig, device: str, attention: str) -> bool:
    """Whether SFT batches of rows are padding-free: the rows of a batch joined into one
    sequence, kept apart by position ids and flash attention's varlen kernel, so no step
    computes or stores padding. Only on a GPU with flash_attention_2, for batches of more than
    one row. Not for packed domain text (packing already joins rows), nor for prefix and
    prompt tuning: their virtual tokens go in front of the joined sequence once, and peft
    shifts (prefix) or drops (prompt) the position ids that keep rows apart."""
    return (
        device.startswith("cuda")
        and attention == "flash_attention_2"
        and config.method.objective == "instruction"
        and config.train.batch_size > 1
        and not METHODS[config.method.name].virtual_tokens
    )


def truncate_rows(dataset: Any, max_length: int) -> Any:
    """Cut TRL-prepared rows (input_ids, labels) to `max_length` tokens and drop rows left with
    no label, as TRL does when it truncates. TRL refuses max_length with padding-free rows,
    though its own preparation would truncate them, so the trainer cuts them here. None
    passes through (no validation split)."""
    if dataset is None:
        return None

    def truncate(row: dict[str, Any]) -> dict[str, Any]:
        return {"input_ids": row["input_ids"][:max_length], "labels": row["labels"][:max_length]}

    cut = dataset.map(truncate)
    return cut.filter(lambda row: any(label != -100 for label in row["labels"]))
