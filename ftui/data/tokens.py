"""What the model will see: examples rendered through the chat template, token by token.

An example (from `examples.to_example`) is rendered with the tokenizer's own chat template, and
each token is marked trained or not: for instruction data only the assistant turns (and their
end-of-turn token) carry loss; for raw text every token does; for preference pairs the chosen
answer is shown. The trained spans are found by rendering the conversation prefix by prefix,
so this works with any chat template, not just ones with generation markers.
"""

from __future__ import annotations

import statistics
from typing import Any

import pandas as pd

TRAINED = "trained"


def render_text_and_spans(tokenizer: Any, example: dict) -> tuple[str, list[tuple[int, int]]]:
    """The full rendered text and the character spans that carry loss."""
    if "text" in example:
        text = example["text"]
        return text, [(0, len(text))]
    if "chosen" in example:
        messages = list(example.get("prompt") or []) + list(example["chosen"])
    else:
        messages = example["messages"]
    full = _apply_template(tokenizer, messages, add_generation_prompt=False)
    spans = []
    for index, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        prefix = _apply_template(tokenizer, messages[:index], add_generation_prompt=True)
        through = _apply_template(tokenizer, messages[: index + 1], add_generation_prompt=False)
        if full.startswith(through) and through.startswith(prefix):
            spans.append((len(prefix), len(through)))
        else:  # a template that rewrites earlier turns: fall back to the answer text itself
            start = full.find(message["content"])
            if start >= 0:
                spans.append((start, start + len(message["content"])))
    return full, spans


def _apply_template(tokenizer: Any, messages: list[dict], add_generation_prompt: bool) -> str:
    if not messages:
        return ""
    return tokenizer.apply_chat_template(
        messages, tokenize=False, add_generation_prompt=add_generation_prompt
    )


def highlighted_tokens(
    tokenizer: Any, example: dict, max_length: int | None = None
) -> list[tuple[str, str | None]]:
    """Segments for gr.HighlightedText: (text, 'trained') or (text, None), in order.

    Tokens past `max_length` are dropped and a closing note says how many were cut.
    """
    text, spans = render_text_and_spans(tokenizer, example)
    encoding = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    offsets = encoding["offset_mapping"]
    kept = offsets if max_length is None else offsets[:max_length]
    segments: list[tuple[str, str | None]] = []
    for start, end in kept:
        label = TRAINED if any(s < end and start < e for s, e in spans) else None
        piece = text[start:end]
        if segments and segments[-1][1] == label:
            segments[-1] = (segments[-1][0] + piece, label)
        else:
            segments.append((piece, label))
    if max_length is not None and len(offsets) > max_length:
        segments.append((f"  [... {len(offsets) - max_length} tokens cut at max length]", "cut"))
    return segments


def token_lengths(tokenizer: Any, examples: list[dict]) -> list[int]:
    """Number of tokens of each rendered example."""
    texts = [render_text_and_spans(tokenizer, example)[0] for example in examples]
    if not texts:
        return []
    encoded = tokenizer(texts, add_special_tokens=False)["input_ids"]
    return [len(ids) for ids in encoded]


def length_summary(lengths: list[int], max_length: int) -> dict[str, float | int]:
    if not lengths:
        return {"examples": 0, "truncated": 0}
    ordered = sorted(lengths)
    return {
        "examples": len(lengths),
        "min": ordered[0],
        "median": statistics.median(ordered),
        "p95": ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))],
        "max": ordered[-1],
        "total_tokens": sum(ordered),
        "truncated": sum(1 for n in ordered if n > max_length),
    }


def length_histogram(lengths: list[int], max_length: int, bins: int = 20) -> pd.DataFrame:
    """Rows per token-length bin; bins past max_length are marked 'truncated'."""
    if not lengths:
        return pd.DataFrame({"tokens": [], "rows": [], "fits": []})
    top = max(max(lengths), 1)
    width = max(1, -(-top // bins))  # ceiling division
    counts = pd.Series(lengths).floordiv(width).value_counts().sort_index()
    lower = counts.index * width
    return pd.DataFrame(
        {
            "tokens": [f"{lo}-{lo + width - 1}" for lo in lower],
            "rows": counts.to_numpy(),
            "fits": ["truncated" if lo + width - 1 > max_length else "fits" for lo in lower],
        }
    )
