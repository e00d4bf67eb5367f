"""Rows of token ids that run through a causal LM together, each continuing its own KV cache.

    prefix = encode_prefix(model, shared_ids, "cpu")          # the rows' common start, once
    rows, last = RowBatch.start(model, prefix, suffixes, pad_id)
    logits = rows.forward(model, next_tokens[:, None])        # one more token per row
    rows.keep([0, 2])                                         # rows 1, 3... have finished

Rows share one cache tensor per layer. A row's own tokens sit at the right end of the batch's
columns, so its last prompt token is in the last column for every row; the gap between the
shared prefix and a shorter row's tokens is padding, masked out, and each row's position ids
continue from its own length (RoPE never sees the gap). Causality comes from the columns, so a
row attends to the prefix, then to its own tokens in order.

Only plain decoder caches are handled (every layer full attention, no sliding window, no
recurrent state); `shares_kv_cache` says whether a model qualifies, and callers use
transformers' `generate` otherwise.
"""

from __future__ import annotations

import functools
import inspect
from dataclasses import dataclass
from typing import Any

PREFILL_ROWS = 16  # rows whose prompts go through the model together (RowBatch.start)
PAD_POSITION = 1  # what transformers' generate gives padded slots; never attended to


def shares_kv_cache(model: Any) -> bool:
    """Whether the model's cache is plain full attention (what RowBatch knows how to copy, crop
    and pad); sliding-window, hybrid and recurrent models are left to transformers."""
    config = model.config.get_text_config()
    if getattr(config, "is_encoder_decoder", False):
        return False
    layer_types = getattr(config, "layer_types", None)
    if layer_types is not None:
        return set(layer_types) == {"full_attention"}
    return getattr(config, "sliding_window", None) is None and not hasattr(config, "ssm_cfg")


def common_prefix_length(rows: list[list[int]]) -> int:
    """How many leading tokens every row shares, leaving each row at least one of its own
    (its last prompt token has to go through the model to predict what follows)."""
    if not rows:
        return 0
    shortest = min(len(row) for row in rows)
    length = 0
    while length < shortest - 1 and all(row[length] == rows[0][length] for row in rows):
        length += 1
    return length


def encode_prefix(model: Any, ids: list[int], device: str) -> Any:
    """The KV cache of one row of tokens (batch size 1), or None for no tokens."""
    import torch

    if not ids:
        return None
    cache = _new_cache()
    tokens = torch.tensor([ids], device=device)
    model(input_ids=tokens, use_cache=True, logits_to_keep=1, **{cache_keyword(model): cache})
    return cache


def cache_keyword(model: Any) -> str:
    """The forward argument that takes the cache: `cache` in newer transformers (which warns
    about the old name), `past_key_values` before."""
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    return _cache_keyword_of(type(inner))


@functools.cache
def _cache_keyword_of(model_class: type) -> str:
    parameters = inspect.signature(model_class.forward).parameters
    return "cache" if "cache" in parameters else "past_key_values"


@dataclass
class RowBatch:
    cache: Any  # RoomyCache (a transformers DynamicCache), batch = len(rows)
    mask: Any  # (rows, columns) 1 where a column holds a real token of that row
    lengths: Any  # (rows,) tokens each row holds: its next token's position id
    rows: list[int]  # the caller's index of each batch row
    model_kwargs: dict[str, Any]  # per-row model arguments (peft's adapter_names)

    @classmethod
    def start(
        cls, model: Any, prefix: Any, suffixes: list[list[int]], pad_id: int,
        rows: list[int] | None = None, model_kwargs: dict[str, Any] | None = None,
    ) -> tuple[RowBatch, Any]:  # fmt: skip
        """Rows that continue `prefix` (a cache of batch size 1, or None) with their own tokens;
        returns the batch and each row's next-token logits (rows, vocabulary). Many rows go
        through the model PREFILL_ROWS at a time, in the order given (callers sort them by
        length), so a short row is not padded to the longest of all."""
        import torch

        rows = list(range(len(suffixes))) if rows is None else rows
        if len(suffixes) > PREFILL_ROWS and not model_kwargs:
            parts = [
                cls.start(model, prefix, suffixes[i : i + PREFILL_ROWS], pad_id,
                          rows[i : i + PREFILL_ROWS])
                for i in range(0, len(suffixes), PREFILL_ROWS)
            ]  # fmt: skip
            return cls.join([batch for batch, _ in parts]), torch.cat([last for _, last in parts])
        return cls._start_together(model, prefix, suffixes, pad_id, rows, model_kwargs)

    @classmethod
    def _start_together(
        cls, model: Any, prefix: Any, suffixes: list[list[int]], pad_id: int, rows: list[int],
        model_kwargs: dict[str, Any] | None,
    ) -> tuple[RowBatch, Any]:  # fmt: skip
        import torch

        device = model.device
        width = max(len(suffix) for suffix in suffixes)
        tokens = torch.tensor([[pad_id] * (width - len(s)) + s for s in suffixes], device=device)
        valid = torch.tensor(
            [[0] * (width - len(s)) + [1] * len(s) for s in suffixes], device=device
        )
        prefix_length = prefix.get_seq_length() if prefix is not None else 0
        batch = cls(
            cache=_repeated(prefix, len(suffixes)),
            mask=torch.ones((len(suffixes), prefix_length), dtype=torch.long, device=device),
            lengths=torch.full((len(suffixes),), prefix_length, dtype=torch.long, device=device),
            rows=rows,
            model_kwargs=dict(model_kwargs or {}),
        )
        return batch, batch.forward(model, tokens, valid, last_only=True)[:, -1]

    @classmethod
    def stack(cls, caches: list[Any], model_kwargs: dict[str, Any] | None = None) -> RowBatch:
        """One batch from single-row caches of different lengths (each row's prompt went
        through the model on its own): shorter rows are padded on the left, masked out."""
        import torch

        lengths = [cache.get_seq_length() for cache in caches]
        width = max(lengths)
        stacked = _left_padded(caches, width)
        device = stacked.layers[0].keys.device
        mask = torch.tensor([[0] * (width - n) + [1] * n for n in lengths], device=device)
        rows = list(range(len(caches)))
        return cls(stacked, mask, torch.tensor(lengths, device=device), rows, model_kwargs or {})

    @classmethod
    def join(cls, batches: list[RowBatch]) -> RowBatch:
        """One batch of the rows of several (no per-row model arguments): each batch's
        columns padded on the left to the widest, masked out."""
        import torch
        import torch.nn.functional as functional

        width = max(batch.mask.shape[1] for batch in batches)
        joined = _left_padded([batch.cache for batch in batches], width)
        masks = [functional.pad(b.mask, (width - b.mask.shape[1], 0)) for b in batches]
        lengths = torch.cat([b.lengths for b in batches])
        rows = [row for batch in batches for row in batch.rows]
        return cls(joined, torch.cat(masks), lengths, rows, {})

    def forward(self, model: Any, tokens: Any, valid: Any = None, last_only: bool = False) -> Any:
        """Append `tokens` (rows, n) to every row; `valid` (rows, n) marks real tokens (the
        rest is padding). Returns the logits, (rows, n, vocabulary), or (rows, 1, ...) for
        `last_only`."""
        import torch

        valid = torch.ones_like(tokens) if valid is None else valid.to(torch.long)
        offsets = valid.cumsum(dim=1) - 1
        positions = (self.lengths[:, None] + offsets).masked_fill(valid == 0, PAD_POSITION)
        self.mask = torch.cat([self.mask, valid], dim=1)
        self.lengths = self.lengths + valid.sum(dim=1)
        output = model(
            input_ids=tokens,
            attention_mask=self.mask,
            position_ids=positions,
            use_cache=True,
            logits_to_keep=1 if last_only else 0,
            **{cache_keyword(model): self.cache},
            **self.model_kwargs,
        )
        return output.logits.float()

    def take_back(self, width: int, kept: Any) -> None:
        """Of the last `width` columns, keep each row's first kept[row]: the rest (guessed
        tokens the model did not confirm, ftui.evaluate.drafts) become masked-out padding."""
        import torch

        columns = torch.arange(width, device=self.mask.device)
        keep = (columns[None, :] < kept[:, None]).to(self.mask.dtype)
        tail = self.mask[:, -width:]
        self.lengths = self.lengths - tail.sum(dim=1) + (tail * keep).sum(dim=1)
        self.mask = torch.cat([self.mask[:, :-width], tail * keep], dim=1)

    def finish(self, finished: list[bool]) -> list[int]:
        """Drop the rows that have finished; returns the batch positions kept. (On CPU a batch
        of 2 or 3 rows is as quick as one of 4 through ftui.evaluate.few_rows, so finished
        rows are not kept running to fill it.)"""
        kept = [index for index, done in enumerate(finished) if not done]
        self.keep(kept)
        return kept

    def keep(self, indexes: list[int]) -> None:
        """Drop every row not in `indexes` (batch positions), e.g. rows that have finished."""
        import torch

        if len(indexes) == len(self.rows):
            return
        selected = torch.tensor(indexes, device=self.mask.device)
        self.cache.batch_select_indices(selected)
        self.mask, self.lengths = self.mask[selected], self.lengths[selected]
        self.rows = [self.rows[i] for i in indexes]
        self.model_kwargs = {k: [v[i] for i in indexes] for k, v in self.model_kwargs.items()}

    def rewind(self, columns: int, lengths: Any) -> None:
        """Forget every column after the first `columns` (what the rows were scored on),
        giving each row back its `lengths`."""
        for layer in self.cache.layers:  # Cache.crop's argument changed meaning across versions
            layer.keys, layer.values = layer.keys[..., :columns, :], layer.values[..., :columns, :]
        self.mask, self.lengths = self.mask[:, :columns], lengths


def first_columns(cache: Any, columns: int) -> Any:
    """A cache of the first `columns` tokens of `cache` (a copy: `cache` is left as it is)."""
    head = _new_cache()
    for index, layer in enumerate(cache.layers):
        head.update(layer.keys[..., :columns, :], layer.values[..., :columns, :], index)
    return head


def _repeated(prefix: Any, rows: int) -> Any:
    """A fresh cache holding `prefix` once per row (the prefix itself is left as it is)."""
    cache = _new_cache()
    if prefix is None:
        return cache
    for index, layer in enumerate(prefix.layers):
        keys = layer.keys.expand(rows, *layer.keys.shape[1:])  # update copies them
        values = layer.values.expand(rows, *layer.values.shape[1:])
        cache.update(keys, values, index)
    return cache


def _new_cache() -> Any:
    """An empty KV cache that appends in place (ftui.evaluate.roomy_cache)."""
    from ftui.evaluate.roomy_cache import RoomyCache

    return RoomyCache()


def _left_padded(caches: list[Any], width: int) -> Any:
    """One cache of the rows of `caches`, each padded on the left to `width` columns."""
    import torch

    padded = _new_cache()
    for layer in range(len(caches[0].layers)):
        keys = [_left_pad(cache.layers[layer].keys, width) for cache in caches]
        values = [_left_pad(cache.layers[layer].values, width) for cache in caches]
        padded.update(torch.cat(keys), torch.cat(values), layer)
    return padded


def _left_pad(tensor: Any, width: int) -> Any:
    """(1, heads, n, dim) -> (1, heads, width, dim), zeros first (masked slots stay finite)."""
    import torch.nn.functional as functional

    return functional.pad(tensor, (0, 0, width - tensor.shape[-2], 0))
