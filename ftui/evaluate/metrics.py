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
    rouge_l         ROUGE-L F-measure (rouge-score's tokens and stemmer, a bit-parallel LCS)

    kind = task_kind(references)
    rows = [score_answer(answer, reference, kind) for ...]
    summary = mean_scores(rows)          # {"exact_match": 0.83, ...}

Every metric runs in time linear in its inputs (validation rows come from users): no regex
that can backtrack, at most MAX_OBJECT_STARTS parse attempts per answer, and ROUGE-L's
longest common subsequence computed on bit masks over the first MAX_ROUGE_CHARS characters of
each side (the stemmer alone takes about a second per 100,000 words).
"""

from __future__ import annotations

import json
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
FENCE = "```"
MAX_OBJECT_STARTS = 100  # '{' positions tried per answer; real answers need one or two
MAX_ROUGE_CHARS = 50_000  # characters a side for ROUGE-L; answers are a few hundred words


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
        return json.loads(strip_fences(text))
    except (ValueError, TypeError, RecursionError):  # also 5000-digit numbers, [[[[...
        return None


def strip_fences(text: str) -> str:
    """Text without a leading ```/```json fence and a trailing ``` (string operations only:
    the regex this replaces backtracked quadratically on long runs of spaces)."""
    text = text.strip()
    if text.startswith(FENCE):
        text = text[len(FENCE) :]
        text = text[len("json") :] if text.startswith("json") else text
        text = text.lstrip()
    if text.endswith(FENCE):
        text = text[: -len(FENCE)].rstrip()
    return text


def first_json_object(text: str) -> dict | None:
    """The first JSON object anywhere in the text (answers often wrap it in words), looked for
    at the first MAX_OBJECT_STARTS '{' only, so a reply made of braces costs linear time."""
    whole = _strict_object(text)
    if isinstance(whole, dict):
        return whole
    decoder = json.JSONDecoder()
    start = text.find("{")
    for _ in range(MAX_OBJECT_STARTS):
        if start < 0:
            break
        try:
            value, _ = decoder.raw_decode(text, start)
        except (ValueError, RecursionError):
            value = None
        if isinstance(value, dict):
            return value
        start = text.find("{", start + 1)
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
    """ROUGE-L F-measure with rouge-score's tokenizer and Porter stemmer (the same numbers as
    its RougeScorer, whose LCS table takes quadratic time and memory)."""
    predicted, expected = _rouge_tokens(answer), _rouge_tokens(reference)
    if not predicted or not expected:
        return 0.0
    common = lcs_length(expected, predicted)
    if common == 0:
        return 0.0
    precision, recall = common / len(predicted), common / len(expected)
    return 2 * precision * recall / (precision + recall)


def lcs_length(first: list[str], second: list[str]) -> int:
    """Length of the longest common subsequence, bit-parallel (Hyyrö 2004): one pass over
    `second` with a bit mask as wide as `first`, so len(second) big-integer steps."""
    positions: dict[str, list[int]] = {}
    for index, token in enumerate(first):
        positions.setdefault(token, []).append(index)
    masks = {token: sum(1 << i for i in where) for token, where in positions.items()}
    full = (1 << len(first)) - 1
    row = full
    for token in second:
        matched = row & masks.get(token, 0)
        row = ((row + matched) | (row - matched)) & full
    return len(first) - row.bit_count()


def _rouge_tokens(text: str) -> list[str]:
    """rouge-score's tokens (lower case, alphanumeric words, Porter stems) of the text's start."""
    from rouge_score.tokenize import tokenize

    return tokenize(text[:MAX_ROUGE_CHARS], _remembering_stemmer())


@lru_cache(maxsize=1)
def _remembering_stemmer() -> Any:
    """The Porter stemmer rouge-score uses, remembering its answer per word."""
    from nltk.stem import porter

    class RememberingStemmer(porter.PorterStemmer):
        stem = lru_cache(maxsize=65536)(porter.PorterStemmer.stem)

    return RememberingStemmer()
