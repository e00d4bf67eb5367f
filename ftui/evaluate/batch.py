"""Batch evaluation of a run: base, few-shot and fine-tuned on its validation split.

    report = evaluate_run(run, limit=50)    # also written to runs/<id>/eval.json

Every variant answers every validation prompt greedily with the same settings; answers are
scored against the reference with the task's metrics (ftui.evaluate.metrics) and each
variant's perplexity of the reference answers is measured. Both come from one batched pass
over each prompt, with the prompts' shared start (system prompt, instruction, few-shot
examples) computed once (ftui.evaluate.decoding); models that cannot share a KV cache that
way fall back to transformers' generate and one forward per row. The report keeps every example
side by side, plus the best and worst cases of the fine-tuned model. The models load where
ftui.runs.device_lease's policy puts them (a GPU lease, or the CPU while a run trains on the GPU:
the report's `device_note` says so).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from typing import Any

from ftui.evaluate.compare import VARIANTS, Answer, Comparison, Messages
from ftui.evaluate.metrics import METRICS, PRIMARY, mean_scores, score_answer, task_kind
from ftui.runs.rundir import RunDir

BATCH = 8
SHOWN_CASES = 3
Progress = Callable[[float, str], None]


def evaluate_run(
    run: RunDir, limit: int | None = None, progress: Progress | None = None
) -> dict[str, Any]:
    """Score every variant on the validation split; the device is leased for the duration."""
    from ftui.runs.device_lease import place_work, workspace_of

    progress = progress or (lambda fraction, text: None)
    preference = run.read_config().model.device
    with place_work(workspace_of(run.path), preference, f"evaluate {run.run_id}") as placement:
        compare = Comparison.load(run, device=placement.device)
        try:
            report = _evaluate(run, compare, limit, progress)
        finally:
            compare.close()  # free the device before the lease goes back
    report["device"], report["device_note"] = placement.device, placement.note
    (run.path / "eval.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
    progress(1.0, "done")
    return report


def _evaluate(
    run: RunDir, compare: Comparison, limit: int | None, progress: Progress
) -> dict[str, Any]:
    rows = validation_rows(compare, limit or compare.config.eval.limit)
    references = [row["completion"][-1]["content"] for row in rows]
    kind = task_kind(references)
    started = time.perf_counter()
    examples = [
        {"prompt": _question(row["prompt"]), "reference": ref}
        for row, ref in zip(rows, references, strict=True)
    ]
    summary = {}
    for number, variant in enumerate(VARIANTS):

        def step(done: int, variant: str = variant, number: int = number) -> None:
            progress((number + done / len(rows)) / len(VARIANTS), f"{variant}: {done}/{len(rows)}")

        answers, variant_perplexity = answers_and_perplexity(compare, rows, variant, step)
        pairs = zip(answers, references, strict=True)
        scores = [score_answer(answer.text, ref, kind) for answer, ref in pairs]
        for example, answer, score in zip(examples, answers, scores, strict=True):
            example[variant] = answer.text
            example[f"{variant}_scores"] = score
        summary[variant] = {
            **mean_scores(scores),
            "perplexity": variant_perplexity,
            "tokens_per_second": sum(a.new_tokens for a in answers)
            / max(sum(a.seconds for a in answers), 1e-9),
        }
    return _report(run, kind, summary, examples, time.perf_counter() - started)


def validation_rows(compare: Comparison, limit: int) -> list[dict[str, Messages]]:
    from ftui.data.training_data import load_training_rows

    _, validation = load_training_rows(compare.config.data, compare.config.method.objective)
    if not validation or "completion" not in validation[0]:
        raise ValueError("this run has no validation prompts with reference answers to score")
    return validation[:limit]


def answers_and_perplexity(
    compare: Comparison, rows: list[dict[str, Messages]], variant: str, step: Callable[[int], None]
) -> tuple[list[Answer], float]:
    """A variant's greedy answers to the rows' prompts and its perplexity of their reference
    answers. Where the model allows, both come from one pass over each prompt on a shared KV
    cache (ftui.evaluate.decoding); otherwise from generate and one forward per row."""
    chats = [compare.chat(row["prompt"], variant) for row in rows]
    prompts = [compare.prompt_ids(chat) for chat in chats]
    pairs = zip(chats, rows, strict=True)
    fulls = [compare.prompt_ids(chat + row["completion"], False) for chat, row in pairs]
    continues = all(full[: len(p)] == p for full, p in zip(fulls, prompts, strict=True))
    if not (continues and compare.shares_cache(variant)):
        return _answers(compare, rows, variant, step), perplexity(compare, rows, variant)
    references = [full[len(p) :] for full, p in zip(fulls, prompts, strict=True)]
    max_new_tokens = compare.config.eval.max_new_tokens
    results = compare.answer_rows(prompts, variant, max_new_tokens, references, step)
    nll = sum(result.reference_nll for result in results)
    scored = sum(result.reference_tokens for result in results)
    answers = [compare.answer(result) for result in results]
    return answers, math.exp(nll / scored) if scored else float("nan")


def _answers(compare: Comparison, rows: list, variant: str, step: Callable[[int], None]) -> list:
    answers = []
    for start in range(0, len(rows), BATCH):
        chats = [compare.chat(row["prompt"], variant) for row in rows[start : start + BATCH]]
        answers += compare.generate(chats, variant, compare.config.eval.max_new_tokens)
        step(len(answers))
    return answers


def perplexity(compare: Comparison, rows: list[dict[str, Messages]], variant: str) -> float:
    """exp(mean negative log-likelihood) of the reference answers' tokens under a variant."""
    import torch

    total_loss, total_tokens = 0.0, 0
    with torch.inference_mode(), compare.variant_model(variant) as model:
        for row in rows:
            chat = compare.chat(row["prompt"], variant)
            prompt_ids = _template_ids(compare, chat, generation_prompt=True)
            full_ids = _template_ids(compare, chat + row["completion"], generation_prompt=False)
            labels = full_ids.clone()
            labels[:, : prompt_ids.shape[1]] = -100
            answer_tokens = int((labels[:, 1:] != -100).sum())
            if answer_tokens == 0:
                continue
            loss = model(input_ids=full_ids.to(compare.device), labels=labels.to(compare.device))
            total_loss += float(loss.loss) * answer_tokens
            total_tokens += answer_tokens
    return math.exp(total_loss / total_tokens) if total_tokens else float("nan")


def _template_ids(compare: Comparison, chat: Messages, generation_prompt: bool) -> Any:
    return compare.tokenizer.apply_chat_template(
        chat, add_generation_prompt=generation_prompt, return_tensors="pt", return_dict=True
    )["input_ids"]


def _question(prompt: Messages) -> str:
    return next((m["content"] for m in reversed(prompt) if m["role"] == "user"), "")


def _report(run: RunDir, kind: str, summary: dict, examples: list, seconds: float) -> dict:
    primary = PRIMARY[kind]
    ranked = sorted(
        range(len(examples)),
        key=lambda i: (examples[i]["fine_tuned_scores"][primary], -i),
        reverse=True,
    )
    return {
        "run": run.run_id,
        "kind": kind,
        "metrics": list(METRICS[kind]) + ["perplexity"],
        "primary": primary,
        "examples_scored": len(examples),
        "seconds": seconds,
        "summary": summary,
        "best": ranked[:SHOWN_CASES],
        "worst": ranked[::-1][:SHOWN_CASES],
        "examples": examples,
    }
