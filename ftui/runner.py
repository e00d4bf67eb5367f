"""Start, watch and stop training processes for run directories.

    launch(run)          # starts the supervisor, detached; returns its pid
    supervise(run)       # (the supervisor's body) runs the trainer, enforces cancel, cleans up
    request_cancel(run)  # graceful stop now, hard kill after CANCEL_GRACE_SECONDS

Training never runs in the web app's process. `launch` starts a small supervisor,
`python -m ftui supervise runs/<id>`, in its own session so closing the UI or the terminal
does not kill it. The supervisor starts the trainer (`python -m ftui train runs/<id>`;
`torchrun` or `accelerate launch` for several processes) in a process group of its own, with
stdout and stderr going to runs/<id>/train.log — a file, never a pipe someone has to drain.
It then waits, and:

- when runs/<id>/cancel appears, gives the trainer CANCEL_GRACE_SECONDS to stop at a step
  boundary and save its adapter, then kills the whole process group (workers included), so
  no memory stays held;
- when the trainer dies without saying how it ended (SIGKILL, the OOM killer, a segfault),
  marks the run failed with the exit reason and the log's last lines;
- finally asks the job queue to start the next queued run on the same device.

Working directories are the caller's, so relative data paths in a config resolve as they did
when it was written.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from ftui.config import FtuiConfig
from ftui.rundir import FINISHED, RunDir

CANCEL_GRACE_SECONDS = float(os.environ.get("FTUI_CANCEL_GRACE_SECONDS", "60"))
POLL_SECONDS = 0.5
LOG_LINES_ON_FAILURE = 15


def trainer_command(run: RunDir, config: FtuiConfig, device: str, resume: bool) -> list[str]:
    """The trainer's argv: plain python, torchrun on CPU, or accelerate launch on GPUs."""
    target = ["ftui", "train", str(run.path)] + (["--resume"] if resume else [])
    processes = config.train.num_processes
    if processes == 1:
        return [sys.executable, "-m", *target]
    if device == "cpu":
        # accelerate launch --cpu starts only one process; torchrun with gloo starts them all.
        return [
            sys.executable, "-m", "torch.distributed.run", "--standalone",
            f"--nproc_per_node={processes}", "-m", *target,
        ]  # fmt: skip
    launcher = [sys.executable, "-m", "accelerate.commands.launch"]
    if config.train.accelerate_config:
        launcher += ["--config_file", config.train.accelerate_config]
    else:
        launcher += ["--multi_gpu"]
    return [*launcher, "--num_processes", str(processes), "-m", *target]


def launch(run: RunDir, cwd: str | Path | None = None) -> int:
    """Start the supervisor for `run`, detached; record and return its pid."""
    command = [sys.executable, "-m", "ftui", "supervise", str(run.path)]
    with run.log_path.open("ab") as log:
        process = subprocess.Popen(
            command,
            cwd=cwd or Path.cwd(),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    # Reap it when it ends, so a long-lived web app collects no zombies.
    threading.Thread(target=process.wait, daemon=True).start()
    run.write_status("running", supervisor_pid=process.pid, heartbeat=time.time())
    return process.pid


def supervise(run: RunDir, command: list[str]) -> int:
    """Run the trainer to its end; return the state the run finished in as an exit code."""
    with run.log_path.open("ab") as log:
        trainer = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    run.write_status("running", supervisor_pid=os.getpid(), trainer_pgid=trainer.pid)
    forced = _wait_honouring_cancel(run, trainer)
    _record_ending(run, trainer.returncode, forced)
    return 0 if run.read_status().get("state") == "completed" else 1


def _wait_honouring_cancel(run: RunDir, trainer: subprocess.Popen) -> bool:
    """Wait for the trainer; kill its process group if a cancel outlives the grace period.

    Returns True when the trainer had to be killed.
    """
    while trainer.poll() is None:
        asked = run.cancel_requested_at()
        if asked is not None and time.time() - asked > CANCEL_GRACE_SECONDS:
            _kill_group(trainer.pid)
            trainer.wait()
            return True
        time.sleep(POLL_SECONDS)
    _kill_group(trainer.pid)  # stray workers of a multi-process launcher
    return False


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def _record_ending(run: RunDir, returncode: int, forced: bool) -> None:
    """Write a final state when the trainer could not (killed, crashed before writing)."""
    status = run.read_status()
    if status.get("state") in FINISHED:
        return
    now = time.time()
    kept = run.last_checkpoint()
    kept_text = f"the checkpoint at step {kept[1]} is kept" if kept else "no checkpoint was saved"
    if forced or run.cancel_requested():
        message = (
            f"Cancelled: the trainer did not stop within {CANCEL_GRACE_SECONDS:.0f} s and was "
            f"killed; {kept_text}. Resume continues from there."
        )
        run.write_status("cancelled", error=message, finished=now)
        return
    run.write_status("failed", error=_death_message(returncode, kept_text, run), finished=now)


def _death_message(returncode: int, kept_text: str, run: RunDir) -> str:
    if returncode < 0:
        name = signal.Signals(-returncode).name
        reason = f"The trainer was killed by {name}"
        if returncode == -signal.SIGKILL:
            reason += (
                " (often the system's out-of-memory killer: lower the batch size or sequence "
                "length, or turn gradient checkpointing on)"
            )
    else:
        reason = f"The trainer exited with code {returncode} before finishing"
    tail = run.log_tail(LOG_LINES_ON_FAILURE)
    return f"{reason}; {kept_text}. Resume continues from there.\n{tail}".strip()


def request_cancel(run: RunDir) -> None:
    """Ask a running trainer to stop at its next step boundary (the supervisor enforces it)."""
    run.request_cancel()


def is_alive(pid: int | None) -> bool:
    """True when `pid` is a live process (not a zombie) that this user can see."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc: trust kill(0)
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def wait_for(run: RunDir, timeout: float | None = None) -> dict:
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
