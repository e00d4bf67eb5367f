"""The Train tab's API across a UI restart: runs outlive the server and are re-attached.

Starts its own `ftui serve` subprocesses on one temporary workspace, with FTUI_PRESETS_DIR
pointing at a preset that trains the tiny random Llama (conftest.tiny_model_dir) for many
short steps. Everything goes through the app's own endpoints with gradio_client: start a
run, stop the server, check that the trainer is still alive and writing, start a new server
and watch the run finish there; cancel a queued and a running run through the API.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import (
    REPO_ROOT,
    free_port,
    tiny_triage_config,
    train_form,
    wait_for_http,
    wait_until,
)

from ftui.config import write_config
from ftui.runs.rundir import RunDir
from ftui.runs.runner import is_alive

pytestmark = pytest.mark.slow

PRESET = "tiny-restart"
STEPS = 80
TIMEOUT = 240


class Server:
    """`ftui serve` in a subprocess on `workspace`; `client` talks to it."""

    def __init__(self, workspace: Path, presets: Path, log: Path) -> None:
        self.port = free_port()
        self.log = log.open("a")
        env = {**os.environ, "FTUI_PRESETS_DIR": str(presets)}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "ftui", "serve", "--port", str(self.port),
             "--workspace", str(workspace)],
            cwd=REPO_ROOT, stdout=self.log, stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip
        url = f"http://127.0.0.1:{self.port}/"
        wait_for_http(url, timeout=120, process=self.process)
        from gradio_client import Client

        self.client = Client(url, verbose=False)

    def start(self, max_steps: int = STEPS) -> tuple[str, str]:
        """Start the preset run; return (the status message, the run id)."""
        form = train_form(
            PRESET, epochs=1.0, max_steps=max_steps, learning_rate=1e-3, eval_every=40,
            save_every=40, early_stopping_patience=0, num_processes=1,
        )  # fmt: skip
        message, _ = self.client.predict(*form, api_name="/start_run")
        found = re.search(r"as `([^`]+)`", message)
        assert found, message
        return message, found.group(1)

    def runs(self) -> dict[str, dict]:
        table = self.client.predict(api_name="/list_runs")
        return {row[0]: dict(zip(table["headers"], row, strict=True)) for row in table["data"]}

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)
        self.log.close()


@pytest.fixture
def presets(tmp_path, tiny_model_dir) -> Path:
    folder = tmp_path / "presets"
    folder.mkdir()
    config = tiny_triage_config(tmp_path, model=tiny_model_dir, rows=16)
    config.name = PRESET
    config.train.eval_every = config.train.save_every = 40
    write_config(config, folder / f"{PRESET}.yaml")
    return folder


def _wait_until(predicate, timeout: float = TIMEOUT, every: float = 0.5):
    return wait_until(predicate, timeout, every)


def _logged_steps(run: RunDir) -> int:
    return len([m for m in run.read_metrics() if "loss" in m])


def test_a_run_outlives_a_server_restart_and_cancels_work_through_the_api(tmp_path, presets):
    workspace = tmp_path / "workspace"
    log = tmp_path / "server.log"
    first = Server(workspace, presets, log)
    try:
        message, run_id = first.start()
        assert "running" in message
        run = RunDir(workspace / "runs" / run_id)
        _wait_until(lambda: _logged_steps(run) >= 3)
    finally:
        first.stop()

    trainer = run.read_status()["pid"]
    assert is_alive(trainer), "the trainer does not die with the UI"
    written = _logged_steps(run)
    _wait_until(lambda: _logged_steps(run) > written + 2, timeout=60)
    # Paused while the next server starts, so a slow start cannot outlast the short run.
    trainer_group = run.read_status()["trainer_pgid"]
    os.killpg(trainer_group, signal.SIGSTOP)
    try:
        second = Server(workspace, presets, log)
        row = second.runs()[run_id]
    finally:
        os.killpg(trainer_group, signal.SIGCONT)
    try:
        assert row["state"] == "running", row
        assert 0 < _logged_steps(run) < STEPS, "still running when the new server met it"

        _, queued_id = second.start(max_steps=STEPS)
        assert second.runs()[queued_id]["queue"] == 1
        cancelled = second.client.predict(queued_id, api_name="/cancel_run")
        assert "before it started" in cancelled
        assert second.runs()[queued_id]["state"] == "cancelled"

        done = _wait_until(lambda: second.runs()[run_id]["state"] != "running")
        assert done and second.runs()[run_id]["state"] == "completed"
        row = second.runs()[run_id]
        assert row["steps"] == STEPS and row["train loss"] > 0 and row["eval loss"] > 0
        assert row["tokens"] > 0 and row["owner"] == "local"

        _, stopped_id = second.start(max_steps=10_000)
        stopped = RunDir(workspace / "runs" / stopped_id)
        _wait_until(lambda: _logged_steps(stopped) >= 2)
        assert "Asked" in second.client.predict(stopped_id, api_name="/cancel_run")
        _wait_until(lambda: second.runs()[stopped_id]["state"] == "cancelled", timeout=90)
        assert stopped.output is not None, "a cancelled run keeps what it trained"
        refused = second.client.predict(run_id, api_name="/resume_run")
        assert "only failed or cancelled" in refused
        nothing_saved = second.client.predict(stopped_id, api_name="/resume_run")
        assert "no complete checkpoint" in nothing_saved, "it stopped before its first save"
        deleted = second.client.predict(stopped_id, api_name="/delete_run")
        assert "Deleted" in deleted and not stopped.path.exists()
        assert stopped_id not in second.runs()
    finally:
        second.stop()
