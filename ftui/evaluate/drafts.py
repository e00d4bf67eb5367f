"""Greedy decoding that checks several guessed tokens per forward (prompt-lookup drafts).

Answers repeat their prompt a lot: a JSON key from the instruction, the few-shot examples'
format, a phrase of the ticket. Before each step a row looks for the last few tokens it
holds (its prompt and its answer so far) earlier in the same tokens, and guesses that what
followed there follows again. One forward then takes the row's next token and the guesses;
the model's own greedy choice at every position says how many guesses were right. Those are
kept, the first wrong one is replaced by the model's choice, and the rest are forgotten
(their cache columns masked out, RowBatch.take_back). The answer is the greedy answer token
for token; only the number of forwards changes.

On this CPU a forward of 2 to 8 tokens costs about twice one of a single token (matrix-vector
against matrix-matrix products) and wider ones cost more again, so a guess is only made from
a match of at least MIN_MATCH tokens, a forward takes at most FED_TOKENS tokens in all rows
together, and a step gains when it keeps one guessed token or more.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ftui.evaluate.kv_rows import RowBatch

MAX_MATCH = 3  # the longest run of last tokens looked up
MIN_MATCH = 2  # a shorter match guesses too often wrong to pay for its wider forward
MAX_GUESSES = 7  # guessed tokens per row and step
# Tokens one forward may take, all rows together: on this 2-core CPU a forward of 2 to 8
# tokens of SmolLM2-135M costs about the same (105-130 ms; 1 token: 60 ms; 32 tokens: 220 ms).
FED_TOKENS = {"cpu": 4, "cuda": 64}


def guess(history: list[int], budget: int) -> list[int]:
    """What followed the latest earlier occurrence of history's last tokens (longest match
    first, MAX_MATCH down to MIN_MATCH), at most min(MAX_GUESSES, budget) tokens."""
    limit = min(MAX_GUESSES, budget)
    if limit <= 0:
        return []
    for size in range(MAX_MATCH, MIN_MATCH - 1, -1):
        if len(history) <= size:
            continue
        tail = history[-size:]
        for start in range(len(history) - size - 1, -1, -1):
            if history[start : start + size] == tail:
                return history[start + size : start + size + limit]
    return []


def drafted_steps(
    model: Any, rows: RowBatch, logits: Any, max_new_tokens: int, stop: set[int],
    contexts: list[list[int]],
) -> Iterator[list[tuple[int, int]]]:  # fmt: skip
    """Like decoding.decode_steps with greedy picks: (row, token) pairs of every unfinished
    row after each forward, now possibly several tokens per row. `contexts` holds each batch
    row's prompt tokens."""
    histories = {row: list(ids) for row, ids in zip(rows.rows, contexts, strict=True)}
    counts = dict.fromkeys(histories, 0)
    decided = [[token] for token in logits.argmax(dim=-1).tolist()]
    while True:
        step, finished = [], []
        for position, row in enumerate(rows.rows):
            tokens, done = _within_limits(decided[position], counts[row], max_new_tokens, stop)
            finished.append(done)
            histories[row] += tokens
            counts[row] += len(tokens)
            step += [(row, token) for token in tokens]
        yield step
        if all(finished):
            return
        kept = rows.finish(finished)
        decided = _check_guesses(
            model, rows, [decided[i][-1] for i in kept], histories, counts, max_new_tokens
        )


def _within_limits(
    tokens: list[int], count: int, max_new_tokens: int, stop: set[int]
) -> tuple[list[int], bool]:
    """The tokens cut at the first stop token (kept) and at the row's budget; whether the row
    has finished."""
    for index, token in enumerate(tokens):
        if token in stop:
            tokens = tokens[: index + 1]
            break
    tokens = tokens[: max(0, max_new_tokens - count)]
    done = (bool(tokens) and tokens[-1] in stop) or count + len(tokens) >= max_new_tokens
    return tokens, done


def _check_guesses(
    model: Any, rows: RowBatch, last: list[int], histories: dict, counts: dict, max_new_tokens: int
) -> list[list[int]]:
    """One forward of each row's last token and its guesses; each row's newly decided tokens
    (the right guesses and the model's next choice after them)."""
    import torch

    room = max(0, FED_TOKENS.get(rows.mask.device.type, FED_TOKENS["cpu"]) // len(rows.rows) - 1)
    guesses = [
        guess(histories[row], min(room, max_new_tokens - counts[row] - 1)) for row in rows.rows
    ]
    width = 1 + max(len(g) for g in guesses)
    device = rows.mask.device
    fed = [[token, *g] + [0] * (width - 1 - len(g)) for token, g in zip(last, guesses, strict=True)]
    valid = [[1] * (1 + len(g)) + [0] * (width - 1 - len(g)) for g in guesses]
    tokens = torch.tensor(fed, device=device)
    logits = rows.forward(model, tokens, torch.tensor(valid, device=device))
    picks = logits.argmax(dim=-1).tolist()  # the model's choice after each fed token
    decided, kept = [], []
    for g, chosen in zip(guesses, picks, strict=True):
        right = 0
        while right < len(g) and chosen[right] == g[right]:
            right += 1
        decided.append(g[:right] + [chosen[right]])
        kept.append(1 + right)
    rows.take_back(width, torch.tensor(kept, device=device))
    return decided
