"""Shared fixtures: offline environment, the bundled tokenizer, and a real app server.

The app fixture starts `python -m ftui serve` in a subprocess on a free loopback port with a
temporary workspace, waits for the first page, and stops it at the end of the session.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from ray_cluster import ray_cluster  # noqa: F401  (the session's Ray cluster, for every Ray test)

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
# Servers started by tests skip the estimator warm-up (10-17 s of CPU each on 2 cores, taken
# from the test's own work); tests/test_warmup.py turns it on for the server it checks.
os.environ["FTUI_WARMUP"] = "0"

REPO_ROOT = Path(__file__).resolve().parents[1]
SAMPLES = REPO_ROOT / "presets" / "data"
# A 3-layer Llama for tests that build real models fast.
TINY_LLAMA = dict(
    vocab_size=256,
    hidden_size=64,
    intermediate_size=128,
    num_hidden_layers=3,
    num_attention_heads=4,
    num_key_value_heads=2,
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_http(url: str, timeout: float, process: subprocess.Popen | None = None) -> float:
    """Poll until the URL answers 200; return the seconds it took."""
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server exited early with code {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return time.perf_counter() - started
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer within {timeout} s")


@pytest.fixture(scope="session")
def tokenizer():
    from ftui.models import load_tokenizer

    return load_tokenizer("default")


@pytest.fixture(scope="session")
def app_server(tmp_path_factory):
    """A running ftui server: yields (base_url, workspace_path)."""
    from ftui.models import prepare_bundled_model

    prepare_bundled_model()  # convert before the server starts, so timings are about serving
    workspace = tmp_path_factory.mktemp("workspace")
    env = {**os.environ, "FTUI_MAX_UPLOAD_MB": "2"}
    with ftui_server(workspace, env, workspace.parent / "server.log") as url:
        yield url + "/", workspace


@contextmanager
def ftui_server(
    workspace: Path,
    env: dict[str, str],
    log_path: Path,
    extra_args: tuple[str, ...] = (),
    ready_path: str = "/",
):
    """`python -m ftui serve` on a free loopback port, logging to `log_path`; yields its URL
    (no trailing slash) once `ready_path` answers 200, and stops it on exit. `extra_args` go
    to `ftui serve` (e.g. ("--host", "0.0.0.0"))."""
    port = free_port()
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "ftui", "serve", "--port", str(port)]
            + ["--workspace", str(workspace), *extra_args],
            cwd=REPO_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            wait_for_http(url + ready_path, timeout=120, process=process)
            yield url
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:  # open event streams can hold uvicorn up
                process.kill()
                process.wait(timeout=15)


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]


@contextmanager
def browser_page(url: str) -> Iterator[Any]:
    """A headless Chromium page (Debian's chromium through Playwright) opened on `url`."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (make test does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1800})
        page.set_default_timeout(60_000)
        page.goto(url)
        yield page
        browser.close()


@pytest.fixture
def page(app_server):
    """A headless Chromium page on the app."""
    with browser_page(app_server[0]) as page:
        yield page


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, tokenizer) -> Path:
    """A random 3-layer Llama with the bundled tokenizer, saved as safetensors: trains in ms."""
    from transformers import LlamaConfig, LlamaForCausalLM

    folder = tmp_path_factory.mktemp("tiny-llama")
    config = LlamaConfig(
        **{**TINY_LLAMA, "vocab_size": len(tokenizer)},
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    # servers started later may load it: a web caller's model paths are confined
    os.environ["FTUI_MODEL_DIRS"] = str(folder)
    return folder


def tiny_triage_config(folder: Path, model: str | Path = "default", rows: int = 16):
    """The triage preset cut down to `rows` rows, on `model`: a few-second training run."""
    from ftui.config import load_config

    def head(source: Path, target: Path, count: int) -> str:
        lines = source.read_text(encoding="utf-8").splitlines()[:count]
        target.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return str(target)

    config = load_config(REPO_ROOT / "presets" / "triage-lora.yaml")
    config.model.name_or_path = str(model)
    config.data.path = head(SAMPLES / "triage" / "train.jsonl", folder / "train.jsonl", rows)
    config.data.validation_path = head(
        SAMPLES / "triage" / "validation.jsonl", folder / "val.jsonl", 4
    )
    config.data.max_length = 128
    config.train.max_steps = 3
    config.train.batch_size = 2
    config.train.learning_rate = 1e-3
    config.train.eval_every = 2
    config.train.save_every = 2
    config.check()
    return config


def wait_until(predicate, timeout: float, every: float = 0.05):
    """Poll `predicate` until it returns something truthy; return that, or raise TimeoutError."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise TimeoutError("condition not met in time")


# ---------------------------------------------------------------- no trainer left behind

ORPHAN_GRACE_SECONDS = 20.0  # a supervisor may still be recording an ending it just saw


def _leftover_run_processes(root: Path) -> list:
    """`ftui supervise` / `ftui train` processes (any launcher) working on folders under root."""
    import psutil

    found = []
    for process in psutil.process_iter(["pid", "cmdline"]):
        words = process.info["cmdline"] or []
        is_run = "ftui" in words and ("supervise" in words or "train" in words)
        under_root = any(word.startswith(str(root)) for word in words)
        if is_run and under_root and process.pid != os.getpid():
            found.append(process)
    return found


def pytest_sessionfinish(session, exitstatus):
    """Fail the session when a test left a supervisor or trainer running under its temp dirs
    (and kill them): every test stops what it started."""
    import psutil

    factory = getattr(session.config, "_tmp_path_factory", None)
    if factory is None or factory._basetemp is None:
        return  # no test made a temporary folder, so none can have started a run in one
    root = factory.getbasetemp().resolve()
    deadline = time.monotonic() + ORPHAN_GRACE_SECONDS
    while (leftovers := _leftover_run_processes(root)) and time.monotonic() < deadline:
        time.sleep(0.5)
    if not leftovers:
        return
    described = [f"{p.pid}: {' '.join(p.info['cmdline'])[:200]}" for p in leftovers]
    for process in leftovers:
        try:
            process.kill()
        except psutil.Error:
            continue  # it ended by itself meanwhile
    print("\nLeft-over run processes (killed now):\n  " + "\n  ".join(described), file=sys.stderr)
    session.exitstatus = pytest.ExitCode.TESTS_FAILED


def train_form(start_from: str, name: str = "", **train: Any) -> list[Any]:
    """The Train tab's /start_run inputs in order: start point, run name, then one value per
    tab="train" field (`train` by field name, e.g. max_steps=2; the field's default otherwise).
    The Method tab's settings follow: pass them by name (`param_N`, see start_run_param)."""
    from ftui.config import field_spec
    from ftui.ui.run_config import TRAIN_KEYS

    values = [train.get(key.split(".", 1)[1], field_spec(key).default) for key in TRAIN_KEYS]
    return [start_from, name, *values]


def start_run_param(key: str) -> str:
    """The gradio_client name of a Method tab setting among /start_run's inputs, e.g.
    start_run_param("model.name_or_path") -> "param_14": start point, run name, the train
    fields, the Data tab's dataset (a gr.State: numbered, though not a parameter), then the
    Method tab's settings, which start with the model box."""
    from ftui.ui.run_config import TRAIN_KEYS

    method_keys = ["model.name_or_path"]
    return f"param_{3 + len(TRAIN_KEYS) + method_keys.index(key)}"
