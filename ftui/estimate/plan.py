"""The estimate a user sees before training: counts, memory, time, cost, fits, fixes, compare.

`estimate_run` ties the pieces together for one config: exact parameter counts on the meta
device (ftui.params), peak memory by component (memory.py), time and cost (speed.py), a
fits/doesn't-fit verdict for every catalog GPU (and this machine), and when it does not fit,
the concrete changes that make it fit. What a method is (how it stores and trains weights)
comes from its catalog entry, `ftui.methods.METHODS`.
"""

from __future__ import annotations

import copy
import functools
import os
from dataclasses import dataclass, field
from typing import Any

from ftui.config import ConfigError, FtuiConfig
from ftui.estimate.arch import LINEAR_NAMES, Architecture
from ftui.estimate.assumptions import assumptions
from ftui.estimate.gpus import CATALOG, GPU, local_gpu
from ftui.estimate.memory import MemoryEstimate, TrainingSetup, estimate_memory
from ftui.estimate.speed import TimeEstimate, estimate_time
from ftui.estimate.steps import epoch_steps
from ftui.methods import METHODS, MethodInfo
from ftui.runs.memory_choices import (
    attention_kernel,
    offloads_activations,
    padding_free_rows,
)


@dataclass
class Estimate:
    method: str
    device: str
    total_params: int
    trainable_params: int
    memory: MemoryEstimate
    time: TimeEstimate
    fits: dict[str, bool] = field(default_factory=dict)
    suggestions: list[str] = field(default_factory=list)
    assumptions: list[str] = field(default_factory=list)  # what the model of the run assumes

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "device": self.device,
            "total_params": self.total_params,
            "trainable_params": self.trainable_params,
            "peak_memory_bytes": self.memory.peak_bytes,
            "required_memory_bytes": self.memory.required_bytes(),
            "components": dict(self.memory.components),
            "seconds_per_step": round(self.time.seconds_per_step, 4),
            "tokens_per_second": round(self.time.tokens_per_second, 1),
            "steps_per_epoch": self.time.steps_per_epoch,
            "seconds_per_epoch": round(self.time.seconds_per_epoch, 1),
            "cost_per_epoch": round(self.time.cost_per_epoch, 4),
            "price_per_hour": self.time.price_per_hour,
            "fits": dict(self.fits),
            "suggestions": list(self.suggestions),
            "assumptions": list(self.assumptions),
        }


def training_setup(
    config: FtuiConfig, trainable: int, device: str, longest_row_tokens: int = 0
) -> TrainingSetup:
    """The memory-relevant facts of a config on a device (bf16 on GPUs that have it).

    `longest_row_tokens` (from the config's dataset, 0 if unknown) shortens the batch: rows of
    similar length share a batch, padded to the longest, so the longest batch is the dataset's
    longest rows. Packed rows (domain-adaptive training) always fill the max length.
    """
    method, info = config.method, METHODS[config.method.name]
    targets = (
        LINEAR_NAMES
        if method.target_modules.strip() == "all-linear"
        else tuple(t.strip() for t in method.target_modules.split(",") if t.strip())
    )
    if device == "cuda":
        param_bytes = 2 if config.model.dtype in ("auto", "bfloat16", "float16") else 4
    else:
        param_bytes = 2 if config.model.dtype in ("bfloat16", "float16") else 4
    # the kernel the trainer will load: flash_attention_2 for auto where it is installed
    attention = attention_kernel(config, device, "bfloat16" if param_bytes == 2 else "float32")
    return TrainingSetup(
        method=method.name,
        trainable_params=trainable,
        batch_size=config.train.batch_size,
        seq_len=batch_tokens(config, longest_row_tokens),
        gradient_checkpointing=config.train.gradient_checkpointing,
        optimizer=config.train.optimizer,
        attn_implementation=attention,
        device=device,
        param_bytes=param_bytes,
        lora_targets=targets,
        lora_dropout=method.lora_dropout,
        double_quant=method.double_quant,
        kbit_upcast=method.kbit_upcast,
        # TRL casts a quantized model's adapters to bf16 (the QLoRA recipe); others stay fp32
        adapter_fp32=not info.quantized,
        activation_offload=offloads_activations(config, device),
        virtual_tokens=method.num_virtual_tokens if info.virtual_tokens else 0,
        trained_top_layers=(
            getattr(method, info.top_layers_setting) if info.top_layers_setting else None
        ),
    )


def batch_tokens(config: FtuiConfig, longest_row_tokens: int = 0) -> int:
    """Tokens per row of the longest batch: the max length, or the longest row when shorter."""
    if longest_row_tokens <= 0 or config.method.objective == "domain":
        return config.data.max_length
    return min(config.data.max_length, longest_row_tokens)


def batching(config: FtuiConfig, setup: TrainingSetup) -> str:
    """How the trainer makes batches of this config's rows (an assumptions.BATCHING key)."""
    if config.method.objective == "domain":
        return "packed"
    if padding_free_rows(config, setup.device, setup.attn_implementation):
        return "joined"
    return "padded"


def time_on(
    gpu: GPU | None,
    arch: Architecture,
    setup: TrainingSetup,
    config: FtuiConfig,
    price_per_hour: float | None = None,
    dataset_rows: int = 0,
    dataset_tokens: int = 0,
) -> TimeEstimate:
    """Time and cost of this config's steps on `gpu` (None = this CPU), and of an epoch."""
    return estimate_time(
        arch,
        setup,
        gpu,
        price_per_hour,
        steps_per_epoch=epoch_steps(config, dataset_rows, dataset_tokens),
        accumulation=config.train.gradient_accumulation,
        processes=config.train.num_processes,
    )


def estimate_run(
    config: FtuiConfig,
    hf_config: Any,
    *,
    device: str = "cuda",
    gpu: GPU | None = None,
    dataset_tokens: int = 0,
    price_per_hour: float | None = None,
    with_suggestions: bool = True,
    dataset_rows: int = 0,
    longest_row_tokens: int = 0,
) -> Estimate:
    """Estimate one config; `gpu` (default H100) sets time and cost when device is cuda.
    `longest_row_tokens` is the dataset's longest example (0: every row at the max length)."""
    from ftui.params import count_parameters

    if not METHODS[config.method.name].trains:
        raise ValueError(f"{config.method.name} trains nothing: there is nothing to estimate")
    config.check()
    arch = Architecture.from_hf_config(hf_config)
    counts = count_parameters(hf_config, config)
    target = gpu or _default_gpu(device)
    setup = training_setup(config, counts.trainable, device, longest_row_tokens)
    memory = estimate_memory(arch, setup)
    time = time_on(
        target if device == "cuda" else None,
        arch,
        setup,
        config,
        price_per_hour,
        dataset_rows,
        dataset_tokens,
    )
    estimate = Estimate(
        method=config.method.name,
        device=device,
        total_params=counts.total,
        trainable_params=counts.trainable,
        memory=memory,
        time=time,
        assumptions=assumptions(setup, batching(config, setup)),
    )
    if device == "cpu":  # a CPU run is judged against this machine's RAM, not GPUs
        ram = machine_ram_bytes()
        estimate.fits = {f"this machine: {ram / 1e9:.0f} GB RAM": memory.required_bytes() <= ram}
    else:
        estimate.fits = {g.name: memory.required_bytes() <= g.memory_bytes for g in gpus_to_judge()}
    if with_suggestions and target and not memory.required_bytes() <= target.memory_bytes:
        estimate.suggestions = suggest_fixes(config, hf_config, target)
    return estimate


def _default_gpu(device: str) -> GPU | None:
    if device != "cuda":
        return None
    return local_gpu() or next(g for g in CATALOG if g.name.startswith("H100"))


def machine_ram_bytes() -> int:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


@functools.lru_cache(maxsize=1)
def gpus_to_judge() -> tuple[GPU, ...]:
    here = local_gpu()
    return (*CATALOG, here) if here else CATALOG


def suggest_fixes(config: FtuiConfig, hf_config: Any, gpu: GPU) -> list[str]:
    """Single changes, the largest batch that fits, then everything together."""
    fixes = []
    for label, change in _candidate_changes(config):
        needed = _required_after(config, hf_config, gpu, change)
        if needed is not None and needed <= gpu.memory_bytes:
            fixes.append(f"{label} -> needs {needed / 1e9:.1f} GB")
    batch = config.train.batch_size // 2
    while batch >= 1:
        needed = _required_after(
            config, hf_config, gpu, lambda c, b=batch: setattr(c.train, "batch_size", b)
        )
        if needed is not None and needed <= gpu.memory_bytes:
            fixes.append(
                f"batch size {batch} (raise gradient accumulation to keep the "
                f"effective batch) -> needs {needed / 1e9:.1f} GB"
            )
            break
        batch //= 2
    return fixes


def _required_after(config: FtuiConfig, hf_config: Any, gpu: GPU, change) -> int | None:
    changed = copy.deepcopy(config)
    change(changed)
    try:
        estimate = estimate_run(changed, hf_config, device="cuda", gpu=gpu, with_suggestions=False)
    except ConfigError:  # e.g. prefix tuning cannot use gradient checkpointing
        return None
    return estimate.memory.required_bytes()


def _shrinks_with_qlora(method: MethodInfo) -> bool:
    """QLoRA trains no more than this method, and stores the base in 4 bits where it does not."""
    return method.trains_base or (method.lora and method.quantized_bits != 4)


def _candidate_changes(config: FtuiConfig):
    train, method, info = config.train, config.method, METHODS[config.method.name]
    if not train.gradient_checkpointing and info.gradient_checkpointing:
        yield (
            "turn on gradient checkpointing",
            lambda c: setattr(c.train, "gradient_checkpointing", True),
        )
    if info.trains_base:
        yield "switch to LoRA", lambda c: setattr(c.method, "name", "lora")
    if _shrinks_with_qlora(info):
        yield "switch to QLoRA 4-bit", lambda c: setattr(c.method, "name", "qlora")
    if info.lora and method.lora_dropout > 0:
        yield "set LoRA dropout to 0", lambda c: setattr(c.method, "lora_dropout", 0.0)
    if train.optimizer == "adamw_torch":
        yield "use the 8-bit AdamW optimizer", lambda c: setattr(c.train, "optimizer", "adamw_8bit")
    if config.data.max_length > 256:
        half = config.data.max_length // 2
        yield f"halve the max length to {half}", lambda c: setattr(c.data, "max_length", half)

    def everything(c: FtuiConfig) -> None:
        if _shrinks_with_qlora(METHODS[c.method.name]):
            c.method.name = "qlora"
        c.train.gradient_checkpointing = METHODS[c.method.name].gradient_checkpointing
        c.train.batch_size = 1
        c.train.optimizer = "adamw_8bit"

    yield "QLoRA + checkpointing + batch 1 + 8-bit AdamW", everything
