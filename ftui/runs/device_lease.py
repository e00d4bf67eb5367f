"""Device leases: GPU work done by the web process (Playground, evaluation, merge) takes the
device through the same accounting as the job queue, so a training run and the web process
never load onto one GPU by accident.

    with place_work(workspace, config.model.device, holder="evaluate run-1") as placement:
        model = load_on(placement.device)     # "cuda" with a lease held, or "cpu"
        ...                                   # placement.note says why it ran on the CPU
    # the lease is gone here and queued GPU runs have been started

The accounting lives in the queue's own database (workspace/ftui.db): a `leases` table next
to `runs`, one row per lease (device, holder, pid, pid_start_time, acquired, expires). A
lease counts while it has not expired and its process is alive (the pid with the same start
time, so a reused pid after a restart holds nothing). `Jobs.dispatch` treats a device with a
live lease as busy; taking a lease checks, in the same BEGIN IMMEDIATE transaction, that no
run is training on the device — so SQLite's write lock orders the two and a device is never
given to both.

Policy for the web process:

- GPU ("cuda") work takes a lease. When a run is training on the GPU, the work runs on the CPU
  instead, with a note the UI shows ("the GPU is training run X; this ran on the CPU"); it
  never loads onto the busy GPU.
- CPU work takes no lease: a CPU training run and a CPU Playground share RAM, not a device
  (the demo flow uses the Playground while a CPU run trains).
- Leases of web work do not exclude each other (the Playground and an evaluation may share
  the GPU); they only keep the queue from starting a GPU run.
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

from ftui.workspace import Workspace

DATABASE = "ftui.db"  # the job queue's database (ftui.runs.jobs.DATABASE)
SCHEMA = """
CREATE TABLE IF NOT EXISTS leases (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    device TEXT NOT NULL,
    holder TEXT NOT NULL,
    pid INTEGER NOT NULL,
    pid_start_time REAL NOT NULL,
    acquired REAL NOT NULL,
    expires REAL NOT NULL
);
"""
DEFAULT_IDLE_SECONDS = 300.0
# A lease outlives its idle release by this much: the backstop if the holder hangs.
EXPIRY_MARGIN_SECONDS = 60.0
# psutil's create_time comes from /proc in clock ticks: equal starts agree to well under this.
START_TIME_TOLERANCE = 0.05


class DeviceBusy(RuntimeError):
    """The device is training a run: the work should run on the CPU instead."""

    def __init__(self, device: str, run_id: str, run_name: str) -> None:
        self.device, self.run_id, self.run_name = device, run_id, run_name
        super().__init__(
            f"the {_device_word(device)} is training run {run_id} ({run_name}); "
            "use the CPU for this work or wait until the run ends"
        )

    @property
    def note(self) -> str:
        """What the UI shows next to work that moved to the CPU."""
        device = _device_word(self.device)
        return f"The {device} is training run {self.run_id}; this ran on the CPU."


def _device_word(device: str) -> str:
    return "GPU" if device.startswith("cuda") else device


def device_key(device: str) -> str:
    """The queue's name for a torch device: 'cuda' for every GPU, else 'cpu'."""
    return "cuda" if device.startswith("cuda") else "cpu"


def idle_seconds() -> float:
    """How long the Playground keeps an unused GPU model (FTUI_GPU_LEASE_IDLE_SECONDS)."""
    return float(os.environ.get("FTUI_GPU_LEASE_IDLE_SECONDS", DEFAULT_IDLE_SECONDS))


# ---------------------------------------------------------------- the accounting


def leased_devices(db: sqlite3.Connection) -> set[str]:
    """Devices ('cuda', 'cpu') held by a live lease right now (the queue treats them busy)."""
    db.execute(SCHEMA)
    rows = db.execute(
        "SELECT device, pid, pid_start_time FROM leases WHERE expires > ?", (time.time(),)
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


def training_run_on(db: sqlite3.Connection, device: str) -> tuple[str, str] | None:
    """(id, name) of the run training on `device`, or None."""
    exists = db.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='runs'")
    if exists.fetchone() is None:
        return None  # no queue yet, so nothing trains
    row = db.execute(
        "SELECT id, name FROM runs WHERE state='running' AND device=? ORDER BY started LIMIT 1",
        (device,),
    ).fetchone()
    return (row[0], row[1]) if row else None


@contextmanager
def _transaction(path: Path) -> Iterator[sqlite3.Connection]:
    """A write transaction on the queue's database that holds the lock from the start."""
    db = sqlite3.connect(path, timeout=30, isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute(SCHEMA)
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
    finally:
        db.close()


# ---------------------------------------------------------------- one lease


@dataclass
class DeviceLease:
    """A lease on one device for this process; `acquire`, `renew` while in use, `release`."""

    workspace: Workspace
    device: str
    holder: str
    ttl: float
    lease_id: int | None = None

    @property
    def database(self) -> Path:
        return self.workspace.root / DATABASE

    def acquire(self) -> DeviceLease:
        """Take the lease; raise DeviceBusy when a run is training on the device."""
        key = device_key(self.device)
        pid = os.getpid()
        now = time.time()
        with _transaction(self.database) as db:
            running = training_run_on(db, key)
            if running is not None:
                raise DeviceBusy(key, *running)
            _forget_dead_leases(db)
            cursor = db.execute(
                "INSERT INTO leases (device, holder, pid, pid_start_time, acquired, expires)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (key, self.holder, pid, psutil.Process(pid).create_time(), now, now + self.ttl),
            )
            self.lease_id = cursor.lastrowid
        return self

    def renew(self, ttl: float | None = None) -> bool:
        """Push the expiry `ttl` seconds ahead; False when the lease is gone (released)."""
        if self.lease_id is None:
            return False
        self.ttl = self.ttl if ttl is None else ttl
        with _transaction(self.database) as db:
            cursor = db.execute(
                "UPDATE leases SET expires=? WHERE id=?", (time.time() + self.ttl, self.lease_id)
            )
        return cursor.rowcount == 1

    def release(self, dispatch: bool = True) -> None:
        """Give the device back, then let the queue start what waited for it."""
        if self.lease_id is None:
            return
        with _transaction(self.database) as db:
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
    """Hold a lease on `device` for the block; DeviceBusy when a run trains on it."""
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
    workspace: Workspace, preference: str, holder: str, ttl: float | None = None
) -> Placement:
    """The device the policy gives this work; the caller releases the placement when done."""
    from ftui.models import choose_device

    device = choose_device(preference)
    if device_key(device) == "cpu":
        return Placement(device)
    lease = DeviceLease(workspace, device, holder, ttl or idle_seconds() + EXPIRY_MARGIN_SECONDS)
    try:
        lease.acquire()
    except DeviceBusy as busy:
        return Placement("cpu", note=busy.note)
    return Placement(device, lease)


@contextmanager
def place_work(
    workspace: Workspace, preference: str, holder: str, ttl: float | None = None
) -> Iterator[Placement]:
    """`place` for one block of work: the lease (if any) is given back when the block ends.
    Drop every reference to models loaded on the device inside the block."""
    placement = place(workspace, preference, holder, ttl)
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
