"""The job queue and run history: a SQLite index (workspace/ftui.db) over the run folders.

    jobs = Jobs(Workspace.open())
    run = jobs.submit(config, owner="ana")   # queued, and started at once if its device is free
    jobs.refresh()                           # re-attach: sync states, fail dead runs, dispatch
    jobs.cancel(run_id) / jobs.resume(run_id) / jobs.delete(run_id)
    rows = jobs.list()                       # history, newest first, with queue positions

One run at a time per device ("cpu" or "cuda"); the rest wait in FIFO order. The queue needs
no daemon: whoever changes it calls `dispatch` (submit, resume, the UI's refresh, and each
run's supervisor as it finishes), and SQLite's write lock makes the claim-and-launch step
atomic across processes. The run folder stays the source of truth for a run — status.json,
metrics.jsonl, the saved adapter; the database indexes them for listing and ordering.
"""

from __future__ import annotations

import shutil
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ftui.config import FtuiConfig
from ftui.rundir import FINISHED, RunDir, create_run_dir
from ftui.runner import is_alive, launch, request_cancel
from ftui.workspace import Workspace

DATABASE = "ftui.db"
SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    owner TEXT NOT NULL,
    state TEXT NOT NULL,
    device TEXT NOT NULL,
    model TEXT NOT NULL,
    method TEXT NOT NULL,
    dataset TEXT NOT NULL,
    created REAL NOT NULL,
    queued REAL NOT NULL,
    resume INTEGER NOT NULL DEFAULT 0,
    cwd TEXT NOT NULL,
    started REAL,
    finished REAL,
    steps INTEGER,
    train_loss REAL,
    eval_loss REAL,
    tokens REAL,
    error TEXT
);
"""
# A run whose supervisor and trainer are both gone this long after its last word is dead.
STARTUP_GRACE_SECONDS = 10.0


class JobError(ValueError):
    """A queue action that cannot be done, with the reason in plain words."""


class Jobs:
    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace
        self.path = workspace.root / DATABASE
        with self._connect() as db:
            db.executescript(SCHEMA)

    # ------------------------------------------------------------ actions

    def submit(
        self, config: FtuiConfig, owner: str = "local", cwd: str | Path | None = None
    ) -> RunDir:
        """Create runs/<id>/ (queued), index it, and start it if its device is free."""
        run = create_run_dir(config, self.workspace)
        now = time.time()
        with self._connect() as db:
            db.execute(
                "INSERT INTO runs (id, name, owner, state, device, model, method, dataset,"
                " created, queued, cwd) VALUES (?, ?, ?, 'queued', ?, ?, ?, ?, ?, ?, ?)",
                (
                    run.run_id, config.name, owner, device_key(config),
                    config.model.name_or_path, config.method.name, config.data.path,
                    now, now, str(Path(cwd or Path.cwd()).resolve()),
                ),
            )  # fmt: skip
        self.dispatch()
        return run

    def dispatch(self) -> list[str]:
        """Start the oldest queued run on every idle device; return the ids started."""
        started = []
        with self._connect() as db:  # a read first: no write lock while nothing is active
            active = db.execute("SELECT 1 FROM runs WHERE state IN ('queued', 'running') LIMIT 1")
            if active.fetchone() is None:
                return started
        with self._transaction() as db:
            self._sync(db)
            running = db.execute("SELECT device FROM runs WHERE state='running'")
            busy = {row["device"] for row in running}
            queued = db.execute("SELECT * FROM runs WHERE state='queued' ORDER BY queued, id")
            for row in queued.fetchall():
                if row["device"] in busy:
                    continue
                run = self.run_dir(row["id"])
                run.write_status("queued", resume=bool(row["resume"]))
                launch(run, cwd=row["cwd"])
                db.execute(
                    "UPDATE runs SET state='running', started=COALESCE(started, ?) WHERE id=?",
                    (time.time(), row["id"]),
                )
                busy.add(row["device"])
                started.append(row["id"])
        return started

    def refresh(self) -> None:
        """Bring the index up to date with the run folders and start what can start."""
        self.dispatch()

    def cancel(self, run_id: str) -> str:
        """Cancel a queued run at once, or ask a running one to stop; return the new state."""
        row = self.get(run_id)
        run = self.run_dir(run_id)
        if row["state"] == "queued":
            with self._transaction() as db:
                db.execute(
                    "UPDATE runs SET state='cancelled', finished=? WHERE id=? AND state='queued'",
                    (time.time(), run_id),
                )
            run.write_status("cancelled", finished=time.time(), error="Cancelled while queued.")
            return "cancelled"
        if row["state"] != "running":
            raise JobError(f"run {run_id} is already {row['state']}; there is nothing to cancel")
        request_cancel(run)
        return "cancelling"

    def resume(self, run_id: str) -> None:
        """Queue a failed or cancelled run again; it continues from its last checkpoint."""
        row = self.get(run_id)
        if row["state"] not in ("failed", "cancelled"):
            raise JobError(
                f"run {run_id} is {row['state']}; only failed or cancelled runs can be resumed"
            )
        run = self.run_dir(run_id)
        if run.last_checkpoint() is None:
            raise JobError(
                f"run {run_id} has no complete checkpoint to resume from; start it again instead"
            )
        run.cancel_path.unlink(missing_ok=True)
        run.write_status("queued", error=None, finished=None, pid=None, supervisor_pid=None)
        with self._transaction() as db:
            db.execute(
                "UPDATE runs SET state='queued', resume=1, queued=?, finished=NULL, error=NULL "
                "WHERE id=?",
                (time.time(), run_id),
            )
        self.dispatch()

    def delete(self, run_id: str) -> None:
        """Remove a finished run's folder and its history row."""
        row = self.get(run_id)
        if row["state"] not in FINISHED:
            raise JobError(f"run {run_id} is {row['state']}; cancel it before deleting it")
        shutil.rmtree(self.run_dir(run_id).path, ignore_errors=True)
        with self._transaction() as db:
            db.execute("DELETE FROM runs WHERE id=?", (run_id,))

    # ------------------------------------------------------------ reading

    def get(self, run_id: str) -> dict[str, Any]:
        with self._connect() as db:
            row = db.execute("SELECT * FROM runs WHERE id=?", (run_id,)).fetchone()
        if row is None:
            raise JobError(f"no run with id {run_id!r}; `ftui runs` lists them")
        return dict(row)

    def list(self) -> list[dict[str, Any]]:
        """Every run, newest first; queued runs carry their 1-based `position` on their device."""
        with self._connect() as db:
            rows = [dict(row) for row in db.execute("SELECT * FROM runs ORDER BY created DESC")]
        waiting: dict[str, list[dict[str, Any]]] = {}
        for row in sorted(rows, key=lambda r: (r["queued"], r["id"])):
            if row["state"] == "queued":
                waiting.setdefault(row["device"], []).append(row)
        for device_rows in waiting.values():
            for position, row in enumerate(device_rows, start=1):
                row["position"] = position
        return rows

    def run_dir(self, run_id: str) -> RunDir:
        if not run_id or "/" in run_id or "\\" in run_id or run_id.startswith("."):
            raise JobError(f"{run_id!r} is not a run id; `ftui runs` lists them")
        return RunDir(self.workspace.runs / run_id)

    # ------------------------------------------------------------ syncing

    def _sync(self, db: sqlite3.Connection) -> None:
        """Copy states and summaries from run folders; mark runs whose processes died failed."""
        for row in db.execute("SELECT * FROM runs WHERE state='running'").fetchall():
            run = self.run_dir(row["id"])
            status = run.read_status()
            if status.get("state") not in FINISHED and _is_dead(status):
                status = _mark_dead(run)
            if status.get("state") in FINISHED:
                db.execute(
                    "UPDATE runs SET state=?, finished=?, error=?, steps=?, train_loss=?,"
                    " eval_loss=?, tokens=? WHERE id=?",
                    (
                        status["state"], status.get("finished"), status.get("error"),
                        *summarise(run), row["id"],
                    ),
                )  # fmt: skip
            else:  # still training: the history shows its progress so far
                db.execute(
                    "UPDATE runs SET steps=?, train_loss=?, eval_loss=?, tokens=? WHERE id=?",
                    (*summarise(run), row["id"]),
                )

    # ------------------------------------------------------------ sqlite

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        db.row_factory = sqlite3.Row
        try:
            db.execute("PRAGMA journal_mode=WAL")
            yield db
        finally:
            db.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction that holds SQLite's lock from the start (BEGIN IMMEDIATE)."""
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")


def device_key(config: FtuiConfig) -> str:
    """The device a run occupies: 'cuda' or 'cpu' (one running job each)."""
    from ftui.models import choose_device

    return "cuda" if choose_device(config.model.device).startswith("cuda") else "cpu"


def summarise(run: RunDir) -> tuple[int | None, float | None, float | None, float | None]:
    """(last step, last training loss, last eval loss, tokens seen) from metrics.jsonl."""
    steps = train_loss = eval_loss = tokens = None
    for record in run.read_metrics():
        steps = record.get("step", steps)
        train_loss = record.get("loss", train_loss)
        eval_loss = record.get("eval_loss", eval_loss)
        tokens = record.get("num_tokens", tokens)
    return steps, train_loss, eval_loss, tokens


def _is_dead(status: dict[str, Any]) -> bool:
    last_word = max(status.get("heartbeat") or 0, status.get("updated") or 0)
    if time.time() - last_word < STARTUP_GRACE_SECONDS:
        return False
    pids = [status.get("supervisor_pid"), status.get("pid")]
    return not any(is_alive(pid) for pid in pids if pid)


def _mark_dead(run: RunDir) -> dict[str, Any]:
    tail = run.log_tail(15)
    return run.write_status(
        "failed",
        finished=time.time(),
        error="The training process is gone without a final word (no heartbeat, pid gone)."
        f"\n{tail}",
    )
