"""`ftui estimate`: turn command-line flags into a config, and an estimate into readable text."""

from __future__ import annotations

import argparse

from ftui.config import FtuiConfig, load_config
from ftui.estimate.gpus import find_gpu
from ftui.estimate.plan import Estimate, estimate_run

GB = 1000**3


def config_from_args(args: argparse.Namespace) -> FtuiConfig:
    """A YAML config, then the flags on top of it."""
    config = load_config(args.config) if args.config else FtuiConfig()
    if args.model:
        config.model.name_or_path = args.model
    if args.method:
        config.method.name = args.method
    if args.quant:
        config.method.name = "qlora" if args.quant == "4bit" else "lora_8bit"
    overrides = [
        (config.data, "max_length", args.seq_len),
        (config.train, "batch_size", args.batch_size),
        (config.method, "lora_r", args.lora_r),
        (config.method, "target_modules", args.lora_targets),
        (config.train, "gradient_checkpointing", args.gradient_checkpointing),
        (config.train, "optimizer", args.optimizer),
    ]
    for section, name, value in overrides:
        if value is not None:
            setattr(section, name, value)
    config.check()  # flags are set in place: check every bound again
    return config


def estimate_from_args(args: argparse.Namespace) -> Estimate:
    from ftui.params import load_architecture

    config = config_from_args(args)
    hf_config = load_architecture(config.model.name_or_path, config.model.trust_remote_code)
    gpu = find_gpu(args.gpu) if args.gpu else None
    return estimate_run(
        config,
        hf_config,
        device=args.device,
        gpu=gpu,
        dataset_tokens=args.dataset_tokens,
        price_per_hour=args.price,
    )


def render_estimate(estimate: Estimate) -> str:
    lines = [
        f"method {estimate.method} on {estimate.device}: "
        f"{estimate.trainable_params:,} trainable of {estimate.total_params:,} parameters "
        f"({100 * estimate.trainable_params / estimate.total_params:.3f}%)",
        f"peak memory {estimate.memory.peak_bytes / GB:.2f} GB "
        f"(needs {estimate.memory.required_bytes() / GB:.2f} GB free with runtime overhead):",
    ]
    for name, size in estimate.memory.components.items():
        lines.append(f"  {name:26} {size / GB:8.3f} GB")
    time = estimate.time
    lines.append(f"{time.seconds_per_step:.3f} s/step, {time.tokens_per_second:,.0f} tokens/s")
    if time.steps_per_epoch:
        lines.append(
            f"{time.steps_per_epoch} steps/epoch, {time.seconds_per_epoch / 60:.1f} min, "
            f"${time.cost_per_epoch:.2f} at ${time.price_per_hour:.2f}/h"
        )
    lines.append(
        "fits: "
        + ", ".join(f"{name} {'yes' if ok else 'no'}" for name, ok in estimate.fits.items())
    )
    for fix in estimate.suggestions:
        lines.append(f"to fit: {fix}")
    return "\n".join(lines)
