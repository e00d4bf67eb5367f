"""Device leases: GPU work done by the web process (Playground, evaluation, merge) takes one
GPU through the same accounting as the job queue, so a training run and the web process never
load onto one GPU by accident.

    with place_work(workspace, config.model.device, holder="evaluate run-1") as placement:
        model = load_on(placement.device)     # "cuda:1" with a lease on GPU 1 held, or "cpu"
        ...                                   # placement.note says why it ran on the CPU
    # the lease is gone here and queued GPU runs have been started

The accounting lives in the queue's own database (workspace/ftui.db, ftui.runs.queue_db): a
`leases` table next to `runs`, one row per lease (device, gpu, holder, pid, pid_start_time,
acquired, expires). A lease counts while it has not expired and its process is alive (the pid
with the same start time, so a reused pid after a restart holds nothing). `Jobs.dispatch`
treats a GPU with a live lease as taken; a lease picks its GPU in a BEGIN IMMEDIATE
transaction that sees every running run's GPUs — SQLite's write lock orders the two, so a GPU
is never given to a run and a lease at once.

Policy for the web process:

- GPU work takes a lease on one GPU: a free one (no run training on it, no lease), else one
  that only other web work holds (the Playground and an evaluation may share a GPU). When
  every GPU is training, or the free ones are kept for a GPU run that has waited past the
  queue's age limit (ftui.runs.gpu_slots), the work runs on the CPU instead, with a note the
  UI shows ("the GPU is training run X; this ran on the CPU"); it never loads onto a training
  GPU. `place(..., wait_seconds=N)` (FTUI_GPU_LEASE_WAIT_SECONDS, default 0) first waits up
  to N seconds for a GPU to come free.
- CPU work takes no lease: a CPU training run and a CPU Playground share RAM, not a device
  (the demo flow uses the Playground while a CPU run trains).
- The Playground's cached GPU model keeps its lease while cached and gives the GPU back after
  FTUI_GPU_LEASE_IDLE_SECONDS (default 300) without use; a lease expires a little later than
  that as a backstop, so a hung web process cannot hold the GPU forever.
- Giving a lease back calls the queue's dispatch, so a GPU run waiting for it starts.
"""

from __future__ import annotations

import gc
import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psutil

from ftui.config.devices import gpu_indices, torch_device
from ftui.runs import queue_db
from ftui.runs.gpu_slots import overdue_gpu_run, running_gpus
from ftui.workspace import Workspace

DEFAULT_IDLE_SECONDS = 300.0
# A lease outlives its idle release by this much: the backstop if the holder hangs.
EXPIRY_MARGIN_SECONDS = 60.0
# psutil's create_time comes from /proc in clock ticks: equal starts agree to well under this.
START_TIME_TOLERANCE = 0.05
WAIT_POLL_SECONDS = 0.25


class DeviceBusy(RuntimeError):
    """No GPU can be leased now: the work should run on the CPU instead. `note` is what the
    UI shows next to the work."""

    def __init__(self, reason: str, note: str) -> None:
        self.note = note
        super().__init__(f"{reason}; use the CPU for this work or wait until a GPU is free")


def _busy(
    gpus: list[str], training: dict[str, tuple[str, str]], waiting: tuple[str, str] | None
) -> DeviceBusy:
    """Why no GPU can be leased, in the exception's words and the UI's."""
    if not gpus:
        return DeviceBusy("ftui has no GPU (FTUI_GPUS)", "ftui has no GPU; this ran on the CPU.")
    if waiting is not None:
        run_id, name = waiting
        reason = f"the free GPUs are kept for run {run_id} ({name}), which has waited longest"
        return DeviceBusy(reason, f"The free GPUs are kept for run {run_id}; this ran on the CPU.")
    runs = list(dict.fromkeys(training.values()))
    named = ", ".join(f"{run_id} ({name})" for run_id, name in runs)
    ids = ", ".join(run_id for run_id, _ in runs)
    word = "run" if len(runs) == 1 else "runs"
    if len(gpus) == 1:
        return DeviceBusy(
            f"the GPU is training {word} {named}",
            f"The GPU is training {word} {ids}; this ran on the CPU.",
        )
    return DeviceBusy(
        f"every GPU is training ({word} {named})",
        f"Every GPU is training ({word} {ids}); this ran on the CPU.",
    )


def idle_seconds() -> float:
    """How long the Playground keeps an unused GPU model (FTUI_GPU_LEASE_IDLE_SECONDS)."""
    return float(os.environ.get("FTUI_GPU_LEASE_IDLE_SECONDS", DEFAULT_IDLE_SECONDS))


def wait_seconds_default() -> float:
    """How long GPU work waits for a free GPU before it runs on the CPU
    (FTUI_GPU_LEASE_WAIT_SECONDS; 0: at once)."""
    return float(os.environ.get("FTUI_GPU_LEASE_WAIT_SECONDS", 0))


# ---------------------------------------------------------------- the accounting


def leased_gpus(db: sqlite3.Connection) -> set[str]:
    """GPUs held by a live lease right now (the queue treats them as taken)."""
    rows = db.execute(
        "SELECT gpu, pid, pid_start_time FROM leases WHERE expires > ? AND gpu IS NOT NULL",
        (time.time(),),
    ).fetchall()
    return {row[0] for row in rows if process_alive(row[1], row[2])}


def process_alive(pid: int, start_time: float) -> bool:
    """True when `pid` runs and is the process that started at `start_time` (not a reuse)."""
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        return abs(process.create_time() - start_time) < START_TIME_TOLERANCE
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


def choose_gpu(db: sqlite3.Connection) -> str:
    """The GPU a new lease takes (see the policy above); DeviceBusy when there is none."""
    gpus = gpu_indices()
    training = running_gpus(db, gpus)
    leased = leased_gpus(db)
    idle = [gpu for gpu in gpus if gpu not in training and gpu not in leased]
    shared = [gpu for gpu in gpus if gpu in leased and gpu not in training]
    waiting = overdue_gpu_run(db, time.time()) if idle else None
    if idle and waiting is None:
        return idle[0]
    if shared:
        return shared[0]
    raise _busy(gpus, training, waiting)


# ---------------------------------------------------------------- one lease


@dataclass
class DeviceLease:
    """A lease on one device for this process; `acquire`, `renew` while in use, `release`."""

    workspace: Workspace
    device: str  # what the work asked for ("cuda"); the lease names the GPU it got
    holder: str
    ttl: float
    lease_id: int | None = None
    gpu: str | None = None  # as CUDA_VISIBLE_DEVICES names it; torch_device(gpu) loads there

    @property
    def database(self) -> Path:
        return self.workspace.root / queue_db.DATABASE

    def acquire(self) -> DeviceLease:
        """Take a lease on one GPU; raise DeviceBusy when none can be had."""
        pid = os.getpid()
        now = time.time()
        with queue_db.transaction(self.database) as db:
            _forget_dead_leases(db)
            gpu = choose_gpu(db)
            cursor = db.execute(
                "INSERT INTO leases (device, gpu, holder, pid, pid_start_time, acquired, expires)"
                " VALUES ('cuda', ?, ?, ?, ?, ?, ?)",
                (gpu, self.holder, pid, psutil.Process(pid).create_time(), now, now + self.ttl),
            )
            self.lease_id, self.gpu = cursor.lastrowid, gpu
        return self

    def renew(self, ttl: float | None = None) -> bool:
        """Push the expiry `ttl` seconds ahead; False when the lease is gone (released)."""
        if self.lease_id is None:
            return False
        self.ttl = self.ttl if ttl is None else ttl
        with queue_db.transaction(self.database) as db:
            cursor = db.execute(
                "UPDATE leases SET expires=? WHERE id=?", (time.time() + self.ttl, self.lease_id)
            )
        return cursor.rowcount == 1

    def release(self, dispatch: bool = True) -> None:
        """Give the device back, then let the queue start what waited for it."""
        if self.lease_id is None:
            return
        with queue_db.transaction(self.database) as db:
            db.execute("DELETE FROM leases WHERE id=?", (self.lease_id,))
        self.lease_id = None
        if dispatch:
            from ftui.runs.jobs import Jobs

            Jobs(self.workspace).dispatch()


def _forget_dead_leases(db: sqlite3.Connection) -> None:
    """Delete rows that no longer count (expired, or their process is gone)."""
    rows = db.execute("SELECT id, pid, pid_start_time, expires FROM leases").fetchall()
    now = time.time()
    for lease_id, pid, start_time, expires in rows:
        if expires <= now or not process_alive(pid, start_time):
            db.execute("DELETE FROM leases WHERE id=?", (lease_id,))


@contextmanager
def lease_device(
    workspace: Workspace, device: str, holder: str, ttl: float | None = None
) -> Iterator[DeviceLease]:
    """Hold a lease on a GPU for the block; DeviceBusy when none can be had."""
    lease = DeviceLease(workspace, device, holder, ttl or idle_seconds() + EXPIRY_MARGIN_SECONDS)
    lease.acquire()
    try:
        yield lease
    finally:
        lease.release()


# ---------------------------------------------------------------- the web process's policy


@dataclass
class Placement:
    """Where a piece of web-process work runs: `device`, the lease it holds (GPU only), and a
    note for the UI when it had to move to the CPU (empty otherwise)."""

    device: str
    lease: DeviceLease | None = None
    note: str = ""

    def release(self) -> None:
        """Free the device's cached memory, then give the lease back (if any)."""
        if self.lease is not None:
            free_gpu_memory()
            self.lease.release()
            self.lease = None


def place(
    workspace: Workspace,
    preference: str,
    holder: str,
    ttl: float | None = None,
    wait_seconds: float | None = None,
) -> Placement:
    """The device the policy gives this work; the caller releases the placement when done.
    GPU work waits up to `wait_seconds` (FTUI_GPU_LEASE_WAIT_SECONDS) for a free GPU, then
    runs on the CPU with a note saying why."""
    from ftui.models import choose_device

    device = choose_device(preference)
    if not device.startswith("cuda"):
        return Placement(device)
    lease = DeviceLease(workspace, device, holder, ttl or idle_seconds() + EXPIRY_MARGIN_SECONDS)
    wait = wait_seconds_default() if wait_seconds is None else wait_seconds
    deadline = time.monotonic() + wait
    while True:
        try:
            lease.acquire()
            return Placement(torch_device(lease.gpu or ""), lease)
        except DeviceBusy as busy:
            if time.monotonic() >= deadline:
                return Placement("cpu", note=busy.note)
        time.sleep(WAIT_POLL_SECONDS)


@contextmanager
def place_work(
    workspace: Workspace,
    preference: str,
    holder: str,
    ttl: float | None = None,
    wait_seconds: float | None = None,
) -> Iterator[Placement]:
    """`place` for one block of work: the lease (if any) is given back when the block ends.
    Drop every reference to models loaded on the device inside the block."""
    placement = place(workspace, preference, holder, ttl, wait_seconds)
    try:
        yield placement
    finally:
        placement.release()


def workspace_of(run_path: Path) -> Workspace:
    """The workspace a run folder (WORKSPACE/runs/<id>) belongs to."""
    return Workspace(Path(run_path).resolve().parent.parent)


def free_gpu_memory() -> None:
    """Collect dropped models and hand the CUDA allocator's cached blocks back to the GPU."""
    gc.collect()
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()
