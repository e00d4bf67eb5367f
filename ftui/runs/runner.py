"""Start, watch and stop training processes for run directories.

    launch(run)                  # starts the supervisor, detached; returns its pid
    supervise_queued_run(run)    # (the supervisor's body) the trainer on the run's GPUs, then
                                 # the next queued runs
    supervise(run, command)      # runs the trainer, enforces cancel, cleans up
    request_cancel(run)  # graceful stop now, hard kill after CANCEL_GRACE_SECONDS

Training never runs in the web app's process. `launch` starts a small supervisor,
`python -m ftui supervise runs/<id>`, in its own session so closing the UI or the terminal
does not kill it. The supervisor starts the trainer (`python -m ftui train runs/<id>`;
`torchrun` or `accelerate launch` for several processes) in a process group of its own, with
stdout and stderr going to runs/<id>/train.log — a file, never a pipe someone has to drain.
It then waits, and:

- when runs/<id>/cancel appears, gives the trainer CANCEL_GRACE_SECONDS (from the moment the
  supervisor first saw the request) to stop at a step boundary and save its adapter, then
  kills the whole process group (workers included), so no memory stays held — whatever
  becomes of the request file or status.json meanwhile; a run folder that disappears (or is
  replaced) means the kill at once;
- when the trainer dies without saying how it ended (SIGKILL, the OOM killer, a segfault),
  marks the run failed with the exit reason and the log's last lines;
- finally asks the job queue to start the queued runs that now fit.

The trainer sees only the GPUs the queue gave the run (status.json's `gpus`, as
CUDA_VISIBLE_DEVICES).

Working directories are the caller's, so relative data paths in a config resolve as they did
when it was written.

Liveness is a pid plus the process's start time (psutil), both recorded in status.json: after
a container restart a reused pid is not mistaken for the run's process.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path

import psutil
import yaml

from ftui.config import FtuiConfig
from ftui.config.devices import count_cuda_devices
from ftui.runs.rundir import FINISHED, RunDir, StatusUnreadable

CANCEL_GRACE_SECONDS = float(os.environ.get("FTUI_CANCEL_GRACE_SECONDS", "60"))
POLL_SECONDS = 0.5
LOG_LINES_ON_FAILURE = 15
# psutil derives start times from clock ticks since boot: the same process always reads the
# same value; a reused pid started this much later (or earlier) is another process.
START_TIME_TOLERANCE_SECONDS = 1.0
DISK_FULL_WORDS = ("No space left on device", "StorageFull", "os error 28")


class LaunchError(RuntimeError):
    """A run could not be started, with the reason in plain words."""


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


def accelerate_machines_problem(config: FtuiConfig, cwd: str | Path) -> str | None:
    """Why the run's accelerate config cannot run here (None when it can): ftui starts
    `accelerate launch` on this machine only, so a config for several machines would wait for
    the others forever (several machines go through Ray). An unreadable file: accelerate's."""
    path = config.train.accelerate_config
    if not path:
        return None
    try:
        settings = yaml.safe_load((Path(cwd) / path).read_text(encoding="utf-8"))
    except (OSError, ValueError, yaml.YAMLError):
        return None
    machines = settings.get("num_machines", 1) if isinstance(settings, dict) else 1
    if machines in (None, 1):
        return None
    return (
        f"train.accelerate_config: {path} is for {machines} machines (num_machines), but ftui "
        "starts accelerate on this machine only; use a config for one machine, or run on "
        "several machines through Ray (FTUI_RAY_ADDRESS, see the README)"
    )


def trainer_devices(
    config: FtuiConfig,
    device: str,
    env: Mapping[str, str] | None = None,
    gpus: list[str] | None = None,
) -> dict[str, str]:
    """The trainer's environment: on GPUs, pinned to `gpus` (the queue's assignment), else
    to as many as it has processes.

    Without this a one-process run on a machine with several GPUs sees them all, and the
    Trainer wraps the model in nn.DataParallel over every one (slower, and it takes GPUs
    another run could use). Without an assignment the first `num_processes` visible GPUs are
    kept: those named in $CUDA_VISIBLE_DEVICES, else the machine's by index. CPU runs are
    left as they are."""
    child = dict(os.environ if env is None else env)
    if device != "cuda":
        return child
    if gpus:
        child["CUDA_VISIBLE_DEVICES"] = ",".join(gpus)
        return child
    visible = child.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        gpus = [entry.strip() for entry in visible.split(",") if entry.strip()]
    else:
        gpus = [str(index) for index in range(count_cuda_devices())]
    if gpus:
        child["CUDA_VISIBLE_DEVICES"] = ",".join(gpus[: config.train.num_processes])
    return child


def launch(
    run: RunDir,
    cwd: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    supervisor: list[str] | None = None,
) -> int:
    """Start the supervisor for `run`, detached; record and return its pid.

    `env` is the supervisor's (and so the trainer's) environment; None inherits this one.
    `supervisor` is its argv (default `python -m ftui supervise RUN`).
    Raises LaunchError when the working folder is gone, OSError when the disk refuses.
    """
    folder = Path(cwd or Path.cwd())
    if not folder.is_dir():
        raise LaunchError(
            f"its working folder {folder} no longer exists, so relative data paths cannot "
            "be found; submit the run again from an existing folder"
        )
    command = supervisor or [sys.executable, "-m", "ftui", "supervise", str(run.path)]
    with run.log_path.open("ab") as log:
        process = subprocess.Popen(
            command, cwd=folder, env=None if env is None else dict(env),
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    started = process_start_time(process.pid)  # before the reaper can collect it
    # Reap it when it ends, so a long-lived web app collects no zombies.
    threading.Thread(target=process.wait, daemon=True).start()
    run.write_status(
        "running", supervisor_pid=process.pid, supervisor_started=started, heartbeat=time.time()
    )
    return process.pid


def supervise_queued_run(run: RunDir, trainer: list[str] | None = None) -> int:
    """The detached supervisor's whole job (`ftui supervise RUN`): run the trainer — `trainer`
    or `trainer_command` — on the GPUs the queue gave the run (status.json's `gpus`), then
    let the queue start what now fits. Returns `supervise`'s exit code."""
    from ftui.runs.gpu_slots import device_key
    from ftui.runs.jobs import Jobs
    from ftui.workspace import Workspace

    config = run.read_config()
    status = run.read_status()
    assigned = status.get("gpus")  # the GPU names the queue gave it: ["0", "1"]
    gpus = [str(gpu) for gpu in assigned] if isinstance(assigned, list) else []
    device = "cuda" if gpus else device_key(config)
    command = trainer or trainer_command(run, config, device, bool(status.get("resume")))
    code = supervise(run, command, trainer_devices(config, device, gpus=gpus))
    Jobs(Workspace(run.path.parent.parent)).dispatch()
    return code


def supervise(run: RunDir, command: list[str], env: Mapping[str, str] | None = None) -> int:
    """Run the trainer to its end (in `env`; None inherits this one); return the state the
    run finished in as an exit code."""
    identity = folder_identity(run.path)
    with run.log_path.open("ab") as log:
        trainer = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True, env=None if env is None else dict(env),
        )  # fmt: skip
    run.write_status(
        "running",
        supervisor_pid=os.getpid(),
        supervisor_started=process_start_time(os.getpid()),
        trainer_pgid=trainer.pid,
        trainer_started=process_start_time(trainer.pid),
    )
    forced = _wait_honouring_cancel(run, trainer, identity)
    if folder_identity(run.path) != identity:
        return 1  # the run folder was deleted: nothing left to record
    with contextlib.suppress(OSError, StatusUnreadable):  # a full disk, a broken status
        _record_ending(run, trainer.returncode, forced)
    with contextlib.suppress(OSError, StatusUnreadable):
        return 0 if run.read_status().get("state") == "completed" else 1
    return 1


def folder_identity(path: Path) -> tuple[int, int] | None:
    """(device, inode) of a folder, None when it is gone: a recreated folder differs."""
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_dev, stat.st_ino


def _wait_honouring_cancel(
    run: RunDir, trainer: subprocess.Popen, identity: tuple[int, int] | None
) -> bool:
    """Wait for the trainer; kill its process group if a cancel outlives the grace period, or
    at once if the run folder disappears. Returns True when the trainer had to be killed.

    The grace period runs from the first time this loop saw the request, so deleting the
    request file (or the whole folder) afterwards cannot stop the kill.
    """
    first_seen = None
    while trainer.poll() is None:
        vanished = folder_identity(run.path) != identity
        if first_seen is None and (vanished or run.cancel_requested()):
            first_seen = time.monotonic()
        waited = time.monotonic() - first_seen if first_seen is not None else 0.0
        if vanished or (first_seen is not None and waited > CANCEL_GRACE_SECONDS):
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
    if status.get("state") in FINISHED or status.get("supervisor_pid") != os.getpid():
        return  # the trainer wrote its ending, or the run was resumed under a new supervisor
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
    tail = run.log_tail(LOG_LINES_ON_FAILURE)
    if any(words in tail for words in DISK_FULL_WORDS):
        return f"{disk_full_message(run)}\n{tail}".strip()
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
    return f"{reason}; {kept_text}. Resume continues from there.\n{tail}".strip()


def request_cancel(run: RunDir) -> None:
    """Ask a running trainer to stop at its next step boundary (the supervisor enforces it)."""
    run.request_cancel()


def is_alive(pid: int | None, started: float | None = None) -> bool:
    """True when `pid` is a live process (not a zombie); with `started` (its recorded
    `process_start_time`), only when it is still that same process and not a reused pid."""
    if not pid:
        return False
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        if started is None:
            return True
        return abs(process.create_time() - started) < START_TIME_TOLERANCE_SECONDS
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True  # it exists; another user's process cannot be told apart further


def processes_gone(status: dict, grace_seconds: float) -> bool:
    """No word from the run for `grace_seconds` and neither its supervisor nor its trainer
    alive — the processes that were recorded (pid and start time), not a reused pid. Never
    for a run on Ray (its pids are on a node): Ray's job status says (ftui.runs.ray_queue)."""
    if status.get("engine") == "ray":
        return False
    last_word = max(status.get("heartbeat") or 0, status.get("updated") or 0)
    if time.time() - last_word < grace_seconds:
        return False
    processes = [
        (status.get("supervisor_pid"), status.get("supervisor_started")),
        (status.get("pid"), status.get("pid_started")),
    ]
    return not any(is_alive(pid, started) for pid, started in processes if pid)


def mark_gone(run: RunDir) -> dict:
    """Record that a run's processes are gone; return the status (kept in memory only when
    the disk refuses the write, so the index still records the ending)."""
    message = (
        "The training process is gone without a final word (no heartbeat, pid gone)."
        f"\n{run.log_tail(LOG_LINES_ON_FAILURE)}"
    )
    try:
        return run.write_status("failed", finished=time.time(), error=message)
    except OSError:
        return {"state": "failed", "finished": time.time(), "error": message}


def process_start_time(pid: int) -> float | None:
    """When process `pid` started (seconds since the epoch), None when it is gone."""
    try:
        return psutil.Process(pid).create_time()
    except psutil.Error:
        return None


def is_disk_full(error: BaseException) -> bool:
    """True for "No space left on device", as an OSError anywhere in the chain or in the text
    of a library's own error (safetensors, tokenizers and torch wrap it)."""
    seen: BaseException | None = error
    for _ in range(20):  # a chain is short; a cycle must not hang the error path
        if seen is None:
            break
        if isinstance(seen, OSError) and seen.errno == errno.ENOSPC:
            return True
        if any(words in str(seen) for words in DISK_FULL_WORDS):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def disk_full_message(run: RunDir) -> str:
    """What a run that hit a full disk says, with its workspace and what is kept."""
    workspace = run.path.parent.parent
    kept = run.last_checkpoint()
    kept_text = (
        f"the last complete checkpoint (step {kept[1]}) is kept" if kept
        else "no complete checkpoint had been saved"
    )  # fmt: skip
    return (
        f"The disk is full: free space in {workspace} or lower train.save_total_limit; "
        f"{kept_text}. Resume continues from there once there is room."
    )


def wait_for(run: RunDir, timeout: float | None = None) -> dict:
    """Poll status.json until the run is completed, failed or cancelled; return the status.

    Raises TimeoutError after `timeout` seconds with the state it was last in. A run on Ray is
    checked with Ray too, so a job that died there ends the wait.
    """
    from ftui.runs.ray_queue import watch_ray_runs

    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        watch_ray_runs([run])  # only a run whose status.json says engine "ray"
        status = run.read_status()
        if status.get("state") in FINISHED:
            return status
        if deadline is not None and time.monotonic() > deadline:
            raise TimeoutError(
                f"run {run.run_id} still {status.get('state', 'unknown')} after {timeout} s; "
                f"see {run.log_path}"
            )
        time.sleep(POLL_SECONDS)
