"""Task metrics on hand-written answers: structured (JSON) and free text."""

from __future__ import annotations

import random
import time

import pytest

from ftui.evaluate.metrics import (
    MAX_OBJECT_STARTS,
    METRICS,
    first_json_object,
    lcs_length,
    mean_scores,
    rouge_l,
    score_answer,
    strip_fences,
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


PATHOLOGICAL = {  # validation rows shaped to make a backtracking regex or an O(n*m) loop hang
    "fence then spaces": "```" + " " * 200_000 + "x",
    "spaces then no fence": " " * 200_000 + "x`",
    "tabs and newlines": "```json" + "\t\n " * 70_000 + "}",
    "many braces": "{" * 200_000,
    "unclosed nested objects": '{"a": ' * 50_000,
    "deep arrays": "[" * 200_000,
    "backticks": "`" * 200_000,
    "a 200,000-digit number": "1" * 200_000,
    "100,000 words": "word " * 100_000,
    "100,000 different words": " ".join(f"w{i}x" for i in range(100_000)),
}


@pytest.mark.parametrize("text", PATHOLOGICAL.values(), ids=PATHOLOGICAL.keys())
@pytest.mark.parametrize("kind", ["json", "text"])
def test_pathological_rows_score_in_under_a_second(text, kind):
    started = time.perf_counter()
    as_answer = score_answer(text, REFERENCE, kind)
    as_reference = score_answer("billing", text, kind)
    task_kind([text, REFERENCE])
    assert time.perf_counter() - started < 1.0
    assert set(as_answer) == set(METRICS[kind]) == set(as_reference)
    assert all(0.0 <= value <= 1.0 for value in (*as_answer.values(), *as_reference.values()))


def test_fences_are_stripped_as_the_old_regex_did():
    assert strip_fences('```json\n {"a": 1} \n```') == '{"a": 1}'
    assert strip_fences("```") == "" and strip_fences("``````") == ""
    assert strip_fences("````") == "`" and strip_fences("plain ```") == "plain"
    assert strip_fences("```jsonx```") == "x"


def test_an_object_after_many_stray_braces_is_still_found_within_the_limit():
    assert first_json_object("{ " * 50 + '{"a": 1}') == {"a": 1}
    assert first_json_object("{ " * (MAX_OBJECT_STARTS + 1) + '{"a": 1}') is None
    assert first_json_object('{"a": {"b": 2}') == {"b": 2}  # the outer one is unclosed


def test_rouge_l_equals_rouge_score_on_ordinary_text():
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    words = [
        "the",
        "cat",
        "sat",
        "on",
        "mats",
        "running",
        "runs",
        "ran",
        "a",
        "dog",
        "happily",
        "generalization",
    ]
    generator = random.Random(7)
    for _ in range(500):
        answer = " ".join(generator.choices(words, k=generator.randint(0, 25)))
        reference = " ".join(generator.choices(words, k=generator.randint(0, 25)))
        expected = scorer.score(reference, answer)["rougeL"].fmeasure
        assert rouge_l(answer, reference) == pytest.approx(expected, abs=1e-12)


def test_lcs_length_on_known_pairs():
    assert lcs_length(list("ABCBDAB"), list("BDCABA")) == 4
    assert lcs_length(list("abc"), list("xyz")) == 0 and lcs_length([], list("ab")) == 0
    assert lcs_length(["w"] * 3000, ["w"] * 2000) == 2000
