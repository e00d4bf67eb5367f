"""Start training runs as detached subprocesses, and wait for them.

    run = start_run(config, Workspace.open())   # runs/<id>/ written, subprocess started
    status = wait_for(run, timeout=600)         # polls status.json until it is finished

Training never runs in the calling process: `python -m ftui train runs/<id>` runs in its own
session (so closing the UI or the terminal does not kill it) with stdout and stderr going to
runs/<id>/train.log — a file, never a pipe someone has to drain. Its working directory is the
caller's, so relative data paths in the config resolve as they did when it was written.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ftui.config import FtuiConfig
from ftui.rundir import FINISHED, RunDir
from ftui.workspace import Workspace

POLL_SECONDS = 0.5


def new_run_id(name: str) -> str:
    """A sortable, unique-enough id: UTC time to the millisecond plus a short safe name."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S-%f")[:-3]
    short = re.sub(r"[^A-Za-z0-9_-]+", "-", name).strip("-")[:32] or "run"
    return f"{stamp}-{short}"


def create_run(config: FtuiConfig, workspace: Workspace) -> RunDir:
    """runs/<id>/ with config.yaml and a queued status."""
    while True:
        path = workspace.runs / new_run_id(config.name)
        try:
            path.mkdir(parents=True)
            break
        except FileExistsError:
            time.sleep(0.002)
    run = RunDir(path)
    run.write_config(config)
    run.write_status("queued", created=time.time())
    return run


def start_run(
    config: FtuiConfig, workspace: Workspace, cwd: str | Path | None = None, resume: bool = False
) -> RunDir:
    """Create a run directory and start its training subprocess; return at once."""
    run = create_run(config, workspace)
    launch(run, cwd=cwd, resume=resume)
    return run


def launch(run: RunDir, cwd: str | Path | None = None, resume: bool = False) -> int:
    """Start `python -m ftui train RUN_DIR` detached; record its pid; return it."""
    command = [sys.executable, "-m", "ftui", "train", str(run.path)]
    if resume:
        command.append("--resume")
    with run.log_path.open("ab") as log:
        process = subprocess.Popen(
            command,
            cwd=cwd or Path.cwd(),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    # The child writes "running" with its pid too, but only after seconds of imports; this
    # records the pid at once, so a child that dies before that still shows who it was.
    if run.read_status().get("state") == "queued":
        run.write_status("running", pid=process.pid, heartbeat=time.time())
    return process.pid


def wait_for(run: RunDir, timeout: float | None = None) -> dict[str, Any]:
    """Poll status.json until the run is completed, failed or cancelled; return the status.

    Raises TimeoutError after `timeout` seconds with the state it was last in.
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        status = run.read_status()
        if status.get("state") in FINISHED:
            return status
        if deadline is not None and time.monotonic() > deadline:
            raise TimeoutError(
                f"run {run.run_id} still {status.get('state', 'unknown')} after {timeout} s; "
                f"see {run.log_path}"
            )
        time.sleep(POLL_SECONDS)
