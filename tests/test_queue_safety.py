"""The queue cannot wedge, race, leave orphans or stop on a full disk (issue 16, findings 11-13).

Real SQLite in each test's workspace and real processes (`sleep`, the supervisor around a
stand-in trainer). Where the subject is the queue's bookkeeping rather than training, the
supervisor launch is replaced by a recorder (`launches`), so a test needs no model; the
tests marked slow start real tiny training runs.
"""

from __future__ import annotations

import errno
import json
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest
from conftest import wait_until

from ftui.config import FtuiConfig
from ftui.runs import jobs as jobs_module
from ftui.runs import runner
from ftui.runs.jobs import JobError, Jobs
from ftui.runs.rundir import RunDir
from ftui.runs.runner import is_alive, process_start_time
from ftui.workspace import Workspace


@pytest.fixture
def jobs(tmp_path) -> Jobs:
    return Jobs(Workspace.open(tmp_path / "workspace"))


@pytest.fixture
def launches(monkeypatch) -> list[dict]:
    """Replace the supervisor launch by a recorder: each call appends {run, cwd, env}."""
    calls: list[dict] = []

    def record(run, cwd=None, env=None):
        calls.append({"run": run.run_id, "cwd": cwd, "env": env})
        return 1

    monkeypatch.setattr(jobs_module, "launch", record)
    return calls


@pytest.fixture
def sleeper():
    """A real process that lives for a minute; killed at the end."""
    process = subprocess.Popen(["sleep", "60"])
    yield process
    process.kill()
    process.wait()


def _config(tmp_path: Path, name: str = "run") -> FtuiConfig:
    data = tmp_path / f"{name}-train.jsonl"
    data.write_text('{"instruction": "a", "output": "b"}\n', encoding="utf-8")
    config = FtuiConfig(name=name)
    config.model.device = "cpu"
    config.data.path = str(data)
    return config


def _set_state(jobs: Jobs, run_id: str, state: str) -> None:
    with jobs._transaction() as db:
        db.execute("UPDATE runs SET state=? WHERE id=?", (state, run_id))


def _fake_checkpoint(run: RunDir, step: int = 2) -> None:
    folder = run.checkpoints / f"checkpoint-{step}"
    folder.mkdir(parents=True)
    (folder / "trainer_state.json").write_text(json.dumps({"global_step": step}))


# ---------------------------------------------------------------- liveness (finding 11)


def test_is_alive_needs_the_recorded_start_time_of_a_real_process(sleeper):
    started = process_start_time(sleeper.pid)
    assert started is not None and is_alive(sleeper.pid, started)
    assert is_alive(sleeper.pid)  # no start time recorded: existence alone
    assert not is_alive(sleeper.pid, started - 3600)  # the pid now belongs to another process
    sleeper.kill()
    sleeper.wait()
    assert not is_alive(sleeper.pid, started) and process_start_time(sleeper.pid) is None


def test_a_reused_pid_does_not_keep_a_dead_run_running(
    jobs, tmp_path, launches, sleeper, monkeypatch
):
    stale, live = (jobs.submit(_config(tmp_path, name)) for name in ("stale", "live"))
    started = process_start_time(sleeper.pid)
    # Both name the same live pid; only `live` recorded its true start time.
    stale.write_status("running", supervisor_pid=sleeper.pid, supervisor_started=started - 500)
    live.write_status("running", supervisor_pid=sleeper.pid, supervisor_started=started)
    for run in (stale, live):
        _set_state(jobs, run.run_id, "running")
    monkeypatch.setattr(jobs_module, "STARTUP_GRACE_SECONDS", 0.0)  # their last word is old
    jobs.refresh()
    assert jobs.get(stale.run_id)["state"] == "failed"
    assert "pid gone" in jobs.get(stale.run_id)["error"]
    assert stale.read_status()["state"] == "failed"
    assert jobs.get(live.run_id)["state"] == "running"


# ---------------------------------------------------------------- unreadable rows (11)


def test_rows_with_missing_or_unreadable_folders_are_failed_and_skipped(
    jobs, tmp_path, launches, sleeper
):
    runs = {name: jobs.submit(_config(tmp_path, name)) for name in ("gone", "bad", "dir", "ok")}
    for run in runs.values():
        run.write_status("running", supervisor_pid=sleeper.pid)
        _set_state(jobs, run.run_id, "running")
    shutil.rmtree(runs["gone"].path)
    runs["bad"].status_path.write_text("{not json", encoding="utf-8")
    runs["dir"].status_path.unlink()
    runs["dir"].status_path.mkdir()  # unreadable as a file (root ignores chmod 000)

    jobs.refresh()  # must not raise
    rows = {name: jobs.get(run.run_id) for name, run in runs.items()}
    assert rows["gone"]["state"] == "failed" and "is missing" in rows["gone"]["error"]
    assert rows["bad"]["state"] == "failed" and "cannot be read" in rows["bad"]["error"]
    assert rows["dir"]["state"] == "failed" and "cannot be read" in rows["dir"]["error"]
    assert rows["ok"]["state"] == "running"
    assert runs["bad"].read_status()["state"] == "failed"  # the broken file was replaced
    assert not runs["gone"].path.exists()  # never recreated


def test_a_launch_that_fails_fails_that_run_and_the_next_one_starts(
    jobs, tmp_path, launches, monkeypatch
):
    vanished = tmp_path / "vanished"
    vanished.mkdir()
    first = jobs.submit(_config(tmp_path, "first"), cwd=vanished)  # launched (recorder)
    second = jobs.submit(_config(tmp_path, "second"), cwd=tmp_path)
    third = jobs.submit(_config(tmp_path, "third"), cwd=tmp_path)
    vanished.rmdir()
    shutil.rmtree(second.path)
    _set_state(jobs, first.run_id, "queued")
    monkeypatch.setattr(jobs_module, "launch", _real_launch_for(first, launches))
    jobs.dispatch()
    failed = jobs.get(first.run_id)
    assert failed["state"] == "failed" and "no longer exists" in failed["error"]
    assert "submit the run again" in failed["error"]
    assert first.read_status()["state"] == "failed"
    gone = jobs.get(second.run_id)
    assert gone["state"] == "failed" and "is missing" in gone["error"]
    assert jobs.get(third.run_id)["state"] == "running"
    assert launches[-1]["run"] == third.run_id


def _real_launch_for(chosen: RunDir, launches: list[dict]):
    """The real launch for `chosen` (which must fail before starting anything), the
    recorder for the others."""

    def launch(run, cwd=None, env=None):
        if run.run_id == chosen.run_id:
            return runner.launch(run, cwd=cwd, env=env)
        launches.append({"run": run.run_id, "cwd": cwd, "env": env})
        return 1

    return launch


# ---------------------------------------------------------------- a full disk (13)


def test_a_full_disk_at_dispatch_fails_that_run_and_the_queue_goes_on(
    jobs, tmp_path, launches, monkeypatch
):
    first = jobs.submit(_config(tmp_path, "first"))
    second = jobs.submit(_config(tmp_path, "second"))
    third = jobs.submit(_config(tmp_path, "third"))
    for run in (first, second):
        _set_state(jobs, run.run_id, "queued")
    _set_state(jobs, third.run_id, "queued")
    real_write, real_open = RunDir.write_status, Path.open

    def full_for_status(self, state, **fields):
        if self.run_id == first.run_id and state == "queued":
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(self, state, **fields)

    def full_for_log(self, *args, **kwargs):
        if self.name == "train.log" and self.parent.name == second.run_id:
            raise OSError(errno.ENOSPC, "No space left on device", str(self))
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(RunDir, "write_status", full_for_status)
    monkeypatch.setattr(Path, "open", full_for_log)
    monkeypatch.setattr(jobs_module, "launch", _real_launch_for(second, launches))
    assert jobs.dispatch() == [third.run_id]
    for run in (first, second):
        row = jobs.get(run.run_id)
        assert row["state"] == "failed", row
        assert "The disk is full: free space in" in row["error"]
        assert "save_total_limit" in row["error"]
    assert launches[-1]["run"] == third.run_id


def test_disk_full_is_recognised_in_the_shapes_libraries_raise_it(tmp_path):
    assert runner.is_disk_full(OSError(errno.ENOSPC, "No space left on device"))
    try:
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError as inner:
            raise RuntimeError("PytorchStreamWriter failed writing file") from inner
    except RuntimeError as outer:
        assert runner.is_disk_full(outer)
    safetensors = Exception('IoError(Os { code: 28, kind: StorageFull, message: "No space" })')
    assert runner.is_disk_full(safetensors)
    assert not runner.is_disk_full(OSError(errno.EACCES, "Permission denied"))
    run = RunDir(tmp_path / "workspace" / "runs" / "r1")
    _fake_checkpoint(run, 4)
    message = runner.disk_full_message(run)
    assert message.startswith(f"The disk is full: free space in {tmp_path / 'workspace'}")
    assert "(step 4) is kept" in message


def test_clean_workspace_removes_old_leftovers_and_nothing_a_run_needs(tmp_path):
    import os

    from ftui.runs.housekeeping import clean_workspace

    workspace = Workspace.open(tmp_path / "workspace")
    root = workspace.root
    outside = tmp_path / "outside.txt"
    outside.write_text("not ours")
    old_files = {
        "cache": root / ".gradio" / "abc123" / "upload.csv",
        "report": root / ".gradio" / "tmpx" / "run-report.html",
        "preview": root / "configs" / "lora-20260101-000000.yaml",
        "unused_upload": workspace.uploads / "old-1234abcd.csv",
        "used_upload": workspace.uploads / "train-5678ef01.jsonl",
        "checkpoint": workspace.runs / "r1" / "checkpoints" / "checkpoint-2" / "x.bin",
    }
    for path in old_files.values():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x")
    link = root / ".gradio" / "link-out"
    link.symlink_to(outside)
    fresh = root / ".gradio" / "new" / "fresh.csv"
    fresh.parent.mkdir(parents=True)
    fresh.write_text("x")
    run_config = workspace.runs / "r1" / "config.yaml"
    run_config.write_text(f"data:\n  path: {old_files['used_upload']}\n")
    two_days_ago = time.time() - 2 * 86400
    for path in [*old_files.values(), link.parent / "abc123", link.parent / "tmpx"]:
        os.utime(path, (two_days_ago, two_days_ago), follow_symlinks=False)
    os.utime(link, (two_days_ago, two_days_ago), follow_symlinks=False)

    removed = set(clean_workspace(workspace, max_age_seconds=86400))
    gone = {"cache", "report", "preview", "unused_upload"}
    assert removed == {old_files[key] for key in gone} | {link}
    assert all(not old_files[key].exists() for key in gone)
    assert old_files["used_upload"].exists() and old_files["checkpoint"].exists()
    assert fresh.exists() and outside.read_text() == "not ours"
    assert not (root / ".gradio" / "abc123").exists()  # emptied old folders go too
    assert (root / ".gradio").is_dir()

    run_config.write_text("data: [unclosed")  # unreadable: no upload may be removed
    keep = workspace.uploads / "other-9999aaaa.csv"
    keep.write_text("x")
    os.utime(keep, (two_days_ago, two_days_ago))
    clean_workspace(workspace, max_age_seconds=86400)
    assert keep.exists()


def test_the_clean_up_age_comes_from_the_environment():
    from ftui.runs.housekeeping import max_age_seconds

    assert max_age_seconds({}) == 24 * 3600
    assert max_age_seconds({"FTUI_TEMP_MAX_AGE_HOURS": "1.5"}) == 5400
    for bad in ("0", "-3", "soon"):
        with pytest.raises(ValueError, match="FTUI_TEMP_MAX_AGE_HOURS"):
            max_age_seconds({"FTUI_TEMP_MAX_AGE_HOURS": bad})


# ---------------------------------------------------------------- races (12)


def test_cancelling_a_run_that_is_being_launched_asks_it_to_stop(jobs, tmp_path, monkeypatch):
    entered, release = threading.Event(), threading.Event()

    def slow_launch(run, cwd=None, env=None):
        entered.set()
        release.wait(10)
        return 1

    monkeypatch.setattr(jobs_module, "launch", slow_launch)
    run = create_queued(jobs, tmp_path, monkeypatch)
    dispatcher = threading.Thread(target=Jobs(jobs.workspace).dispatch)
    dispatcher.start()
    assert entered.wait(10)
    answers: list[str] = []
    canceller = threading.Thread(target=lambda: answers.append(jobs.cancel(run.run_id)))
    canceller.start()
    time.sleep(0.5)
    assert canceller.is_alive(), "cancel must wait for the launch's transaction"
    release.set()
    dispatcher.join(10)
    canceller.join(10)
    assert answers == ["cancelling"]
    assert jobs.get(run.run_id)["state"] == "running"  # never "cancelled" while it runs
    assert run.cancel_requested()


def create_queued(jobs: Jobs, tmp_path: Path, monkeypatch) -> RunDir:
    """A queued run that no dispatch has looked at yet."""
    with monkeypatch.context() as patched:
        patched.setattr(Jobs, "dispatch", lambda self: [])
        return jobs.submit(_config(tmp_path))


def test_cancelling_a_queued_run_is_immediate(jobs, tmp_path, launches, monkeypatch):
    run = create_queued(jobs, tmp_path, monkeypatch)
    assert jobs.cancel(run.run_id) == "cancelled"
    assert jobs.get(run.run_id)["state"] == "cancelled"
    assert run.read_status()["state"] == "cancelled" and not launches


def test_eight_concurrent_resumes_start_one_supervisor(jobs, tmp_path, launches):
    run = jobs.submit(_config(tmp_path))
    _set_state(jobs, run.run_id, "failed")
    _fake_checkpoint(run)
    launches.clear()
    barrier = threading.Barrier(8)
    outcomes: list[str] = []

    def resume() -> None:
        mine = Jobs(jobs.workspace)  # its own connections, as separate requests have
        barrier.wait()
        try:
            mine.resume(run.run_id)
            outcomes.append("resumed")
        except JobError as exc:
            outcomes.append(str(exc))

    threads = [threading.Thread(target=resume) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert outcomes.count("resumed") == 1, outcomes
    losers = [o for o in outcomes if o != "resumed"]
    assert len(losers) == 7
    assert all("already queued" in o or "already running" in o for o in losers), losers
    assert [call["run"] for call in launches] == [run.run_id]
    assert jobs.get(run.run_id)["state"] == "running"


# ---------------------------------------------------------------- the server's token


def test_a_web_run_gets_no_server_token_and_a_cli_run_keeps_it(
    jobs, tmp_path, launches, monkeypatch
):
    monkeypatch.setenv("HF_TOKEN", "hf_server_secret")
    monkeypatch.delenv("FTUI_WEB_USES_SERVER_TOKEN", raising=False)
    web = jobs.submit(_config(tmp_path, "web"), server_token=False)
    _set_state(jobs, web.run_id, "failed")
    cli = jobs.submit(_config(tmp_path, "cli"))
    envs = {call["run"]: call["env"] for call in launches}
    assert "HF_TOKEN" not in envs[web.run_id]
    assert envs[web.run_id]["HF_HUB_DISABLE_IMPLICIT_TOKEN"] == "1"
    assert envs[cli.run_id]["HF_TOKEN"] == "hf_server_secret"
    assert jobs.get(web.run_id)["server_token"] == 0 and jobs.get(cli.run_id)["server_token"] == 1
    _set_state(jobs, cli.run_id, "failed")
    _fake_checkpoint(cli)
    jobs.resume(cli.run_id, server_token=False)  # resumed from the web: the token is taken away
    assert jobs.get(cli.run_id)["server_token"] == 0
    assert "HF_TOKEN" not in launches[-1]["env"]


def test_an_older_database_gains_the_server_token_and_gpu_columns(tmp_path):
    import sqlite3

    from ftui.runs import queue_db

    root = tmp_path / "workspace"
    root.mkdir()
    old_schema = queue_db.SCHEMA
    for added in (
        ",\n    server_token INTEGER NOT NULL DEFAULT 0",
        ",\n    gpus_wanted INTEGER",
        ",\n    gpus TEXT",
        ",\n    gpu TEXT",
    ):
        assert added in old_schema
        old_schema = old_schema.replace(added, "")
    with sqlite3.connect(root / queue_db.DATABASE) as db:
        db.executescript(old_schema)
        db.execute(
            "INSERT INTO runs (id, name, owner, state, device, model, method, dataset, created,"
            " queued, cwd) VALUES ('old', 'o', 'x', 'completed', 'cpu', 'm', 'lora', 'd', 0, 0,"
            " '/')"
        )
    jobs = Jobs(Workspace.open(root))
    old = jobs.get("old")
    assert old["server_token"] == 0  # unknown origin: the safe side
    assert old["gpus"] is None and old["gpus_wanted"] is None  # no GPU recorded
    with sqlite3.connect(root / queue_db.DATABASE) as db:
        lease_columns = {row[1] for row in db.execute("PRAGMA table_info(leases)")}
    assert "gpu" in lease_columns
    Jobs(jobs.workspace)  # a second open finds the columns and changes nothing


# ---------------------------------------------------------------- resume pinning (16)


def test_resume_refuses_when_the_data_changed(jobs, tmp_path, launches):
    config = _config(tmp_path)
    validation = tmp_path / "val.jsonl"
    validation.write_text('{"instruction": "c", "output": "d"}\n', encoding="utf-8")
    config.data.validation_path = str(validation)
    run = jobs.submit(config)
    pinned = json.loads((run.path / "inputs.json").read_text())
    assert len(pinned["data"]["train"]["sha256"]) == 64 and pinned["data"]["validation"]
    _set_state(jobs, run.run_id, "failed")
    _fake_checkpoint(run)

    validation.write_text('{"instruction": "c", "output": "changed"}\n', encoding="utf-8")
    with pytest.raises(JobError) as refused:
        jobs.resume(run.run_id)
    message = str(refused.value)
    assert f"the validation data file {validation} changed" in message
    assert "start a new run" in message and str(run.config_path) in message
    validation.unlink()
    with pytest.raises(JobError, match="is gone"):
        jobs.resume(run.run_id)
    validation.write_text('{"instruction": "c", "output": "d"}\n', encoding="utf-8")
    jobs.resume(run.run_id)  # the same bytes again: allowed
    assert jobs.get(run.run_id)["state"] == "running"


def test_resume_refuses_when_a_local_model_folder_changed(jobs, tmp_path, launches):
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text('{"model_type": "llama"}', encoding="utf-8")
    (model / "model.safetensors").write_bytes(b"0" * 64)
    config = _config(tmp_path)
    config.model.name_or_path = str(model)
    run = jobs.submit(config)
    _set_state(jobs, run.run_id, "failed")
    _fake_checkpoint(run)
    (model / "model.safetensors").write_bytes(b"1" * 65)
    with pytest.raises(JobError, match=f"the base model {model} changed since the run started"):
        jobs.resume(run.run_id)


def test_resume_refuses_when_a_hub_model_moved_to_another_commit(
    jobs, tmp_path, launches, monkeypatch
):
    from huggingface_hub import constants

    cache = tmp_path / "hf-cache"
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    first, second = "a" * 40, "b" * 40
    repo = cache / "models--org--tiny"
    for commit in (first, second):
        (repo / "snapshots" / commit).mkdir(parents=True)
        (repo / "snapshots" / commit / "config.json").write_text("{}")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(first)
    config = _config(tmp_path)
    config.model.name_or_path = "org/tiny"
    run = jobs.submit(config)
    assert json.loads((run.path / "inputs.json").read_text())["model"]["commit"] == first
    _set_state(jobs, run.run_id, "failed")
    _fake_checkpoint(run)
    (repo / "refs" / "main").write_text(second)
    with pytest.raises(JobError, match=f"now at commit {second[:12]}, not {first[:12]}"):
        jobs.resume(run.run_id)


# ---------------------------------------------------------------- cancel escalation (11)


@pytest.fixture
def supervised(tmp_path, monkeypatch):
    """The real supervisor loop (in a thread) around a trainer that ignores cancel requests."""
    monkeypatch.setattr(runner, "CANCEL_GRACE_SECONDS", 1.0)
    monkeypatch.setattr(runner, "POLL_SECONDS", 0.05)
    run = RunDir(tmp_path / "workspace" / "runs" / "r1")
    run.path.mkdir(parents=True)
    run.write_status("running")
    codes: list[int] = []
    thread = threading.Thread(target=lambda: codes.append(runner.supervise(run, ["sleep", "60"])))
    thread.start()
    wait_until(lambda: run.read_status().get("trainer_pgid"), 10)
    pgid = run.read_status()["trainer_pgid"]
    yield run, pgid, thread
    runner._kill_group(pgid)
    thread.join(10)


def test_a_cancel_is_enforced_even_when_the_request_file_is_removed(supervised):
    run, pgid, thread = supervised
    run.request_cancel()
    time.sleep(0.3)  # the supervisor polls every 0.05 s here
    run.cancel_path.unlink()  # the request is gone; the supervisor remembers it
    asked = time.monotonic()
    thread.join(10)
    assert not thread.is_alive() and time.monotonic() - asked < 5
    assert not is_alive(pgid)
    status = run.read_status()
    assert status["state"] == "cancelled" and "killed" in status["error"]


def test_a_run_folder_that_disappears_means_the_kill_at_once(supervised):
    run, pgid, thread = supervised
    shutil.rmtree(run.path)
    thread.join(5)
    assert not thread.is_alive() and not is_alive(pgid)
    assert not run.path.exists()  # the supervisor did not recreate it


# ---------------------------------------------------------------- real training runs (slow)


@pytest.mark.slow
def test_cancel_then_deleting_the_workspace_leaves_no_process_behind(
    tmp_path, tiny_model_dir, monkeypatch
):
    """The audit's case: benchmarks/concurrent_users.py cancelled, then deleted its workspace."""
    from conftest import REPO_ROOT, tiny_triage_config

    grace = 3.0
    monkeypatch.setenv("FTUI_CANCEL_GRACE_SECONDS", str(grace))  # read by the supervisor
    workspace = tmp_path / "workspace"
    jobs = Jobs(Workspace.open(workspace))
    config = tiny_triage_config(tmp_path, model=tiny_model_dir)
    config.train.max_steps = config.train.save_every = config.train.eval_every = 100_000
    run = jobs.submit(config, cwd=REPO_ROOT)
    wait_until(lambda: any("loss" in m for m in run.read_metrics()), 240, 0.1)
    status = run.read_status()
    processes = [
        (status["supervisor_pid"], status["supervisor_started"]),
        (status["pid"], status["pid_started"]),
    ]
    assert all(is_alive(pid, started) for pid, started in processes)
    jobs.cancel(run.run_id)
    asked = time.monotonic()
    _remove_while_written(workspace)
    wait_until(lambda: not any(is_alive(pid, started) for pid, started in processes), grace + 15)
    assert time.monotonic() - asked < grace + 15
    assert not is_alive(status["trainer_pgid"])
    assert not workspace.exists()  # nobody recreated it


def _remove_while_written(folder: Path, tries: int = 20) -> None:
    """rm -rf, again if the dying trainer wrote a file into a folder between the listing and
    the rmdir (what a user sees as "Directory not empty" and answers by running it again)."""
    for _ in range(tries - 1):
        try:
            shutil.rmtree(folder)
            return
        except OSError as exc:
            if exc.errno != errno.ENOTEMPTY:
                raise
            time.sleep(0.2)
    shutil.rmtree(folder)


@pytest.mark.slow
def test_a_trainer_that_fills_the_disk_fails_with_a_plain_message(tmp_path, tiny_model_dir):
    """A real trainer on a 1.5 MB tmpfs (a user namespace: no root needed) fails at its first
    checkpoint with "No space left on device"; the run says so plainly and the half-written
    checkpoint is gone."""
    import os
    import sys

    from conftest import REPO_ROOT, tiny_triage_config

    probe = subprocess.run(["unshare", "-rm", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"no unprivileged mount namespace here: {probe.stderr.decode()[:200]}")
    config = tiny_triage_config(tmp_path, model=tiny_model_dir)
    staging = RunDir(tmp_path / "staging" / "runs" / "r1")
    staging.write_config(config)
    disk, out = tmp_path / "disk", tmp_path / "out"
    disk.mkdir()
    out.mkdir()
    run = disk / "runs" / "r1"
    script = (
        f"mount -t tmpfs -o size=1536k none {disk} && mkdir -p {run} && "
        f"cp {staging.config_path} {run}/ && "
        f"{sys.executable} -m ftui train {run}; "
        f"cp {run}/status.json {out}/; ls {run}/checkpoints > {out}/checkpoints.txt"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(
        ["unshare", "-rm", "sh", "-c", script],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    status = json.loads((out / "status.json").read_text())
    assert status["state"] == "failed", done.stdout[-3000:] + done.stderr[-3000:]
    assert status["error"].startswith(f"The disk is full: free space in {disk}"), status["error"]
    assert "save_total_limit" in status["error"]
    left = (out / "checkpoints.txt").read_text().split()
    assert not [name for name in left if name.startswith("checkpoint-")], left  # partial: gone
