"""Task metrics: how close a generated answer is to the reference answer.

Structured tasks (most references are JSON objects, like the triage preset's
{"category": ..., "priority": ...}) are scored by
    exact_match     the answer's JSON object equals the reference's (values compared as text,
                    case- and space-insensitive)
    json_valid      the whole answer is one JSON object (code fences allowed)
    field_accuracy  share of the reference's fields the answer got right
Free-text tasks by
    exact_match     equal after normalising case, punctuation and spaces
    token_f1        SQuAD-style token overlap F1
    rouge_l         ROUGE-L F-measure (Google's rouge-score package)

    kind = task_kind(references)
    rows = [score_answer(answer, reference, kind) for ...]
    summary = mean_scores(rows)          # {"exact_match": 0.83, ...}
"""

from __future__ import annotations

import json
import re
import string
from collections import Counter
from functools import lru_cache
from typing import Any

JSON_SHARE = 0.8  # references that must be JSON objects for a task to count as structured
METRICS = {
    "json": ("exact_match", "json_valid", "field_accuracy"),
    "text": ("exact_match", "token_f1", "rouge_l"),
}
PRIMARY = {"json": "exact_match", "text": "rouge_l"}
FENCE = re.compile(r"^```(?:json)?\s*|\s*```$")


def task_kind(references: list[str]) -> str:
    """'json' when most references are JSON objects, else 'text'."""
    if not references:
        return "text"
    objects = sum(isinstance(_strict_object(ref), dict) for ref in references)
    return "json" if objects >= JSON_SHARE * len(references) else "text"


def score_answer(answer: str, reference: str, kind: str) -> dict[str, float]:
    if kind == "json":
        return _json_scores(answer, reference)
    return {
        "exact_match": float(_normalise(answer) == _normalise(reference)),
        "token_f1": token_f1(answer, reference),
        "rouge_l": rouge_l(answer, reference),
    }


def mean_scores(rows: list[dict[str, float]]) -> dict[str, float]:
    if not rows:
        return {}
    return {key: sum(row[key] for row in rows) / len(rows) for key in rows[0]}


# ---------------------------------------------------------------- structured


def _json_scores(answer: str, reference: str) -> dict[str, float]:
    expected = _strict_object(reference)
    if not isinstance(expected, dict):
        expected = {}
    found = first_json_object(answer)
    fields = [_same(found.get(key), value) for key, value in expected.items()] if found else []
    return {
        "exact_match": float(found is not None and found.keys() == expected.keys() and all(fields)),
        "json_valid": float(isinstance(_strict_object(answer), dict)),
        "field_accuracy": sum(fields) / len(expected) if expected else 0.0,
    }


def _strict_object(text: str) -> Any:
    try:
        return json.loads(FENCE.sub("", text.strip()))
    except (json.JSONDecodeError, TypeError):
        return None


def first_json_object(text: str) -> dict | None:
    """The first JSON object anywhere in the text (answers often wrap it in words)."""
    whole = _strict_object(text)
    if isinstance(whole, dict):
        return whole
    decoder = json.JSONDecoder()
    for match in re.finditer(r"\{", text):
        try:
            value, _ = decoder.raw_decode(text, match.start())
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict):
            return value
    return None


def _same(found: Any, expected: Any) -> bool:
    return _normalise(str(found)) == _normalise(str(expected)) if found is not None else False


# ---------------------------------------------------------------- free text


def _normalise(text: str) -> str:
    text = text.lower().translate(str.maketrans("", "", string.punctuation))
    return " ".join(text.split())


def token_f1(answer: str, reference: str) -> float:
    predicted, expected = _normalise(answer).split(), _normalise(reference).split()
    if not predicted or not expected:
        return float(predicted == expected)
    common = sum((Counter(predicted) & Counter(expected)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(predicted), common / len(expected)
    return 2 * precision * recall / (precision + recall)


def rouge_l(answer: str, reference: str) -> float:
    return _rouge_scorer().score(reference, answer)["rougeL"].fmeasure


@lru_cache(maxsize=1)
def _rouge_scorer() -> Any:
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
