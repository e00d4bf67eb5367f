"""Peak memory of ftui's own trainer against `ftui estimate`, one fresh process per row.

Run:
    .venv/bin/python benchmarks/trainer_memory.py                # the CPU grid (about 45 min)
    .venv/bin/python benchmarks/trainer_memory.py --grid quick   # 3 rows, to try it
    .venv/bin/python benchmarks/trainer_memory.py --resume       # skip rows already measured
    .venv/bin/python benchmarks/trainer_memory.py --grid heldout # shapes outside the fit (20 min)
    .venv/bin/python benchmarks/trainer_memory.py --preset presets/triage-lora.yaml
                                            # a preset on its own dataset (rows of real lengths)
    .venv/bin/python benchmarks/trainer_memory.py --recompute    # re-estimate the tables only

Unlike memory_grid.py (a plain loop: full logits, no Trainer), every row here trains through the
program users run: a run folder made by ftui (`create_run_dir`) is trained by `python -m ftui
train RUNFOLDER`, the same trainer the runner starts (TRL's SFTTrainer, its LM head, the
method's adapters as ftui builds them), for 3 optimizer steps on the bundled SmolLM2-135M.
Every example is longer than the max length, so every batch is full: the worst case a user
meets. The peak is what the trainer itself logs (`memory_bytes` in metrics.jsonl: ru_maxrss on
CPU, max_memory_allocated on CUDA). The parent estimates the same config through
`ftui.cli.estimate_view.estimate_config` (what `ftui estimate` prints) and stores both; the table
is rewritten after every row (benchmarks/results/trainer_memory_<grid>.json), so a cut-off
run keeps what it measured.

The estimator's CPU constants (ftui/estimate/memory.py, CALIBRATED) were fitted on the `cpu`
grid; the `heldout` grid checks them on shapes outside it. tests/test_estimate_trainer.py
recomputes every estimate from the committed tables, so a change to the estimator that moves
them fails CI until `--recompute` rewrites them (and the README's figures are redone).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import itertools
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ftui.methods import METHODS as CATALOG

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
STEPS = 3
METHODS = ("lora", "qlora", "full", "freeze", "ia3", "prefix", "bottleneck")
# (batch, tokens, gradient checkpointing): small to large, checkpointing both ways.
SHAPES = ((1, 128, False), (2, 512, False), (4, 512, True), (8, 256, False), (1, 2048, False),
          (2, 1024, True))  # fmt: skip
HELD_OUT_SHAPES = ((3, 384, False), (1, 1024, True), (6, 192, False))
GRIDS = {
    "cpu": [
        (m, *shape)
        for m, shape in itertools.product(METHODS, SHAPES)
        if CATALOG[m].gradient_checkpointing or not shape[2]
    ],  # prefix refuses it
    # Shapes outside the calibration grid, to check the calibrated estimate on: every method
    # at batch x tokens it was not fitted on, checkpointing both ways.
    "heldout": [
        (m, *shape)
        for m, shape in itertools.product(METHODS, HELD_OUT_SHAPES)
        if CATALOG[m].gradient_checkpointing or not shape[2]
    ],  # fmt: skip
    "quick": [("lora", 1, 128, False), ("full", 2, 256, True), ("ia3", 2, 256, False)],
}


def long_rows(count: int, tokens: int) -> list[dict[str, str]]:
    """Alpaca rows whose answers run past `tokens` (SmolLM2 reads ' word' as one token)."""
    answer = " ".join(f"word{i % 7}" for i in range(tokens + 64))
    return [{"instruction": f"Repeat the words, case {i}.", "output": answer} for i in range(count)]


def row_config(method: str, batch: int, tokens: int, checkpointing: bool, data: Path):
    """The config a user would write for this row: 3 steps, no evaluation, no mid-run save."""
    from ftui.config import config_from_dotted

    return config_from_dotted({
        "name": f"{method}-b{batch}-t{tokens}{'-ckpt' if checkpointing else ''}",
        "data.path": str(data), "data.format": "alpaca", "data.max_length": tokens,
        "data.validation_fraction": 0.0, "method.name": method,
        "train.batch_size": batch, "train.max_steps": STEPS, "train.eval_every": 1000,
        "train.save_every": 1000, "train.gradient_checkpointing": checkpointing,
        "train.learning_rate": 1e-4, "model.device": "cpu",
    })  # fmt: skip


def measure(method: str, batch: int, tokens: int, checkpointing: bool) -> dict:
    """Train one row in its own process; return the trainer's peak and the estimate."""
    from ftui.runs.rundir import create_run_dir
    from ftui.workspace import Workspace

    with tempfile.TemporaryDirectory(prefix="ftui-trainer-memory-") as folder:
        data = Path(folder) / "long.jsonl"
        rows = long_rows(batch * STEPS + 4, tokens)
        data.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
        config = row_config(method, batch, tokens, checkpointing, data)
        run = create_run_dir(config, Workspace.open(Path(folder) / "workspace"))
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "ftui", "train", str(run.path)],
            capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"},
            check=False,
        )  # fmt: skip
        seconds = time.perf_counter() - started
        peaks = [m["memory_bytes"] for m in run.read_metrics() if m.get("memory_bytes")]
        result = {"method": method, "batch_size": batch, "tokens": tokens,
                  "gradient_checkpointing": checkpointing, "seconds": round(seconds, 1),
                  "exit_code": done.returncode}  # fmt: skip
        if done.returncode != 0 or not peaks:
            return {**result, "error": done.stdout[-2000:] + done.stderr[-2000:]}
        return {**result, "measured_bytes": max(peaks), **estimated(config)}


def measure_preset(preset: str) -> dict:
    """Train a preset on its own dataset for 3 steps (from the repository root, where its data
    path points); the estimate sizes the longest batch from that dataset, as `ftui estimate
    PRESET` does. Rows of similar length share a batch and the longest batch comes first."""
    from ftui.runs.rundir import create_run_dir
    from ftui.workspace import Workspace

    config = preset_config(preset)
    with tempfile.TemporaryDirectory(prefix="ftui-trainer-memory-") as folder:
        run = create_run_dir(config, Workspace.open(Path(folder) / "workspace"))
        done = subprocess.run(
            [sys.executable, "-m", "ftui", "train", str(run.path)], cwd=ROOT,
            capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"},
            check=False,
        )  # fmt: skip
        peaks = [m["memory_bytes"] for m in run.read_metrics() if m.get("memory_bytes")]
    result = {"preset": preset, "method": config.method.name,
              "batch_size": config.train.batch_size, "tokens": config.data.max_length,
              "gradient_checkpointing": config.train.gradient_checkpointing,
              "exit_code": done.returncode}  # fmt: skip
    if done.returncode != 0 or not peaks:
        return {**result, "error": done.stdout[-2000:] + done.stderr[-2000:]}
    return {**result, "measured_bytes": max(peaks), **reestimate(result)}


def preset_config(preset: str):
    """The preset as a user trains it on CPU, cut to 3 steps without evaluation or saves."""
    from ftui.config import config_from_dotted, load_config

    changes = {"train.max_steps": STEPS, "train.eval_every": 1000, "train.save_every": 1000,
               "model.device": "cpu"}  # fmt: skip
    return config_from_dotted(changes, load_config(ROOT / preset))


def estimated(config, longest_row_tokens: int = 0) -> dict:
    from ftui.cli.estimate_view import estimate_config

    estimate = estimate_config(
        config, device="cpu", gpu_name=None, dataset_tokens=0, price=None,
        longest_row_tokens=longest_row_tokens,
    )  # fmt: skip
    return {
        "estimated_peak_bytes": estimate.memory.peak_bytes,
        "estimated_required_bytes": estimate.memory.required_bytes(),
    }


def table_path(grid: str) -> Path:
    return RESULTS / f"trainer_memory_{grid}.json"


def reestimate(row: dict) -> dict:
    """The row's estimate by today's estimator (no training)."""
    if "preset" in row:
        from ftui.estimate.dataset import measure_dataset

        config = preset_config(row["preset"])
        with contextlib.chdir(ROOT):  # the preset's data path is relative to the repository
            longest = measure_dataset(config).longest_tokens
        return {"longest_row_tokens": longest, **estimated(config, longest)}
    config = row_config(row["method"], row["batch_size"], row["tokens"],
                        row["gradient_checkpointing"], Path("unused.jsonl"))  # fmt: skip
    return estimated(config)


def summary(rows: list[dict]) -> dict:
    """Median and worst |error| of the estimate against the trainer's peak."""
    errors = sorted(abs(r["estimated_required_bytes"] / r["measured_bytes"] - 1) for r in rows)
    middle = len(errors) // 2
    median = errors[middle] if len(errors) % 2 else (errors[middle - 1] + errors[middle]) / 2
    return {"rows": len(errors), "median_abs_error": round(median, 4),
            "worst_abs_error": round(errors[-1], 4)}  # fmt: skip


def recompute(grid: str) -> None:
    path = table_path(grid)
    table = json.loads(path.read_text())
    measured = [row for row in table["rows"] if "measured_bytes" in row]
    for row in measured:
        row.update(reestimate(row))
        print(_line(row))
    table["summary"] = summary(measured)
    path.write_text(json.dumps(table, indent=1) + "\n", encoding="utf-8")
    print(f"{grid}: {table['summary']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--grid", choices=sorted(GRIDS), default="cpu")
    parser.add_argument("--resume", action="store_true", help="skip rows already in the table")
    parser.add_argument("--recompute", action="store_true",
                        help="re-estimate the committed tables; measure nothing")  # fmt: skip
    parser.add_argument("--preset", action="append", default=[],
                        help="measure a preset on its own dataset (repeatable)")  # fmt: skip
    args = parser.parse_args()
    if args.recompute:
        for grid in ("cpu", "heldout", "presets"):
            recompute(grid)
        return
    if args.preset:
        return measure_presets(args.preset)
    path = table_path(args.grid)
    table = json.loads(path.read_text()) if args.resume and path.exists() else {"rows": []}
    done = {_key(row) for row in table["rows"] if "measured_bytes" in row}
    table.update(machine=f"{platform.machine()}, cpu, {os.cpu_count()} cores", steps=STEPS,
                 model="bundled SmolLM2-135M-Instruct")  # fmt: skip
    for row in GRIDS[args.grid]:
        if tuple(row) in done:
            continue
        result = measure(*row)
        result["measured_at"] = datetime.datetime.now(datetime.timezone.utc).isoformat()
        table["rows"] = [r for r in table["rows"] if _key(r) != _key(result)] + [result]
        measured = [r for r in table["rows"] if "measured_bytes" in r]
        table["summary"] = summary(measured) if measured else {}
        path.write_text(json.dumps(table, indent=1) + "\n", encoding="utf-8")
        print(_line(result), flush=True)


def measure_presets(presets: list[str]) -> None:
    path = table_path("presets")
    table = json.loads(path.read_text()) if path.exists() else {"rows": []}
    table.update(machine=f"{platform.machine()}, cpu, {os.cpu_count()} cores", steps=STEPS)
    for preset in presets:
        result = measure_preset(preset)
        table["rows"] = [r for r in table["rows"] if r.get("preset") != preset] + [result]
        measured = [r for r in table["rows"] if "measured_bytes" in r]
        table["summary"] = summary(measured) if measured else {}
        path.write_text(json.dumps(table, indent=1) + "\n", encoding="utf-8")
        print(_line(result), flush=True)


def _key(row: dict) -> tuple:
    return (row["method"], row["batch_size"], row["tokens"], row["gradient_checkpointing"])


def _line(row: dict) -> str:
    ckpt = "ckpt" if row["gradient_checkpointing"] else ""
    shape = f"{row['method']:<10} {row['batch_size']} x {row['tokens']:<5} {ckpt:<4}"
    if "measured_bytes" not in row:
        return f"{shape} failed (exit {row['exit_code']})"
    measured, estimate = row["measured_bytes"] / 1e9, row["estimated_required_bytes"] / 1e9
    error = estimate / measured - 1
    return f"{shape} measured {measured:.2f} GB, estimated {estimate:.2f} GB ({error:+.0%})"


if __name__ == "__main__":
    main()
