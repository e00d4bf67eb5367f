"""How close `ftui estimate` comes to real peak memory, on this CPU and on GPUs.

Run:
    .venv/bin/python benchmarks/estimator_accuracy.py            # compare committed tables
    .venv/bin/python benchmarks/estimator_accuracy.py --measure  # re-measure the CPU grids

Measurements come from benchmarks/memory_grid.py (each configuration in a fresh process,
random weights, 3 AdamW steps; CPU: peak RSS above the post-import baseline; CUDA:
torch.cuda.max_memory_allocated). `--measure` re-runs the two CPU grids of the bundled
SmolLM2-135M here (full, LoRA, QLoRA, prefix and prompt tuning, IA3, freeze, bottleneck;
batch, sequence length and gradient checkpointing varied, about 15 minutes on 2 cores). The
GPU tables were measured on a lent H100 (`memory_grid.py --device cuda --grid gpu`).

Every measured row is estimated through ftui's own path (config -> meta-device parameter
counts -> ftui.estimate) and the errors are written to benchmarks/results/estimator_accuracy.json.
Target: median absolute error <= 10%, worst <= 20%, per device.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
sys.path.insert(0, str(ROOT / "benchmarks"))

from memory_grid import ARCHS  # noqa: E402

TABLES = ("memory_grid_cpu.json", "memory_grid_cpu_methods.json", "memory_grid_h100.json")
CPU_GRIDS = {"memory_grid_cpu.json": "cpu", "memory_grid_cpu_methods.json": "accuracy"}


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
    from transformers import LlamaConfig

    from ftui.estimate.plan import estimate_run

    hf_config = LlamaConfig(**ARCHS[row["arch"]])
    estimate = estimate_run(
        row_config(row), hf_config, device=row["device"], with_suggestions=False
    )
    return estimate.memory.peak_bytes


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


def measure_cpu() -> None:
    for name, grid in CPU_GRIDS.items():
        subprocess.run(
            [
                sys.executable,
                str(ROOT / "benchmarks" / "memory_grid.py"),
                "--device",
                "cpu",
                "--grid",
                grid,
                "--out",
                str(RESULTS / name),
            ],
            check=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--measure", action="store_true", help="re-measure the CPU grids")
    args = parser.parse_args()
    if args.measure:
        measure_cpu()
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
