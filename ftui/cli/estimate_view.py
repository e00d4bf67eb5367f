"""`ftui estimate`'s side of the estimator: the estimate of a config, and readable text of it.

The command line itself (flags, --set, the config they make) is ftui/cli/estimate.py.
"""

from __future__ import annotations

from ftui.config import FtuiConfig
from ftui.estimate.gpus import find_gpu
from ftui.estimate.plan import Estimate, estimate_run

GB = 1000**3


def estimate_config(
    config: FtuiConfig,
    *,
    device: str,
    gpu_name: str | None,
    dataset_tokens: int,
    price: float | None,
    dataset_rows: int = 0,
    longest_row_tokens: int = 0,
) -> Estimate:
    """The estimate of a checked config, reading only the model's config.json."""
    from ftui.params import load_architecture

    hf_config = load_architecture(config.model.name_or_path, config.model.trust_remote_code)
    return estimate_run(
        config,
        hf_config,
        device=device,
        gpu=find_gpu(gpu_name) if gpu_name else None,
        dataset_tokens=dataset_tokens,
        dataset_rows=dataset_rows,
        longest_row_tokens=longest_row_tokens,
        price_per_hour=price,
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
    lines.append("assumes: " + "; ".join(estimate.assumptions))
    return "\n".join(lines)
