"""GPU slots on one machine: which GPUs are taken, and which queued runs may start now.

    book = SlotBook.read(db, now)                # inside the queue's write transaction
    gpus = book.take("cuda", wanted=2, queued_at=row["queued"])   # ["0", "1"], or None: wait
    book.give_back(gpus)                         # the launch failed

Each GPU of `gpu_indices()` (FTUI_GPUS overrides detection) is one slot; a run asks for
`train.num_processes` of them, and its trainer sees only those (CUDA_VISIBLE_DEVICES). A GPU is
taken while a run holding it is `running` in ftui.db — a run that ended or crashed holds
nothing — or while web-process work (Playground, evaluation, merge) holds a live lease on it
(ftui.runs.device_lease). CPU runs have one slot of their own and take no GPU. A run placed
on a Ray cluster (its row has a `ray_job`) holds nothing here: Ray counts its GPUs.

Queued runs are started oldest first. A younger run may take GPUs that an older, bigger run is
waiting for — small runs are not stuck behind a big one — but only until that older run has
waited FTUI_QUEUE_MAX_BYPASS_SECONDS (default 1800): from then on nothing younger takes a GPU
(neither a run nor a new lease) until the old run fits, so it cannot starve.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass

from ftui.config import FtuiConfig
from ftui.config.devices import gpu_indices

DEFAULT_MAX_BYPASS_SECONDS = 1800.0


def device_key(config: FtuiConfig) -> str:
    """The kind of slot a run takes: 'cuda' (GPUs) or 'cpu' (the one CPU slot). `auto` means
    the GPUs when ftui has any (no torch import: the web process decides this per submit)."""
    if config.model.device == "auto":
        return "cuda" if gpu_indices() else "cpu"
    return "cuda" if config.model.device.startswith("cuda") else "cpu"


def max_bypass_seconds(env: dict[str, str] | None = None) -> float:
    """How long younger runs may start ahead of an older GPU run that does not fit yet."""
    value = (os.environ if env is None else env).get("FTUI_QUEUE_MAX_BYPASS_SECONDS")
    if value is None:
        return DEFAULT_MAX_BYPASS_SECONDS
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not seconds >= 0:  # NaN too
        raise ValueError(
            f"FTUI_QUEUE_MAX_BYPASS_SECONDS={value!r} is not a number of seconds >= 0; "
            f"e.g. {DEFAULT_MAX_BYPASS_SECONDS:.0f} (0: strict first-in, first-out)"
        )
    return seconds


def format_gpus(gpus: list[str]) -> str | None:
    """The runs table's text for a run's GPUs ("0,1"); None for none (a CPU run)."""
    return ",".join(gpus) if gpus else None


def parse_gpus(text: str | None) -> list[str]:
    return [gpu for gpu in (text or "").split(",") if gpu]


def unfit_reason(wanted: int, gpus: list[str]) -> str | None:
    """Why a run can never start on this machine's GPUs (None when it can)."""
    if wanted <= len(gpus):
        return None
    have = f"only {len(gpus)}: {', '.join(gpus)}" if gpus else "none"
    return (
        f"it needs {wanted} GPUs (train.num_processes) and ftui has {have} (FTUI_GPUS, or the "
        "GPUs found); lower train.num_processes and start it again"
    )


# ---------------------------------------------------------------- who holds what


def running_gpus(db: sqlite3.Connection, gpus: list[str]) -> dict[str, tuple[str, str]]:
    """GPU -> (run id, run name) of the run training on it. A running GPU run with no GPUs
    recorded (started before per-GPU slots) may use any of them, so it holds them all."""
    if not _has_runs_table(db):
        return {}
    rows = db.execute(
        "SELECT id, name, gpus FROM runs WHERE state='running' AND device='cuda'"
        " AND ray_job IS NULL ORDER BY started"
    ).fetchall()
    holders: dict[str, tuple[str, str]] = {}
    for run_id, name, text in rows:
        for gpu in parse_gpus(text) if text else gpus:
            holders.setdefault(gpu, (run_id, name))
    return holders


def overdue_gpu_run(
    db: sqlite3.Connection, now: float, max_bypass: float | None = None
) -> tuple[str, str] | None:
    """(id, name) of the oldest queued GPU run that has waited past the bypass limit: the free
    GPUs are kept for it. None when there is none."""
    if not _has_runs_table(db):
        return None
    limit = max_bypass_seconds() if max_bypass is None else max_bypass
    row = db.execute(
        "SELECT id, name FROM runs WHERE state='queued' AND device='cuda' AND queued <= ?"
        " ORDER BY queued, id LIMIT 1",
        (now - limit,),
    ).fetchone()
    return (row[0], row[1]) if row else None


def _has_runs_table(db: sqlite3.Connection) -> bool:
    found = db.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='runs'")
    return found.fetchone() is not None


# ---------------------------------------------------------------- one dispatch


@dataclass
class SlotBook:
    """The free GPUs and the CPU slot during one dispatch, with the no-starvation rule."""

    gpus: list[str]
    busy: set[str]
    cpu_busy: bool
    now: float
    max_bypass: float = DEFAULT_MAX_BYPASS_SECONDS
    closed: bool = False  # an overdue GPU run waits: nothing younger takes a GPU

    @classmethod
    def read(cls, db: sqlite3.Connection, now: float, leased: set[str]) -> SlotBook:
        """The slots as the database has them (call inside the queue's write transaction)."""
        gpus = gpu_indices()
        cpu = db.execute(
            "SELECT 1 FROM runs WHERE state='running' AND device='cpu' AND ray_job IS NULL LIMIT 1"
        )
        busy = set(running_gpus(db, gpus)) | leased
        return cls(gpus, busy, cpu.fetchone() is not None, now, max_bypass_seconds())

    def take(self, device: str, wanted: int, queued_at: float) -> list[str] | None:
        """The slots for one queued run, oldest first: [] for the CPU slot, the GPUs it gets,
        or None when it must wait."""
        if device != "cuda":
            if self.cpu_busy:
                return None
            self.cpu_busy = True
            return []
        if self.closed:
            return None
        free = [gpu for gpu in self.gpus if gpu not in self.busy]
        if len(free) >= wanted:
            chosen = free[:wanted]
            self.busy.update(chosen)
            return chosen
        if self.now - queued_at >= self.max_bypass:
            self.closed = True
        return None

    def give_back(self, gpus: list[str], device: str) -> None:
        """Undo a `take` whose launch failed."""
        if device != "cuda":
            self.cpu_busy = False
        self.busy.difference_update(gpus)
