"""The Ray cluster the Ray tests share: one head node started on loopback for the session,
with token auth on, 4 CPUs and 2 fake GPUs (tests/conftest.py registers the fixture, so
tests/test_ray_engine.py and tests/test_ray_queue.py reuse one cluster).

Ray reads RAY_AUTH_MODE and RAY_AUTH_TOKEN_PATH once, when this process first imports it, so
the fixture sets them before anything imports ray (nothing here imports it at module level).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import psutil
import pytest

HEAD_START_TIMEOUT = 90


@pytest.fixture(scope="session")
def ray_cluster():
    """A one-node Ray head on loopback (token auth, 4 CPUs, 2 fake GPUs); yields the jobs
    address and stops every Ray process it started."""
    from conftest import free_port, wait_until

    temp = Path(tempfile.mkdtemp(prefix="ftui-ray-"))  # short: Ray's socket paths are bounded
    token = temp / "ray-token"  # as the README says: a 0600 file every node reads
    token.write_text(uuid.uuid4().hex + uuid.uuid4().hex, encoding="utf-8")
    token.chmod(0o600)
    auth = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token)}
    auth["RAY_USAGE_STATS_ENABLED"] = "0"
    bin_folder = Path(sys.executable).parent  # on PATH, as on a node with the venv activated
    env = {**os.environ, **auth, "PATH": f"{bin_folder}{os.pathsep}{os.environ['PATH']}"}
    port = free_port()
    command = [
        str(bin_folder / "ray"), "start", "--head", "--block", "--port", "0",
        "--node-ip-address", "127.0.0.1", "--dashboard-host", "127.0.0.1",
        "--dashboard-port", str(port), "--dashboard-agent-listen-port", str(free_port()),
        "--ray-client-server-port", str(free_port()), "--num-cpus", "4", "--num-gpus", "2",
        "--temp-dir", str(temp), "--disable-usage-stats",
    ]  # fmt: skip
    earlier = {key: os.environ.get(key) for key in auth}
    os.environ.update(auth)  # this process's jobs client sends the token (read at import)
    with open(temp / "head.log", "w") as log:
        head = subprocess.Popen(
            command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    address = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _answers(address, head), timeout=HEAD_START_TIMEOUT, every=0.5)
        yield address
    finally:
        _stop_head(head, temp)
        for key, value in earlier.items():
            os.environ.pop(key) if value is None else os.environ.__setitem__(key, value)


def _answers(address: str, head: subprocess.Popen) -> bool:
    from ftui.runs.ray_engine import RayEngine, RayEngineError

    if head.poll() is not None:
        raise RuntimeError(f"ray start exited with {head.returncode}")
    try:
        RayEngine(address).client.list_jobs()
    except RayEngineError:
        return False
    return True


def _stop_head(head: subprocess.Popen, temp: Path) -> None:
    """SIGTERM `ray start --block` (it stops the processes it started), then kill what is left
    of its session by id; the temp folder goes with it."""
    head.terminate()
    with contextlib.suppress(subprocess.TimeoutExpired):
        head.wait(timeout=5)  # draining can take longer: what is left is killed below
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(head.pid, signal.SIGKILL)
    for process in processes_mentioning(str(temp)):
        with contextlib.suppress(psutil.Error):
            process.kill()
    subprocess.run(["rm", "-rf", str(temp)], check=False)


def processes_mentioning(text: str) -> list[psutil.Process]:
    """The processes with `text` in a word of their command line."""
    found = []
    for process in psutil.process_iter(["cmdline"]):
        with contextlib.suppress(psutil.Error):
            if any(text in word for word in process.info["cmdline"] or []):
                found.append(process)
    return found
