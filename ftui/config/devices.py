"""How many training processes this machine can run (CUDA GPUs, else CPU cores), and which GPUs
the job queue may hand out.

    gpu_indices()        # ["0", "1", ...]: $FTUI_GPUS, else $CUDA_VISIBLE_DEVICES, else all
    torch_device("1")    # "cuda:1": the torch device this process uses for that GPU

`FTUI_GPUS=0,1` names the GPUs ftui schedules, as CUDA_VISIBLE_DEVICES names them (indices or
UUIDs); it overrides detection, so it also keeps other GPUs of the machine out of ftui's hands
and lets the tests fake GPUs on a CPU machine. Cheap on purpose (no torch import), so checking
a config before queueing a run stays fast.
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
    """CUDA GPUs ftui may use: those in $FTUI_GPUS when set, else torch's count when torch is
    already imported, else CUDA_VISIBLE_DEVICES, else `nvidia-smi -L`, else the driver's /proc
    entries."""
    chosen = _listed(os.environ.get("FTUI_GPUS"))
    if chosen is not None:
        return len(chosen)
    torch = sys.modules.get("torch")
    if torch is not None and hasattr(torch, "cuda"):
        return int(torch.cuda.device_count())
    visible = _listed(os.environ.get("CUDA_VISIBLE_DEVICES"))
    if visible is not None:
        return len(visible)
    return _nvidia_smi_count()


def gpu_indices() -> list[str]:
    """The GPUs the job queue hands out, each named as CUDA_VISIBLE_DEVICES takes it:
    $FTUI_GPUS, else the entries of $CUDA_VISIBLE_DEVICES, else 0..N-1 for the N found."""
    for variable in ("FTUI_GPUS", "CUDA_VISIBLE_DEVICES"):
        listed = _listed(os.environ.get(variable))
        if listed is not None:
            return listed
    return [str(index) for index in range(count_cuda_devices())]


def torch_device(gpu: str) -> str:
    """The torch device this process uses for `gpu` (a name from gpu_indices): its place in
    $CUDA_VISIBLE_DEVICES when that is set, else the index itself ("cuda:3")."""
    visible = _listed(os.environ.get("CUDA_VISIBLE_DEVICES"))
    if visible is not None and gpu in visible:
        return f"cuda:{visible.index(gpu)}"
    return f"cuda:{gpu}" if gpu.isdigit() else "cuda"


def _listed(value: str | None) -> list[str] | None:
    """The GPUs a comma-separated list names (None when the variable is unset). CUDA stops at
    the first invalid entry, e.g. "-1" hides every GPU; repeats count once."""
    if value is None:
        return None
    entries = (entry.strip() for entry in value.split(","))
    valid = itertools.takewhile(lambda entry: entry and entry[0] != "-", entries)
    return list(dict.fromkeys(valid))


_smi_counts: dict[str, int] = {}  # nvidia-smi's answer in this process, by its path


def _nvidia_smi_count() -> int:
    """GPUs `nvidia-smi -L` lists (remembered: a process's GPUs do not change, and dispatch
    asks inside its lock); the driver's /proc entries without nvidia-smi. A failed call is
    not remembered."""
    smi = shutil.which("nvidia-smi")
    if not smi:
        proc = Path("/proc/driver/nvidia/gpus")
        return sum(1 for _ in proc.iterdir()) if proc.is_dir() else 0
    if smi not in _smi_counts:
        try:
            listing = subprocess.run(
                [smi, "-L"], capture_output=True, text=True, timeout=10, check=True
            ).stdout
        except (OSError, subprocess.SubprocessError):
            return 0
        _smi_counts[smi] = sum(line.startswith("GPU ") for line in listing.splitlines())
    return _smi_counts[smi]
