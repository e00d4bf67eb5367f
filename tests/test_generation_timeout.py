"""Streamed generation never hangs its handler: a failing model ends the stream at once with
its error, and a stalled one ends it after FTUI_GENERATION_TIMEOUT_SECONDS and is told to stop.

A real tiny Llama (the `tiny_model_dir` fixture) generates through the real
TextIteratorStreamer; the failure and the stall come from logits processors passed to
`generate` with the decoding settings, exactly where a broken model or a hung device would
stop the generation thread.
"""

from __future__ import annotations

import time

import pytest

from ftui.config import FtuiConfig
from ftui.evaluate.compare import Comparison, GenerationError

pytestmark = pytest.mark.slow  # loads model weights
CHAT = [{"role": "user", "content": "Say something."}]


class FailAt:
    """A logits processor that raises on its `step`-th call."""

    def __init__(self, step: int) -> None:
        self.step, self.calls = step, 0

    def __call__(self, input_ids, scores):
        self.calls += 1
        if self.calls == self.step:
            raise RuntimeError("the logits processor broke")
        return scores


class StallAt:
    """A logits processor that sleeps `seconds` on its `step`-th call (a hung device)."""

    def __init__(self, step: int, seconds: float) -> None:
        self.step, self.seconds, self.calls = step, seconds, 0

    def __call__(self, input_ids, scores):
        self.calls += 1
        if self.calls == self.step:
            time.sleep(self.seconds)
        return scores


@pytest.fixture
def comparison(tiny_model_dir, tokenizer):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    return Comparison(FtuiConfig(), tokenizer, model, model, [], "cpu")


def stream_all(comparison: Comparison, tokens: int, *processors) -> list:
    from transformers import LogitsProcessorList

    decoding = {"min_new_tokens": tokens, "logits_processor": LogitsProcessorList(processors)}
    return list(comparison.stream(CHAT, "fine_tuned", tokens, **decoding))


def test_a_failing_generation_ends_the_stream_at_once_with_its_error(comparison, monkeypatch):
    monkeypatch.delenv("FTUI_GENERATION_TIMEOUT_SECONDS", raising=False)  # the 120 s default
    started = time.perf_counter()
    failure = "generation failed: RuntimeError: the logits processor broke"
    with pytest.raises(GenerationError, match=failure):
        stream_all(comparison, 16, FailAt(step=3))
    assert time.perf_counter() - started < 10  # not the 120 s timeout, not forever
    started = time.perf_counter()
    answers = stream_all(comparison, 4)  # the failed thread gave the model back
    assert answers and time.perf_counter() - started < 10


def test_a_stalled_generation_times_out_and_the_model_is_told_to_stop(comparison, monkeypatch):
    monkeypatch.setenv("FTUI_GENERATION_TIMEOUT_SECONDS", "0.5")
    stall = StallAt(step=2, seconds=3.0)
    started = time.perf_counter()
    with pytest.raises(GenerationError, match="no new text for 0.5 s"):
        stream_all(comparison, 20, stall)
    assert time.perf_counter() - started < 2.5
    # The stalled step still holds the model: the next caller hears so instead of waiting.
    with pytest.raises(GenerationError, match="busy with another answer"):
        stream_all(comparison, 4)
    deadline = time.monotonic() + 15
    while comparison.lock.locked() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not comparison.lock.locked()
    assert stall.calls == 2  # stopped right after the stalled token, not all 20
    assert stream_all(comparison, 4)
