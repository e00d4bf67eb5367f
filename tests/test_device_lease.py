"""Device leases: web-process GPU work and the job queue share one device accounting.

There is no GPU here, so the tests give ftui one pretend GPU, "0" (FTUI_GPUS=0), that exists
only in the SQLite accounting of a real workspace database (ftui.db). Queue runs are made with
`Jobs.submit` on a config whose device key is patched to "cuda"; the supervisor launch is
replaced by a recorder, so "dispatch started the run" is observed without training anything.
Several GPUs are tested in test_gpu_slots.py.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time

import pytest
from conftest import REPO_ROOT, tiny_triage_config

from ftui.runs import device_lease
from ftui.runs.device_lease import DeviceBusy, lease_device, leased_gpus, place, place_work
from ftui.runs.jobs import Jobs
from ftui.workspace import Workspace


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    monkeypatch.setenv("FTUI_GPUS", "0")  # one pretend GPU (subprocesses inherit it)
    return Workspace.open(tmp_path / "workspace")


@pytest.fixture
def launched(monkeypatch):
    """Run ids the queue launched, in order (the supervisor is not started)."""
    started: list[str] = []

    def record_launch(run, cwd=None, **options):
        started.append(run.run_id)
        run.write_status("running", supervisor_pid=os.getpid(), heartbeat=time.time())
        return os.getpid()

    monkeypatch.setattr("ftui.runs.jobs.launch", record_launch)
    return started


@pytest.fixture
def jobs(workspace, launched):
    return Jobs(workspace)


def submit_on(jobs: Jobs, device: str, monkeypatch, name: str = "lease-test") -> str:
    monkeypatch.setattr("ftui.runs.jobs.device_key", lambda config: device)
    data = jobs.workspace.root / "data"
    data.mkdir(exist_ok=True)
    config = tiny_triage_config(data)
    config.name = name
    return jobs.submit(config, cwd=REPO_ROOT).run_id


def connect(workspace: Workspace) -> sqlite3.Connection:
    return sqlite3.connect(workspace.root / "ftui.db", isolation_level=None)


def pretend_gpu(monkeypatch) -> None:
    """The policy sees a GPU: choose_device answers 'cuda' for 'auto'."""

    def choose_device(preference: str = "auto") -> str:
        return "cuda" if preference == "auto" else preference

    monkeypatch.setattr("ftui.models.choose_device", choose_device)


def test_a_gpu_lease_keeps_queued_gpu_runs_waiting_and_release_starts_them(
    jobs, workspace, launched, monkeypatch
):
    with lease_device(workspace, "cuda", holder="playground") as lease:
        with connect(workspace) as db:
            assert leased_gpus(db) == {"0"}
        gpu_run = submit_on(jobs, "cuda", monkeypatch)
        assert jobs.get(gpu_run)["state"] == "queued" and launched == []
        cpu_run = submit_on(jobs, "cpu", monkeypatch)  # a GPU lease leaves the CPU free
        assert launched == [cpu_run]
        assert lease.renew(30.0)
    assert launched == [cpu_run, gpu_run]  # releasing dispatched the waiting GPU run
    assert jobs.get(gpu_run)["state"] == "running"
    with connect(workspace) as db:
        assert leased_gpus(db) == set()


def test_no_lease_while_a_run_trains_on_the_device_and_the_caller_is_sent_to_the_cpu(
    jobs, workspace, launched, monkeypatch
):
    training = submit_on(jobs, "cuda", monkeypatch, name="nightly")
    assert launched == [training]
    busy = f"training run {training} \\(nightly\\).*CPU"
    with pytest.raises(DeviceBusy, match=busy), lease_device(workspace, "cuda", "evaluate"):
        pass
    pretend_gpu(monkeypatch)
    placement = place(workspace, "auto", holder="playground")
    assert placement.device == "cpu" and placement.lease is None
    assert placement.note == f"The GPU is training run {training}; this ran on the CPU."
    assert jobs.get(training)["gpus"] == "0"
    with connect(workspace) as db:
        assert db.execute("SELECT count(*) FROM leases").fetchone()[0] == 0


def test_gpu_work_leases_the_gpu_and_cpu_work_takes_no_lease(workspace, jobs, monkeypatch):
    pretend_gpu(monkeypatch)
    with place_work(workspace, "auto", holder="merge") as placement:
        assert placement.device == "cuda:0" and placement.lease is not None and not placement.note
        with connect(workspace) as db:
            assert leased_gpus(db) == {"0"}
    with connect(workspace) as db:
        assert leased_gpus(db) == set()
    with place_work(workspace, "cpu", holder="merge") as placement:
        assert placement.device == "cpu" and placement.lease is None
        with connect(workspace) as db:
            assert db.execute("SELECT count(*) FROM leases").fetchone()[0] == 0


@pytest.mark.slow  # starts a subprocess
def test_the_lease_of_a_process_that_exited_does_not_count(jobs, workspace, launched, monkeypatch):
    holder = (
        "import sys; from ftui.runs.device_lease import DeviceLease; from ftui.workspace import "
        "Workspace; workspace = Workspace.open(sys.argv[1]); "
        "DeviceLease(workspace, 'cuda', 'cli eval', ttl=3600).acquire()"
    )
    done = subprocess.run(
        [sys.executable, "-c", holder, str(workspace.root)], cwd=REPO_ROOT, timeout=60
    )
    assert done.returncode == 0
    with connect(workspace) as db:
        rows = db.execute("SELECT holder, expires FROM leases").fetchall()
        assert [row[0] for row in rows] == ["cli eval"] and rows[0][1] > time.time() + 3000
        assert leased_gpus(db) == set()  # unexpired, but its process is gone
    gpu_run = submit_on(jobs, "cuda", monkeypatch)
    assert launched == [gpu_run]


def test_an_expired_lease_or_a_reused_pid_does_not_count(workspace):
    lease = device_lease.DeviceLease(workspace, "cuda", "short", ttl=0.2).acquire()
    with connect(workspace) as db:
        assert leased_gpus(db) == {"0"}
        time.sleep(0.3)
        assert leased_gpus(db) == set()
        # Our own pid with another start time: a pid reused after a restart.
        db.execute(
            "INSERT INTO leases (device, gpu, holder, pid, pid_start_time, acquired, expires)"
            " VALUES ('cuda', '0', 'old', ?, 12345.0, ?, ?)",
            (os.getpid(), time.time(), time.time() + 3600),
        )
        assert leased_gpus(db) == set()
    assert lease.renew(60.0)  # renewing brings an expired lease of a live process back
    with connect(workspace) as db:
        assert leased_gpus(db) == {"0"}
    lease.release(dispatch=False)
    assert not lease.renew(60.0)


@pytest.mark.slow  # loads model weights
def test_the_playground_holds_the_gpu_while_cached_and_gives_it_back_when_idle(
    jobs, workspace, launched, monkeypatch, tiny_model_dir, tokenizer
):
    from transformers import AutoModelForCausalLM

    from ftui.evaluate.cache import ComparisonCache
    from ftui.evaluate.compare import Comparison
    from ftui.runs.rundir import create_run_dir

    pretend_gpu(monkeypatch)
    devices_loaded_on: list[str] = []

    def load_tiny(run, shots=None, device=None):  # the real model, on the CPU that is here
        devices_loaded_on.append(device)
        model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
        return Comparison(run.read_config(), tokenizer, model, model, [], "cpu")

    monkeypatch.setattr(Comparison, "load", staticmethod(load_tiny))
    (workspace.root / "data").mkdir()
    run = create_run_dir(tiny_triage_config(workspace.root / "data"), workspace)
    run.adapter.mkdir()
    (run.adapter / "adapter_config.json").write_text("{}", encoding="utf-8")

    cache = ComparisonCache(idle_seconds=1.0)
    comparison = cache.get(run)
    model = comparison.tuned
    assert devices_loaded_on == ["cuda:0"] and comparison.note == ""
    gpu_run = submit_on(jobs, "cuda", monkeypatch)
    assert launched == [] and cache.get(run) is comparison  # cached, holding the GPU
    deadline = time.monotonic() + 15
    while not launched and time.monotonic() < deadline:
        time.sleep(0.1)
    assert launched == [gpu_run]  # idle release gave the GPU back and dispatched
    assert comparison.closed and next(model.parameters()).device.type == "meta"
    with connect(workspace) as db:
        assert leased_gpus(db) == set()
    again = cache.get(run)  # the GPU now trains: the Playground comes back on the CPU
    assert devices_loaded_on == ["cuda:0", "cpu"]
    assert again.note == f"The GPU is training run {gpu_run}; this ran on the CPU."
    cache.unload()
