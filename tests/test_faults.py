"""Fault tests with real processes on loopback: a trainer SIGKILLed five times, a server
restarted three times mid-run.

Both train the tiny random Llama (conftest.tiny_model_dir), whose steps take ~0.1-0.3 s on
2 cores, so process start-up dominates. The kill points are drawn from a seeded generator:
each lands after a checkpoint exists, at a different step. After every kill the run resumes
through `Jobs.resume`; at the end the logged steps are exactly 1..N, every resume started from
the newest complete checkpoint, the metrics before it were kept as they were, and the final
adapter loads. The restart test stops and starts `python -m ftui serve` three times while one
run trains, and checks through gradio_client that history and the running job survive.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO_ROOT, free_port, tiny_triage_config, wait_for_http, wait_until

from ftui.runs.jobs import Jobs
from ftui.runs.rundir import RunDir
from ftui.runs.runner import is_alive, wait_for
from ftui.workspace import Workspace

pytestmark = [pytest.mark.slow, pytest.mark.soak]  # minutes each: make test-soak

TIMEOUT = 300
KILLS = 5
KILL_STEPS = 100
RESTARTS = 3
RESTART_STEPS = 900


def _config(folder: Path, model: Path, **train):
    config = tiny_triage_config(folder, model=model)
    for key, value in train.items():
        setattr(config.train, key, value)
    config.check()
    return config


def _logged(run: RunDir) -> list[dict]:
    return [m for m in run.read_metrics() if "loss" in m]


def _last_step(run: RunDir) -> int:
    return max((m["step"] for m in _logged(run)), default=0)


def kill_points(seed: int = 6, count: int = KILLS, last: int = KILL_STEPS) -> list[int]:
    """`count` distinct steps, each after the first checkpoint and at least 8 apart."""
    rng = random.Random(seed)
    while True:
        points = sorted(rng.sample(range(7, last - 4), count))
        if all(b - a >= 8 for a, b in zip(points, points[1:], strict=False)):
            return points


def test_five_sigkills_at_random_steps_each_resume_without_losing_a_step(tmp_path, tiny_model_dir):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    jobs = Jobs(Workspace.open(tmp_path / "workspace"))
    config = _config(
        tmp_path, tiny_model_dir, max_steps=KILL_STEPS, save_every=5, eval_every=10_000
    )
    run = jobs.submit(config, cwd=REPO_ROOT)
    resumed_from = []
    for number, target in enumerate(kill_points(), start=1):
        wait_until(lambda t=target: _last_step(run) >= t, TIMEOUT, every=0.01)
        pgid = run.read_status()["trainer_pgid"]
        os.killpg(pgid, signal.SIGKILL)
        killed_at = _last_step(run)
        status = wait_for(run, TIMEOUT)
        assert status["state"] == "failed" and "SIGKILL" in status["error"], status
        assert killed_at < KILL_STEPS, f"kill {number} came after the run finished"
        checkpoint = run.last_checkpoint()[1]
        assert checkpoint <= killed_at and killed_at - checkpoint < 5 + 3, (checkpoint, killed_at)
        kept = [m for m in _logged(run) if m["step"] <= checkpoint]

        jobs.resume(run.run_id)
        wait_until(lambda c=checkpoint: _last_step(run) > c, TIMEOUT, every=0.01)
        assert [m for m in _logged(run) if m["step"] <= checkpoint] == kept  # nothing lost
        resumed_from.append(checkpoint)

    assert wait_for(run, TIMEOUT)["state"] == "completed"
    steps = [m["step"] for m in _logged(run)]
    assert steps == list(range(1, KILL_STEPS + 1))  # every step once: none lost, none repeated
    log = run.log_path.read_text()
    assert [f"resuming from checkpoint-{c}" in log for c in resumed_from] == [True] * KILLS
    assert log.count("resuming from checkpoint-") == KILLS
    assert resumed_from == sorted(resumed_from) and len(set(resumed_from)) == KILLS
    model = PeftModel.from_pretrained(
        AutoModelForCausalLM.from_pretrained(tiny_model_dir), run.adapter
    )
    assert any("lora_A" in name for name, _ in model.named_parameters())


class Server:
    """`ftui serve` in a subprocess on a workspace, with a gradio_client on it."""

    def __init__(self, workspace: Path, log: Path) -> None:
        self.log = log.open("a")
        port = free_port()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "ftui", "serve", "--port", str(port),
             "--workspace", str(workspace)],
            cwd=REPO_ROOT, stdout=self.log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        url = f"http://127.0.0.1:{port}/"
        wait_for_http(url, timeout=120, process=self.process)
        from gradio_client import Client

        self.client = Client(url, verbose=False)

    def runs(self) -> dict[str, dict]:
        table = self.client.predict(api_name="/list_runs")
        return {row[0]: dict(zip(table["headers"], row, strict=True)) for row in table["data"]}

    def steps(self, run_id: str) -> int:
        """The last step on the run's loss curve, as the page draws it (the history table
        fills its steps column when a run ends)."""
        _, curves, *_ = self.client.predict([run_id], api_name="/compare_runs")
        return max((row[0] for row in curves["data"] if row[2].endswith("train loss")), default=0)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)
        self.log.close()


def test_three_server_restarts_mid_run_keep_history_and_the_running_job(tmp_path, tiny_model_dir):
    workspace = Workspace.open(tmp_path / "workspace")
    jobs = Jobs(workspace)
    earlier = jobs.submit(_config(tmp_path, tiny_model_dir), cwd=REPO_ROOT)
    assert wait_for(earlier, TIMEOUT)["state"] == "completed"
    long = _config(
        tmp_path, tiny_model_dir, max_steps=RESTART_STEPS, save_every=300, eval_every=300
    )
    run = jobs.submit(long, owner="ana", cwd=REPO_ROOT)
    wait_until(lambda: _last_step(run) >= 1, TIMEOUT, every=0.1)
    trainer = run.read_status()["pid"]

    log = tmp_path / "server.log"
    server = Server(workspace.root, log)
    seen_steps = [0]
    try:
        for restart in range(1, RESTARTS + 1):
            rows = server.runs()
            assert rows[earlier.run_id]["state"] == "completed"
            assert rows[earlier.run_id]["steps"] == 3
            row = rows[run.run_id]
            assert row["state"] == "running" and row["owner"] == "ana", (restart, row)
            wait_until(lambda s=server: s.steps(run.run_id) > seen_steps[-1], 60, 0.5)
            seen_steps.append(server.steps(run.run_id))
            server.stop()
            assert is_alive(trainer), f"the trainer died with server {restart}"
            server = Server(workspace.root, log)
        rows = server.runs()
        assert rows[run.run_id]["state"] == "running", "the run ended before the last restart"
        assert server.steps(run.run_id) > seen_steps[-1]
        done = wait_until(lambda: server.runs()[run.run_id]["state"] != "running", TIMEOUT, 1)
        assert done
        row = server.runs()[run.run_id]
        assert row["state"] == "completed" and row["steps"] == RESTART_STEPS
        assert run.read_status()["pid"] == trainer  # one trainer the whole way: never restarted
    finally:
        if server.process.poll() is None:
            server.stop()
        if run.read_status().get("state") == "running":
            jobs.cancel(run.run_id)
    assert seen_steps == sorted(seen_steps) and len(set(seen_steps)) == RESTARTS + 1
    assert [m["step"] for m in _logged(run)] == list(range(1, RESTART_STEPS + 1))
