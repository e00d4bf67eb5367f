"""Greedy answers and reference scores for many prompts at once, on a shared KV cache.

    results = answer_rows(model, prompts, 32, stop_ids={2}, pad_id=2, references=refs)
    results[0].tokens, results[0].reference_nll, results[0].reference_tokens

The prompts' common start (chat header, system prompt, the task's instruction; for few-shot
also the k examples) goes through the model once. Rows then run in batches from copies of
that cache (ftui.evaluate.kv_rows): one forward over the rest of each prompt gives the first
answer token and the reference's first log-probability, one more over the reference tokens
gives the rest of its perplexity, the cache is cut back to the prompt, and decoding goes on
with each row leaving the batch at its stop token. The answers are what transformers'
greedy `generate` gives (tests compare them); a model with logits processors in its
generation config (repetition penalty...) is left to `generate`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from ftui.evaluate.drafts import drafted_steps
from ftui.evaluate.kv_rows import RowBatch, common_prefix_length, encode_prefix

# Generation-config fields that change a greedy answer, with the values that leave it alone.
GREEDY_NEUTRAL = {
    "repetition_penalty": (None, 1.0), "encoder_repetition_penalty": (None, 1.0),
    "no_repeat_ngram_size": (None, 0), "bad_words_ids": (None, []), "suppress_tokens": (None, []),
    "begin_suppress_tokens": (None, []), "forced_bos_token_id": (None,),
    "forced_eos_token_id": (None,), "min_length": (None, 0), "min_new_tokens": (None, 0),
    "sequence_bias": (None, {}), "exponential_decay_length_penalty": (None,),
    "stop_strings": (None, []), "num_beams": (None, 1), "penalty_alpha": (None, 0, 0.0),
}  # fmt: skip
# Bigger batches decode faster on CPU too (one pass over the weights serves every row) until
# the cache and logits outgrow these.
BATCH_MEMORY_BYTES = {"cpu": 2 << 30, "cuda": 4 << 30}
MAX_ROWS = {"cpu": 64, "cuda": 64}
Pick = Callable[[Any], Any]  # (rows, vocabulary) logits -> (rows,) next tokens


@dataclass
class RowResult:
    tokens: list[int]  # the answer's tokens, its stop token included when it reached one
    reference_nll: float  # summed negative log-likelihood of the reference's tokens
    reference_tokens: int
    seconds: float  # this row's share of its batch's time (prompt, reference and answer)


def plain_greedy(generation_config: Any) -> bool:
    """Whether greedy `generate` with this config is argmax of the raw logits at every step."""
    return all(
        getattr(generation_config, name, None) in neutral
        for name, neutral in GREEDY_NEUTRAL.items()
    )


def stop_ids(generation_config: Any, tokenizer: Any) -> set[int]:
    """The tokens that end an answer, as `generate` reads them."""
    eos = generation_config.eos_token_id
    if eos is None:
        eos = tokenizer.eos_token_id
    return set(eos if isinstance(eos, list) else [eos])


def greedy(logits: Any) -> Any:
    return logits.argmax(dim=-1)


def answer_rows(
    model: Any, prompts: list[list[int]], max_new_tokens: int, stop: set[int], pad_id: int,
    references: list[list[int]] | None = None, batch_size: int = 16,
    on_batch: Callable[[int], None] | None = None,
) -> list[RowResult]:  # fmt: skip
    """Greedy answers to token-id prompts (and the summed NLL of each row's reference
    continuation, when given). Rows are batched longest first; `on_batch(rows done)`."""
    if not prompts:
        return []
    started = time.perf_counter()
    shared = common_prefix_length(prompts)
    prefix = encode_prefix(model, prompts[0][:shared], model.device)
    order = sorted(range(len(prompts)), key=lambda index: -len(prompts[index]))
    results: list[RowResult | None] = [None] * len(prompts)
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        suffixes = [prompts[index][shared:] for index in chunk]
        rows, logits = RowBatch.start(model, prefix, suffixes, pad_id, rows=chunk)
        scores = [(0.0, 0)] * len(chunk)
        if references is not None:
            scores = score_references(model, rows, logits, [references[i] for i in chunk], pad_id)
        answers: dict[int, list[int]] = {index: [] for index in chunk}
        contexts = [prompts[index] for index in chunk]
        for step in decode_steps(model, rows, logits, max_new_tokens, stop, greedy, contexts):
            for row, token in step:
                answers[row].append(token)
        seconds = (time.perf_counter() - started) / len(chunk)
        started = time.perf_counter()
        for index, (nll, count) in zip(chunk, scores, strict=True):
            results[index] = RowResult(answers[index], nll, count, seconds)
        if on_batch is not None:
            on_batch(min(start + batch_size, len(order)))
    return [result for result in results if result is not None]


def score_references(
    model: Any, rows: RowBatch, last_logits: Any, references: list[list[int]], pad_id: int
) -> list[tuple[float, int]]:
    """(summed NLL, tokens) of each row's reference continuation; the rows are left as they
    were (the reference's columns are cut off again)."""
    import torch

    width = max(len(reference) for reference in references)
    if width == 0:
        return [(0.0, 0)] * len(references)
    columns, lengths = rows.mask.shape[1], rows.lengths.clone()
    device = last_logits.device
    padded = [reference + [pad_id] * (width - len(reference)) for reference in references]
    tokens = torch.tensor(padded, device=device)
    valid = torch.tensor(
        [[1] * len(ref) + [0] * (width - len(ref)) for ref in references], device=device
    )
    logits = rows.forward(model, tokens, valid)
    predicting = torch.cat([last_logits[:, None], logits[:, :-1]], dim=1)
    chosen = torch.log_softmax(predicting, dim=-1).gather(-1, tokens[..., None]).squeeze(-1)
    nll = -(chosen * valid).sum(dim=1)
    rows.rewind(columns, lengths)
    return [(float(n), int(c)) for n, c in zip(nll, valid.sum(dim=1), strict=True)]


def decode_steps(
    model: Any, rows: RowBatch, logits: Any, max_new_tokens: int, stop: set[int], pick: Pick,
    contexts: list[list[int]] | None = None,
) -> Iterator[list[tuple[int, int]]]:  # fmt: skip
    """(row, token) of every unfinished row, one step at a time; a row is finished once it
    has produced a stop token, and leaves the batch (RowBatch.finish). Greedy
    with each batch row's prompt tokens in `contexts`: several tokens a step where guesses
    from the prompt come true (ftui.evaluate.drafts), the same answers."""
    import torch

    if contexts is not None and pick is greedy:
        yield from drafted_steps(model, rows, logits, max_new_tokens, stop, contexts)
        return

    stops = torch.tensor(sorted(stop), device=logits.device)
    for step in range(max_new_tokens):
        tokens = pick(logits)
        yield list(zip(rows.rows, tokens.tolist(), strict=True))
        finished = torch.isin(tokens, stops).tolist()
        if step + 1 == max_new_tokens or all(finished):
            return
        kept = rows.finish(finished)
        logits = rows.forward(model, tokens[kept][:, None])[:, -1]


def sampler(temperature: float, top_k: int | None, top_p: float) -> Pick:
    """Sampling as `generate` does it: temperature, then top-k, then top-p (nucleus)."""
    import torch

    def pick(logits: Any) -> Any:
        scores = logits / temperature
        if top_k:
            kth = torch.topk(scores, min(top_k, scores.shape[-1])).values[:, -1:]
            scores = scores.masked_fill(scores < kth, float("-inf"))
        if top_p < 1.0:
            ascending, order = torch.sort(scores, dim=-1)
            cumulative = ascending.softmax(dim=-1).cumsum(dim=-1)
            drop = cumulative <= 1 - top_p
            drop[:, -1] = False  # keep at least the likeliest token
            scores = scores.masked_fill(drop.scatter(1, order, drop), float("-inf"))
        return torch.multinomial(scores.softmax(dim=-1), 1).squeeze(1)

    return pick


def rows_per_batch(model: Any, tokens_per_row: int, scored_tokens: int) -> int:
    """How many rows to run at once: as many as keep the batch's KV cache and reference
    logits within BATCH_MEMORY_BYTES on the model's device, at most MAX_ROWS there."""
    import torch

    config = model.config.get_text_config()
    heads = getattr(config, "num_key_value_heads", None) or config.num_attention_heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    element = torch.empty((), dtype=model.dtype).element_size()
    cache_bytes = 2 * config.num_hidden_layers * heads * head_dim * element * tokens_per_row
    logits_bytes = 3 * scored_tokens * config.vocab_size * 4  # logits, log-softmax, shifted
    kind = "cuda" if model.device.type == "cuda" else "cpu"
    rows = BATCH_MEMORY_BYTES[kind] // max(cache_bytes + logits_bytes, 1)
    return int(max(1, min(MAX_ROWS[kind], rows)))
