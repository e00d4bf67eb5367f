"""Task metrics on hand-written answers: structured (JSON) and free text."""

from __future__ import annotations

import pytest

from ftui.evaluate.metrics import (
    first_json_object,
    mean_scores,
    rouge_l,
    score_answer,
    task_kind,
    token_f1,
)

REFERENCE = '{"category": "billing", "priority": "high"}'


def test_task_kind_follows_the_references():
    assert task_kind([REFERENCE] * 9 + ["free words"]) == "json"
    assert task_kind([REFERENCE] * 7 + ["free words"] * 3) == "text"
    assert task_kind(["The manual says so."]) == "text" and task_kind([]) == "text"


@pytest.mark.parametrize(
    "answer, exact, valid, fields",
    [
        ('{"category": "billing", "priority": "high"}', 1, 1, 1.0),
        ('```json\n{"priority": "HIGH", "category": "Billing"}\n```', 1, 1, 1.0),
        ('Sure! {"category": "billing", "priority": "low"} Hope that helps.', 0, 0, 0.5),
        ('{"category": "billing", "priority": "high", "extra": 1}', 0, 1, 1.0),
        ("This ticket is about billing and is urgent.", 0, 0, 0.0),
        ('{"category": "billing", "priority": ', 0, 0, 0.0),
    ],
)
def test_structured_answers(answer, exact, valid, fields):
    scores = score_answer(answer, REFERENCE, "json")
    assert scores == {"exact_match": exact, "json_valid": valid, "field_accuracy": fields}


def test_first_json_object_skips_braces_that_are_not_json():
    assert first_json_object('use {curly} then {"a": 1}') == {"a": 1}
    assert first_json_object("no object [1, 2]") is None


def test_free_text_scores():
    assert token_f1("The cat sat.", "the cat sat") == 1.0
    assert token_f1("a dog", "the cat") == 0.0
    assert 0.5 < token_f1("the cat sat on the mat", "the cat is on the mat") < 1.0
    assert rouge_l("the cat sat on the mat", "the cat is on the mat") == pytest.approx(5 / 6)
    scores = score_answer("Reset the router.", "reset the router", "text")
    assert scores["exact_match"] == 1.0 and scores["rouge_l"] == 1.0


def test_mean_scores():
    rows = [{"exact_match": 1.0, "f": 0.5}, {"exact_match": 0.0, "f": 1.0}]
    assert mean_scores(rows) == {"exact_match": 0.5, "f": 0.75} and mean_scores([]) == {}
