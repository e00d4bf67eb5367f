"""Response times with 10 users browsing while a job trains, all real processes on loopback.

Run: `.venv/bin/python benchmarks/concurrent_users.py [--users 10] [--seconds 60] [--model M]`.

Starts `python -m ftui serve` on a free port with a temporary workspace, submits one training
run of the triage preset (the bundled model, or `--model tiny` for a random 3-layer Llama) that
outlasts the measurement, waits until it logs steps, then lets N `gradio_client` users loop for
a fixed time over what people browse: the run history (`/list_runs`), one run's curves
(`/compare_runs`), the preview of a preset config (`/preview_run`) and the Data tab's preview
of a sample file (`/analyse`). Every call's latency and every error is recorded. At the end the
run is cancelled, and the script waits for its supervisor and trainer to exit (killing their
process groups if they outlast the wait) before the temporary workspace goes; the figures
(count, errors, p50/p95/max per endpoint and overall, the machine, whether the job trained
the whole time) are printed and written to benchmarks/results/concurrent_users.json. The
training job competes with the server for the same cores, as it does on a real box.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "benchmarks" / "results" / "concurrent_users.json"
SAMPLE = ROOT / "presets" / "data" / "triage" / "train.jsonl"


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_page(url: str, process: subprocess.Popen, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with code {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer within {timeout} s")


def tiny_model(folder: Path) -> Path:
    """A random 3-layer Llama with the bundled tokenizer (as in tests/conftest.py)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from ftui.models import load_tokenizer

    tokenizer = load_tokenizer("default")
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=3,
        num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )  # fmt: skip
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def start_job(workspace: Path, model: str):
    """Submit the triage preset with enough steps to outlast the measurement."""
    from ftui.config import load_config
    from ftui.runs.jobs import Jobs
    from ftui.workspace import Workspace

    config = load_config(ROOT / "presets" / "triage-lora.yaml")
    if model == "tiny":
        config.model.name_or_path = str(tiny_model(workspace / "tiny-llama"))
    elif model != "default":
        config.model.name_or_path = model
    config.name = "load-test"
    # Enough steps to outlast the measurement, yet bounded: the job is detached, so if this
    # script is killed before its clean-up the trainer still ends by itself.
    config.train.max_steps = 5_000 if model == "tiny" else 400
    config.train.eval_every = config.train.save_every = config.train.max_steps
    config.check()
    jobs = Jobs(Workspace.open(workspace))
    return jobs, jobs.submit(config, owner="bench", cwd=ROOT)


class User(threading.Thread):
    """One browsing user: its own client, calling the endpoints in turn until the deadline."""

    def __init__(self, url: str, run_id: str, deadline: float, number: int) -> None:
        super().__init__(daemon=True)
        self.url, self.run_id, self.deadline, self.number = url, run_id, deadline, number
        self.calls: list[tuple[str, float, str | None]] = []  # endpoint, seconds, error

    def run(self) -> None:
        from gradio_client import Client

        client = Client(self.url, verbose=False)
        actions = [
            ("/list_runs", lambda: client.predict(api_name="/list_runs")),
            ("/compare_runs", lambda: client.predict([self.run_id], api_name="/compare_runs")),
            ("/preview_run", lambda: client.predict(api_name="/preview_run")),
            ("/analyse", lambda: client.predict(src=str(SAMPLE), api_name="/analyse")),
        ]
        turn = self.number  # users start at different endpoints
        while time.monotonic() < self.deadline:
            name, call = actions[turn % len(actions)]
            turn += 1
            started = time.perf_counter()
            error = None
            try:
                check_answer(name, call())
            except Exception as exc:  # every failure is a result to report
                error = f"{type(exc).__name__}: {str(exc)[:200]}"
            self.calls.append((name, time.perf_counter() - started, error))


def check_answer(name: str, answer) -> None:
    """A call that returns the wrong thing counts as an error, not only one that raises."""
    if name == "/list_runs" and not answer["data"]:
        raise AssertionError("the history is empty")
    if name == "/analyse" and "format **alpaca**" not in answer[0]:
        raise AssertionError(f"the sample did not load: {answer[0][:200]}")


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def summarise(calls: list[tuple[str, float, str | None]]) -> dict:
    seconds = [s for _, s, _ in calls]
    return {
        "calls": len(calls),
        "errors": sum(1 for *_, error in calls if error),
        "p50_ms": round(percentile(seconds, 0.50) * 1000, 1),
        "p95_ms": round(percentile(seconds, 0.95) * 1000, 1),
        "max_ms": round(max(seconds) * 1000, 1),
    }


def stop_job(jobs, run, wait_seconds: float = 90.0) -> None:
    """Cancel the job and wait until its processes are gone; kill what outlasts the wait."""
    import signal

    from ftui.runs.runner import is_alive

    if run.read_status().get("state") in ("queued", "running"):
        jobs.cancel(run.run_id)
    status = run.read_status()
    pids = [
        (status.get("supervisor_pid"), status.get("supervisor_started")),
        (status.get("pid"), status.get("pid_started")),
        (status.get("trainer_pgid"), status.get("trainer_started")),
    ]
    deadline = time.monotonic() + wait_seconds
    while any(is_alive(*pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.5)
    for pid, started in pids:
        if is_alive(pid, started):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)  # supervisor and trainer lead their own groups


def measure(users: int, seconds: float, model: str, workspace: Path) -> dict:
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
    log = (workspace / "server.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "ftui", "serve", "--port", str(port), "--workspace", str(workspace)],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    jobs = run = None
    try:
        wait_for_page(url, server)
        jobs, run = start_job(workspace, model)
        deadline = time.monotonic() + 600
        while not [m for m in run.read_metrics() if "loss" in m]:
            if run.read_status().get("state") not in ("queued", "running"):
                raise RuntimeError(f"the job did not train: {run.read_status()}")
            if time.monotonic() > deadline:
                raise TimeoutError("the job logged no step in 10 minutes")
            time.sleep(0.5)
        steps_before = len(run.read_metrics())
        crowd = [User(url, run.run_id, time.monotonic() + seconds, n) for n in range(users)]
        started = time.monotonic()
        for user in crowd:
            user.start()
        for user in crowd:
            user.join(seconds + 300)
        wall = time.monotonic() - started
        state = run.read_status().get("state")
        steps_during = len(run.read_metrics()) - steps_before
    finally:
        if jobs is not None:
            stop_job(jobs, run)
        server.terminate()
        server.wait(timeout=30)
        log.close()
    calls = [call for user in crowd for call in user.calls]
    endpoints = sorted({name for name, _, _ in calls})
    errors = [f"{name}: {error}" for name, _, error in calls if error]
    return {
        "users": users,
        "seconds": seconds,
        "wall_seconds": round(wall, 1),
        "overall": summarise(calls),
        "endpoints": {e: summarise([c for c in calls if c[0] == e]) for e in endpoints},
        "first_errors": errors[:10],
        "job": {
            "model": model,
            "state_at_end": state,
            "trained_throughout": state == "running" and steps_during > 0,
            "steps_logged_during": steps_during,
        },
        "machine": {
            "cpu_cores": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "load_average_1_5_15_min_at_end": [round(x, 2) for x in os.getloadavg()],
            "note": "other jobs shared these cores while this ran (see the load average)",
        },
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--model", default="default", help="default (bundled), tiny, or a path")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    with tempfile.TemporaryDirectory(prefix="ftui-load-") as folder:
        result = measure(args.users, args.seconds, args.model, Path(folder))
    overall = result["overall"]
    print(
        f"{args.users} users for {args.seconds:.0f} s while a job trained: {overall['calls']} "
        f"calls, {overall['errors']} errors, p50 {overall['p50_ms']} ms, p95 "
        f"{overall['p95_ms']} ms, max {overall['max_ms']} ms"
    )
    for name, figures in result["endpoints"].items():
        print(f"  {name:14} {figures}")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    return 0 if overall["errors"] == 0 and result["job"]["trained_throughout"] else 1


if __name__ == "__main__":
    sys.exit(main())
