"""How many training processes this machine can run: CUDA GPUs, else CPU cores.

Cheap on purpose (no torch import), so checking a config before queueing a run stays fast.
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import sys
from pathlib import Path


def count_devices(device: str) -> tuple[int, str]:
    """(how many training processes `device` can have here, what they are), cheaply:
    CUDA GPUs for cuda (and for auto when there are any), else CPU cores. No torch import."""
    if device != "cpu":
        gpus = count_cuda_devices()
        if gpus or device == "cuda":
            return gpus, "CUDA GPUs"
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return cores or 1, "CPU cores"


def count_cuda_devices() -> int:
    """Visible CUDA GPUs: torch's count when torch is already imported, else
    CUDA_VISIBLE_DEVICES, else `nvidia-smi -L`, else the driver's /proc entries."""
    torch = sys.modules.get("torch")
    if torch is not None and hasattr(torch, "cuda"):
        return int(torch.cuda.device_count())
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        # CUDA stops at the first invalid entry, e.g. "-1" hides every GPU.
        entries = (entry.strip() for entry in visible.split(","))
        return sum(1 for _ in itertools.takewhile(lambda e: e and e[0] != "-", entries))
    return _nvidia_smi_count()


def _nvidia_smi_count() -> int:
    smi = shutil.which("nvidia-smi")
    if smi:
        try:
            listing = subprocess.run(
                [smi, "-L"], capture_output=True, text=True, timeout=10, check=False
            ).stdout
        except (OSError, subprocess.SubprocessError):
            listing = ""
        return sum(line.startswith("GPU ") for line in listing.splitlines())
    proc = Path("/proc/driver/nvidia/gpus")
    return sum(1 for _ in proc.iterdir()) if proc.is_dir() else 0
