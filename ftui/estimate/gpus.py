"""GPUs a user might train on: memory, dense bf16 (or fp16) throughput, a typical hourly price.

Prices are typical on-demand cloud prices per GPU-hour in USD (late 2026) and only a default:
the UI and CLI let the user type their own. Throughput is the vendor's dense tensor-core peak;
the time estimate applies a measured utilisation to it (see speed.py).
"""

from __future__ import annotations

from dataclasses import dataclass

GB = 1000**3


@dataclass(frozen=True)
class GPU:
    name: str
    memory_bytes: int
    peak_tflops: float  # dense bf16, or fp16 where the card has no bf16
    bf16: bool
    price_per_hour: float


CATALOG: tuple[GPU, ...] = (
    GPU("T4 16GB", 16 * GB, 65.0, False, 0.35),
    GPU("L4 24GB", 24 * GB, 121.0, True, 0.80),
    GPU("A10G 24GB", 24 * GB, 125.0, True, 1.00),
    GPU("RTX 4090 24GB", 24 * GB, 165.0, True, 0.70),
    GPU("A100 40GB", 40 * GB, 312.0, True, 1.60),
    GPU("A100 80GB", 80 * GB, 312.0, True, 2.00),
    GPU("H100 80GB", 80 * GB, 989.0, True, 3.00),
    GPU("H200 141GB", 141 * GB, 989.0, True, 4.00),
)


def find_gpu(name: str) -> GPU:
    """Match a catalog GPU by a loose name ('h100', 'A100 80GB', 'rtx 4090')."""
    wanted = name.lower().replace("-", " ")
    matches = [gpu for gpu in CATALOG if wanted in gpu.name.lower()]
    if not matches:
        names = ", ".join(gpu.name for gpu in CATALOG)
        raise ValueError(f"unknown GPU '{name}'; known: {names}")
    return matches[-1] if len(matches) > 1 and "80" in wanted else matches[0]


def local_gpu() -> GPU | None:
    """The CUDA device of this machine as a catalog entry, if there is one."""
    try:
        import torch
    except ImportError:
        return None
    if not torch.cuda.is_available():
        return None
    properties = torch.cuda.get_device_properties(0)
    known = [gpu for gpu in CATALOG if gpu.name.split()[0].lower() in properties.name.lower()]
    peak = known[0].peak_tflops if known else 100.0
    return GPU(
        f"this machine: {properties.name}",
        properties.total_memory,
        peak,
        torch.cuda.is_bf16_supported(),
        known[0].price_per_hour if known else 0.0,
    )
