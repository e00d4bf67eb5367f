"""Evaluation and Playground speed: today's code against a baseline commit, side by side.

Run: `.venv/bin/python benchmarks/eval_speed.py --run WORKSPACE/runs/<id>` (a triage run), or
`--train` to train presets/triage-lora.yaml first (about 5 minutes on 2 cores). Options:
`--limit 60` validation rows, `--prompts 4` Playground questions, `--compare-rounds 4` Compare
children per side (alternating: after, before, before, after, ...), `--baseline REF` the commit
whose code is "before" (default: the last commit before the faster evaluation), `--threads N`
torch threads in both children (default: torch's own choice).

Both sides run the same way, one after the other in fresh child processes on this machine:
`ftui eval`'s function (ftui.evaluate.batch.evaluate_run, model loading included) on a copy
of the run, then the Playground's Compare (base, few-shot and fine-tuned answers to one
question, greedy, eval.max_new_tokens) for a few validation questions, as that code's
Playground streams them: one column after the other before, together after. The baseline's
`ftui` package is `git archive REF ftui`, put first on PYTHONPATH. The answers of the two sides
are compared text for text. Results go to benchmarks/results/eval_speed.json.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "eval_speed.json"
BASELINE = "0ff04e5"  # the last commit before batched, prefix-cached evaluation
VARIANTS = ("base", "few_shot", "fine_tuned")


# ---------------------------------------------------------------- children (one side each)


def child_eval(run: Path, limit: int) -> dict:
    """`ftui eval RUN --limit N` as the CLI runs it, timed from before the model loads."""
    from ftui.evaluate.batch import evaluate_run
    from ftui.runs.rundir import RunDir

    started = time.perf_counter()
    report = evaluate_run(RunDir(run), limit=limit)
    return {
        "seconds": time.perf_counter() - started,
        "scoring_seconds": report["seconds"],
        "summary": report["summary"],
        "answers": {v: [example[v] for example in report["examples"]] for v in VARIANTS},
    }


def child_compare(run: Path, prompts: int) -> dict:
    """The Playground's Compare on the first `prompts` validation questions."""
    from ftui.evaluate.batch import validation_rows
    from ftui.evaluate.compare import Comparison, prompt_from_text
    from ftui.runs.rundir import RunDir

    compare = Comparison.load(RunDir(run), device="cpu")
    tokens = compare.config.eval.max_new_tokens
    together = importlib.util.find_spec("ftui.evaluate.side_by_side") is not None
    questions = []
    for row in validation_rows(compare, prompts):
        text = next(m["content"] for m in reversed(row["prompt"]) if m["role"] == "user")
        chats = {v: compare.chat(prompt_from_text(compare.config, text), v) for v in VARIANTS}
        started = time.perf_counter()
        finished = (_together if together else _one_after_another)(compare, chats, tokens)
        seconds = time.perf_counter() - started
        questions.append({
            "seconds": seconds,
            "tokens": {v: answer.new_tokens for v, (answer, _) in finished.items()},
            "shown_tokens_per_second": {
                v: answer.tokens_per_second for v, (answer, _) in finished.items()
            },
            "seconds_from_click": {v: at - started for v, (_, at) in finished.items()},
            "answers": {v: answer.text for v, (answer, _) in finished.items()},
        })  # fmt: skip
    return {"streamed": "together" if together else "one after another", "questions": questions}


def _one_after_another(compare, chats: dict, tokens: int) -> dict:
    """What the Playground did before: Comparison.stream for each column in turn."""
    finished = {}
    for variant, chat in chats.items():
        answers = list(compare.stream(chat, variant, tokens))
        finished[variant] = (answers[-1], time.perf_counter())
    return finished


def _together(compare, chats: dict, tokens: int) -> dict:
    from ftui.evaluate.side_by_side import stream_variants

    finished = {}
    for answers, done in stream_variants(compare, chats, tokens):
        for variant in done - finished.keys():
            finished[variant] = (answers[variant], time.perf_counter())
    for variant in chats.keys() - finished.keys():
        finished[variant] = (answers[variant], time.perf_counter())
    return {variant: finished[variant] for variant in chats}


def run_child(args: argparse.Namespace) -> None:
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    if args.child == "eval":
        result = child_eval(Path(args.run), args.limit)
    else:
        result = child_compare(Path(args.run), args.prompts)
    Path(args.out).write_text(json.dumps(result), encoding="utf-8")


# ---------------------------------------------------------------- parent


def side(code: Path, kind: str, run: Path, args: argparse.Namespace, scratch: Path) -> dict:
    """One child process on `code`'s ftui package; returns what it wrote."""
    out = scratch / f"{code.name}-{kind}.json"
    command = [
        sys.executable, __file__, "--child", kind, "--run", str(run), "--out", str(out),
        "--limit", str(args.limit), "--prompts", str(args.prompts),
    ]  # fmt: skip
    if args.threads:
        command += ["--threads", str(args.threads)]
    env = {**os.environ, "PYTHONPATH": str(code), "HF_HUB_OFFLINE": "1"}
    env["HF_HUB_DISABLE_TELEMETRY"] = "1"
    started = time.perf_counter()
    subprocess.run(command, cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
    print(f"{code.name} {kind}: {time.perf_counter() - started:.0f} s", flush=True)
    return json.loads(out.read_text(encoding="utf-8"))


def copy_run(run: Path, scratch: Path, name: str) -> Path:
    """The run in a workspace of its own (evaluate_run writes eval.json and takes a lease)."""
    target = scratch / name / "runs" / run.name
    shutil.copytree(run, target, ignore=shutil.ignore_patterns("checkpoints", "eval.json"))
    return target


def baseline_code(ref: str, scratch: Path) -> Path:
    folder = scratch / "before"
    folder.mkdir()
    archive = subprocess.run(
        ["git", "archive", ref, "ftui"], cwd=ROOT, check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return folder


def train_flagship(scratch: Path) -> Path:
    workspace = scratch / "trained"
    command = [sys.executable, "-m", "ftui", "train", "presets/triage-lora.yaml", "--wait",
               "--workspace", str(workspace)]  # fmt: skip
    run_id = subprocess.run(
        command, cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout.split()[0]
    return workspace / "runs" / run_id


def compare_sides(before: dict, after: dict) -> dict:
    """Speed-ups and how many answers are word for word the same."""
    old, new = before["eval"]["answers"], after["eval"]["answers"]
    same = {v: sum(a == b for a, b in zip(old[v], new[v], strict=True)) for v in VARIANTS}
    questions = zip(before["compare"]["questions"], after["compare"]["questions"], strict=True)
    same_compare = sum(a["answers"] == b["answers"] for a, b in questions)  # same order both
    return {
        "eval_speedup": before["eval"]["seconds"] / after["eval"]["seconds"],
        "eval_scoring_speedup": before["eval"]["scoring_seconds"]
        / after["eval"]["scoring_seconds"],
        "compare_tokens_per_second_speedup": compare_rate(after) / compare_rate(before),
        "identical_eval_answers": same,
        "identical_compare_questions": same_compare,
    }


def compare_rate(result: dict) -> float:
    """Tokens the three columns produced per second until the last one finished."""
    questions = result["compare"]["questions"]
    tokens = sum(sum(q["tokens"].values()) for q in questions)
    return tokens / sum(q["seconds"] for q in questions)


def summarize(result: dict) -> dict:
    """What a reader needs of one side: seconds, scores, rates (not every answer)."""
    questions = result["compare"]["questions"]
    per_column = {
        v: sum(q["tokens"][v] for q in questions)
        / sum(q["seconds_from_click"][v] for q in questions)
        for v in VARIANTS
    }
    return {
        "eval_seconds": result["eval"]["seconds"],
        "eval_scoring_seconds": result["eval"]["scoring_seconds"],
        "scores": result["eval"]["summary"],
        "compare_streamed": result["compare"]["streamed"],
        "compare_seconds": [q["seconds"] for q in questions],
        "compare_tokens_per_second": compare_rate(result),
        "column_tokens_per_second_from_click": per_column,
        "column_tokens_per_second_shown": [q["shown_tokens_per_second"] for q in questions],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", help="a triage run folder (WORKSPACE/runs/<id>)")
    parser.add_argument("--train", action="store_true", help="train the flagship preset first")
    parser.add_argument("--limit", type=int, default=60)
    parser.add_argument("--prompts", type=int, default=4)
    parser.add_argument("--baseline", default=BASELINE)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument(
        "--compare-rounds", type=int, default=4,
        help="Compare children per side, alternating (a Compare takes seconds, and this "
        "machine's speed drifts by 15%% over minutes)",
    )  # fmt: skip
    parser.add_argument("--child", choices=("eval", "compare"), help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return run_child(args)
    if not (args.run or args.train):
        parser.error("give --run RUN_FOLDER or --train")
    with tempfile.TemporaryDirectory() as folder:
        scratch = Path(folder)
        run = train_flagship(scratch) if args.train else Path(args.run).resolve()
        before, after = baseline_code(args.baseline, scratch), ROOT
        load_before = os.getloadavg()
        results = {"before": {}, "after": {}}
        # ABBA order, so a change in the machine's load weighs on both sides alike; the
        # Compare children are short, so several run per side (ABBA again, repeated)
        pairs = [["after", "before"], ["before", "after"]]
        compares = [name for i in range(args.compare_rounds) for name in pairs[i % 2]]
        order = [("before", "eval"), ("after", "eval")] + [(n, "compare") for n in compares]
        for number, (name, kind) in enumerate(order):
            code = before if name == "before" else after
            copy = copy_run(run, scratch, f"{name}-{kind}-{number}")
            result = side(code, kind, copy, args, scratch)
            if kind == "compare" and kind in results[name]:
                results[name][kind]["questions"] += result["questions"]
            else:
                results[name][kind] = result
        record = report(args, run, results, load_before)
    RESULTS.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(record["comparison"], indent=2))


def report(args: argparse.Namespace, run: Path, results: dict, load_before: tuple) -> dict:
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    return {
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(),
            "torch_threads": args.threads or "torch default",
            "load_average_before": load_before,
            "load_average_after": os.getloadavg(),
        },
        "before": f"git archive {args.baseline}",
        "after": f"working tree at {commit}",
        "run": run.name,
        "validation_rows": args.limit,
        "compare_questions": args.prompts,
        "comparison": compare_sides(results["before"], results["after"]),
        "summary": {name: summarize(result) for name, result in results.items()},
    }


if __name__ == "__main__":
    main()
