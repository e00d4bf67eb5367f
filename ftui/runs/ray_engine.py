"""Ray as the engine for several machines: a run folder's training placed on a Ray cluster.

    engine = RayEngine()                   # $FTUI_RAY_ADDRESS, e.g. http://10.0.0.5:8265
    job_id = engine.submit(run, gpus=1)    # a Ray job trains runs/<id>; its id is in status.json
    engine.job_state(job_id)               # PENDING RUNNING SUCCEEDED FAILED STOPPED or UNKNOWN
    engine.cancel(run)                     # the cancel file: stop at a step, save the adapter
    engine.enforce_cancel(run)             # `ray job stop` once the grace period is over
    engine.check(run)                      # status.json, after Ray's word on the job
    engine.stop(job_id)                    # the hard kill
    engine.last_log_lines(job_id)          # Ray's own log of the job (a job that died early)
    engine.cluster_resources()             # {"CPU": 8.0, "GPU": 4.0, ...} of the live nodes

Ray Jobs does the placement: the GPU request is the job's resources, so Ray waits for free GPUs
and sets CUDA_VISIBLE_DEVICES. status.json records the request (`gpus_requested`, an int);
its `gpus`, the list of GPU names on one machine, is left out (the node's CUDA_VISIBLE_DEVICES
is in train.log's "[ftui] Ray job ... on node" line). A one-process run's job is
`python -m ftui train RUN` on the node Ray picks; a run with `train.num_processes` N > 1 runs
this module as the job's driver, which starts Ray Train's TorchTrainer with N workers (one GPU
each, on any nodes; gloo on CPU) calling the same `train_run_dir` — Ray Train sets RANK and
WORLD_SIZE, so only rank 0 writes status.json. The run folder stays the contract: it must be
on storage every node mounts, and the trainer's output goes to its train.log as on one
machine. Ray's own job log keeps what happened before that (a folder missing on the node, a
working folder that is not there).

Liveness is Ray's job status, not a pid: `check` marks a run whose job ended without a final
word failed (cancelled when a cancel was asked), with its last log lines. A cancel writes the
cancel file first; `ray job stop` is only the hard kill after CANCEL_GRACE_SECONDS, or at once
for a job still waiting for GPUs (Ray ends such a job when it would have started).

The jobs API wants the cluster's token: RAY_AUTH_MODE=token with RAY_AUTH_TOKEN or
RAY_AUTH_TOKEN_PATH in this process's environment before it first imports ray (Ray reads them
once). Job environments are visible to whoever can read the jobs API, so secrets belong in the
nodes' own environment, not in `env`.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import sys
import time
import uuid
from collections.abc import Mapping
from pathlib import Path

from ftui.runs.rundir import FINISHED, RunDir
from ftui.runs.runner import CANCEL_GRACE_SECONDS, LOG_LINES_ON_FAILURE

ADDRESS_VARIABLE = "FTUI_RAY_ADDRESS"
PYTHON_VARIABLE = "FTUI_RAY_PYTHON"
LIVE_STATES = ("PENDING", "RUNNING")
UNKNOWN = "UNKNOWN"
# Ray Train's print patch sends every print to its logger as well (each line twice, and
# dill's captured disassembly into the log); plain colourless lines read better in train.log.
JOB_ENVIRONMENT = {
    "PYTHONUNBUFFERED": "1",
    "RAY_TRAIN_ENABLE_PRINT_PATCH": "0",
    "RAY_COLOR_PREFIX": "0",
}
STOP_WAIT_SECONDS = 30.0
# Lines Ray writes into every job's log: not news when a job fails.
RAY_BOILERPLATE = ("Runtime env is setting up", "Running entrypoint for job")


class RayEngineError(RuntimeError):
    """The Ray cluster could not be reached or refused a request, in plain words."""


class RayUnreachable(RayEngineError):
    """The Ray cluster did not answer (down, restarting, a network problem): try again later."""


def ray_address() -> str | None:
    """The Ray jobs address from $FTUI_RAY_ADDRESS; None means one machine, no Ray."""
    return os.environ.get(ADDRESS_VARIABLE) or None


class RayEngine:
    """Places runs on one Ray cluster through its jobs API (the dashboard port)."""

    def __init__(self, address: str | None = None, python: str | None = None) -> None:
        self.address = address or ray_address()
        if not self.address:
            raise RayEngineError(f"no Ray cluster: set {ADDRESS_VARIABLE}=http://HEAD:8265")
        # The interpreter a job runs on its node: by default `python` from the PATH that
        # `ray start` had there.
        self.python = python or os.environ.get(PYTHON_VARIABLE) or "python"
        self._client = None

    @property
    def client(self):
        if self._client is None:
            from ray.job_submission import JobSubmissionClient

            try:
                self._client = JobSubmissionClient(self.address)
            except Exception as exc:  # connection refused, wrong token, not a Ray dashboard
                raise RayUnreachable(f"Ray at {self.address} cannot be reached: {exc}") from exc
        return self._client

    # ------------------------------------------------------------ placing

    def submit(
        self,
        run: RunDir,
        gpus: int = 1,
        env: Mapping[str, str] | None = None,
        *,
        resume: bool = False,
        cwd: str | Path | None = None,
    ) -> str:
        """Start a Ray job that trains `run` with `gpus` GPUs in all; return the job's id.

        `env` adds environment variables to the job; `cwd` is the working folder on the node
        (default this process's, so relative data paths resolve as on one machine). The id
        is written to status.json (ray_job_id) before the job exists, so no watcher can miss
        it; when Ray refuses, the status goes back and RayEngineError says why.
        """
        workers = run.read_config().train.num_processes
        if gpus % workers:
            raise ValueError(f"{gpus} GPUs cannot be split evenly over {workers} processes")
        job_id = f"ftui-{run.run_id}-{uuid.uuid4().hex[:6]}"
        folder = str(Path(cwd or Path.cwd()))
        command = job_command(run, job_id, self.python, folder, workers, gpus // workers, resume)
        earlier = run.read_status().get("state", "queued")
        run.write_status(
            "running", engine="ray", ray_job_id=job_id, ray_address=self.address,
            gpus_requested=gpus, gpus=None, resume=resume, placed=time.time(),
            heartbeat=time.time(), error=None, finished=None,
        )  # fmt: skip
        try:
            self.client.submit_job(
                entrypoint=command,
                submission_id=job_id,
                runtime_env={"env_vars": {**JOB_ENVIRONMENT, **dict(env or {})}},
                metadata={"ftui_run": str(run.path)},
                entrypoint_num_gpus=gpus if workers == 1 else 0,
            )
        except Exception as exc:
            run.write_status(earlier, ray_job_id=None)
            if isinstance(exc, (OSError, RayUnreachable)):  # requests' connection errors
                raise RayUnreachable(f"Ray at {self.address} cannot be reached: {exc}") from exc
            raise RayEngineError(f"Ray at {self.address} refused run {run.run_id}: {exc}") from exc
        return job_id

    def cluster_resources(self) -> dict[str, float]:
        """The resources of the cluster's live nodes added up ({"CPU": 8.0, "GPU": 4.0}),
        from Ray's state API on the same address and token as the jobs API."""
        from ray.util.state import list_nodes

        try:
            nodes = list_nodes(address=self.address, filters=[("state", "=", "ALIVE")], timeout=10)
        except Exception as exc:  # connection refused, wrong token, a timeout
            raise RayUnreachable(f"Ray at {self.address} cannot be reached: {exc}") from exc
        total: dict[str, float] = {}
        for node in nodes:
            for name, amount in (node.resources_total or {}).items():
                total[name] = total.get(name, 0.0) + float(amount)
        return total

    # ------------------------------------------------------------ watching

    def job_state(self, job_id: str) -> str:
        """Ray's word on the job; UNKNOWN when Ray has no such job (cluster restarted).
        Raises RayEngineError when Ray cannot be asked, so no run is failed for that."""
        try:
            return str(self.client.get_job_status(job_id).value)
        except RuntimeError as exc:
            if "404" in str(exc) or "does not exist" in str(exc):
                return UNKNOWN
            raise RayEngineError(f"Ray at {self.address}: {exc}") from exc
        except OSError as exc:  # requests' connection errors
            raise RayUnreachable(f"Ray at {self.address} cannot be reached: {exc}") from exc

    def last_log_lines(self, job_id: str, lines: int = LOG_LINES_ON_FAILURE) -> str:
        """The end of Ray's own log of the job, without the lines Ray writes for every job.
        The trainer writes to train.log; this log holds what failed before it could start."""
        try:
            text = self.client.get_job_logs(job_id)
        except (RuntimeError, OSError):
            return ""
        rows = [row for row in text.replace("\r", "\n").splitlines() if row.strip()]
        rows = [row for row in rows if not any(words in row for words in RAY_BOILERPLATE)]
        return "\n".join(rows[-lines:])

    def check(self, run: RunDir) -> dict:
        """The run's status after Ray's word on its job: a job that ended while status.json
        still says running is recorded as failed (cancelled when a cancel was asked)."""
        status = run.read_status()
        job_id = status.get("ray_job_id")
        if status.get("state") in FINISHED or not job_id:
            return status
        state = self.job_state(job_id)
        if state in LIVE_STATES:
            return status
        status = run.read_status()  # the trainer may have written its ending meanwhile
        if status.get("state") in FINISHED:
            return status
        return self._record_ending(run, job_id, state)

    def _record_ending(self, run: RunDir, job_id: str, state: str) -> dict:
        kept = run.last_checkpoint()
        kept_text = (
            f"the checkpoint at step {kept[1]} is kept" if kept else "no checkpoint was saved"
        )
        if run.cancel_requested():
            message = (
                f"Cancelled: the trainer did not stop within {CANCEL_GRACE_SECONDS:.0f} s and "
                f"its Ray job {job_id} was stopped; {kept_text}. Resume continues from there."
            )
            return run.write_status("cancelled", error=message, finished=time.time())
        if state == UNKNOWN:
            how = f"Ray no longer knows job {job_id} (the cluster restarted or lost it)"
        else:
            how = f"The Ray job {job_id} ended {state} before the trainer finished"
        message = f"{how}; {kept_text}. Resume continues from there.\n{self.failure_lines(run)}"
        return run.write_status("failed", error=message.strip(), finished=time.time())

    def failure_lines(self, run: RunDir) -> str:
        """train.log's last lines, then Ray's log of the job where it has more to say."""
        job_id = run.read_status().get("ray_job_id")
        ray_lines = self.last_log_lines(job_id) if job_id else ""
        parts = [run.log_tail(LOG_LINES_ON_FAILURE)]
        if ray_lines:
            parts.append(f"Ray's log of job {job_id}:\n{ray_lines}")
        return "\n".join(part for part in parts if part)

    # ------------------------------------------------------------ stopping

    def cancel(self, run: RunDir) -> None:
        """Ask the trainer to stop at its next step and save (the cancel file); a job still
        waiting in Ray for GPUs has nothing to save and is cancelled at once."""
        run.request_cancel()
        self.enforce_cancel(run)

    def enforce_cancel(self, run: RunDir, grace: float = CANCEL_GRACE_SECONDS) -> bool:
        """`ray job stop` for a cancelled run whose job outlived the grace period (counted
        from the time in the cancel file), or still waits for GPUs; True when it stopped one.
        Call it from the poll that watches running runs."""
        asked = run.cancel_requested_at()
        status = run.read_status()
        job_id = status.get("ray_job_id")
        if asked is None or not job_id or status.get("state") in FINISHED:
            return False
        state = self.job_state(job_id)
        if state == "PENDING":
            self.stop(job_id)
            message = "Cancelled while it waited in Ray for GPUs; nothing was trained."
            run.write_status("cancelled", error=message, finished=time.time())
            return True
        if state == "RUNNING" and time.time() - asked > grace:
            self.stop(job_id)
            return True
        return False

    def stop(self, job_id: str, wait: float = STOP_WAIT_SECONDS) -> str:
        """The hard kill: Ray sends SIGTERM, then SIGKILL after RAY_JOB_STOP_WAIT_TIME_S, to
        the job's processes (a TorchTrainer's workers die with their driver). Waits up to
        `wait` seconds for the job to end; returns its state. A job still waiting for
        resources is stopped by Ray only once it is scheduled: PENDING comes back at once."""
        pending = self.job_state(job_id) == "PENDING"
        try:
            self.client.stop_job(job_id)
        except (RuntimeError, OSError) as exc:
            raise RayEngineError(f"Ray at {self.address} could not stop {job_id}: {exc}") from exc
        return "PENDING" if pending else self.wait(job_id, wait)

    def wait(self, job_id: str, timeout: float) -> str:
        """Poll Ray until the job has ended or `timeout` seconds pass; return its state."""
        deadline = time.monotonic() + timeout
        while (state := self.job_state(job_id)) in LIVE_STATES and time.monotonic() < deadline:
            time.sleep(0.5)
        return state


def job_command(
    run: RunDir, job_id: str, python: str, cwd: str, workers: int, gpus_each: int, resume: bool
) -> str:
    """The job's shell entrypoint: check the run folder is on this node, go to the working
    folder, say where the job landed in train.log, then become the trainer (or the Ray Train
    driver) with its output appended to train.log."""
    folder, log = shlex.quote(str(run.path)), shlex.quote(str(run.log_path))
    if workers == 1:
        trainer = [python, "-m", "ftui", "train", str(run.path)]
    else:
        trainer = [python, "-m", "ftui.runs.ray_engine", str(run.path)]
        trainer += ["--workers", str(workers), "--gpus-per-worker", str(gpus_each)]
    trainer += ["--resume"] if resume else []
    missing = (
        f'echo "[ftui] the run folder is not on node $(hostname):" {folder} '
        '"- run folders must be on storage every Ray node mounts"'
    )
    placed = f'echo "[ftui] Ray job {job_id} on node $(hostname), GPUs: ${{CUDA_VISIBLE_DEVICES-}}"'
    # One line: Ray echoes the entrypoint into its log, where RAY_BOILERPLATE drops it.
    return "; ".join(
        [
            f"test -d {folder} || {{ {missing}; exit 3; }}",
            f"cd {shlex.quote(cwd)} || exit 3",
            f"{placed} >> {log}",
            f"exec {shlex.join(trainer)} >> {log} 2>&1",
        ]
    )


# ---------------------------------------------------------------- the driver of N workers


def train_on_workers(run: RunDir, workers: int, gpus_each: int, resume: bool) -> int:
    """Ray Train's TorchTrainer: `workers` processes (DDP; gloo without GPUs) each calling
    train_run_dir; returns 0 when the run completed or was cancelled, else 1."""
    from ray.train import FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    resources = {"CPU": 1, "GPU": gpus_each} if gpus_each else {"CPU": 1}
    trainer = TorchTrainer(
        _train_one_worker,
        train_loop_config={"run_dir": str(run.path), "resume": resume},
        scaling_config=ScalingConfig(
            num_workers=workers, use_gpu=gpus_each > 0, resources_per_worker=resources
        ),
        torch_config=TorchConfig(backend="nccl" if gpus_each else "gloo"),
        # Ray Train keeps a little state of its own; on shared storage, next to the run.
        run_config=RunConfig(
            name="train",
            storage_path=str(run.path / "ray-train"),
            failure_config=FailureConfig(max_failures=0),
        ),
    )
    try:
        trainer.fit()
    except Exception as exc:  # a worker failed: rank 0 has written why to status.json
        print(f"[ftui] Ray Train stopped: {exc}", flush=True)
        return 1
    return 0


def _train_one_worker(config: dict) -> None:
    from ftui.runs.train import train_run_dir

    if train_run_dir(config["run_dir"], resume=config["resume"]) != 0:
        raise RuntimeError("the trainer failed; status.json and train.log say why")


def main(argv: list[str] | None = None) -> int:
    """`python -m ftui.runs.ray_engine RUN --workers N [--gpus-per-worker G] [--resume]`: the
    driver of a Ray job for a run with several processes (RayEngine.submit writes it)."""
    parser = argparse.ArgumentParser(prog="python -m ftui.runs.ray_engine")
    parser.add_argument("run_dir")
    parser.add_argument("--workers", type=int, required=True)
    parser.add_argument("--gpus-per-worker", type=int, default=0)
    parser.add_argument("--resume", action="store_true")
    args = parser.parse_args(argv)
    run = RunDir(Path(args.run_dir).resolve())
    print(f"[ftui] Ray Train: {args.workers} workers for {run.run_id}", flush=True)
    code = train_on_workers(run, args.workers, args.gpus_per_worker, args.resume)
    with contextlib.suppress(OSError):
        if run.read_status().get("state") not in FINISHED:  # died before rank 0 could say
            run.write_status(
                "failed", error=run.log_tail(LOG_LINES_ON_FAILURE), finished=time.time()
            )
    return code


if __name__ == "__main__":
    sys.exit(main())
