"""The forgetting check: does fine-tuning cost the model its general abilities?

Base (adapter off) and fine-tuned answer a few general questions and are measured on a short
general text that no preset trains on. A rising perplexity or lost answers show catastrophic
forgetting — the price of the task skill, which users should see next to the task scores.

    report = forgetting_check(compare)   # {"perplexity": {...}, "questions": [...], ...}
    report = forgetting_check_run(run)   # loads the run where ftui.runs.device_lease puts it
"""

from __future__ import annotations

import math
from typing import Any

from ftui.evaluate.compare import Comparison
from ftui.runs.rundir import RunDir

# Plain general-knowledge prose, written for ftui; no preset or sample dataset contains it.
GENERAL_TEXT = [
    "Water boils at one hundred degrees Celsius at sea level. At higher altitudes the air "
    "pressure is lower, so water boils at a lower temperature and food takes longer to cook.",
    "The Earth orbits the Sun once a year, and the Moon orbits the Earth about once a month. "
    "The tilt of the Earth's axis, not its distance from the Sun, is what causes the seasons.",
    "Plants take in carbon dioxide and release oxygen. They use the energy of sunlight to turn "
    "water and carbon dioxide into sugar, a process called photosynthesis.",
    "A library lends books, films and music to its members for free. Most public libraries "
    "also offer computers, quiet rooms for study and activities for children.",
    "The heart pumps blood through the body. Arteries carry blood away from the heart, and "
    "veins bring it back. An adult heart beats about seventy times a minute at rest.",
    "Bread is made from flour, water, salt and yeast. The yeast feeds on sugars in the dough "
    "and releases gas, which makes the bread rise before it is baked in a hot oven.",
    "Paris is the capital of France and its largest city. The river Seine flows through the "
    "middle of the city, and many of its famous museums stand on its banks.",
    "A triangle has three sides and three angles, and its angles always add up to one hundred "
    "and eighty degrees. A square has four equal sides and four right angles.",
]

# (question, words any of which a correct answer contains)
GENERAL_QUESTIONS = [
    ("What is the capital of France?", ("paris",)),
    ("What is 2 + 3? Answer with the number.", ("5", "five")),
    ("What colour is a clear daytime sky?", ("blue",)),
    ("Which planet do we live on?", ("earth",)),
    ("What gas do plants release during photosynthesis?", ("oxygen",)),
    ("How many sides does a triangle have?", ("3", "three")),
]
VARIANTS = ("base", "fine_tuned")


def forgetting_check(compare: Comparison, max_new_tokens: int = 24) -> dict[str, Any]:
    report: dict[str, Any] = {"perplexity": {}, "correct": {}, "questions": []}
    chats = [[{"role": "user", "content": question}] for question, _ in GENERAL_QUESTIONS]
    answers = {v: compare.generate(chats, v, max_new_tokens) for v in VARIANTS}
    for index, (question, accepted) in enumerate(GENERAL_QUESTIONS):
        row = {"question": question}
        for variant in VARIANTS:
            text = answers[variant][index].text
            row[variant] = text
            row[f"{variant}_correct"] = any(word in text.lower() for word in accepted)
        report["questions"].append(row)
    for variant in VARIANTS:
        report["perplexity"][variant] = text_perplexity(compare, variant)
        report["correct"][variant] = sum(r[f"{variant}_correct"] for r in report["questions"])
    report["total"] = len(GENERAL_QUESTIONS)
    return report


def forgetting_check_run(run: RunDir, max_new_tokens: int = 24) -> dict[str, Any]:
    """The check on a run loaded for it alone (the CLI's path), on the device the lease policy
    picks; the report's `device_note` says when a GPU run made it use the CPU."""
    from ftui.runs.device_lease import place_work, workspace_of

    preference = run.read_config().model.device
    with place_work(workspace_of(run.path), preference, f"forgetting {run.run_id}") as placement:
        compare = Comparison.load(run, device=placement.device)
        try:
            report = forgetting_check(compare, max_new_tokens)
        finally:
            compare.close()  # free the device before the lease goes back
    report["device"], report["device_note"] = placement.device, placement.note
    return report


def text_perplexity(compare: Comparison, variant: str, texts: list[str] = GENERAL_TEXT) -> float:
    """exp(mean token negative log-likelihood) of plain texts (no chat template)."""
    import torch

    total_loss, total_tokens = 0.0, 0
    with torch.inference_mode(), compare.variant_model(variant) as model:
        for text in texts:
            ids = compare.tokenizer(text, return_tensors="pt")["input_ids"].to(compare.device)
            loss = model(input_ids=ids, labels=ids).loss
            tokens = ids.shape[1] - 1
            total_loss += float(loss) * tokens
            total_tokens += tokens
    return math.exp(total_loss / total_tokens)
