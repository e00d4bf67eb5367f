"""Seconds from `python app.py` to the first page served, and the one-time model conversion;
with --estimate, the Method tab's first estimate after a start, warmed in the background or not.

Run: `make bench` or `.venv/bin/python benchmarks/startup.py [--runs 5] [--skip-conversion]`;
`.venv/bin/python benchmarks/startup.py --estimate [--runs 2] [--idle 20]`.

Each run starts a fresh `python app.py` with an empty workspace on a free port and polls `/`
until it answers 200. The bundled model's one-time GGUF -> safetensors conversion is timed
separately, in a throwaway cache folder, since a normal start finds it done. A bare
`import gradio` is timed between runs as the floor no Gradio app can beat. Results are
printed and written to benchmarks/results/startup.json.

--estimate starts `python -m ftui serve` with FTUI_WARMUP=0 and =1 in turn (interleaved, so
both see the same machine load), waits for its first page, waits --idle seconds (a visitor
reading the first page; 0 = at once), then calls the `method_estimate` endpoint through
gradio_client twice on the tab's defaults: the first estimate and the next. Results go to
benchmarks/results/first_estimate_idle<seconds>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET_SECONDS = 5.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def time_first_page(timeout: float = 120.0) -> float:
    port = free_port()
    with tempfile.TemporaryDirectory() as workspace:
        env = {**os.environ, "PORT": str(port), "FTUI_WORKSPACE": workspace, "HF_HUB_OFFLINE": "1"}
        started = time.perf_counter()
        process = subprocess.Popen(
            [sys.executable, "app.py"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            return wait_for_page(f"http://127.0.0.1:{port}/", started, timeout)
        finally:
            process.terminate()
            process.wait(timeout=20)


def time_gradio_import() -> float:
    """The floor: a bare `import gradio` in a fresh interpreter, timed the same way."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import gradio"], check=True, cwd=ROOT)
    return time.perf_counter() - started


def time_conversion() -> float:
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "FTUI_CACHE_DIR": cache, "HF_HUB_OFFLINE": "1"}
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "ftui", "model", "prepare"],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
        )
        return time.perf_counter() - started


def wait_for_page(url: str, started: float, timeout: float = 120.0) -> float:
    """Seconds from `started` until `url` serves an HTML page."""
    while time.perf_counter() - started < timeout:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200 and b"<html" in response.read(4096).lower():
                    return time.perf_counter() - started
        except OSError:
            time.sleep(0.05)
    raise TimeoutError("no page within the timeout")


def time_first_estimate(warm: bool, idle: float) -> dict[str, float]:
    """A fresh `ftui serve`: its first page, then (after `idle` s) two estimates' seconds."""
    from gradio_client import Client

    port = free_port()
    with tempfile.TemporaryDirectory() as workspace:
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "FTUI_WARMUP": "1" if warm else "0"}
        command = [sys.executable, "-m", "ftui", "serve", "--port", str(port)]
        started = time.perf_counter()
        process = subprocess.Popen(
            [*command, "--workspace", workspace],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            url = f"http://127.0.0.1:{port}/"
            first_page = wait_for_page(url, started)
            time.sleep(idle)
            client = Client(url, verbose=False)
            seconds = []
            for _ in range(2):
                began = time.perf_counter()
                client.predict(api_name="/method_estimate")  # the tab's default settings
                seconds.append(round(time.perf_counter() - began, 2))
        finally:
            process.terminate()
            process.wait(timeout=20)
    return {"first_page": round(first_page, 2), "first": seconds[0], "next": seconds[1]}


def estimate_benchmark(runs: int, idle: float) -> dict:
    """First and next estimate with and without the warm-up, `runs` times each."""
    rows: dict[str, list[dict[str, float]]] = {"cold": [], "warmed": []}
    for _ in range(runs):
        for name in rows:
            rows[name].append(time_first_estimate(name == "warmed", idle))
    summary = {
        name: {key: round(statistics.median(row[key] for row in found), 2) for key in found[0]}
        for name, found in rows.items()
    }
    return {
        "benchmark": "first_estimate",
        "idle_seconds_before_the_estimate": idle,
        "runs": rows,
        "median_seconds": summary,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--skip-conversion", action="store_true")
    parser.add_argument("--estimate", action="store_true", help="time the first estimate")
    parser.add_argument("--idle", type=float, default=20.0, help="seconds before it (--estimate)")
    args = parser.parse_args()
    if args.estimate:
        result = estimate_benchmark(args.runs, args.idle)
        print(json.dumps(result, indent=2))
        name = f"first_estimate_idle{args.idle:g}.json"
        (ROOT / "benchmarks" / "results" / name).write_text(json.dumps(result, indent=2) + "\n")
        return
    subprocess.run(
        [sys.executable, "-m", "ftui", "model", "prepare"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )  # make sure a normal start finds the cache ready
    time_first_page()  # warm the OS file cache once; not counted
    runs, floors = [], []
    for _ in range(args.runs):  # interleaved, so both see the same machine load
        runs.append(round(time_first_page(), 2))
        floors.append(round(time_gradio_import(), 2))
    result = {
        "benchmark": "startup",
        "first_page_seconds": runs,
        "median_seconds": statistics.median(runs),
        "gradio_import_seconds": floors,
        "median_gradio_import_seconds": statistics.median(floors),
        "target_seconds": TARGET_SECONDS,
        "meets_target": statistics.median(runs) < TARGET_SECONDS,
        "conversion_seconds": None if args.skip_conversion else round(time_conversion(), 1),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}",
    }
    print(json.dumps(result, indent=2))
    out = ROOT / "benchmarks" / "results" / "startup.json"
    out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
