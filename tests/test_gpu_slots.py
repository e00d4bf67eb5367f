"""Per-GPU job slots on one machine (issue 12, part 1), on a CPU machine with pretend GPUs.

FTUI_GPUS=0,1 gives ftui two GPUs that exist only in its accounting. Where the subject is what
a trainer is given, each run goes through the real detached supervisor (`runner.launch` and
`supervise_queued_run`) around a stand-in trainer: a small script that writes the
CUDA_VISIBLE_DEVICES it was started with into its run folder and waits for a `release` file
("done": it completes, "crash": it exits with code 3). Where the subject is the bookkeeping,
the supervisor launch is replaced by a recorder. The SQLite database is a real file; the race
test dispatches from several real processes at once.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import REPO_ROOT, wait_until

from ftui.config import FtuiConfig
from ftui.runs import jobs as jobs_module
from ftui.runs import runner
from ftui.runs.device_lease import place
from ftui.runs.jobs import Jobs
from ftui.runs.rundir import RunDir
from ftui.runs.runner import is_alive, wait_for
from ftui.workspace import Workspace

TIMEOUT = 60

STAND_IN = '''"""A trainer stand-in: records its GPUs, waits for runs/<id>/release, ends as told."""
import os, sys, time
from pathlib import Path
from ftui.runs.rundir import RunDir

run = RunDir(Path(sys.argv[1]))
seen = run.path / "visible.tmp"
seen.write_text(os.environ.get("CUDA_VISIBLE_DEVICES", "unset"))
seen.rename(run.path / "visible")
release = run.path / "release"
while not release.exists():
    time.sleep(0.05)
if release.read_text() == "crash":
    sys.exit(3)
run.write_status("completed", finished=time.time())
'''
SUPERVISOR = '''"""The real supervisor around the stand-in trainer; the runs its dispatch starts
at the end get this supervisor too."""
import sys
from pathlib import Path
from ftui.runs import jobs, runner
from ftui.runs.rundir import RunDir

def launch(run, cwd=None, env=None):
    command = [sys.executable, sys.argv[0], str(run.path), sys.argv[2]]
    return runner.launch(run, cwd=cwd, env=env, supervisor=command)

jobs.launch = launch
run = RunDir(Path(sys.argv[1]))
sys.exit(runner.supervise_queued_run(run, [sys.executable, sys.argv[2], str(run.path)]))
'''


@pytest.fixture(autouse=True)
def two_gpus(monkeypatch):
    monkeypatch.setenv("FTUI_GPUS", "0,1")  # subprocesses inherit it
    monkeypatch.delenv("FTUI_QUEUE_MAX_BYPASS_SECONDS", raising=False)


@pytest.fixture
def jobs(tmp_path) -> Jobs:
    return Jobs(Workspace.open(tmp_path / "workspace"))


@pytest.fixture
def stand_in(jobs, tmp_path, monkeypatch):
    """Runs start the real supervisor around the stand-in trainer; every run is released at
    the end so no process outlives the test."""
    trainer, supervisor = tmp_path / "stand_in_trainer.py", tmp_path / "stand_in_supervisor.py"
    trainer.write_text(STAND_IN, encoding="utf-8")
    supervisor.write_text(SUPERVISOR, encoding="utf-8")

    def launch(run, cwd=None, env=None):
        command = [sys.executable, str(supervisor), str(run.path), str(trainer)]
        return runner.launch(run, cwd=cwd, env=env, supervisor=command)

    monkeypatch.setattr(jobs_module, "launch", launch)
    yield
    for folder in jobs.workspace.runs.iterdir():
        release(RunDir(folder))
    wait_until(lambda: not _running(jobs), TIMEOUT, 0.2)


@pytest.fixture
def recorded(monkeypatch) -> list[str]:
    """Replace the supervisor launch by a recorder: run ids in launch order; each launched run
    says it is running under this (live) process."""
    started: list[str] = []

    def record(run, cwd=None, env=None):
        started.append(run.run_id)
        run.write_status("running", supervisor_pid=os.getpid(), heartbeat=time.time())
        return os.getpid()

    monkeypatch.setattr(jobs_module, "launch", record)
    return started


def _config(tmp_path: Path, name: str, gpus: int = 1, device: str = "cuda") -> FtuiConfig:
    data = tmp_path / f"{name}-train.jsonl"
    data.write_text('{"instruction": "a", "output": "b"}\n', encoding="utf-8")
    config = FtuiConfig(name=name)
    config.model.device = device
    config.data.path = str(data)
    config.train.num_processes = gpus
    return config


def submit(jobs: Jobs, tmp_path: Path, name: str, gpus: int = 1, device: str = "cuda") -> str:
    return jobs.submit(_config(tmp_path, name, gpus, device), cwd=REPO_ROOT).run_id


def release(run: RunDir, outcome: str = "done") -> None:
    if run.path.is_dir() and not (run.path / "release").exists():
        (run.path / "release").write_text(outcome, encoding="utf-8")


def visible(jobs: Jobs, run_id: str) -> str:
    """The CUDA_VISIBLE_DEVICES the run's stand-in trainer was started with (waits for it)."""
    path = jobs.run_dir(run_id).path / "visible"
    return wait_until(lambda: path.is_file() and path.read_text(), TIMEOUT)


def _running(jobs: Jobs) -> list[str]:
    jobs.refresh()
    return [row["id"] for row in jobs.list() if row["state"] in ("queued", "running")]


def _set_state(jobs: Jobs, run_id: str, state: str) -> None:
    with jobs._transaction() as db:
        db.execute("UPDATE runs SET state=? WHERE id=?", (state, run_id))


def pretend_gpu(monkeypatch) -> None:
    """The web process's policy sees a GPU: choose_device answers 'cuda' for 'auto'."""
    monkeypatch.setattr(
        "ftui.models.choose_device",
        lambda preference="auto": "cuda" if preference == "auto" else preference,
    )


# ---------------------------------------------------------------- real supervisors


@pytest.mark.slow  # starts supervisor and stand-in processes
def test_two_one_gpu_runs_train_side_by_side_and_a_third_waits(jobs, tmp_path, stand_in, capsys):
    first, second, third = (submit(jobs, tmp_path, name) for name in ("ana", "ben", "cy"))
    rows = {row["id"]: row for row in jobs.list()}
    assert (rows[first]["state"], rows[first]["gpus"]) == ("running", "0")
    assert (rows[second]["state"], rows[second]["gpus"]) == ("running", "1")
    assert rows[third]["state"] == "queued" and rows[third]["position"] == 1
    assert rows[third]["gpus"] is None
    assert visible(jobs, first) == "0" and visible(jobs, second) == "1"
    assert jobs.run_dir(first).read_status()["gpus"] == ["0"]  # the run folder says it too

    from ftui.cli.runs import list_runs
    from ftui.ui.runs_history import history_frame

    list_runs(argparse.Namespace(workspace=str(jobs.workspace.root), json=False))
    lines = {line.split()[0]: line.split() for line in capsys.readouterr().out.splitlines()[1:]}
    assert lines[first][1:3] == ["running", "0"] and lines[second][1:3] == ["running", "1"]
    assert lines[third][1:4] == ["queued", "#1", "-"]
    history = history_frame(jobs.list()).set_index("run")
    assert history.loc[first, "gpus"] == "0" and history.loc[third, "gpus"] == "-"

    time.sleep(1.0)
    assert not (jobs.run_dir(third).path / "visible").exists(), "the third must wait"
    release(jobs.run_dir(first))
    assert wait_for(jobs.run_dir(first), TIMEOUT)["state"] == "completed"
    assert visible(jobs, third) == "0"  # started by the first run's supervisor, on its GPU
    assert jobs.get(third)["gpus"] == "0" and jobs.get(first)["gpus"] == "0"  # history kept


@pytest.mark.slow  # starts supervisor and stand-in processes
def test_a_two_gpu_run_waits_for_both_gpus(jobs, tmp_path, stand_in):
    small = submit(jobs, tmp_path, "small")
    big = submit(jobs, tmp_path, "big", gpus=2)
    assert visible(jobs, small) == "0"
    time.sleep(1.0)
    row = jobs.get(big)
    assert row["state"] == "queued" and row["gpus_wanted"] == 2, "GPU 1 alone is not enough"
    release(jobs.run_dir(small))
    assert visible(jobs, big) == "0,1"
    assert jobs.get(big)["gpus"] == "0,1"


@pytest.mark.slow  # starts supervisor and stand-in processes
def test_a_crashed_run_frees_its_gpu(jobs, tmp_path, stand_in, monkeypatch):
    crashing, killed, waiting, last = (submit(jobs, tmp_path, n) for n in ("a", "b", "c", "d"))
    assert visible(jobs, crashing) == "0" and visible(jobs, killed) == "1"

    release(jobs.run_dir(crashing), "crash")  # the trainer dies; its supervisor says so
    status = wait_for(jobs.run_dir(crashing), TIMEOUT)
    assert status["state"] == "failed" and "exited with code 3" in status["error"]
    assert visible(jobs, waiting) == "0"

    # Supervisor and trainer SIGKILLed: nobody writes an ending; the next refresh finds it.
    status = jobs.run_dir(killed).read_status()
    os.kill(status["supervisor_pid"], signal.SIGKILL)
    os.killpg(status["trainer_pgid"], signal.SIGKILL)
    wait_until(lambda: not is_alive(status["supervisor_pid"], status["supervisor_started"]), 10)
    monkeypatch.setattr(jobs_module, "STARTUP_GRACE_SECONDS", 0.0)
    jobs.refresh()
    row = jobs.get(killed)
    assert row["state"] == "failed" and "pid gone" in row["error"]
    assert visible(jobs, last) == "1"
    assert jobs.get(last)["gpus"] == "1"


# ---------------------------------------------------------------- racing dispatchers

DISPATCHER = """
import json, os, sys, time
from pathlib import Path
from ftui.runs import jobs as jobs_module
from ftui.runs.runner import process_start_time

holder = int(sys.argv[4])  # the test process: alive, so the runs stay running
def launch(run, cwd=None, env=None):
    time.sleep(0.05)  # a slow launch inside the claim: a wide window for a race
    run.write_status("running", supervisor_pid=holder, heartbeat=time.time(),
                     supervisor_started=process_start_time(holder))
    return holder
jobs_module.launch = launch
jobs = jobs_module.Jobs(jobs_module.Workspace(Path(sys.argv[1])))
Path(sys.argv[3]).touch()
while not Path(sys.argv[2]).exists():
    time.sleep(0.002)
print(json.dumps(jobs.dispatch()))
"""


@pytest.mark.slow  # starts four Python processes
def test_processes_dispatching_at_once_never_give_one_gpu_twice(jobs, tmp_path, monkeypatch):
    monkeypatch.setenv("FTUI_GPUS", "0,1,2")
    with monkeypatch.context() as patched:
        patched.setattr(Jobs, "dispatch", lambda self: [])  # queued, nobody dispatched yet
        ids = [submit(jobs, tmp_path, f"r{i}", gpus=2 if i == 1 else 1) for i in range(6)]
    go = tmp_path / "go"
    children = []
    for index in range(4):
        ready = tmp_path / f"ready-{index}"
        command = [sys.executable, "-c", DISPATCHER, str(jobs.workspace.root), str(go), str(ready)]
        children.append(
            (
                subprocess.Popen([*command, str(os.getpid())], stdout=subprocess.PIPE, text=True),
                ready,
            )
        )
    wait_until(lambda: all(ready.exists() for _, ready in children), TIMEOUT)
    go.touch()
    started = []
    for child, _ in children:
        out, _ = child.communicate(timeout=TIMEOUT)
        assert child.returncode == 0
        started += json.loads(out)
    assert len(started) == len(set(started)), "a run was launched twice"
    rows = {row["id"]: row for row in jobs.list()}
    running = [rows[run_id] for run_id in ids if rows[run_id]["state"] == "running"]
    assert sorted(row["id"] for row in running) == sorted(started)
    given = [gpu for row in running for gpu in row["gpus"].split(",")]
    assert sorted(given) == ["0", "1", "2"], running  # every GPU once, none twice
    # Oldest first: r0 takes GPU 0, r1 (two GPUs) takes 1 and 2; the rest wait.
    assert [row["id"] for row in running] == ids[:2]


# ---------------------------------------------------------------- leases and the age limit


def test_web_work_takes_a_free_gpu_and_falls_back_to_the_cpu_when_all_train(
    jobs, tmp_path, recorded, monkeypatch
):
    pretend_gpu(monkeypatch)
    training = submit(jobs, tmp_path, "a")
    playground = place(jobs.workspace, "auto", holder="playground")
    assert (playground.device, playground.lease.gpu, playground.note) == ("cuda:1", "1", "")
    waiting = submit(jobs, tmp_path, "b")
    assert jobs.get(waiting)["state"] == "queued", "GPU 1 is leased"
    evaluation = place(jobs.workspace, "auto", holder="evaluate")
    assert evaluation.device == "cuda:1", "web work shares its GPU rather than take a training one"
    evaluation.release()
    assert jobs.get(waiting)["state"] == "queued", "the Playground still holds GPU 1"
    playground.release()  # gives GPU 1 back and dispatches
    assert recorded == [training, waiting] and jobs.get(waiting)["gpus"] == "1"

    merge = place(jobs.workspace, "auto", holder="merge")
    assert merge.device == "cpu" and merge.lease is None
    assert merge.note == f"Every GPU is training (runs {training}, {waiting}); this ran on the CPU."

    threading.Timer(0.5, _set_state, (jobs, training, "completed")).start()
    asked = time.monotonic()
    patient = place(jobs.workspace, "auto", holder="playground", wait_seconds=10)
    assert patient.device == "cuda:0" and patient.lease.gpu == "0"
    assert 0.4 < time.monotonic() - asked < 5, "it waited for GPU 0 to come free"
    patient.lease.release(dispatch=False)


def test_after_the_age_limit_nothing_younger_takes_the_gpus_an_old_run_waits_for(
    jobs, tmp_path, recorded, monkeypatch
):
    monkeypatch.setenv("FTUI_QUEUE_MAX_BYPASS_SECONDS", "60")
    first = submit(jobs, tmp_path, "first")
    big = submit(jobs, tmp_path, "big", gpus=2)
    early = submit(jobs, tmp_path, "early")
    assert recorded == [first, early], "while the big run is young, a small one goes ahead"
    assert jobs.get(early)["gpus"] == "1"
    _set_state(jobs, early, "completed")  # GPU 1 is free again
    with jobs._transaction() as db:  # the big run has now waited two minutes
        db.execute("UPDATE runs SET queued = queued - 120 WHERE id=?", (big,))

    late = submit(jobs, tmp_path, "late")
    assert jobs.get(late)["state"] == "queued", "GPU 1 is kept for the big run"
    on_cpu = submit(jobs, tmp_path, "cpu-run", device="cpu")
    assert jobs.get(on_cpu)["state"] == "running", "the CPU slot is not held back"
    pretend_gpu(monkeypatch)
    web = place(jobs.workspace, "auto", holder="playground")
    assert (
        web.device == "cpu"
        and web.note == f"The free GPUs are kept for run {big}; this ran on the CPU."
    )

    _set_state(jobs, first, "completed")
    jobs.dispatch()
    assert jobs.get(big)["gpus"] == "0,1" and jobs.get(big)["state"] == "running"
    assert jobs.get(late)["state"] == "queued" and recorded[-1] == big


def test_a_run_that_needs_more_gpus_than_ftui_has_fails_instead_of_blocking(
    jobs, tmp_path, recorded, monkeypatch
):
    monkeypatch.setenv("FTUI_QUEUE_MAX_BYPASS_SECONDS", "0")  # it would block at once
    with monkeypatch.context() as patched:
        patched.setattr(Jobs, "dispatch", lambda self: [])
        big = submit(jobs, tmp_path, "big", gpus=2)
    monkeypatch.setenv("FTUI_GPUS", "0")  # the admin took GPU 1 away from ftui
    after = submit(jobs, tmp_path, "after")
    row = jobs.get(big)
    assert (
        row["state"] == "failed" and "needs 2 GPUs" in row["error"] and "only 1: 0" in row["error"]
    )
    assert jobs.get(after)["gpus"] == "0" and recorded == [after]


# ---------------------------------------------------------------- the GPU list


def test_the_gpu_list_comes_from_ftui_gpus_then_cuda_visible_devices(monkeypatch):
    from ftui.config.devices import count_cuda_devices, gpu_indices, torch_device

    monkeypatch.setenv("FTUI_GPUS", "2, 3,2")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1,2,3")
    assert gpu_indices() == ["2", "3"] and count_cuda_devices() == 2
    assert torch_device("3") == "cuda:2"  # its place among the GPUs this process sees
    monkeypatch.delenv("FTUI_GPUS")
    assert gpu_indices() == ["1", "2", "3"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "GPU-aa,-1,4")
    assert gpu_indices() == ["GPU-aa"]  # CUDA stops at the first invalid entry
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    assert torch_device("3") == "cuda:3"
    monkeypatch.setenv("FTUI_GPUS", "")
    assert gpu_indices() == [] and count_cuda_devices() == 0


def test_the_trainer_is_pinned_to_its_assigned_gpus_and_the_age_limit_is_checked():
    from ftui.runs.gpu_slots import max_bypass_seconds

    config = FtuiConfig()
    config.train.num_processes = 2
    env = runner.trainer_devices(config, "cuda", {"CUDA_VISIBLE_DEVICES": "0,1,2,3"}, ["3", "1"])
    assert env["CUDA_VISIBLE_DEVICES"] == "3,1"
    assert max_bypass_seconds({}) == 1800
    assert max_bypass_seconds({"FTUI_QUEUE_MAX_BYPASS_SECONDS": "0"}) == 0
    for bad in ("-1", "soon", "nan"):
        with pytest.raises(ValueError, match="FTUI_QUEUE_MAX_BYPASS_SECONDS"):
            max_bypass_seconds({"FTUI_QUEUE_MAX_BYPASS_SECONDS": bad})


def test_the_run_view_says_which_gpus_a_run_has():
    from ftui.ui.runs_view import state_text

    assert state_text({"state": "running", "gpus": "0,1"}) == "running on GPUs 0,1"
    assert state_text({"state": "running", "gpus": "1"}) == "running on GPU 1"
    queued = {"state": "queued", "position": 2, "device": "cuda"}
    assert state_text(queued) == "queued (#2 in line for the GPUs)"
