"""Useful tokens per second of ftui's training path against a plain TRL script, on this machine.

Run: `.venv/bin/python benchmarks/train_throughput.py [--rows 64] [--rounds 2]` (about 15
min on 2 cores). Results are printed and written to benchmarks/results/train_throughput.json.

Every variant trains the bundled SmolLM2-135M-Instruct with the same LoRA (r16, alpha 32,
dropout 0, all-linear), per-device batch 8 and loss on completions only, on one file of
mixed lengths (support tickets, short answers, knowledge-base passages: 65-256 tokens):

- trl_defaults: a minimal SFTTrainer script that keeps TRL's defaults except bf16, which
  any user must turn off on a CPU (bf16 matmuls are many times slower there than fp32);
- trl_packed, trl_padding_free: the same script tuned by hand, gradient checkpointing off
  and no padding, in TRL's two ways: best-fit packing into 256-token rows, or each batch
  flattened into one row (`padding_free`; TRL then wants max_length=None, harmless here as
  no row is longer than 256 tokens). ftui is compared with the faster of the two;
- ftui: `ftui.runs.train.build_trainer` with the live-metrics callback (`RunDirCallback`), whose
  hooks are also timed directly;
- ftui_no_callback: the same without the callback.

Each run is a fresh subprocess that trains one epoch over the same rows (the first `--rows`
of the mix), after one untimed forward/backward pass that warms the kernels up; every step
of the epoch is timed, so all variants see the same rows whatever order they take them in.
Rounds repeat all variants in rotated order so that noise shows. Useful tokens are the
non-padding tokens of the batches the trainer took, counted the same way for every variant
(the lengths of the rows handed to the collator). Before each run the script waits for the
machine to go quiet, and it records the CPU share other processes took during each step;
steps where that passed 10% are left out of the rate (all steps are kept in the JSON).

A correctness check runs first: the loss of a padding-free batch (one flattened row, and
best-fit packed rows) must equal the token-weighted mean loss of its rows run one by one
(sdpa keeps packed rows apart through position_ids), and scoring only labelled positions
in TRL's LM head (what ftui does on CPU) must give the same loss and gradients.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "train_throughput.json"
DATA = ROOT / "presets" / "data"
VARIANTS = ("trl_defaults", "trl_packed", "trl_padding_free", "ftui", "ftui_no_callback")
TUNED = ("trl_packed", "trl_padding_free")
BATCH_SIZE = 8
MAX_LENGTH = 256  # ftui's max_length and the tuned script's packed row length
QUIET = 0.10  # most CPU share other processes may take for a step to count
TARGETS = {"vs_trl_defaults": 1.3, "vs_trl_tuned": 0.95, "callback_cost": 0.02}


# ---------------------------------------------------------------- data


def write_mixed_rows(path: Path, count: int, seed: int = 0) -> None:
    """`count` alpaca rows of mixed lengths from the bundled samples."""
    triage = [json.loads(line) for line in (DATA / "triage" / "train.jsonl").open()]
    rows = triage[::2]  # half of them, so that they do not set the length of most batches
    for line in (DATA / "preferences" / "pairs.jsonl").open():
        pair = json.loads(line)
        rows.append({"instruction": pair["prompt"], "input": "", "output": pair["chosen"]})
    paragraphs = [p.strip() for p in (DATA / "domain" / "corpus.txt").read_text().split("\n\n")]
    paragraphs = [p for p in paragraphs if p]
    rng = random.Random(seed)
    start = 0
    while start < len(paragraphs):
        take = rng.randint(1, 4)
        passage = paragraphs[start : start + take]
        start += take
        rows.append(
            {
                "instruction": "Write the knowledge-base passage that begins like this.",
                "input": passage[0].split(". ")[0],
                "output": "\n\n".join(passage)[:600],  # under 256 tokens with the prompt
            }
        )
    rng.shuffle(rows)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows[:count]), encoding="utf-8")


def plain_rows(path: Path) -> Any:
    """What a plain script does with an alpaca file: conversational prompt/completion."""
    from datasets import load_dataset

    def to_messages(row: dict) -> dict:
        user = "\n\n".join(part for part in (row["instruction"], row["input"]) if part.strip())
        return {
            "prompt": [{"role": "user", "content": user}],
            "completion": [{"role": "assistant", "content": row["output"]}],
        }

    data = load_dataset("json", data_files=str(path), split="train")
    return data.map(to_messages, remove_columns=data.column_names)


# ---------------------------------------------------------------- one run (subprocess)


class CpuMeter:
    """CPU seconds this process used and all CPUs were busy, for the share others took."""

    def __init__(self) -> None:
        self.ticks = os.sysconf("SC_CLK_TCK")
        self.cpus = os.cpu_count() or 1

    def read(self) -> tuple[float, float, float]:
        with open("/proc/stat") as handle:
            fields = [int(x) for x in handle.readline().split()[1:]]
        user, nice, system, idle, iowait, irq, softirq, steal = fields[:8]
        busy = (user + nice + system + irq + softirq + steal) / self.ticks
        return time.perf_counter(), busy, time.process_time()

    def others_share(self, before: tuple, after: tuple) -> float:
        wall, busy, own = (a - b for a, b in zip(after, before, strict=True))
        return max(0.0, (busy - own) / max(wall * self.cpus, 1e-9))


def build_plain_trainer(variant: str, data_path: Path, output_dir: Path) -> Any:
    """The minimal plain-TRL script, defaults or tuned by hand."""
    import torch
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    from ftui.models import resolve_model_dir

    source = resolve_model_dir("default")
    tuned = {
        "trl_packed": {"gradient_checkpointing": False, "packing": True, "max_length": MAX_LENGTH},
        "trl_padding_free": {
            "gradient_checkpointing": False,
            "padding_free": True,
            "max_length": None,
        },
    }
    args = SFTConfig(
        output_dir=str(output_dir),
        per_device_train_batch_size=BATCH_SIZE,
        num_train_epochs=1,
        bf16=False,  # TRL's default; bf16 on CPU is pathologically slow
        report_to="none",
        seed=42,
        **tuned.get(variant, {}),
    )
    lora = LoraConfig(
        r=16, lora_alpha=32, lora_dropout=0.0, target_modules="all-linear", task_type="CAUSAL_LM"
    )
    return SFTTrainer(
        model=AutoModelForCausalLM.from_pretrained(source, dtype=torch.float32),
        args=args,
        train_dataset=plain_rows(data_path),
        processing_class=AutoTokenizer.from_pretrained(source),
        peft_config=lora,
    )


def build_ftui_trainer(variant: str, data_path: Path, output_dir: Path) -> Any:
    """ftui's own path: the flagship preset's settings on the benchmark rows."""
    from ftui.config import load_config
    from ftui.runs.rundir import RunDir
    from ftui.runs.train import RunDirCallback, build_trainer

    config = load_config(ROOT / "presets" / "triage-lora.yaml")
    config.data.path = str(data_path)
    # A separate validation file keeps every row in training; eval and saving never come up.
    config.data.validation_path = str(DATA / "triage" / "validation.jsonl")
    config.data.max_length = MAX_LENGTH
    config.train.batch_size = BATCH_SIZE
    config.train.epochs = 1
    config.train.eval_every = config.train.save_every = 10**6
    run = RunDir(output_dir / "run")
    run.path.mkdir(parents=True)
    callbacks = [RunDirCallback(run)] if variant == "ftui" else []
    return build_trainer(config, output_dir / "checkpoints", callbacks=callbacks)


def run_variant(variant: str, data_path: Path) -> dict[str, Any]:
    """Train one epoch; per step: useful tokens, seconds, CPU share of other processes."""
    from transformers import TrainerCallback

    meter = CpuMeter()
    batch_tokens: list[int] = []
    marks: list[tuple[float, float, float]] = []

    class StepClock(TrainerCallback):
        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            marks.append(meter.read())

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            marks.append(meter.read())

    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        build = build_ftui_trainer if variant.startswith("ftui") else build_plain_trainer
        trainer = build(variant, data_path, Path(tmp))
        warm_up(trainer)
        collate = trainer.data_collator

        def counting_collator(examples: list[dict]) -> Any:
            batch_tokens.append(sum(len(example["input_ids"]) for example in examples))
            return collate(examples)

        trainer.data_collator = counting_collator
        trainer.add_callback(StepClock())  # last, so the step time includes the other callbacks
        hook_seconds = time_callback_hooks(trainer)
        setup_seconds = time.perf_counter() - started
        trainer.train()
        settings = {
            "gradient_checkpointing": trainer.args.gradient_checkpointing,
            "padding_free": trainer.padding_free,
            "packing": trainer.args.packing,
            "sampling": trainer.args.train_sampling_strategy,
            "bf16": trainer.args.bf16,
        }
    step_list = [
        {
            "tokens": batch_tokens[index],
            "seconds": round(marks[index + 1][0] - marks[index][0], 3),
            "others_cpu_share": round(meter.others_share(marks[index], marks[index + 1]), 3),
        }
        for index in range(len(marks) - 1)
    ]
    train_seconds = marks[-1][0] - marks[0][0]
    return {
        "variant": variant,
        "settings": settings,
        "setup_seconds": round(setup_seconds, 1),
        "steps": step_list,
        **step_rates(step_list),
        "callback_seconds": round(sum(hook_seconds), 4),
        "callback_share": round(sum(hook_seconds) / train_seconds, 5),
    }


def time_callback_hooks(trainer: Any) -> list[float]:
    """Wrap the live-metrics callback's hooks (if any) to add up the time they take."""
    from ftui.runs.train import RunDirCallback

    seconds: list[float] = []
    for callback in trainer.callback_handler.callbacks:
        if isinstance(callback, RunDirCallback):
            for name in ("on_train_begin", "on_step_end", "on_log"):
                setattr(callback, name, _timed(getattr(callback, name), seconds))
    return seconds


def _timed(hook: Any, seconds: list[float]) -> Any:
    def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return hook(*args, **kwargs)
        finally:
            seconds.append(time.perf_counter() - started)

    return timed


def warm_up(trainer: Any) -> None:
    """One untimed forward/backward on the first batch: kernels and allocator warm up."""
    rows = [trainer.train_dataset[index] for index in range(BATCH_SIZE)]
    batch = trainer.data_collator(rows)
    trainer.model.train()
    trainer.model(**batch, fused_lm_head=True).loss.backward()
    trainer.model.zero_grad(set_to_none=True)


def step_rates(steps: list[dict]) -> dict[str, Any]:
    """Useful tokens per second over all timed steps and over the quiet ones."""
    quiet = [step for step in steps if step["others_cpu_share"] <= QUIET]

    def rate(chosen: list[dict]) -> float | None:
        seconds = sum(step["seconds"] for step in chosen)
        return round(sum(step["tokens"] for step in chosen) / seconds, 1) if seconds else None

    return {
        "tokens_per_second_all_steps": rate(steps),
        "quiet_steps": len(quiet),
        "tokens_per_second": rate(quiet) if len(quiet) * 2 >= len(steps) else None,
    }


# ---------------------------------------------------------------- correctness (subprocess)


def check_padding_free(data_path: Path) -> dict[str, Any]:
    """Loss of padding-free and packed batches against the same rows run one by one."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling
    from trl.trainer.utils import add_fused_lm_head

    from ftui.models import resolve_model_dir

    torch.manual_seed(0)
    source = resolve_model_dir("default")
    tokenizer = AutoTokenizer.from_pretrained(source)
    model = AutoModelForCausalLM.from_pretrained(
        source, dtype=torch.float32, attn_implementation="sdpa"
    )
    add_fused_lm_head(model, outputs=("log_probs", "entropy", "is_top1"))
    lora = LoraConfig(r=16, lora_alpha=32, target_modules="all-linear", init_lora_weights=False)
    model = get_peft_model(model, lora).eval()  # random adapters: not an identity

    rows = [row for row in plain_rows(data_path).select(range(8))]
    examples = [completion_only_example(tokenizer, row) for row in rows]
    collate_padded = DataCollatorForLanguageModeling(tokenizer.pad_token_id)
    collate_flat = DataCollatorForLanguageModeling(tokenizer.pad_token_id, padding_free=True)

    def loss(batch: dict) -> float:
        with torch.no_grad():
            return model(**batch, fused_lm_head=True).loss.item()

    def labelled(example: dict) -> int:
        return sum(label != -100 for label in example["labels"][1:])

    # Reference: each row alone; the mean over every labelled token of all rows.
    total = sum(loss(collate_padded([ex])) * labelled(ex) for ex in examples)
    reference = total / sum(labelled(ex) for ex in examples)
    flat = collate_flat(examples)
    unmarked = dict(flat, position_ids=torch.arange(flat["input_ids"].shape[1])[None])
    results = {
        "rows": len(examples),
        "row_tokens": [len(ex["input_ids"]) for ex in examples],
        "reference_loss": reference,
        "padded_batch_loss": loss(collate_padded(examples)),
        "padding_free_loss": loss(flat),
        "packed_rows_loss": loss(collate_flat(pack_best_fit(examples, MAX_LENGTH))),
        # Negative control: the same flattened row without position resets mixes rows.
        "padding_free_without_position_resets_loss": loss(unmarked),
    }
    results["compact_lm_head"] = check_compact_head(model, collate_padded(examples))
    tolerance = 1e-4
    results["padding_free_matches"] = abs(results["padding_free_loss"] - reference) < tolerance
    results["packed_matches"] = abs(results["packed_rows_loss"] - reference) < tolerance
    results["padded_matches"] = abs(results["padded_batch_loss"] - reference) < tolerance
    control = results["padding_free_without_position_resets_loss"]
    results["control_differs"] = abs(control - reference) > 100 * tolerance
    return results


def completion_only_example(tokenizer: Any, row: dict) -> dict:
    """Token ids and labels with the prompt masked, as TRL prepares prompt/completion rows."""
    prompt = tokenizer.apply_chat_template(row["prompt"], add_generation_prompt=True)
    whole = tokenizer.apply_chat_template(row["prompt"] + row["completion"])
    prompt, whole = _ids(prompt), _ids(whole)[:MAX_LENGTH]
    return {"input_ids": whole, "labels": [-100] * len(prompt) + whole[len(prompt) :]}


def _ids(encoded: Any) -> list[int]:
    return list(encoded["input_ids"] if hasattr(encoded, "keys") else encoded)


def pack_best_fit(examples: list[dict], length: int) -> list[dict]:
    """Best-fit-decreasing packing into rows of `length`, with TRL's seq_lengths column."""
    from datasets import Dataset
    from trl.data_utils import pack_dataset

    data = Dataset.from_list(examples)
    return list(pack_dataset(data, seq_length=length, strategy="bfd"))


def check_compact_head(model: Any, batch: dict) -> dict[str, Any]:
    """Loss and gradients with every position scored, then only the labelled ones."""
    from trl.trainer import utils as trl_utils

    from ftui.translate import score_labelled_positions_only

    every_position = trl_utils._use_triton
    first = _loss_and_grads(model, batch)
    score_labelled_positions_only()
    second = _loss_and_grads(model, batch)
    trl_utils._use_triton = every_position
    differences = [(a - b).abs().max().item() for a, b in zip(first[1], second[1], strict=True)]
    return {
        "loss_every_position": first[0],
        "loss_labelled_only": second[0],
        "max_grad_difference": max(differences),
        "matches": abs(first[0] - second[0]) < 1e-6 and max(differences) < 1e-6,
    }


def _loss_and_grads(model: Any, batch: dict) -> tuple[float, list]:
    model.zero_grad()
    loss = model(**batch, fused_lm_head=True).loss
    loss.backward()
    grads = [p.grad.detach().clone() for p in model.parameters() if p.grad is not None]
    return loss.item(), grads


# ---------------------------------------------------------------- driver


def wait_for_quiet(max_wait: float) -> float:
    """Wait (up to max_wait seconds) until other processes use under 10% of the CPUs."""
    meter = CpuMeter()
    started = time.perf_counter()
    while time.perf_counter() - started < max_wait:
        before = meter.read()
        time.sleep(3)
        if meter.others_share(before, meter.read()) < QUIET:
            break
        time.sleep(7)
    return round(time.perf_counter() - started, 1)


def in_subprocess(args: list[str]) -> dict[str, Any]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1"}
    env["TOKENIZERS_PARALLELISM"] = "false"
    done = subprocess.run(
        [sys.executable, __file__, *args], cwd=ROOT, env=env, capture_output=True, text=True
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"{' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT ") :])


def summarise(runs: list[dict]) -> dict[str, Any]:
    rates: dict[str, list[float]] = {}
    for run in runs:
        rates.setdefault(run["variant"], []).append(
            run["tokens_per_second"] or run["tokens_per_second_all_steps"]
        )
    median = {variant: statistics.median(values) for variant, values in rates.items()}
    best_tuned = max(TUNED, key=median.__getitem__)
    hooks = statistics.median(run["callback_share"] for run in runs if run["variant"] == "ftui")
    ratios = {
        "vs_trl_defaults": median["ftui"] / median["trl_defaults"],
        "vs_trl_tuned": median["ftui"] / median[best_tuned],
        "callback_cost": hooks,
        "callback_cost_end_to_end": 1 - median["ftui"] / median["ftui_no_callback"],
    }
    met = {
        "vs_trl_defaults": ratios["vs_trl_defaults"] >= TARGETS["vs_trl_defaults"],
        "vs_trl_tuned": ratios["vs_trl_tuned"] >= TARGETS["vs_trl_tuned"],
        "callback_cost": ratios["callback_cost"] < TARGETS["callback_cost"],
    }
    return {
        "tokens_per_second": {v: round(r, 1) for v, r in median.items()},
        "tokens_per_second_runs": rates,
        "best_tuned": best_tuned,
        "ratios": {name: round(value, 4) for name, value in ratios.items()},
        "targets": TARGETS,
        "meets_targets": met,
    }


def machine() -> dict[str, Any]:
    import peft
    import torch
    import transformers
    import trl

    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    return {
        "cpu": f"{model}, {os.cpu_count()} cores, {platform.machine()}",
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "transformers": transformers.__version__,
        "trl": trl.__version__,
        "peft": peft.__version__,
    }


def print_table(summary: dict[str, Any], runs: list[dict]) -> None:
    print(f"\n{'variant':<18}{'tokens/s':>10}   runs (quiet steps / all steps)")
    for variant, rate in summary["tokens_per_second"].items():
        mine = [r for r in runs if r["variant"] == variant]
        detail = ", ".join(
            f"{r['tokens_per_second'] or r['tokens_per_second_all_steps']}"
            f" ({r['quiet_steps']}/{len(r['steps'])})"
            for r in mine
        )
        print(f"{variant:<18}{rate:>10.1f}   {detail}")
    ratios, met = summary["ratios"], summary["meets_targets"]
    print(
        f"\nftui / TRL defaults: {ratios['vs_trl_defaults']:.2f}x (target >= 1.3: "
        f"{met['vs_trl_defaults']})\nftui / TRL tuned ({summary['best_tuned']}): "
        f"{ratios['vs_trl_tuned']:.2f}x (target >= 0.95: {met['vs_trl_tuned']})\n"
        f"live-metrics callback: its hooks take {ratios['callback_cost']:.2%} of training time "
        f"(target < 2%: {met['callback_cost']}); ftui without it is "
        f"{ratios['callback_cost_end_to_end']:+.1%} faster end to end (noise included)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=64, help="rows trained on in each run")
    parser.add_argument("--rounds", type=int, default=2, help="times every variant runs")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--max-wait", type=float, default=300, help="seconds to wait for quiet")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--worker", help=argparse.SUPPRESS)  # one run, inside a subprocess
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        if args.worker == "check":
            result = check_padding_free(args.data)
        else:
            result = run_variant(args.worker, args.data)
        print("RESULT " + json.dumps(result))
        return

    variants = args.variants.split(",")
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "mixed.jsonl"
        write_mixed_rows(data, args.rows)
        print(f"{args.rows} rows of mixed lengths; correctness check first", flush=True)
        check = in_subprocess(["--worker", "check", "--data", str(data)])
        print(json.dumps(check, indent=2), flush=True)
        runs = []
        for round_index in range(args.rounds):
            shift = round_index % len(variants)
            for variant in variants[shift:] + variants[:shift]:
                waited = wait_for_quiet(args.max_wait)
                run = in_subprocess(["--worker", variant, "--data", str(data)])
                run.update(round=round_index + 1, waited_for_quiet_seconds=waited)
                runs.append(run)
                print(
                    f"round {round_index + 1} {variant}: {run['tokens_per_second']} tokens/s "
                    f"({run['quiet_steps']} quiet steps; all steps "
                    f"{run['tokens_per_second_all_steps']})",
                    flush=True,
                )
    summary = summarise(runs) if set(VARIANTS) <= set(variants) else {}
    result = {
        "benchmark": "train_throughput",
        "machine": machine(),
        "model": "SmolLM2-135M-Instruct (bundled)",
        "lora": "r16, alpha 32, dropout 0, all-linear",
        "batch_size": BATCH_SIZE,
        "rows": args.rows,
        "correctness": check,
        **summary,
        "runs": runs,
    }
    if summary:
        print_table(summary, runs)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"written to {args.out.relative_to(ROOT) if args.out.is_absolute() else args.out}")


if __name__ == "__main__":
    main()
