"""The job queue and run history: a SQLite index (workspace/ftui.db) over the run folders.

    jobs = Jobs(Workspace.open())
    run = jobs.submit(config, owner="ana")   # queued, and started at once if its device is free
    jobs.refresh()                           # re-attach: sync states, fail dead runs, dispatch
    jobs.cancel(run_id) / jobs.resume(run_id) / jobs.delete(run_id)
    rows = jobs.list()                       # history, newest first, with queue positions

Each GPU is a slot: a run takes `train.num_processes` free GPUs, recorded in the runs table
and status.json, and its trainer sees only those; the CPU is one slot (ftui.runs.gpu_slots
has the rules, the no-starvation limit included). The queue needs no daemon: whoever changes
it calls `dispatch` (submit, resume, the UI's refresh, and each run's supervisor as it
finishes), and SQLite's write lock makes the claim-and-launch step atomic across processes,
so no GPU is given twice. The run folder stays the source of truth for a run — status.json,
metrics.jsonl, the saved adapter; the database indexes them for listing and ordering.

With FTUI_RAY_ADDRESS set, queued runs go to that Ray cluster instead, all at once (see
ftui.runs.ray_queue); `refresh` then asks Ray for liveness and stops cancels past their grace.

The queue cannot wedge: a row whose folder, working folder or status.json is missing or
unreadable, or whose start fails (a full disk included), is marked failed with the reason and
the queue goes on. Cancel and resume are state transitions checked inside SQLite's write lock,
so racing callers cannot double-book a device or start two trainers on one run folder. A
resume refuses when the data files or base model changed since the run started (inputs.json).
"""

from __future__ import annotations

import contextlib
import errno
import shutil
import sqlite3
import time
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from ftui.config import ConfigError, FtuiConfig
from ftui.runs import queue_db, ray_queue
from ftui.runs.device_lease import leased_gpus
from ftui.runs.gpu_slots import SlotBook, device_key, format_gpus, unfit_reason
from ftui.runs.queue_db import DATABASE
from ftui.runs.ray_engine import RayEngineError, RayUnreachable, ray_address
from ftui.runs.run_inputs import changed_inputs, fingerprint_inputs, write_inputs
from ftui.runs.rundir import FINISHED, RunDir, create_run_dir
from ftui.runs.runner import (
    LaunchError,
    accelerate_machines_problem,
    disk_full_message,
    launch,
    mark_gone,
    processes_gone,
    request_cancel,
)
from ftui.server.hub_auth import trainer_environment
from ftui.workspace import Workspace

# A run whose supervisor and trainer are both gone this long after its last word is dead.
STARTUP_GRACE_SECONDS = 10.0


class JobError(ValueError):
    """A queue action that cannot be done, with the reason in plain words."""


class Jobs:
    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace
        self.path = workspace.root / DATABASE
        with self._connect():
            pass  # creates the tables, or brings an older file's columns up to date

    # ------------------------------------------------------------ actions

    def submit(
        self,
        config: FtuiConfig,
        owner: str = "local",
        cwd: str | Path | None = None,
        server_token: bool = True,
    ) -> RunDir:
        """Create runs/<id>/ (queued), index it, and start it if its device is free.

        `server_token`: whether the trainer may use the server's Hugging Face token (the CLI:
        yes; the web UI passes False). Data and model are pinned in runs/<id>/inputs.json.
        """
        folder = Path(cwd or Path.cwd()).resolve()
        device = placeable_device(config, folder)  # bounds; this machine's or the cluster's
        run = create_run_dir(config, self.workspace)
        write_inputs(run, fingerprint_inputs(config, folder))
        now = time.time()
        gpus_wanted = config.train.num_processes if device == "cuda" else 0  # one per process
        with self._connect() as db:
            db.execute(
                "INSERT INTO runs (id, name, owner, state, device, model, method, dataset,"
                " created, queued, cwd, server_token, gpus_wanted)"
                " VALUES (?, ?, ?, 'queued', ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    run.run_id, config.name, owner, device,
                    config.model.name_or_path, config.method.name, config.data.path,
                    now, now, str(folder), int(server_token), gpus_wanted,
                ),
            )  # fmt: skip
        self.dispatch()
        return run

    def dispatch(self) -> list[str]:
        """Start every queued run whose slots are free, oldest first; return the ids started.

        GPUs are chosen and the run claimed in one write transaction. A run that cannot start
        is marked failed and the next one is tried.
        """
        started: list[str] = []
        with self._connect() as db:  # a read first: no write lock while nothing is active
            active = db.execute("SELECT 1 FROM runs WHERE state IN ('queued', 'running') LIMIT 1")
            if active.fetchone() is None:
                return started
            running = db.execute("SELECT id FROM runs WHERE state='running'").fetchall()
        ray_queue.watch_ray_runs([RunDir(self.workspace.runs / row["id"]) for row in running])
        with self._transaction() as db:
            self._sync(db)
            queued = db.execute("SELECT * FROM runs WHERE state='queued' ORDER BY queued, id")
            if ray_address():  # every queued run goes to Ray at once (ftui.runs.ray_queue)
                with contextlib.suppress(RayUnreachable):  # the rest stay queued: retried later
                    for row in queued.fetchall():
                        started += [row["id"]] if self._start(db, row, None) else []
                return started
            book = SlotBook.read(db, time.time(), leased_gpus(db))
            for row in queued.fetchall():
                wanted = self._gpus_wanted(row)
                unfit = unfit_reason(wanted, book.gpus)  # never starts here: fail, don't block
                if unfit:
                    run = RunDir(self.workspace.runs / row["id"])
                    _fail_row(db, row["id"], run, f"Could not start the run: {unfit}")
                    continue
                gpus = book.take(row["device"], wanted, row["queued"])
                if gpus is None:
                    continue
                if self._start(db, row, gpus):
                    started.append(row["id"])
                else:
                    book.give_back(gpus, row["device"])
        return started

    def _gpus_wanted(self, row: sqlite3.Row) -> int:
        """GPUs the run asked for; rows from before the column read the run's config."""
        if row["device"] != "cuda" or row["gpus_wanted"] is not None:
            return row["gpus_wanted"] or 0
        with contextlib.suppress(OSError, ValueError):
            return RunDir(self.workspace.runs / row["id"]).read_config().train.num_processes
        return 1  # unreadable: the start fails on it and says why

    def _start(self, db: sqlite3.Connection, row: sqlite3.Row, gpus: list[str] | None) -> bool:
        """Launch one claimed run on `gpus` (None: on the Ray cluster); on failure mark it
        failed and return False. Raises RayUnreachable: the run stays queued."""
        run = RunDir(self.workspace.runs / row["id"])
        try:
            self.run_dir(row["id"])  # refuses an id with path parts
            where, job = launch_claimed_run(run, row, gpus, self._gpus_wanted(row))
        except RayUnreachable:
            raise
        except (OSError, ValueError, LaunchError, RayEngineError) as exc:
            reason = _os_reason(exc, run) if isinstance(exc, OSError) else str(exc)
            _fail_row(db, row["id"], run, f"Could not start the run: {reason}")
            return False
        db.execute(
            "UPDATE runs SET state='running', gpus=?, ray_job=?, started=COALESCE(started, ?)"
            " WHERE id=?",
            (where, job, time.time(), row["id"]),
        )
        return True

    def refresh(self) -> None:
        """Bring the index up to date with the run folders and start what can start."""
        self.dispatch()

    def cancel(self, run_id: str) -> str:
        """Cancel a queued run at once, or ask a running one to stop; return the new state.

        Queued -> cancelled is one conditional UPDATE: when a dispatch launched the run a
        moment ago, no row changes and the running run is asked to stop instead.
        """
        row = self.get(run_id)
        run = self.run_dir(run_id)
        if row["state"] == "queued":
            with self._transaction() as db:
                changed = db.execute(
                    "UPDATE runs SET state='cancelled', finished=?, error=? "
                    "WHERE id=? AND state='queued'",
                    (time.time(), QUEUED_CANCEL, run_id),
                ).rowcount
            if changed:
                with contextlib.suppress(OSError, ValueError):  # the index already says so
                    run.write_status("cancelled", finished=time.time(), error=QUEUED_CANCEL)
                return "cancelled"
            row = self.get(run_id)  # it was launched meanwhile
        if row["state"] != "running":
            raise JobError(f"run {run_id} is already {row['state']}; there is nothing to cancel")
        if (status := ray_queue.status_or_empty(run)).get("engine") == "ray":
            return ray_queue.cancel_run(run, status)
        request_cancel(run)
        return "cancelling"

    def resume(self, run_id: str, server_token: bool = True) -> None:
        """Queue a failed or cancelled run again; it continues from its last checkpoint.

        Refused when the data or the base model changed since the run started. The move to
        queued happens once under SQLite's write lock: of two racing resumes one wins, the
        other gets "already queued". `server_token=False` (the web UI) takes the server's Hub
        token away from the resumed trainer; True keeps what the run had.
        """
        if self.get(run_id)["state"] == "running":
            self.refresh()  # its trainer may have ended a moment ago: the index catches up
        row, run = self.get(run_id), self.run_dir(run_id)
        _check_resumable(row, run)
        with self._transaction() as db:
            now = db.execute("SELECT state FROM runs WHERE id=?", (run_id,)).fetchone()
            _check_resumable_state(run_id, now["state"] if now else "deleted")
            db.execute(
                "UPDATE runs SET state='queued', resume=1, queued=?, finished=NULL, error=NULL,"
                " gpus=NULL, ray_job=NULL, server_token=server_token AND ?"
                " WHERE id=? AND state IN ('failed', 'cancelled')",
                (time.time(), int(server_token), run_id),
            )
            try:
                run.cancel_path.unlink(missing_ok=True)
                run.write_status(
                    "queued", error=None, finished=None, pid=None, supervisor_pid=None, gpus=None,
                    engine=None, ray_job_id=None, gpus_requested=None,
                )  # fmt: skip
            except OSError as exc:  # rolls the transition back
                reason = _os_reason(exc, run)
                raise JobError(f"run {run_id} cannot be queued again: {reason}") from exc
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
        waiting: dict[str, int] = {}  # device -> queued rows seen so far, oldest first
        for row in sorted(rows, key=lambda r: (r["queued"], r["id"])):
            if row["state"] == "queued":
                row["position"] = waiting[row["device"]] = waiting.get(row["device"], 0) + 1
        return rows

    def run_dir(self, run_id: str) -> RunDir:
        if not run_id or "/" in run_id or "\\" in run_id or run_id.startswith("."):
            raise JobError(f"{run_id!r} is not a run id; `ftui runs` lists them")
        return RunDir(self.workspace.runs / run_id)

    # ------------------------------------------------------------ syncing

    def _sync(self, db: sqlite3.Connection) -> None:
        """Copy states and summaries from run folders; mark runs whose processes died failed.

        A row whose folder or status.json is missing or unreadable is marked failed with the
        reason; one bad row never stops the others.
        """
        for row in db.execute("SELECT * FROM runs WHERE state='running'").fetchall():
            run = RunDir(self.workspace.runs / row["id"])
            try:
                self._sync_row(db, row["id"], run)
            except (OSError, ValueError) as exc:
                message = f"The run's status cannot be read ({exc}); it is marked failed."
                _fail_row(db, row["id"], run, message)

    def _sync_row(self, db: sqlite3.Connection, run_id: str, run: RunDir) -> None:
        if not run.path.is_dir():
            message = f"The run folder {run.path} is missing (deleted outside ftui)."
            _fail_row(db, run_id, run, message)
            return
        status = run.read_status()
        if status.get("state") not in FINISHED and processes_gone(status, STARTUP_GRACE_SECONDS):
            status = mark_gone(run)
        if status.get("state") in FINISHED:
            db.execute(
                "UPDATE runs SET state=?, finished=?, error=?, steps=?, train_loss=?,"
                " eval_loss=?, tokens=? WHERE id=?",
                (
                    status["state"], status.get("finished"), status.get("error"),
                    *summarise(run), run_id,
                ),
            )  # fmt: skip
        else:  # still training: the history shows its progress so far
            db.execute(
                "UPDATE runs SET steps=?, train_loss=?, eval_loss=?, tokens=? WHERE id=?",
                (*summarise(run), run_id),
            )

    # ------------------------------------------------------------ sqlite

    def _connect(self) -> AbstractContextManager[sqlite3.Connection]:
        return queue_db.connect(self.path)

    def _transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        """A write transaction that holds SQLite's lock from the start (BEGIN IMMEDIATE)."""
        return queue_db.transaction(self.path)


def launch_claimed_run(
    run: RunDir, row: sqlite3.Row, gpus: list[str] | None, wanted: int
) -> tuple[str | None, str | None]:
    """Start a claimed run: on `gpus` ([] = CPU) a detached supervisor here pins the trainer to
    them; None asks the Ray cluster for `wanted` GPUs. Returns the runs table's gpus text and
    Ray job id; raises OSError, ValueError, LaunchError or RayEngineError if it cannot start."""
    if gpus is None:
        return ray_queue.placement_text(wanted), ray_queue.place_run(run, row, wanted)
    run.write_status("queued", resume=bool(row["resume"]), gpus=gpus)
    launch(run, cwd=row["cwd"], env=trainer_environment(bool(row["server_token"])))
    return format_gpus(gpus), None


def summarise(run: RunDir) -> tuple[int | None, float | None, float | None, float | None]:
    """(last step, last training loss, last eval loss, tokens seen) from metrics.jsonl."""
    steps = train_loss = eval_loss = tokens = None
    for record in run.read_metrics():
        steps = record.get("step", steps)
        train_loss = record.get("loss", train_loss)
        eval_loss = record.get("eval_loss", eval_loss)
        tokens = record.get("num_tokens", tokens)
    return steps, train_loss, eval_loss, tokens


QUEUED_CANCEL = "Cancelled while queued."


def placeable_device(config: FtuiConfig, cwd: str | Path) -> str:
    """Check that `config` can run where runs go (this machine, or the Ray cluster); return its
    slot kind, "cuda" or "cpu". Raises ConfigError (a Ray cluster that does not answer too)."""
    if ray_address():
        return ray_queue.check_fits_cluster(config)
    config.check_runnable()  # bounds, and no more processes than this machine's devices
    if problem := accelerate_machines_problem(config, cwd):
        raise ConfigError(problem)
    return device_key(config)


def _fail_row(db: sqlite3.Connection, run_id: str, run: RunDir, message: str) -> None:
    """Mark a run failed in the index, and in its status.json where that can be written."""
    now = time.time()
    db.execute(
        "UPDATE runs SET state='failed', finished=?, error=? WHERE id=?", (now, message, run_id)
    )
    with contextlib.suppress(OSError, ValueError):
        if run.path.is_dir():
            run.write_status("failed", finished=now, error=message)


def _os_reason(exc: OSError, run: RunDir) -> str:
    if exc.errno == errno.ENOSPC:
        return disk_full_message(run)
    if not run.path.is_dir():
        return f"its run folder {run.path} is missing (deleted outside ftui)"
    return str(exc)


def _check_resumable(row: dict[str, Any], run: RunDir) -> None:
    """The reasons a run cannot be resumed that do not depend on a race."""
    _check_resumable_state(row["id"], row["state"])
    if run.last_checkpoint() is None:
        raise JobError(
            f"run {row['id']} has no complete checkpoint to resume from; start it again instead"
        )
    try:
        config = run.read_config()
        placeable_device(config, row["cwd"])
        problems = changed_inputs(run, config, row["cwd"])
    except (OSError, ValueError) as exc:
        raise JobError(f"run {row['id']} cannot be resumed: {exc}") from exc
    if problems:
        raise JobError(
            f"run {row['id']} cannot be resumed: {'; '.join(problems)}. A resumed run must "
            f"continue on the same data and model; start a new run with its config instead "
            f"(`ftui train {run.config_path}`, or the Train tab)."
        )


def _check_resumable_state(run_id: str, state: str) -> None:
    if state in ("queued", "running"):
        raise JobError(f"run {run_id} is already {state}; it needs no resume")
    if state not in ("failed", "cancelled"):
        raise JobError(f"run {run_id} is {state}; only failed or cancelled runs can be resumed")
