"""Rendering examples through the bundled model's chat template with trained tokens marked."""

from __future__ import annotations

import pytest

from ftui.data.tokens import (
    highlighted_tokens,
    length_histogram,
    length_summary,
    render_text_and_spans,
    token_lengths,
)

CHAT = {
    "messages": [
        {"role": "system", "content": "You triage tickets."},
        {"role": "user", "content": "My card was charged twice!"},
        {"role": "assistant", "content": '{"category": "billing", "priority": "high"}'},
    ]
}


def trained_text(segments):
    return "".join(text for text, label in segments if label == "trained")


def test_only_the_assistant_answer_and_its_end_token_are_trained(tokenizer):
    segments = highlighted_tokens(tokenizer, CHAT)
    trained = trained_text(segments)
    assert trained.startswith('{"category": "billing", "priority": "high"}')
    assert "<|im_end|>" in trained
    assert "charged twice" not in trained and "You triage" not in trained
    full = "".join(text for text, _ in segments)
    assert full == render_text_and_spans(tokenizer, CHAT)[0]


def test_every_assistant_turn_is_trained_in_multi_turn_chat(tokenizer):
    chat = {
        "messages": [
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello there"},
            {"role": "user", "content": "Bye"},
            {"role": "assistant", "content": "Goodbye now"},
        ]
    }
    trained = trained_text(highlighted_tokens(tokenizer, chat))
    assert "Hello there" in trained and "Goodbye now" in trained and "Bye<" not in trained


def test_raw_text_is_trained_everywhere(tokenizer):
    segments = highlighted_tokens(tokenizer, {"text": "The pump runs at 40 bar."})
    assert segments == [("The pump runs at 40 bar.", "trained")]


def test_preference_pairs_show_the_chosen_answer_trained(tokenizer):
    pair = {
        "prompt": [{"role": "user", "content": "Help?"}],
        "chosen": [{"role": "assistant", "content": "Sure, here is how."}],
        "rejected": [{"role": "assistant", "content": "No."}],
    }
    trained = trained_text(highlighted_tokens(tokenizer, pair))
    assert "Sure, here is how." in trained and "Help?" not in trained


def test_truncation_is_shown_at_max_length(tokenizer):
    segments = highlighted_tokens(tokenizer, {"text": "word " * 50}, max_length=10)
    assert segments[-1][1] == "cut" and "tokens cut" in segments[-1][0]
    kept = "".join(text for text, label in segments if label != "cut")
    assert len(tokenizer(kept, add_special_tokens=False)["input_ids"]) == 10


def test_lengths_summary_and_histogram(tokenizer):
    examples = [{"text": "a " * n} for n in (5, 10, 200)]
    lengths = token_lengths(tokenizer, examples)
    assert lengths[0] < lengths[1] < lengths[2]
    summary = length_summary(lengths, max_length=50)
    assert summary["truncated"] == 1 and summary["max"] == lengths[2]
    histogram = length_histogram(lengths, max_length=50)
    assert histogram["rows"].sum() == 3
    assert set(histogram["fits"]) == {"fits", "truncated"}


@pytest.mark.parametrize("lengths", [[], [1]])
def test_histogram_edge_cases(lengths):
    assert length_histogram(lengths, 8)["rows"].sum() == len(lengths)
