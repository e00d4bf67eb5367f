"""The job queue with real processes: queueing, cancel, SIGKILL and resume, dead runs, DDP.

Every run is a real detached supervisor and trainer subprocess on a tiny random Llama (with
the bundled tokenizer), so the steps take milliseconds and the process start dominates. The
SQLite database is a real file in the test's workspace.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import REPO_ROOT, tiny_triage_config, wait_until

from ftui.runs import jobs as jobs_module
from ftui.runs.jobs import JobError, Jobs
from ftui.runs.rundir import RunDir
from ftui.runs.runner import is_alive, wait_for
from ftui.workspace import Workspace

TIMEOUT = 240

pytestmark = pytest.mark.slow


@pytest.fixture
def jobs(tmp_path) -> Jobs:
    return Jobs(Workspace.open(tmp_path / "workspace"))


def _config(tmp_path, tiny_model_dir, **train):
    config = tiny_triage_config(tmp_path, model=tiny_model_dir)
    for key, value in train.items():
        setattr(config.train, key, value)
    config.check()
    return config


def _wait_until(predicate, timeout: float = TIMEOUT, every: float = 0.05):
    return wait_until(predicate, timeout, every)


def _logged_steps(run: RunDir) -> list[int]:
    return [m["step"] for m in run.read_metrics() if "loss" in m]


def test_two_queued_runs_run_one_after_the_other(jobs, tmp_path, tiny_model_dir):
    first = jobs.submit(_config(tmp_path, tiny_model_dir), owner="ana", cwd=REPO_ROOT)
    second = jobs.submit(_config(tmp_path, tiny_model_dir), owner="ben", cwd=REPO_ROOT)
    rows = {row["id"]: row for row in jobs.list()}
    assert rows[first.run_id]["state"] == "running"
    assert rows[second.run_id]["state"] == "queued" and rows[second.run_id]["position"] == 1
    assert rows[second.run_id]["owner"] == "ben"

    assert wait_for(first, TIMEOUT)["state"] == "completed"
    assert wait_for(second, TIMEOUT)["state"] == "completed"  # started by the first's supervisor
    assert second.read_status()["started"] >= first.read_status()["finished"]

    jobs.refresh()
    history = {row["id"]: row for row in Jobs(jobs.workspace).list()}  # a fresh connection
    for run in (first, second):
        row = history[run.run_id]
        assert row["state"] == "completed" and row["steps"] == 3
        assert row["train_loss"] > 0 and row["eval_loss"] > 0 and row["tokens"] > 0


def test_cancel_stops_at_a_step_and_saves_a_usable_adapter(jobs, tmp_path, tiny_model_dir):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    config = _config(tmp_path, tiny_model_dir, max_steps=100_000, save_every=100_000)
    run = jobs.submit(config, cwd=REPO_ROOT)
    _wait_until(lambda: len(_logged_steps(run)) >= 5)
    asked = time.monotonic()
    assert jobs.cancel(run.run_id) == "cancelling"
    status = wait_for(run, TIMEOUT)
    assert status["state"] == "cancelled"
    assert "Cancelled at step" in status["error"] and "adapter/" in status["error"]
    pids = (status["pid"], status["supervisor_pid"])
    _wait_until(lambda: not any(is_alive(pid) for pid in pids), timeout=30)
    assert time.monotonic() - asked < 30  # stopped and exited, so its memory is released
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    model = PeftModel.from_pretrained(base, run.adapter)
    assert any("lora_A" in name for name, _ in model.named_parameters())
    with pytest.raises(JobError, match="already cancelled"):
        jobs.cancel(run.run_id)


def test_cancel_kills_the_process_group_when_the_grace_period_ends(
    jobs, tmp_path, tiny_model_dir, monkeypatch
):
    monkeypatch.setenv("FTUI_CANCEL_GRACE_SECONDS", "0")  # the supervisor reads it at start
    config = _config(tmp_path, tiny_model_dir, max_steps=100_000, save_every=100_000)
    run = jobs.submit(config, cwd=REPO_ROOT)
    _wait_until(lambda: run.read_status().get("trainer_pgid"))
    jobs.cancel(run.run_id)
    status = wait_for(run, TIMEOUT)
    assert status["state"] == "cancelled"
    assert "killed" in status["error"]
    assert not is_alive(status["trainer_pgid"])


def test_sigkill_mid_run_then_resume_loses_and_repeats_no_step(jobs, tmp_path, tiny_model_dir):
    config = _config(tmp_path, tiny_model_dir, max_steps=40, save_every=10, eval_every=1000)
    run = jobs.submit(config, cwd=REPO_ROOT)

    def past_a_checkpoint():
        found = run.last_checkpoint()
        return found and max(_logged_steps(run), default=0) > found[1]

    _wait_until(past_a_checkpoint, every=0.01)
    os.kill(run.read_status()["pid"], signal.SIGKILL)
    status = wait_for(run, TIMEOUT)
    assert status["state"] == "failed" and "SIGKILL" in status["error"]
    checkpoint_step = run.last_checkpoint()[1]
    logged_before = _logged_steps(run)
    assert logged_before[-1] < 40, "the run finished before it was killed"

    jobs.resume(run.run_id)
    assert wait_for(run, TIMEOUT)["state"] == "completed"
    assert _logged_steps(run) == list(range(1, 41))  # each step once, none missing
    assert f"resuming from checkpoint-{checkpoint_step}" in run.log_path.read_text()
    state = json.loads((run.checkpoints / "checkpoint-40" / "trainer_state.json").read_text())
    assert state["global_step"] == 40
    assert (run.adapter / "adapter_model.safetensors").is_file()


def test_a_run_whose_processes_died_is_marked_failed(jobs, tmp_path, tiny_model_dir, monkeypatch):
    monkeypatch.setattr(jobs_module, "STARTUP_GRACE_SECONDS", 0.0)
    config = _config(tmp_path, tiny_model_dir, max_steps=100_000, save_every=100_000)
    run = jobs.submit(config, cwd=REPO_ROOT)
    _wait_until(lambda: len(_logged_steps(run)) >= 2)
    jobs.refresh()
    live = jobs.get(run.run_id)
    assert live["state"] == "running" and live["steps"] >= 2, "history shows progress so far"
    status = run.read_status()
    os.kill(status["supervisor_pid"], signal.SIGKILL)  # nobody left to write the ending
    os.kill(status["pid"], signal.SIGKILL)
    _wait_until(lambda: not is_alive(status["pid"]) and not is_alive(status["supervisor_pid"]))
    jobs.refresh()
    row = jobs.get(run.run_id)
    assert row["state"] == "failed" and "pid gone" in row["error"]
    assert run.read_status()["state"] == "failed"


def test_two_process_ddp_run_on_cpu_completes(jobs, tmp_path, tiny_model_dir):
    config = _config(tmp_path, tiny_model_dir, num_processes=2, max_steps=4)
    run = jobs.submit(config, cwd=REPO_ROOT)
    status = wait_for(run, TIMEOUT)
    log = run.log_path.read_text()
    assert status["state"] == "completed", log[-3000:]
    assert _logged_steps(run) == [1, 2, 3, 4]  # rank 0 alone writes metrics
    assert (run.adapter / "adapter_model.safetensors").is_file()
    assert "[ftui] process 0 of 2" in log and "[ftui] process 1 of 2" in log


def test_cli_lists_cancels_and_deletes(jobs, tmp_path, tiny_model_dir):
    run = jobs.submit(_config(tmp_path, tiny_model_dir), cwd=REPO_ROOT)
    wait_for(run, TIMEOUT)

    def ftui(*args: str) -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", "ftui", *args, "--workspace", str(jobs.workspace.root)]
        return subprocess.run(command, capture_output=True, text=True, timeout=60)

    listed = json.loads(ftui("runs", "--json").stdout)
    assert [row["id"] for row in listed] == [run.run_id] and listed[0]["state"] == "completed"
    refused = ftui("cancel", run.run_id)
    assert refused.returncode == 2 and "already completed" in refused.stderr
    unknown = ftui("delete", "no-such-run")
    assert unknown.returncode == 2 and "no run with id" in unknown.stderr
    assert ftui("delete", run.run_id).returncode == 0
    assert not run.path.exists() and json.loads(ftui("runs", "--json").stdout) == []


def test_preference_pairs_train_with_dpo(jobs, tmp_path, tiny_model_dir):
    from ftui.config import load_config

    config = load_config(REPO_ROOT / "presets" / "dpo-preferences.yaml")
    config.model.name_or_path = str(tiny_model_dir)
    config.train.max_steps, config.train.batch_size = 2, 2
    config.train.eval_every, config.train.save_every = 2, 2
    run = jobs.submit(config, cwd=REPO_ROOT)
    status = wait_for(run, TIMEOUT)
    assert status["state"] == "completed", run.log_path.read_text()[-3000:]
    metrics = run.read_metrics()
    assert [m["step"] for m in metrics if "loss" in m] == [1, 2]
    assert any("rewards/margins" in m for m in metrics)  # DPOTrainer's own metrics
    assert any("eval_loss" in m for m in metrics)
    assert (run.adapter / "adapter_model.safetensors").is_file()
