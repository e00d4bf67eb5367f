"""Runs placed on a real Ray cluster (ftui.runs.ray_engine): a head node started here on
loopback with token auth on and two fake GPUs (tests/ray_cluster.py, shared with
test_ray_queue.py), real Ray jobs, the real trainer on a tiny model.

The run folder is the contract, so the tests read it: train.log, metrics.jsonl, status.json,
checkpoints/ and adapter/. Placement is checked with a stand-in for python that records the
GPUs Ray gave it and then waits to be stopped (it ignores the cancel file, as a hung trainer
would).
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from conftest import REPO_ROOT, free_port, tiny_triage_config, wait_until
from ray_cluster import processes_mentioning

from ftui.runs.ray_engine import LIVE_STATES, RayEngine, RayEngineError, job_command
from ftui.runs.rundir import RunDir, create_run_dir
from ftui.runs.runner import LOG_LINES_ON_FAILURE
from ftui.workspace import Workspace

JOB_TIMEOUT = 240
OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1"}
STAND_IN = """#!/bin/sh
# python's stand-in: records its pid and the GPUs Ray gave it, then waits to be stopped
echo "$$ ${CUDA_VISIBLE_DEVICES-none}" > "$4/stand-in"
exec sleep 300
"""


# Found, not imported: Ray reads RAY_AUTH_MODE and RAY_AUTH_TOKEN once, when it is first
# imported, so the cluster fixture (tests/ray_cluster.py, one for the session) sets them
# before anything here imports ray.
pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("ray") is None,
    reason="ray is not installed: pip install -e '.[ray]' (make setup does)",
)


@pytest.fixture
def engine(ray_cluster):
    """The engine on the test cluster; any job a test leaves running is stopped after it."""
    engine = RayEngine(ray_cluster)
    yield engine
    for job in engine.client.list_jobs():
        if str(job.status.value) in LIVE_STATES:
            engine.client.stop_job(job.submission_id)


def _new_run(folder: Path, model: Path, **train) -> RunDir:
    folder.mkdir(parents=True, exist_ok=True)
    config = tiny_triage_config(folder, model=model)
    for key, value in train.items():
        setattr(config.train, key, value)
    config.check()
    return create_run_dir(config, Workspace.open(folder / "workspace"))


def _stand_in(folder: Path) -> str:
    script = folder / "python-stand-in"
    script.write_text(STAND_IN, encoding="utf-8")
    script.chmod(0o755)
    return str(script)


def _nothing_left_of(run: RunDir) -> None:
    wait_until(lambda: not processes_mentioning(str(run.path)), timeout=30, every=0.5)


# ---------------------------------------------------------------- the real trainer


@pytest.mark.slow
def test_a_run_placed_through_ray_fills_the_same_run_folder(engine, tiny_model_dir, tmp_path):
    run = _new_run(tmp_path, tiny_model_dir)
    job_id = engine.submit(run, gpus=1, env=OFFLINE, cwd=REPO_ROOT)
    assert run.read_status()["ray_job_id"] == job_id  # recorded before the job existed

    assert engine.wait(job_id, JOB_TIMEOUT) == "SUCCEEDED", run.log_tail()
    status = engine.check(run)
    assert status["state"] == "completed", status
    assert status["engine"] == "ray" and status["max_steps"] == 3
    log = run.log_path.read_text(encoding="utf-8")
    assert f"[ftui] Ray job {job_id} on node" in log
    assert "GPUs: 0" in log or "GPUs: 1" in log  # the fake GPU Ray gave the job
    assert "[ftui] saved to" in log
    assert [m["step"] for m in run.read_metrics() if "loss" in m] == [1, 2, 3]
    assert (run.checkpoints / "checkpoint-2").is_dir()
    assert (run.adapter / "adapter_config.json").is_file()
    assert (run.adapter / "adapter_model.safetensors").is_file()
    _nothing_left_of(run)


@pytest.mark.slow
def test_cancel_saves_the_adapter_and_leaves_no_process(engine, tiny_model_dir, tmp_path):
    run = _new_run(tmp_path, tiny_model_dir, max_steps=2000, eval_every=1000, save_every=1000)
    job_id = engine.submit(run, gpus=1, env=OFFLINE, cwd=REPO_ROOT)
    wait_until(run.read_metrics, timeout=JOB_TIMEOUT, every=0.2)  # it is training

    engine.cancel(run)
    assert engine.wait(job_id, 60) == "SUCCEEDED", run.log_tail()  # it stopped by itself
    status = engine.check(run)
    assert status["state"] == "cancelled", status
    assert "Cancelled at step" in status["error"]
    assert (run.adapter / "adapter_config.json").is_file()
    assert not engine.enforce_cancel(run, grace=0)  # nothing left to kill
    _nothing_left_of(run)


@pytest.mark.slow
def test_two_gloo_workers_killed_in_ray_fail_with_the_log_then_resume(
    engine, tiny_model_dir, tmp_path
):
    run = _new_run(
        tmp_path, tiny_model_dir, num_processes=2, max_steps=40, save_every=2, eval_every=1000
    )
    job_id = engine.submit(run, gpus=0, env=OFFLINE, cwd=REPO_ROOT)
    wait_until(run.last_checkpoint, timeout=JOB_TIMEOUT, every=0.2)
    assert len(processes_mentioning("RayTrainWorker")) >= 2  # Ray Train's two workers

    assert engine.stop(job_id) == "STOPPED"  # what `ray job stop` does
    status = engine.check(run)
    assert status["state"] == "failed", status
    assert f"The Ray job {job_id} ended STOPPED" in status["error"]
    assert run.log_tail(LOG_LINES_ON_FAILURE) in status["error"]  # train.log's last lines
    assert "Ray's log of job" not in status["error"]  # it has nothing more to say
    _nothing_left_of(run)
    wait_until(lambda: not processes_mentioning("RayTrainWorker"), timeout=30, every=0.5)

    kept_step = run.last_checkpoint()[1]
    resumed = engine.submit(run, gpus=0, env=OFFLINE, resume=True, cwd=REPO_ROOT)
    assert engine.wait(resumed, JOB_TIMEOUT) == "SUCCEEDED", run.log_tail()
    status = engine.check(run)
    assert status["state"] == "completed", status
    log = run.log_path.read_text(encoding="utf-8")
    assert "[ftui] process 1 of 2" in log  # both workers trained
    assert f"[ftui] resuming from checkpoint-{kept_step}" in log
    steps = [m["step"] for m in run.read_metrics() if "loss" in m]
    assert steps == list(range(1, 41))  # the redone steps replaced, none twice
    assert (run.adapter / "adapter_config.json").is_file()
    _nothing_left_of(run)


# ---------------------------------------------------------------- placement, with a stand-in


@pytest.mark.slow
def test_one_gpu_runs_get_their_own_gpus_and_a_third_waits(engine, tiny_model_dir, tmp_path):
    placing = RayEngine(engine.address, python=_stand_in(tmp_path))
    runs = [_new_run(tmp_path / f"run{index}", tiny_model_dir) for index in range(3)]
    jobs = [placing.submit(run, gpus=1, cwd=tmp_path) for run in runs]

    wait_until(lambda: all((run.path / "stand-in").exists() for run in runs[:2]), timeout=60)
    seen = [(run.path / "stand-in").read_text().split() for run in runs[:2]]
    assert sorted(gpus for _, gpus in seen) == ["0", "1"]  # one fake GPU each
    time.sleep(3)
    assert placing.job_state(jobs[2]) == "PENDING"  # no GPU left: Ray holds it
    assert not (runs[2].path / "stand-in").exists()

    placing.cancel(runs[2])  # waiting for a GPU: nothing to save, cancelled at once
    assert runs[2].read_status()["state"] == "cancelled"
    assert placing.stop(jobs[0]) == "STOPPED"  # the GPU it frees lets Ray end the third
    assert placing.wait(jobs[2], 60) == "STOPPED"
    assert placing.check(runs[2])["state"] == "cancelled"
    assert placing.stop(jobs[1]) == "STOPPED"
    for (pid, _), run in zip(seen, runs, strict=False):
        assert not psutil.pid_exists(int(pid)), f"the stand-in of {run.run_id} still runs"
        assert placing.check(run)["state"] == "failed"  # stopped without a cancel


@pytest.mark.slow
def test_a_trainer_that_ignores_cancel_is_stopped_after_the_grace(engine, tiny_model_dir, tmp_path):
    placing = RayEngine(engine.address, python=_stand_in(tmp_path))
    run = _new_run(tmp_path, tiny_model_dir)
    job_id = placing.submit(run, gpus=1, cwd=tmp_path)
    wait_until((run.path / "stand-in").exists, timeout=60)

    placing.cancel(run)
    assert not placing.enforce_cancel(run, grace=60)  # still inside its grace period
    assert placing.job_state(job_id) == "RUNNING"
    assert placing.enforce_cancel(run, grace=0)  # past it: `ray job stop`
    status = placing.check(run)
    assert status["state"] == "cancelled", status
    assert "did not stop within" in status["error"]
    pid = int((run.path / "stand-in").read_text().split()[0])
    assert not psutil.pid_exists(pid)


@pytest.mark.slow
def test_a_job_that_dies_before_training_is_failed_with_rays_log(engine, tiny_model_dir, tmp_path):
    run = _new_run(tmp_path, tiny_model_dir)
    job_id = engine.submit(run, gpus=0, env=OFFLINE, cwd=tmp_path / "not-on-this-node")
    assert engine.wait(job_id, 60) == "FAILED"
    status = engine.check(run)
    assert status["state"] == "failed"
    assert f"Ray's log of job {job_id}" in status["error"]
    assert "not-on-this-node" in status["error"]  # the shell's own words, from Ray's log


@pytest.mark.slow
def test_the_jobs_api_refuses_a_client_without_the_token(ray_cluster, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH")}
    env["HOME"] = str(tmp_path)  # no ~/.ray/auth_token either
    probe = "from ray.job_submission import JobSubmissionClient as C; C(%r).list_jobs()"
    result = subprocess.run(
        [sys.executable, "-c", probe % ray_cluster], env=env, capture_output=True, text=True
    )
    assert result.returncode != 0
    assert "401" in result.stderr or "auth" in result.stderr.lower(), result.stderr[-2000:]


# ---------------------------------------------------------------- without a cluster


def test_the_job_script_says_when_the_run_folder_is_not_on_the_node(tmp_path):
    run = RunDir(tmp_path / "elsewhere" / "20260101-run")
    script = job_command(run, "ftui-x", "python", str(tmp_path), 1, 0, False)
    result = subprocess.run(["sh", "-c", script], capture_output=True, text=True)
    assert result.returncode == 3
    assert "run folder is not on node" in result.stdout and str(run.path) in result.stdout
    assert "storage every Ray node mounts" in result.stdout


def test_the_job_script_trains_the_folder_with_its_output_in_train_log(tmp_path):
    run = RunDir(tmp_path / "a run")  # a space: every path is quoted
    run.path.mkdir()
    script = job_command(run, "ftui-x", "echo", str(tmp_path), 2, 1, True)
    result = subprocess.run(["sh", "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    log = run.log_path.read_text(encoding="utf-8")
    assert "[ftui] Ray job ftui-x on node" in log
    assert f"-m ftui.runs.ray_engine {run.path} --workers 2 --gpus-per-worker 1 --resume" in log


@pytest.mark.slow
def test_an_unreachable_cluster_fails_no_run(ray_cluster, tiny_model_dir, tmp_path):
    # ray_cluster: its token must be in the environment before this process imports ray
    run = _new_run(tmp_path, tiny_model_dir)
    run.write_status("running", engine="ray", ray_job_id="ftui-gone")
    engine = RayEngine(f"http://127.0.0.1:{free_port()}")
    with pytest.raises(RayEngineError, match="cannot be reached"):
        engine.check(run)
    assert run.read_status()["state"] == "running"


@pytest.mark.slow
def test_a_job_ray_no_longer_knows_fails_its_run(engine, tiny_model_dir, tmp_path):
    run = _new_run(tmp_path, tiny_model_dir)
    run.write_status("running", engine="ray", ray_job_id="ftui-lost-in-a-restart")
    assert engine.job_state("ftui-lost-in-a-restart") == "UNKNOWN"
    status = engine.check(run)
    assert status["state"] == "failed"
    assert "Ray no longer knows job ftui-lost-in-a-restart" in status["error"]
