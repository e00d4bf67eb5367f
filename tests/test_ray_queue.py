"""The job queue hands runs to Ray when FTUI_RAY_ADDRESS is set (ftui.runs.jobs with
ftui.runs.ray_queue): the session's Ray cluster (tests/ray_cluster.py: loopback, token auth,
4 CPUs, 2 fake GPUs), real Ray jobs, the real trainer on a tiny model — or, where only
placement and liveness matter, a stand-in for python that writes a line to train.log and then
waits to be stopped (it ignores the cancel file, as a hung trainer would).

Under Ray nothing is launched on this machine: the fixture makes a local launch fail the test.
Without FTUI_RAY_ADDRESS the local queue's own tests (test_gpu_slots.py, test_jobs.py,
test_queue_safety.py) cover that nothing changed.
"""

from __future__ import annotations

import importlib.util
import sqlite3
import time
from pathlib import Path

import psutil
import pytest
from conftest import free_port, tiny_triage_config, wait_until
from ray_cluster import processes_mentioning

from ftui.config import ConfigError
from ftui.runs import queue_db
from ftui.runs.jobs import Jobs
from ftui.runs.ray_engine import LIVE_STATES, PYTHON_VARIABLE
from ftui.runs.ray_queue import job_environment, placement_text, ray_engine_for
from ftui.runs.rundir import FINISHED
from ftui.runs.runner import LOG_LINES_ON_FAILURE, wait_for
from ftui.ui.runs_history import history_frame
from ftui.ui.runs_view import state_text
from ftui.workspace import Workspace

JOB_TIMEOUT = 240
STAND_IN = """#!/bin/sh
# python's stand-in: a line in train.log, its pid, GPUs and arguments in RUN/stand-in, then it
# waits
echo "stand-in trainer for $4 started"
echo "$$ ${CUDA_VISIBLE_DEVICES-none} $*" > "$4/stand-in"
exec sleep 300
"""

# Found, not imported: the cluster fixture sets Ray's token variables before ray is imported.
needs_ray = pytest.mark.skipif(
    importlib.util.find_spec("ray") is None,
    reason="ray is not installed: pip install -e '.[ray]' (make setup does)",
)


@pytest.fixture
def ray_jobs(ray_cluster, tmp_path, monkeypatch):
    """A queue whose runs go to the test cluster; any job a test leaves running is stopped."""
    monkeypatch.setenv("FTUI_RAY_ADDRESS", ray_cluster)
    monkeypatch.delenv(PYTHON_VARIABLE, raising=False)

    def no_local_launch(run, **_):
        raise AssertionError(f"run {run.run_id} was launched on this machine, not on Ray")

    monkeypatch.setattr("ftui.runs.jobs.launch", no_local_launch)
    yield Jobs(Workspace.open(tmp_path / "workspace"))
    client = ray_engine_for(ray_cluster).client
    for job in client.list_jobs():
        if str(job.status.value) in LIVE_STATES:
            client.stop_job(job.submission_id)


def _config(folder: Path, model: Path, **train):
    folder.mkdir(parents=True, exist_ok=True)
    config = tiny_triage_config(folder, model=model)
    for key, value in train.items():
        setattr(config.train, key, value)
    config.check()
    return config


def _use_stand_in(folder: Path, monkeypatch) -> None:
    script = folder / "python-stand-in"
    script.write_text(STAND_IN, encoding="utf-8")
    script.chmod(0o755)
    monkeypatch.setenv(PYTHON_VARIABLE, str(script))


def _stand_in_pid(run) -> int:
    text = wait_until(lambda: _read(run.path / "stand-in"), timeout=60, every=0.2)
    return int(text.split()[0])


def _ended(run) -> bool:
    return run.read_status().get("state") in FINISHED


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8") if path.exists() else ""


# ---------------------------------------------------------------- the real trainer


@needs_ray
@pytest.mark.slow
def test_a_submitted_run_trains_through_ray_and_its_row_completes(
    ray_jobs, tiny_model_dir, tmp_path
):
    run = ray_jobs.submit(_config(tmp_path, tiny_model_dir), cwd=tmp_path)
    row = ray_jobs.get(run.run_id)
    status = run.read_status()
    assert row["state"] == "running" and row["ray_job"] == status["ray_job_id"]
    assert row["ray_job"].startswith(f"ftui-{run.run_id}-")
    assert row["gpus"] == "ray: 1 GPU"  # "auto" on a cluster with GPUs: one per process
    assert status["engine"] == "ray" and status["gpus_requested"] == 1
    assert "gpus" not in status or status["gpus"] is None  # names are for one machine

    assert wait_for(run, timeout=JOB_TIMEOUT)["state"] == "completed", run.log_tail()
    ray_jobs.refresh()
    row = ray_jobs.get(run.run_id)
    assert row["state"] == "completed" and row["steps"] == 3 and row["error"] is None
    assert row["eval_loss"] is not None
    assert (run.adapter / "adapter_model.safetensors").is_file()
    assert f"[ftui] Ray job {row['ray_job']} on node" in run.log_path.read_text("utf-8")
    assert history_frame(ray_jobs.list())["gpus"].tolist() == ["ray: 1 GPU"]
    assert state_text({"state": "running", "gpus": row["gpus"]}) == "running on ray: 1 GPU"


@needs_ray
@pytest.mark.slow
def test_cancel_through_the_queue_saves_the_adapter_and_resume_places_it_again(
    ray_jobs, tiny_model_dir, tmp_path, monkeypatch
):
    config = _config(tmp_path, tiny_model_dir, max_steps=2000, save_every=5, eval_every=1000)
    run = ray_jobs.submit(config, cwd=tmp_path)
    wait_until(lambda: run.last_checkpoint() or _ended(run), timeout=JOB_TIMEOUT, every=0.1)
    assert run.last_checkpoint(), run.log_tail()  # it is training

    assert ray_jobs.cancel(run.run_id) == "cancelling"
    assert wait_for(run, timeout=60)["state"] == "cancelled", run.log_tail()
    ray_jobs.refresh()
    row = ray_jobs.get(run.run_id)
    assert row["state"] == "cancelled" and "Cancelled at step" in row["error"]
    assert (run.adapter / "adapter_config.json").is_file()
    wait_until(lambda: not processes_mentioning(str(run.path)), timeout=30, every=0.5)

    # Resuming from the checkpoint through Ray is tested in test_ray_engine.py (two gloo
    # workers); here, that the queue places the run again with --resume (a stand-in: fast).
    _use_stand_in(tmp_path, monkeypatch)
    first_job = row["ray_job"]
    ray_jobs.resume(run.run_id)
    row = ray_jobs.get(run.run_id)
    assert row["state"] == "running" and row["ray_job"] not in (None, first_job)
    pid = _stand_in_pid(run)
    assert (run.path / "stand-in").read_text().split()[2:] == [
        "-m",
        "ftui",
        "train",
        str(run.path),
        "--resume",
    ]
    assert run.read_status()["ray_job_id"] == row["ray_job"] and not run.cancel_requested()
    assert ray_engine_for().stop(row["ray_job"]) == "STOPPED"
    assert not psutil.pid_exists(pid)


# ---------------------------------------------------------------- placement, with a stand-in


@needs_ray
@pytest.mark.slow
def test_a_job_killed_in_ray_is_marked_failed_by_refresh_with_its_log(
    ray_jobs, tiny_model_dir, tmp_path, monkeypatch
):
    _use_stand_in(tmp_path, monkeypatch)
    run = ray_jobs.submit(_config(tmp_path, tiny_model_dir), cwd=tmp_path)
    pid = _stand_in_pid(run)
    ray_jobs.refresh()
    assert ray_jobs.get(run.run_id)["state"] == "running"  # pids elsewhere: Ray says alive

    engine = ray_engine_for()
    job_id = ray_jobs.get(run.run_id)["ray_job"]
    assert engine.stop(job_id) == "STOPPED"  # killed in Ray, not by ftui
    ray_jobs.refresh()
    row = ray_jobs.get(run.run_id)
    assert row["state"] == "failed", row
    assert f"The Ray job {job_id} ended STOPPED" in row["error"]
    assert "stand-in trainer for" in row["error"]  # train.log's last lines
    assert run.log_tail(LOG_LINES_ON_FAILURE) in row["error"]
    assert not psutil.pid_exists(pid)


@needs_ray
@pytest.mark.slow
def test_every_queued_run_goes_to_ray_at_once_and_cancel_reaches_each(
    ray_jobs, tiny_model_dir, tmp_path, monkeypatch
):
    _use_stand_in(tmp_path, monkeypatch)
    runs = [
        ray_jobs.submit(_config(tmp_path / f"run{index}", tiny_model_dir), cwd=tmp_path)
        for index in range(3)
    ]
    rows = [ray_jobs.get(run.run_id) for run in runs]
    assert [row["state"] for row in rows] == ["running"] * 3  # all placed: Ray holds the third
    pids = [_stand_in_pid(run) for run in runs[:2]]
    seen = sorted((run.path / "stand-in").read_text().split()[1] for run in runs[:2])
    assert seen == ["0", "1"]  # one fake GPU each
    time.sleep(2)
    engine = ray_engine_for()
    assert engine.job_state(rows[2]["ray_job"]) == "PENDING"
    assert not (runs[2].path / "stand-in").exists()

    assert ray_jobs.cancel(runs[2].run_id) == "cancelled"  # waiting: nothing to save
    assert ray_jobs.cancel(runs[0].run_id) == "cancelling"  # the trainer may save first
    ray_jobs.refresh()
    assert ray_jobs.get(runs[0].run_id)["state"] == "running"  # inside its grace period
    runs[0].cancel_path.write_text(str(time.time() - 3600), encoding="utf-8")  # grace over
    ray_jobs.refresh()  # the hard kill: `ray job stop`
    states = [ray_jobs.get(run.run_id)["state"] for run in runs]
    assert states == ["cancelled", "running", "cancelled"]
    assert "did not stop within" in ray_jobs.get(runs[0].run_id)["error"]
    assert not psutil.pid_exists(pids[0]) and psutil.pid_exists(pids[1])
    assert engine.stop(rows[1]["ray_job"]) == "STOPPED"


@needs_ray
@pytest.mark.slow
def test_a_run_is_checked_against_the_clusters_gpus_not_this_machines(
    ray_jobs, tiny_model_dir, tmp_path, monkeypatch
):
    monkeypatch.setenv("FTUI_GPUS", "0")  # this machine: one GPU; the cluster: two
    config = _config(tmp_path, tiny_model_dir, num_processes=3)
    config.model.device = "cuda"
    with pytest.raises(ConfigError, match=r"more than the 2 GPUs of the Ray cluster at http"):
        ray_jobs.submit(config, cwd=tmp_path)
    config.model.device = "cpu"
    config.train.num_processes = 5
    with pytest.raises(ConfigError, match=r"more than the 4 CPUs of the Ray cluster"):
        ray_jobs.submit(config, cwd=tmp_path)

    monkeypatch.setenv("FTUI_RAY_ADDRESS", f"http://127.0.0.1:{free_port()}")  # nobody there
    config.train.num_processes = 1
    with pytest.raises(ConfigError, match=r"cannot be reached.*nothing was queued"):
        ray_jobs.submit(config, cwd=tmp_path)
    assert ray_jobs.list() == [] and not list(ray_jobs.workspace.runs.glob("*"))


# ---------------------------------------------------------------- without a cluster


def test_an_accelerate_config_for_several_machines_is_refused_on_one(tmp_path):
    accelerate = tmp_path / "two-nodes.yaml"
    accelerate.write_text("distributed_type: MULTI_GPU\nnum_machines: 2\nmachine_rank: 0\n")
    config = tiny_triage_config(tmp_path)
    config.train.accelerate_config = accelerate.name  # relative: to the working folder
    jobs = Jobs(Workspace.open(tmp_path / "workspace"))
    with pytest.raises(ConfigError, match=r"is for 2 machines .* through Ray"):
        jobs.submit(config, cwd=tmp_path)
    assert jobs.list() == []
    accelerate.write_text("distributed_type: MULTI_GPU\nnum_machines: 1\n")
    from ftui.runs.runner import accelerate_machines_problem

    assert accelerate_machines_problem(config, tmp_path) is None


def test_a_web_run_on_ray_gets_no_hugging_face_token_and_no_server_secret():
    server = {"HF_TOKEN": "hf_secret", "HF_HUB_OFFLINE": "1", "RAY_AUTH_TOKEN": "t", "HOME": "/"}
    web = job_environment(server_token=False, env=server)
    assert web == {
        "HF_HUB_OFFLINE": "1",
        "HF_TOKEN": "",  # overrides a token in the node's own environment
        "HUGGING_FACE_HUB_TOKEN": "",
        "HF_HUB_DISABLE_IMPLICIT_TOKEN": "1",
    }
    assert job_environment(server_token=True, env=server) == {"HF_HUB_OFFLINE": "1"}
    assert [placement_text(n) for n in (0, 1, 2)] == ["ray: CPU", "ray: 1 GPU", "ray: 2 GPUs"]


def test_an_older_queue_file_gets_the_ray_job_column(tmp_path):
    root = tmp_path / "workspace"
    root.mkdir()
    added = ",\n    ray_job TEXT"
    assert added in queue_db.SCHEMA
    with sqlite3.connect(root / queue_db.DATABASE) as db:
        db.executescript(queue_db.SCHEMA.replace(added, ""))
    Jobs(Workspace.open(root))
    with sqlite3.connect(root / queue_db.DATABASE) as db:
        columns = {row[1] for row in db.execute("PRAGMA table_info(runs)")}
    assert "ray_job" in columns
