"""How close ftui's model of a training step comes to a plain loop's peak GPU memory.

Run:
    .venv/bin/python benchmarks/estimator_accuracy.py            # compare the committed table

The H100 table was measured on a lent H100 by benchmarks/memory_grid.py (`--device cuda --grid
gpu`: each configuration in a fresh process, random weights, 3 AdamW steps in a plain loop
with transformers' full-logits loss, torch.cuda.max_memory_allocated). Every row is estimated
with that loss (`loss="full"`); ftui's trainer uses TRL's fused LM head instead, so this table
checks the rest of the model (weights, adapters, activations, checkpointing, optimizer). The
estimate against ftui's own trainer is benchmarks/trainer_memory.py (CPU, and the GPU script
benchmarks/gpu_trainer.py). Errors go to benchmarks/results/estimator_accuracy.json.
Target: median absolute error <= 10%, worst <= 20%.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
sys.path.insert(0, str(ROOT / "benchmarks"))

from memory_grid import ARCHS  # noqa: E402

TABLES = ("memory_grid_h100.json",)


def row_config(row: dict):
    """The FtuiConfig a user would write for a measured configuration."""
    from ftui.config import FtuiConfig

    config = FtuiConfig()
    config.method.name = row["method"]
    if row.get("lora_r"):
        config.method.lora_r = row["lora_r"]
        config.method.target_modules = row["lora_targets"]
    config.method.lora_dropout = row.get("lora_dropout") or 0.0
    config.method.double_quant = bool(row.get("double_quant"))
    config.method.kbit_upcast = True  # memory_grid.py measured the k-bit recipe's fp32 upcast
    config.method.quant_type = row.get("quant_type") or "nf4"
    config.train.batch_size = row["batch_size"]
    config.train.gradient_checkpointing = row["grad_ckpt"]
    config.data.max_length = row["seq_len"]
    config.model.dtype = "float32" if row["param_dtype"] == "fp32" else "bfloat16"
    config.model.attn_implementation = row["attn"]
    return config


def estimate_row(row: dict) -> int:
    """The estimate of a plain-loop row: ftui's model of the step, with the full-logits loss
    and peft's fp32 adapters that memory_grid.py trains with (ftui's trainer uses TRL's fused
    LM head, and TRL casts a quantized model's adapters to bf16)."""
    import dataclasses

    from transformers import LlamaConfig

    from ftui.estimate.arch import Architecture
    from ftui.estimate.memory import estimate_memory
    from ftui.estimate.plan import training_setup
    from ftui.params import count_parameters

    hf_config = LlamaConfig(**ARCHS[row["arch"]])
    config = row_config(row)
    trainable = count_parameters(hf_config, config).trainable
    setup = dataclasses.replace(
        training_setup(config, trainable, row["device"]), loss="full", adapter_fp32=True
    )
    return estimate_memory(Architecture.from_hf_config(hf_config), setup).peak_bytes


def compare(table: Path) -> tuple[dict, list[dict]]:
    data = json.loads(table.read_text())
    rows = []
    for row in data["rows"]:
        if row.get("error") or row.get("oom"):
            continue
        estimated = estimate_row(row)
        measured = row["peak_allocated_bytes"]
        rows.append(
            {
                "arch": row["arch"],
                "method": row["method"],
                "lora_r": row.get("lora_r"),
                "lora_targets": row.get("lora_targets"),
                "batch_size": row["batch_size"],
                "seq_len": row["seq_len"],
                "grad_ckpt": row["grad_ckpt"],
                "param_dtype": row["param_dtype"],
                "device": row["device"],
                "measured_bytes": measured,
                "estimated_bytes": estimated,
                "error": round(estimated / measured - 1, 4),
            }
        )
    return data["header"], rows


def summary(rows: list[dict]) -> dict:
    errors = sorted(abs(r["error"]) for r in rows)
    return {
        "rows": len(rows),
        "median_abs_error": round(statistics.median(errors), 4),
        "max_abs_error": round(errors[-1], 4),
    }


def main() -> None:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()
    report = {}
    by_device: dict[str, list[dict]] = {}
    for name in TABLES:
        header, rows = compare(RESULTS / name)
        report[name] = {
            "device": header["device"],
            "versions": header["versions"],
            "summary": summary(rows),
            "rows": rows,
        }
        by_device.setdefault(rows[0]["device"], []).extend(rows)
        for r in rows:
            what = r["method"] + (f" r{r['lora_r']} {r['lora_targets']}" if r["lora_r"] else "")
            print(
                f"{r['arch']:13} {what:30} b{r['batch_size']} s{r['seq_len']:<5}"
                f"{' ckpt' if r['grad_ckpt'] else '     '} measured "
                f"{r['measured_bytes'] / 1e9:6.2f} GB  estimated "
                f"{r['estimated_bytes'] / 1e9:6.2f} GB  {r['error']:+.1%}"
            )
    totals = {device: summary(rows) for device, rows in by_device.items()}
    report["summary_by_device"] = totals
    print(json.dumps(totals, indent=2))
    (RESULTS / "estimator_accuracy.json").write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
