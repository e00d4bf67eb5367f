"""The estimator's answers as plain values for the Method tab: tables, chart data, markdown.

The tab hands over its widget values as dotted config keys (`{"method.name": "lora",
"train.batch_size": 8, ...}`); these functions build the config, run the estimator (meta
device, no weights), and return DataFrames and markdown. Nothing here raises for a user's
input: an unknown model, a method this architecture lacks or few-shot prompting (which trains
nothing) come back as a message.

    view = estimate_for_ui({"model.name_or_path": "default", "method.name": "lora"},
                           device="cuda", gpu_name="H100 80GB", price=3.0, dataset_rows=300)
    view["counts"], view["components"], view["fits"], view["suggestions"]
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd

from ftui.config import ConfigError, FtuiConfig, config_from_dotted
from ftui.estimate.gpus import CATALOG, GPU, find_gpu
from ftui.estimate.plan import machine_ram_bytes
from ftui.heavy_imports import import_heavy_libraries
from ftui.methods import METHODS
from ftui.units import format_duration

if TYPE_CHECKING:
    from ftui.estimate.plan import Estimate

GB = 1e9
COMPONENTS = {  # estimator key -> (label, when it is held)
    "weights": ("Weights", "whole run"),
    "trainable_adapters": ("Adapters", "whole run"),
    "optimizer_states": ("Optimizer states", "whole run"),
    "gradients": ("Gradients", "backward pass"),
    "activations": ("Activations", "backward pass"),
    "logits_and_loss": ("Logits + loss", "backward pass"),
    "optimizer_step_transient": ("Optimizer step", "optimizer step"),
}
CPU_ONLY = "CPU only"
ARROW = re.compile(r"\s*->\s*(needs\s+)?")  # the estimator's "change -> [needs] 11.7 GB"
FITS_COLUMNS = ("GPU", "memory GB", "needs GB", "fits", "time / epoch", "$ / hour", "cost / epoch")
LENGTH_ASSUMPTION = "half the max length"
NOTHING_TO_TRAIN = (
    "Few-shot prompting trains nothing: no training memory, time or cost. It pays at "
    "inference instead (every request carries k examples). Compare it with the fine-tuned "
    "model in the Playground."
)


@dataclass(frozen=True)
class EpochData:
    """What is known of one epoch's data: rows, tokens (estimated), mean tokens per row."""

    rows: int
    tokens: int
    mean_tokens: float | None = None


# ---------------------------------------------------------------- inputs


@functools.lru_cache(maxsize=8)
def architecture(name_or_path: str, trust_remote_code: bool = False) -> Any:
    """The model's transformers config, read once per model (no weights)."""
    import_heavy_libraries()
    from ftui.params import load_architecture

    return load_architecture(name_or_path or "default", trust_remote_code)


def epoch_tokens(rows: int, max_length: int, mean_tokens: float | None = None) -> int:
    """Tokens in one epoch: rows x mean tokens per row (half the max length when unknown)."""
    mean = mean_tokens if mean_tokens else max_length / 2
    return int(max(0, rows or 0) * min(mean, max_length))


def gpu_memory_gb(resources: str) -> float | None:
    """The recommender's resources choice: a catalog GPU's memory, or None for CPU only."""
    return None if resources == CPU_ONLY else find_gpu(resources).memory_bytes / GB


# ---------------------------------------------------------------- one estimate


def estimate_for_ui(
    settings: dict[str, Any],
    *,
    device: str,
    gpu_name: str,
    price: float | None,
    dataset_rows: int,
    mean_tokens: float | None = None,
) -> dict[str, Any]:
    """Counts, memory chart data, time and cost, fits per GPU and fixes, as display values.

    Keys: ok, message, counts, time, memory, components (DataFrame), fits (DataFrame),
    suggestions, model_params, trainable_params, peak_bytes. The fits table always judges
    the GPU (bf16) setup, also when the estimate itself is for CPU.
    """
    try:
        config = config_from_dotted(settings)
        if not METHODS[config.method.name].trains:
            return _failure(NOTHING_TO_TRAIN)
        hf_config = architecture(config.model.name_or_path, config.model.trust_remote_code)
        gpu = find_gpu(gpu_name)
        tokens = epoch_tokens(dataset_rows, config.data.max_length, mean_tokens)
        data = EpochData(dataset_rows, tokens, mean_tokens)
        on_gpu, main = _estimates(config, hf_config, device, gpu, price, data)
    except Exception as exc:  # any failure becomes a message, the page stays up
        return _failure(explain_error(exc))
    place = gpu.name if device == "cuda" else "CPU"
    return {
        "ok": True,
        "message": "",
        "counts": counts_markdown(main.trainable_params, main.total_params, config.method.name),
        "time": time_markdown(main, config, place, data),
        "memory": memory_markdown(main, place),
        "components": components_frame(main.memory.components),
        "fits": fits_frame(config, hf_config, on_gpu, gpu, price, data),
        "suggestions": "\n\n".join(
            filter(None, [ram_markdown(main), suggestions_markdown(on_gpu, gpu)])
        ),
        "model_params": base_params(hf_config),
        "trainable_params": main.trainable_params,
        "peak_bytes": main.memory.peak_bytes,
    }


def _estimates(
    config: FtuiConfig, hf_config: Any, device: str, gpu: GPU, price: float | None, data: EpochData
) -> tuple[Estimate, Estimate]:
    """(the estimate on `gpu`, with fixes; the one for `device`, the same on cuda)."""
    from ftui.estimate.plan import estimate_run

    def run(on: str, **options: Any) -> Estimate:
        return estimate_run(
            config,
            hf_config,
            device=on,
            dataset_tokens=data.tokens,
            dataset_rows=data.rows,
            price_per_hour=price,
            **options,
        )

    on_gpu = run("cuda", gpu=gpu)
    return on_gpu, (on_gpu if device == "cuda" else run("cpu", with_suggestions=False))


def _failure(message: str) -> dict[str, Any]:
    return {
        "ok": False,
        "message": message,
        "counts": f"**No estimate:** {message}",
        "time": "",
        "memory": "",
        "components": None,
        "fits": pd.DataFrame(columns=FITS_COLUMNS),
        "suggestions": "",
        "model_params": 0,
        "trainable_params": 0,
        "peak_bytes": 0,
    }


def explain_error(exc: Exception) -> str:
    text = str(exc).strip() or type(exc).__name__
    if isinstance(exc, (ConfigError, ValueError, RuntimeError, OSError)):
        return text
    return f"the estimator failed ({type(exc).__name__}: {text[:300]})"


def base_params(hf_config: Any) -> int:
    from ftui.estimate.arch import Architecture

    return Architecture.from_hf_config(hf_config).total_params


def counts_markdown(trainable: int, total: int, method: str) -> str:
    share = 100 * trainable / total if total else 0.0
    return (
        f"### {trainable:,} trainable parameters\n"
        f"of {total:,} in the model as trained ({share:.3g}%), "
        f"with {METHODS[method].title}. Exact count on the meta device: no weights loaded."
    )


def time_markdown(estimate: Estimate, config: FtuiConfig, place: str, data: EpochData) -> str:
    time = estimate.time
    length = config.data.max_length
    rows, tokens, mean_tokens = data.rows, data.tokens, data.mean_tokens
    price = time.price_per_hour
    unit = "GPU-hour" if estimate.device == "cuda" else "machine-hour"
    thousand = 1000 * time.seconds_per_step
    lines = [
        f"**Speed on {place}:** {format_duration(time.seconds_per_step)} per optimizer step "
        f"of {step_shape(config)}, about {time.tokens_per_second:,.0f} tokens/s.",
        f"**1,000 steps:** {format_duration(thousand)}, "
        f"{format_money(1000 * time.cost_per_step)} at {format_money(price)} per {unit}.",
    ]
    if rows and tokens:
        mean = f"{mean_tokens:,.0f} tokens" if mean_tokens else f"{length // 2:,} tokens"
        how = (
            f"{rows:,} rows x {mean} ≈ {tokens:,} tokens packed"
            if config.method.objective == "domain"
            else f"{rows:,} rows, one per batch slot"
        )
        lines.append(
            f"**One epoch:** {time.steps_per_epoch:,} steps ({how}): "
            f"{format_duration(time.seconds_per_epoch)}, {format_money(time.cost_per_epoch)}."
        )
    else:
        lines.append("**One epoch:** give the number of training rows to see it.")
    assumed = (
        ""
        if mean_tokens
        else f"Assumes {LENGTH_ASSUMPTION} per row on average (the Data tab's statistics give "
        "the real figure). "
    )
    lines.append(f"*{assumed}Excludes loading the model, evaluation and saving checkpoints.*")
    return "\n\n".join(lines)


def memory_markdown(estimate: Estimate, place: str) -> str:
    memory = estimate.memory
    needs = memory.required_bytes() / GB
    if estimate.device == "cuda":
        need = f"a GPU needs {needs:.2f} GB free (allocator headroom and CUDA context included)"
    else:
        need = f"needs about {needs:.2f} GB of free RAM"
    return (
        f"**Peak memory on {place}: {memory.peak_bytes / GB:.2f} GB**; {need}. The peak holds "
        "the whole-run parts plus the larger of the backward pass and the optimizer step, so "
        "the bars do not simply add up.\n\n"
        f"**The estimate assumes:** {'; '.join(estimate.assumptions)}."
    )


def components_frame(components: dict[str, int]) -> pd.DataFrame:
    rows = [
        {"component": label, "GB": round(components.get(key, 0) / GB, 3), "held": held}
        for key, (label, held) in COMPONENTS.items()
    ]
    return pd.DataFrame(rows)


def step_shape(config: FtuiConfig) -> str:
    """What one optimizer step processes: '8 x 1,024 tokens', with accumulation and processes."""
    train = config.train
    shape = f"{train.batch_size} x {config.data.max_length:,} tokens"
    if train.gradient_accumulation > 1:
        shape = f"{train.gradient_accumulation} accumulated batches of {shape}"
    if train.num_processes > 1:
        shape += f" on each of {train.num_processes} processes"
    return shape


def fits_frame(
    config: FtuiConfig,
    hf_config: Any,
    estimate: Estimate,
    chosen: GPU,
    price: float | None,
    data: EpochData,
) -> pd.DataFrame:
    """One row per GPU: memory, need, verdict, time and cost of an epoch there."""
    from ftui.estimate.arch import Architecture
    from ftui.estimate.plan import gpus_to_judge, time_on, training_setup

    arch = Architecture.from_hf_config(hf_config)
    setup = training_setup(config, estimate.trainable_params, "cuda")
    needs = estimate.memory.required_bytes()
    rows = []
    for gpu in gpus_to_judge():
        own_price = price if gpu.name == chosen.name and price is not None else gpu.price_per_hour
        time = time_on(gpu, arch, setup, config, own_price, data.rows, data.tokens)
        fits = estimate.fits.get(gpu.name, needs <= gpu.memory_bytes)
        rows.append(
            {
                "GPU": f"{gpu.name} (chosen)" if gpu.name == chosen.name else gpu.name,
                "memory GB": round(gpu.memory_bytes / GB),
                "needs GB": round(needs / GB, 1),
                "fits": "yes" if fits else "no",
                "time / epoch": format_duration(time.seconds_per_epoch) if data.tokens else "-",
                "$ / hour": f"{own_price:.2f}",
                "cost / epoch": format_money(time.cost_per_epoch) if data.tokens else "-",
            }
        )
    return pd.DataFrame(rows)


def ram_markdown(estimate: Estimate) -> str:
    """On CPU: whether it fits this machine's memory, and what shrinks it (GPUs: see below)."""
    ram = machine_ram_bytes()
    if estimate.device == "cuda" or not ram:
        return ""
    needs = estimate.memory.required_bytes()
    if needs <= ram:
        return f"**Fits in this machine's memory** with {(ram - needs) / GB:.1f} GB to spare."
    return (
        f"**Does not fit in this machine's memory:** needs {needs / GB:.1f} GB of "
        f"{ram / GB:.1f} GB. Activations dominate on CPU: turn on gradient checkpointing, or "
        "lower the batch size or the max length."
    )


def suggestions_markdown(estimate: Estimate, gpu: GPU) -> str:
    needs = estimate.memory.required_bytes() / GB
    have = gpu.memory_bytes / GB
    if needs <= have:
        return f"**Fits on {gpu.name}** with {have - needs:.1f} GB to spare."
    lines = [f"**Does not fit on {gpu.name}:** needs {needs:.1f} GB of {have:.0f} GB."]
    if estimate.suggestions:
        lines.append("Any one of these makes it fit:")
        lines += ["- " + ARROW.sub(" → needs ", fix) for fix in estimate.suggestions]
    else:
        lines.append("No single change found: pick a smaller model or a bigger GPU.")
    return "\n".join(lines)


# ---------------------------------------------------------------- formatting


def format_money(dollars: float) -> str:
    if not dollars:
        return "$0"
    if dollars < 0.0001:
        return "< $0.0001"
    if dollars < 0.01:
        return f"${dollars:.4f}"
    return f"${dollars:,.2f}"


def catalog_price(gpu_name: str) -> float:
    return find_gpu(gpu_name).price_per_hour


GPU_NAMES: tuple[str, ...] = tuple(gpu.name for gpu in CATALOG)
