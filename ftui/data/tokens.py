"""What the model will see: examples rendered through the chat template, token by token.

An example (from `examples.to_example`) is rendered with the tokenizer's own chat template,
its tools passed as `tools=`, and each token is marked with what training does with it:

- instruction data: every assistant turn (tool calls included) and its end-of-turn token is
  `trained`; a turn with weight 0 is `weight 0` (context, no loss);
- raw text: every token is trained;
- preference pairs: the chosen answer is shown, trained;
- KTO rows: the completion is trained, as `bad answer` when its label is false (KTO pushes
  its likelihood down).

The spans are found by rendering the conversation prefix by prefix, so this works with any
chat template, not just ones with generation markers. `masked_token_ids` turns the same
marks into the input ids and labels the trainer learns from, so the Data tab shows exactly
the tokens that carry the loss.
"""

from __future__ import annotations

import statistics
from typing import Any

import pandas as pd

from ftui.data.errors import DataError
from ftui.data.messages import is_trained
from ftui.data.tools import require_tool_support

TRAINED = "trained"
BAD_ANSWER = "bad answer"  # a KTO completion labelled false: trained to be less likely
WEIGHT_ZERO = "weight 0"  # an assistant turn left out of the loss
LOSS_LABELS = (TRAINED, BAD_ANSWER)
IGNORED = -100  # the label transformers' loss skips

Span = tuple[int, int, str]


def render_text_and_spans(tokenizer: Any, example: dict) -> tuple[str, list[tuple[int, int]]]:
    """The full rendered text and the character spans that carry loss."""
    text, spans = render_labelled(tokenizer, example)
    return text, [(start, end) for start, end, label in spans if label in LOSS_LABELS]


def render_labelled(tokenizer: Any, example: dict) -> tuple[str, list[Span]]:
    """The full rendered text and (start, end, label) spans of the assistant answers."""
    if "text" in example:
        text = example["text"]
        return text, [(0, len(text), TRAINED)]
    require_tool_support(tokenizer, example)
    if "messages" in example:
        messages, first = example["messages"], 0
    else:  # preference: the chosen answer; KTO: the completion the label judges
        prompt = list(example.get("prompt") or [])
        answer = example["chosen"] if "chosen" in example else example["completion"]
        messages, first = prompt + list(answer), len(prompt)
    answer = BAD_ANSWER if example.get("label") is False else TRAINED
    return _conversation_spans(tokenizer, messages, example.get("tools"), first, answer)


def _conversation_spans(
    tokenizer: Any, messages: list[dict], tools: list | None, first: int, answer: str
) -> tuple[str, list[Span]]:
    """Spans of the assistant turns from message `first` on."""
    full = _apply_template(tokenizer, messages, tools, add_generation_prompt=False)
    spans = []
    for index, message in enumerate(messages[first:], start=first):
        if message["role"] != "assistant":
            continue
        label = answer if is_trained(message) else WEIGHT_ZERO
        prefix = _apply_template(tokenizer, messages[:index], tools, add_generation_prompt=True)
        through = _apply_template(tokenizer, messages[: index + 1], tools, False)
        if full.startswith(through) and through.startswith(prefix):
            spans.append((len(prefix), len(through), label))
        elif message["content"]:  # a template that rewrites earlier turns: the answer text
            start = full.find(message["content"])
            if start >= 0:
                spans.append((start, start + len(message["content"]), label))
    return full, spans


def _apply_template(
    tokenizer: Any, messages: list[dict], tools: list | None, add_generation_prompt: bool
) -> str:
    if not messages:
        return ""
    try:
        return tokenizer.apply_chat_template(
            messages,
            tools=tools or None,
            tokenize=False,
            add_generation_prompt=add_generation_prompt,
        )
    except Exception as exc:  # jinja's TemplateError, or a template's raise_exception()
        name = getattr(tokenizer, "name_or_path", "") or "the model"
        raise DataError(
            f"the chat template of {name} refused this conversation: {str(exc)[:300]}",
            hint="Reorder or merge the turns the way the template expects, or choose another "
            "model.",
        ) from None


def _token_labels(tokenizer: Any, example: dict) -> tuple[str, list, list[str | None]]:
    """Rendered text, each token's (start, end) offsets, and each token's label or None."""
    text, spans = render_labelled(tokenizer, example)
    encoding = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    offsets = encoding["offset_mapping"]
    labels = [
        next((label for s, e, label in spans if s < end and start < e), None)
        for start, end in offsets
    ]
    return text, list(zip(encoding["input_ids"], offsets, strict=True)), labels


def masked_token_ids(tokenizer: Any, example: dict) -> dict[str, list[int]]:
    """{"input_ids", "labels"}: the rendered example's tokens, labels -100 where no loss."""
    _, tokens, labels = _token_labels(tokenizer, example)
    ids = [token_id for token_id, _ in tokens]
    masked = [t if label in LOSS_LABELS else IGNORED for t, label in zip(ids, labels, strict=True)]
    return {"input_ids": ids, "labels": masked}


def highlighted_tokens(
    tokenizer: Any, example: dict, max_length: int | None = None
) -> list[tuple[str, str | None]]:
    """Segments for gr.HighlightedText: (text, label) in order; label is one of TRAINED,
    BAD_ANSWER, WEIGHT_ZERO or None (context).

    Tokens past `max_length` are dropped and a closing note says how many were cut.
    """
    text, tokens, labels = _token_labels(tokenizer, example)
    kept = len(tokens) if max_length is None else min(max_length, len(tokens))
    segments: list[tuple[str, str | None]] = []
    for (_, (start, end)), label in zip(tokens[:kept], labels[:kept], strict=True):
        piece = text[start:end]
        if segments and segments[-1][1] == label:
            segments[-1] = (segments[-1][0] + piece, label)
        else:
            segments.append((piece, label))
    if kept < len(tokens):
        segments.append((f"  [... {len(tokens) - kept} tokens cut at max length]", "cut"))
    return segments


def token_lengths(tokenizer: Any, examples: list[dict]) -> list[int]:
    """Number of tokens of each rendered example."""
    texts = [render_labelled(tokenizer, example)[0] for example in examples]
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
