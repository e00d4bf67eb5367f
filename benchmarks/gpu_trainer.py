"""ftui's own trainer on Llama-3.1-8B- and Llama-3.2-3B-shaped models, one GPU (issue 11).

Each row (the published configurations: torchtune's memory tables, and 8B QLoRA at 28,454
tokens) trains through the program `ftui train` runs, in its own process: a run folder from
`create_run_dir`, trained by `python -m ftui train RUNFOLDER`, on rows longer than the max
length, so every batch is full. Per row: the peaks the trainer logs in metrics.jsonl
(`memory_bytes`: torch.cuda.max_memory_allocated; `memory_reserved_bytes`), step times (the
first step left out), tokens/s, and `ftui estimate` for the same config; then a plain
transformers `Trainer` (SDPA, peft LoRA; same model folder, rows, batch, bf16, checkpointing)
for the side-by-side tokens/s. The models are random-weight Llamas built on the device:
nothing is downloaded. The table, benchmarks/results/gpu_trainer_<gpu>.json, is rewritten
after every part (a run cut off keeps what it measured) and keeps the rows of earlier runs
that this one does not redo.

    python benchmarks/gpu_trainer.py --dry-run     # the plan; starts nothing
    python benchmarks/gpu_trainer.py --smoke       # the same path on CPU, on a 2-layer Llama

A lent GPU machine (no network, 10 minutes a command) lacks trl, datasets and bitsandbytes:
benchmarks/gpu_trainer.sh installs them (and our peft and accelerate) from the git-ignored
benchmarks/gpu_wheels, 46 MB (43 of them bitsandbytes, CUDA 11.8-13.2 builds in one wheel;
with the 1.5 MB tree under the 64 MiB a call carries), fetched here once with

    .venv/bin/pip download --no-deps --only-binary=:all: --python-version 3.12 \\
        --implementation cp --platform manylinux_2_24_x86_64 --platform any \\
        -d benchmarks/gpu_wheels trl==1.16.0 peft==0.21.2 accelerate==1.16.0 \\
        bitsandbytes==0.50.2 datasets==5.2.0 dill==0.4.1 multiprocess==0.70.19

One call, carry ["benchmarks/gpu_wheels"], timeout_s 600: `bash benchmarks/gpu_trainer.sh`
trains every row's ftui part, then baselines while --budget (540 s) lasts; the table's
`not_measured` names the rest for a second call (`--parts baseline --rows ...`) once the first
table is copied into benchmarks/results here. Each part runs under --timeout; out of memory is
a row's result, not a crash.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CHILD = ROOT / "benchmarks" / "gpu_trainer_child.py"
RESULTS = ROOT / "benchmarks" / "results"
GB = 1e9
# The published architectures (config.json of meta-llama/Llama-3.1-8B and Llama-3.2-3B). Their
# llama3 RoPE scaling is left out: it changes the rotation frequencies, not memory or time.
LLAMA_3 = dict(vocab_size=128256, max_position_embeddings=131072, rms_norm_eps=1e-5,
               rope_theta=500000.0, hidden_act="silu")  # fmt: skip
SHAPES: dict[str, dict[str, Any]] = {
    "llama-3.1-8b": dict(LLAMA_3, hidden_size=4096, intermediate_size=14336,
                         num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=8,
                         tie_word_embeddings=False),
    "llama-3.2-3b": dict(LLAMA_3, hidden_size=3072, intermediate_size=8192,
                         num_hidden_layers=28, num_attention_heads=24, num_key_value_heads=8,
                         tie_word_embeddings=True),
    "smoke": dict(vocab_size=1024, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096,
                  tie_word_embeddings=True),
}  # fmt: skip
TORCHTUNE = "torchtune's published peak memory (its memory tables)"


@dataclass(frozen=True)
class Row:
    name: str
    shape: str
    method: str  # lora or qlora
    lora_r: int
    batch_size: int
    tokens: int
    gradient_checkpointing: bool
    published_gb: float | None = None
    published_source: str = ""


ROWS = (
    Row("8b-lora", "llama-3.1-8b", "lora", 8, 2, 2048, True, 17.4, TORCHTUNE),
    Row("8b-qlora", "llama-3.1-8b", "qlora", 8, 2, 2048, True, 7.95, TORCHTUNE),
    Row("3b-lora", "llama-3.2-3b", "lora", 8, 1, 4096, True, 9.1, TORCHTUNE),
    Row("3b-qlora", "llama-3.2-3b", "qlora", 8, 1, 4096, True, 4.9, TORCHTUNE),
    Row("8b-qlora-28k", "llama-3.1-8b", "qlora", 32, 1, 28454, True, 40.0,
        "issue 11's target (transformers + FlashAttention-2 fits it in 80 GB)"),
)  # fmt: skip
SMOKE_ROWS = (
    Row("smoke-lora", "smoke", "lora", 8, 2, 128, True),
    Row("smoke-qlora", "smoke", "qlora", 8, 1, 128, True),
)


# ---------------------------------------------------------------- rows and their configs


def row_settings(row: Row, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """The config a user would write for the row: no evaluation, no mid-run save."""
    model, data, steps = args.scratch / "models" / row.shape, work / f"{row.name}.jsonl", args.steps
    return {
        "name": row.name, "model.name_or_path": str(model), "model.device": args.device,
        "data.path": str(data), "data.format": "alpaca", "data.max_length": row.tokens,
        "data.validation_fraction": 0.0, "method.name": row.method,
        "method.lora_r": row.lora_r, "method.lora_alpha": 2 * row.lora_r,
        "method.lora_dropout": 0.0, "method.target_modules": "all-linear",
        "train.batch_size": row.batch_size, "train.max_steps": steps,
        "train.gradient_checkpointing": row.gradient_checkpointing,
        "train.optimizer": "adamw_torch", "train.learning_rate": 1e-4,
        "train.eval_every": 1000, "train.save_every": 1000,
    }  # fmt: skip


# ---------------------------------------------------------------- child processes


def child_env() -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path, "HF_HUB_OFFLINE": "1",
            "HF_HUB_DISABLE_TELEMETRY": "1", "TOKENIZERS_PARALLELISM": "false"}  # fmt: skip


def run_child(args: list[str], timeout: float, log: Path) -> dict[str, Any]:
    """Run gpu_trainer_child.py (or, args starting with "-m", a module) in its own process
    group; its output goes to `log`."""
    started = time.perf_counter()
    command = [sys.executable, *(args if args[:1] == ["-m"] else [str(CHILD), *args])]
    with open(log, "w") as out:
        process = subprocess.Popen(
            command, cwd=ROOT, env=child_env(), stdout=out,
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        timed_out = False
        try:
            code = process.wait(timeout=max(timeout, 1))
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)  # the child and anything it started
            code, timed_out = process.wait(), True
    result = {"exit_code": code, "seconds": round(time.perf_counter() - started, 1)}
    if code != 0:
        tail = log.read_text(errors="replace")[-3000:]
        result["error"] = f"timed out after {timeout:.0f} s\n{tail}" if timed_out else tail
    return result


def prepare(rows: list[Row], args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Models, tokenizer, rows, environment and ftui's estimates, from one child process."""
    shapes = {row.shape: SHAPES[row.shape] for row in rows}
    settings = {row.name: row_settings(row, args, work) for row in rows}
    data = {row.name: [row.batch_size * args.steps + 4, row.tokens] for row in rows}
    spec = {"device": args.device, "scratch": str(args.scratch), "tokenizer": args.tokenizer,
            "shapes": shapes, "rows": settings, "data": data, "work": str(work),
            "out": str(work / "prepared.json")}  # fmt: skip
    (work / "prepare.json").write_text(json.dumps(spec), encoding="utf-8")
    done = run_child(["prepare", str(work / "prepare.json")], args.timeout, work / "prepare.log")
    if done["exit_code"] != 0:
        raise SystemExit(f"preparing the models failed:\n{done['error']}")
    prepared = json.loads((work / "prepared.json").read_text(encoding="utf-8"))
    return {**prepared, "settings": settings, "seconds": done["seconds"]}


def measure_ftui(settings: dict[str, Any], work: Path, timeout: float) -> dict[str, Any]:
    """Train the row's config as `ftui train` does; peaks and step times from its run folder."""
    from ftui.config import config_from_dotted
    from ftui.runs.rundir import create_run_dir
    from ftui.workspace import Workspace

    run = create_run_dir(config_from_dotted(settings), Workspace.open(work / "workspace"))
    result = run_child(["-m", "ftui", "train", str(run.path)], timeout, run.path / "train.log")
    logged = [m for m in run.read_metrics() if "loss" in m]
    elapsed = [m["elapsed"] for m in logged]
    starts = [0.0, *elapsed][: len(elapsed)]  # `elapsed` counts from the start of training
    result["step_seconds"] = [round(b - a, 4) for a, b in zip(starts, elapsed, strict=True)]
    for key, name in (("peak_allocated_bytes", "memory_bytes"),
                      ("peak_reserved_bytes", "memory_reserved_bytes")):  # fmt: skip
        if any(name in m for m in logged):
            result[key] = max(m.get(name) or 0 for m in logged)
    rates = [m["tokens_per_second"] for m in logged[1:] if "tokens_per_second" in m]
    result["logged_tokens_per_second"] = round(statistics.median(rates), 1) if rates else None
    status = run.read_status()
    if status.get("state") != "completed":
        result["error"] = status.get("error") or result.get("error") or "no steps logged"
    return {**result, "run_folder": str(run.path)}


def measure_baseline(row: Row, model: str, args: argparse.Namespace, work: Path,
                     timeout: float) -> dict[str, Any]:  # fmt: skip
    """Train the row with the plain transformers Trainer in its own process."""
    spec = {"model": model, "method": row.method, "lora_r": row.lora_r,
            "lora_alpha": 2 * row.lora_r, "batch_size": row.batch_size, "tokens": row.tokens,
            "gradient_checkpointing": row.gradient_checkpointing, "steps": args.steps,
            "device": args.device, "data": str(work / f"{row.name}.jsonl"),
            "output_dir": str(work / f"baseline-{row.name}"),
            "out": str(work / f"baseline-{row.name}.out.json")}  # fmt: skip
    path = work / f"baseline-{row.name}.json"
    path.write_text(json.dumps(spec), encoding="utf-8")
    result = run_child(["baseline", str(path)], timeout, work / f"baseline-{row.name}.log")
    out = Path(spec["out"])
    return {**result, **(json.loads(out.read_text()) if out.is_file() else {})}


# ---------------------------------------------------------------- the table


def throughput(part: dict[str, Any], row: Row) -> dict[str, Any]:
    """Median step time after the first step, and tokens/s from it (every batch is full)."""
    steps = part.get("step_seconds") or []
    timed = steps[1:] or steps
    if not timed or "error" in part:
        return {}
    seconds = statistics.median(timed)
    tokens = row.batch_size * row.tokens
    return {"seconds_per_step": round(seconds, 6), "tokens_per_second": round(tokens / seconds, 1)}


def summarize_row(row: Row, entry: dict[str, Any]) -> dict[str, Any]:
    """The figures the issue's acceptance reads, from the parts measured so far."""
    ftui, baseline, estimate = (entry.get(k) or {} for k in ("ftui", "baseline", "estimate"))
    for part in (ftui, baseline):
        part.update(throughput(part, row))
    measured, predicted = ftui.get("peak_allocated_bytes"), estimate.get("peak_memory_bytes")
    summary: dict[str, Any] = {}
    if measured and predicted and "error" not in ftui:
        summary["estimate_error"] = round(predicted / measured - 1, 4)
        summary["measured_gb"] = round(measured / GB, 3)
        if row.published_gb:
            summary["within_published"] = measured / GB <= row.published_gb
    reserved, required = ftui.get("peak_reserved_bytes"), estimate.get("required_memory_bytes")
    if reserved and required and "error" not in ftui:
        summary["required_vs_reserved"] = round(required / reserved - 1, 4)
    if ftui.get("tokens_per_second") and estimate.get("tokens_per_second"):
        speed = estimate["tokens_per_second"] / ftui["tokens_per_second"] - 1
        summary["speed_estimate_error"] = round(speed, 4)
    if ftui.get("tokens_per_second") and baseline.get("tokens_per_second"):
        ratio = ftui["tokens_per_second"] / baseline["tokens_per_second"]
        summary["throughput_ratio"] = round(ratio, 3)
    return summary


def summarize_table(entries: list[dict[str, Any]]) -> dict[str, Any]:
    summaries = [(e["name"], e.get("summary", {})) for e in entries]
    errors = [abs(s["estimate_error"]) for _, s in summaries if "estimate_error" in s]
    ratios = [s["throughput_ratio"] for _, s in summaries if "throughput_ratio" in s]
    above = [name for name, s in summaries if s.get("within_published") is False]
    return {
        "estimate_abs_error_median": round(statistics.median(errors), 4) if errors else None,
        "estimate_abs_error_worst": round(max(errors), 4) if errors else None,
        "throughput_ratio_min": min(ratios) if ratios else None,
        "rows_above_published": above,
        "rows_measured": sum(1 for _, s in summaries if "measured_gb" in s),
    }


def save_table(path: Path, table: dict[str, Any], rows: tuple[Row, ...]) -> None:
    by_name = {row.name: row for row in rows}
    for entry in table["rows"]:
        entry["summary"] = summarize_row(by_name[entry["name"]], entry)
    table["rows"].sort(key=lambda e: list(by_name).index(e["name"]))
    table["summary"] = summarize_table(table["rows"])
    done = {(e["name"], p) for e in table["rows"] for p in ("ftui", "baseline")
            if e.get(p) and "error" not in e[p]}  # fmt: skip
    table["summary"]["not_measured"] = [f"{r.name} {p}" for r in rows for p in ("ftui", "baseline")
                                        if (r.name, p) not in done]  # fmt: skip
    table["updated_at"] = datetime.datetime.now(datetime.timezone.utc).isoformat()
    path.write_text(json.dumps(table, indent=1) + "\n", encoding="utf-8")


def open_table(path: Path, prepared: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """The table for this GPU: the rows already measured, under a fresh header."""
    table = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {"rows": []}
    models = {**table.get("models", {}), **prepared["models"]}
    table.update(benchmark="benchmarks/gpu_trainer.py", **prepared["environment"],
                 steps=args.steps, tokenizer=prepared["tokenizer"], models=models,
                 baseline="transformers Trainer, SDPA, peft LoRA all-linear, bf16 autocast, "
                          "bitsandbytes NF4 + double quant for QLoRA (no fp32 upcast)")  # fmt: skip
    return table


def gpu_slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")  # NVIDIA H100 80GB HBM3 -> ...


# ---------------------------------------------------------------- command line

MIN_PART_SECONDS = 45  # no part starts with less time left in --budget


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", default="", help="comma list of row names (default: all)")
    parser.add_argument("--parts", default="ftui,baseline", help="ftui, baseline or both")
    parser.add_argument("--steps", type=int, default=4, help="optimizer steps per part")
    parser.add_argument("--timeout", type=float, default=300, help="seconds per child process")
    parser.add_argument("--budget", type=float, default=540, help="seconds for the whole run")
    parser.add_argument("--results-dir", type=Path, default=RESULTS)
    parser.add_argument("--scratch", type=Path, default=Path(tempfile.gettempdir()) / "ftui-gpu",
                        help="models (kept for the next run), data and run folders")  # fmt: skip
    parser.add_argument("--tokenizer", default=None,
                        help="auto, bytes or a tokenizer folder (--smoke: bytes)")  # fmt: skip
    parser.add_argument("--smoke", action="store_true", help="tiny Llama on CPU: tries the path")
    parser.add_argument("--dry-run", action="store_true", help="print the plan, start nothing")
    args = parser.parse_args(argv)
    args.device = "cpu" if args.smoke else "cuda"
    args.tokenizer = args.tokenizer or ("bytes" if args.smoke else "auto")  # smoke: 1024 ids
    catalog = SMOKE_ROWS if args.smoke else ROWS
    names = [n.strip() for n in args.rows.split(",") if n.strip()] or [r.name for r in catalog]
    unknown = sorted(set(names) - {row.name for row in catalog})
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    if unknown:
        parser.error(f"unknown rows {unknown}; rows: {', '.join(r.name for r in catalog)}")
    if not parts or set(parts) - {"ftui", "baseline"}:
        parser.error("--parts takes ftui, baseline or ftui,baseline")
    if args.steps < 2:
        parser.error("--steps must be at least 2: the first step is left out of the timing")
    args.catalog, args.parts = catalog, [p for p in ("ftui", "baseline") if p in parts]
    args.picked = [row for row in catalog if row.name in names]
    return args


def plan(args: argparse.Namespace) -> str:
    lines = [f"device {args.device}, {args.steps} steps a part, parts {', '.join(args.parts)}, "
             f"budget {args.budget:.0f} s, {args.timeout:.0f} s a process, scratch "
             f"{args.scratch}, results in {args.results_dir}"]  # fmt: skip
    for shape in dict.fromkeys(row.shape for row in args.picked):
        lines.append(f"model {shape}: {json.dumps(SHAPES[shape])}")
    for row in args.picked:
        published = f", published {row.published_gb} GB" if row.published_gb else ""
        lines.append(f"row {row.name}: {row.shape} {row.method} r{row.lora_r}, {row.batch_size}"
                     f" x {row.tokens} tokens, checkpointing {row.gradient_checkpointing}"
                     f"{published}")  # fmt: skip
    return "\n".join(lines)


def report_line(row: Row, part: str, entry: dict[str, Any]) -> str:
    found = entry[part]
    if "error" in found:
        lines = found["error"].strip().splitlines() or [""]
        reason = next((line for line in reversed(lines) if "Error" in line), lines[-1])
        return f"{row.name:<13} {part:<8} failed: {reason.strip()[:200]}"
    peak, rate = (found.get("peak_allocated_bytes") or 0) / GB, found.get("tokens_per_second", 0)
    speed = f"{found.get('seconds_per_step', 0):.2f} s/step, {rate:,.0f} tok/s"
    error = entry["summary"].get("estimate_error")
    estimate = f" (estimate {error:+.1%})" if part == "ftui" and error is not None else ""
    ratio = entry["summary"].get("throughput_ratio")
    versus = f", ftui/plain {ratio:.2f}x" if part == "baseline" and ratio else ""
    return f"{row.name:<13} {part:<8} peak {peak:.2f} GB{estimate}, {speed}{versus}"


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.dry_run:
        print(plan(args))
        return
    deadline = time.monotonic() + args.budget
    args.scratch.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="run-", dir=args.scratch))
    prepared = prepare(args.picked, args, work)
    gpu = gpu_slug(prepared["environment"]["gpu"]["name"])
    args.results_dir.mkdir(parents=True, exist_ok=True)
    path = args.results_dir / f"gpu_trainer_{'smoke-' if args.smoke else ''}{gpu}.json"
    table = open_table(path, prepared, args)
    print(f"prepared in {prepared['seconds']} s; writing {path}", flush=True)
    for part in args.parts:  # ftui's parts first: the memory figures matter most
        for row in args.picked:
            left = deadline - time.monotonic()
            if left < MIN_PART_SECONDS:
                print(f"{row.name:<13} {part:<8} skipped: {left:.0f} s left of --budget")
                continue
            entry = row_entry(table, row, prepared)
            timeout = min(args.timeout, left - 5)
            if part == "ftui":
                entry[part] = measure_ftui(prepared["settings"][row.name], work, timeout)
            else:
                model = prepared["models"][row.shape]["path"]
                entry[part] = measure_baseline(row, model, args, work, timeout)
            save_table(path, table, args.catalog)
            print(report_line(row, part, entry), flush=True)


def row_entry(table: dict[str, Any], row: Row, prepared: dict[str, Any]) -> dict[str, Any]:
    """The row's entry in the table (made if new), with this run's estimate and config."""
    entry = next((e for e in table["rows"] if e["name"] == row.name), None)
    if entry is None:
        entry = {"name": row.name}
        table["rows"].append(entry)
    entry.update(asdict(row), estimate=prepared["estimates"][row.name],
                 settings=prepared["settings"][row.name])  # fmt: skip
    return entry


if __name__ == "__main__":
    main()
