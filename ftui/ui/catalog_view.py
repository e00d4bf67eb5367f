"""The Method tab's catalog side as plain values: all methods compared on one model, the
catalog's explanations and trade-offs, and the recommender's proposal.

Like `ftui.ui.method_view`, nothing here raises for a user's input; problems come back as a
message for the tab to show.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from ftui.config import config_from_dotted
from ftui.estimate.gpus import GPU, find_gpu
from ftui.methods import METHODS, method_table
from ftui.recommend import Recommendation, recommend
from ftui.ui.method_view import (
    GB,
    EpochData,
    architecture,
    base_params,
    epoch_tokens,
    explain_error,
    format_money,
    gpu_memory_gb,
)
from ftui.units import format_duration

# ---------------------------------------------------------------- all methods


def compare_for_ui(
    settings: dict[str, Any],
    *,
    device: str,
    gpu_name: str,
    price: float | None,
    dataset_rows: int,
    mean_tokens: float | None = None,
) -> tuple[pd.DataFrame, str]:
    """Every method with the other settings unchanged, and a message if the model cannot load.

    A method this architecture lacks (LLaMA-Adapter on Qwen) becomes a row saying so instead
    of failing the whole table.
    """
    try:
        config = config_from_dotted(settings)
        hf_config = architecture(config.model.name_or_path, config.model.trust_remote_code)
        gpu = find_gpu(gpu_name)
    except Exception as exc:  # shown to the user instead
        return pd.DataFrame(columns=["method", "trainable"]), f"No comparison: {explain_error(exc)}"
    tokens = epoch_tokens(dataset_rows, config.data.max_length, mean_tokens)
    data = EpochData(dataset_rows, tokens, mean_tokens)
    rows = [
        _compare_row({**settings, "method.name": name}, hf_config, device, gpu, price, data)
        if info.trains
        else {"method": name, "trainable": "0", "note": "no training: longer prompts"}
        for name, info in METHODS.items()
    ]
    return pd.DataFrame(rows).fillna(""), ""


def _compare_row(
    settings: dict[str, Any],
    hf_config: Any,
    device: str,
    gpu: GPU,
    price: float | None,
    data: EpochData,
) -> dict[str, Any]:
    from ftui.estimate.plan import estimate_run

    row: dict[str, Any] = {"method": settings["method.name"]}
    try:
        estimate = estimate_run(
            config_from_dotted(settings),
            hf_config,
            device=device,
            gpu=gpu if device == "cuda" else None,
            dataset_tokens=data.tokens,
            dataset_rows=data.rows,
            price_per_hour=price,
            with_suggestions=False,
        )
    except ValueError as exc:
        return {**row, "trainable": "not available", "note": str(exc)[:120]}
    needs = estimate.memory.required_bytes()
    row |= {
        "trainable": f"{estimate.trainable_params:,}",
        "trainable %": f"{100 * estimate.trainable_params / estimate.total_params:.3g}",
        "peak GB": f"{estimate.memory.peak_bytes / GB:.2f}",
    }
    if device == "cuda":
        row[f"fits {gpu.name}"] = "yes" if needs <= gpu.memory_bytes else "no"
        row["fits GPUs"] = f"{sum(estimate.fits.values())} of {len(estimate.fits)}"
    time = estimate.time
    return row | {
        "s / step": f"{time.seconds_per_step:.3g}",
        "time / epoch": format_duration(time.seconds_per_epoch) if data.tokens else "-",
        "cost / epoch": format_money(time.cost_per_epoch) if data.tokens else "-",
    }


# ---------------------------------------------------------------- catalog text


def method_markdown(name: str) -> str:
    """The method's one-line explanation, when to use it and its trade-offs."""
    info = METHODS.get(name)
    if info is None:
        return f"Unknown method {name!r}."
    return "\n".join(
        [
            f"### {info.title}",
            info.summary,
            "",
            f"**When to use:** {info.when_to_use}",
            "",
            f"- **Trainable parameters:** {info.trainable_params}",
            f"- **Compute cost:** {info.compute_cost}",
            f"- **Model structure:** {info.structure_change}",
            f"- **Training time:** {info.training_time}",
            f"- **Inference latency:** {info.inference_latency}",
        ]
    )


def tradeoff_frame() -> pd.DataFrame:
    """The catalog's trade-off table with readable column names."""
    names = {
        "title": "method",
        "trainable_params": "trainable parameters",
        "compute_cost": "compute cost",
        "structure_change": "model structure change",
        "training_time": "training time",
        "inference_latency": "inference latency (merged or not)",
    }
    return pd.DataFrame(method_table()).drop(columns=["name"]).rename(columns=names)


# ---------------------------------------------------------------- recommender


def recommend_for_ui(
    model: str,
    resources: str,
    rows: float | None,
    specificity: str,
    performance: str,
    data_format: str | None = None,
) -> tuple[Recommendation | None, str]:
    """The recommendation and its markdown, or None and a message."""
    try:
        params = base_params(architecture(model or "default"))
        rec = recommend(
            gpu_memory_gb=gpu_memory_gb(resources),
            dataset_rows=int(rows or 0),
            task_specificity=specificity,
            performance=performance,
            model_params=params,
            data_format=data_format,
        )
    except Exception as exc:  # shown to the user instead
        return None, f"**No recommendation:** {explain_error(exc)}"
    return rec, rec.markdown()
