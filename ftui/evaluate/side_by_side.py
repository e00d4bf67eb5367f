"""The Playground's three answers, streamed together rather than one after the other.

    chats = {variant: compare.chat(prompt, variant) for variant in VARIANTS}
    for answers, done in stream_variants(compare, chats, 32, temperature=0.0):
        answers["fine_tuned"].text, "base" in done

Each variant's prompt goes through the model on its own (its adapter on or off), with the
start it shares with earlier questions (system prompt, few-shot examples) taken from
Comparison.prefix_memo instead of recomputed. Then the rows decode as one batch, so every
column fills at once: for a plain LoRA run one forward serves the base rows and the
fine-tuned row, the adapter on with a LoRA scale of 0 on the base rows (ftui.evaluate.
lora_rows), other LoRA runs use peft's mixed-adapter batches, and other adapters and full
fine-tunes take one forward per model per step. A model that cannot share a KV cache that
way (ftui.evaluate.kv_rows), or has logits processors in its generation config, streams the
variants one after the other through Comparison.stream.

The same guards as Comparison.stream: a step that produces nothing for generation_timeout()
seconds ends the stream with GenerationError, a failure ends it at once with its message, and
the decoding thread is told to stop whenever the stream ends.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from ftui.evaluate.compare import (
    Answer,
    Comparison,
    Messages,
    generation_error,
    generation_timeout,
    stalled,
)
from ftui.evaluate.decoding import decode_steps, greedy, sampler, stop_ids
from ftui.evaluate.kv_rows import RowBatch, first_columns
from ftui.evaluate.lora_rows import RowScaledLora

# Sampling settings the sampler here does not apply, with the values that leave sampling
# alone; a model that sets another value samples through generate.
SAMPLING_NEUTRAL = {
    "min_p": (None, 0.0), "typical_p": (None, 1.0), "epsilon_cutoff": (None, 0.0),
    "eta_cutoff": (None, 0.0), "top_h": (None,),
}  # fmt: skip
DEFAULT_TOP_K = 50  # transformers' generate samples from the 50 likeliest tokens by default
Snapshot = tuple[dict[str, list[int]], dict[str, float], set[str]]


@dataclass
class _Group:
    """Rows that decode in one forward per step, as `variant`'s model."""

    variant: str
    variants: list[str]  # the variant of each batch row
    rows: RowBatch
    logits: Any
    contexts: list[list[int]]  # each batch row's prompt tokens (guesses: ftui.evaluate.drafts)


def stream_variants(
    compare: Comparison, chats: dict[str, Messages], max_new_tokens: int,
    temperature: float = 0.0, top_p: float = 1.0,
) -> Iterator[tuple[dict[str, Answer], set[str]]]:  # fmt: skip
    """Every variant's answer so far and the variants that have finished, after each step.
    Greedy at temperature 0, else sampled (temperature, the model's top_k, top_p)."""
    if not together(compare, list(chats), temperature):
        yield from _one_after_another(compare, chats, max_new_tokens, temperature, top_p)
        return
    timeout = generation_timeout()
    updates: queue.Queue = queue.Queue()
    stop = threading.Event()
    pick = greedy if temperature <= 0 else sampler(temperature, _top_k(compare), top_p)
    compare.take("fine_tuned")  # one lock for the three: "busy" reaches the caller here
    started = time.perf_counter()
    worker = threading.Thread(
        target=_decode_together,
        args=(compare, chats, max_new_tokens, pick, updates, stop),
        daemon=True,
    )
    worker.start()
    try:
        while (update := updates.get(timeout=timeout)) is not None:
            if isinstance(update, BaseException):
                raise generation_error(update)
            yield _answers(compare, update, started)
    except queue.Empty:
        raise stalled(timeout, "these answers were") from None
    finally:
        stop.set()  # a stream that ends early (timeout, closed page) stops the model too
    worker.join(timeout)


def together(compare: Comparison, variants: list[str], temperature: float) -> bool:
    """Whether these variants can decode as one batch on a shared KV cache."""
    if not all(compare.shares_cache(variant) for variant in variants):
        return False
    config = compare.base.generation_config
    return temperature <= 0 or all(
        getattr(config, name, None) in neutral for name, neutral in SAMPLING_NEUTRAL.items()
    )


def _top_k(compare: Comparison) -> int:
    """The model's top_k, or generate's default when it sets none."""
    top_k = getattr(compare.base.generation_config, "top_k", None)
    return DEFAULT_TOP_K if top_k is None else top_k


@dataclass
class _Progress:
    """Every variant's tokens so far, when each last grew, and which have finished."""

    stop_tokens: set[int]
    max_new_tokens: int
    tokens: dict[str, list[int]]
    times: dict[str, float] = field(default_factory=dict)
    done: set[str] = field(default_factory=set)

    def record(self, group: _Group, step: list[tuple[int, int]]) -> None:
        now = time.perf_counter()
        for row, token in step:
            variant = group.variants[row]
            self.tokens[variant].append(token)
            self.times[variant] = now
            if token in self.stop_tokens or len(self.tokens[variant]) >= self.max_new_tokens:
                self.done.add(variant)

    def snapshot(self) -> Snapshot:
        return {v: list(t) for v, t in self.tokens.items()}, dict(self.times), set(self.done)


class _AdapterState:
    """Keeps the model as a variant needs it (adapter on or off) from one step to the next,
    switching only when a step needs the other state: peft's switch visits every module
    (measured: 39 ms for SmolLM2-135M on this CPU), more than half a decoding step."""

    def __init__(self, compare: Comparison) -> None:
        self.compare, self.kind, self.held = compare, "", contextlib.ExitStack()

    def use(self, variant: str) -> Any:
        kind = "fine_tuned" if variant == "fine_tuned" else "base"
        if kind != self.kind:
            self.held.close()
            self.held = contextlib.ExitStack()
            self.model = self.held.enter_context(self.compare.as_variant(variant))
            self.kind = kind
        return self.model

    def close(self) -> None:
        self.held.close()


def _decode_together(
    compare: Comparison, chats: dict[str, Messages], max_new_tokens: int, pick: Any,
    updates: queue.Queue, stop: threading.Event,
) -> None:  # fmt: skip
    """The decoding thread (the caller took the lock; this gives it back): a snapshot of every
    variant's tokens after each step, an exception if it fails, None at the end. Groups on
    separate models step in turn; two groups of one model (an adapter peft cannot mix in a
    batch) go one after the other, so the adapter is switched once, not at every step."""
    import torch

    state = _AdapterState(compare)
    try:
        with torch.inference_mode():
            groups = _prefill(compare, chats, state)
            stop_tokens = stop_ids(compare.base.generation_config, compare.tokenizer)
            progress = _Progress(stop_tokens, max_new_tokens, {variant: [] for variant in chats})
            phases = [groups] if compare.base is not compare.tuned else [[g] for g in groups]
            for phase in phases:
                live = [
                    (group, decode_steps(_model(compare, group), group.rows, group.logits,
                                         max_new_tokens, stop_tokens, pick, group.contexts))
                    for group in phase
                ]  # fmt: skip
                while live and not stop.is_set():
                    live = [entry for entry in live if _step(state, entry, progress)]
                    updates.put(progress.snapshot())
    except Exception as exc:
        updates.put(exc)
    finally:
        state.close()
        compare.last_used = time.monotonic()
        compare.lock.release()
        updates.put(None)


def _step(state: _AdapterState, entry: tuple[_Group, Iterator], progress: _Progress) -> bool:
    """One decoding step of one group; False once the group has finished."""
    group, steps = entry
    state.use(_uniform_variant(group))
    step = next(steps, None)
    if step is None:
        return False
    progress.record(group, step)
    return True


def _uniform_variant(group: _Group) -> str:
    """The variant a group's next step runs as. A mixed-adapter batch whose unfinished rows
    all have the adapter on, or all off, drops peft's per-row routing, which costs time at
    every step (the adapter is then switched once: _AdapterState)."""
    names = group.rows.model_kwargs.get("adapter_names")
    if names is not None:
        alive = set(names)
        if len(alive) == 1:
            del group.rows.model_kwargs["adapter_names"]
            group.variant = "base" if alive == {"__base__"} else "fine_tuned"
    return group.variant


def _prefill(compare: Comparison, chats: dict[str, Messages], state: _AdapterState) -> list[_Group]:
    """Each prompt through its variant's model; the rows grouped by the model they decode on."""
    prompts = {}  # variant: (prompt ids, cache, next-token logits)
    for variant, chat in chats.items():
        prompts[variant] = _prompt_cache(compare, state.use(variant), variant, chat)
    if _mixed_adapter_batches(compare):
        names = {v: "__base__" for v in chats} | {"fine_tuned": compare.tuned.active_adapter}
        return [_group("fine_tuned", list(chats), prompts, names)]
    sides = ([v for v in chats if v != "fine_tuned"], [v for v in chats if v == "fine_tuned"])
    return [_group(side[0], side, prompts) for side in sides if side]


def _group(
    variant: str, variants: list[str], prompts: dict[str, tuple],
    adapter_names: dict[str, str] | None = None,
) -> _Group:  # fmt: skip
    """The variants' rows as one batch."""
    import torch

    kwargs = {"adapter_names": [adapter_names[v] for v in variants]} if adapter_names else {}
    rows = RowBatch.stack([prompts[v][1] for v in variants], kwargs)
    logits = torch.cat([prompts[v][2] for v in variants])
    return _Group(variant, variants, rows, logits, [prompts[v][0] for v in variants])


def _prompt_cache(compare: Comparison, model: Any, variant: str, chat: Messages) -> tuple:
    """(prompt ids, cache, next-token logits) of one prompt. The tokens it shares with this
    variant's previous prompt (system prompt, few-shot examples, an instruction) come from
    that prompt's cache in compare.prefix_memo; this prompt's cache replaces it there."""
    ids = compare.prompt_ids(chat)
    seen, seen_cache = compare.prefix_memo.get(variant, ((), None))
    shared = _shared_length(seen, ids)
    prefix = first_columns(seen_cache, shared) if shared else None
    rows, logits = RowBatch.start(model, prefix, [ids[shared:]], compare.tokenizer.pad_token_id)
    compare.prefix_memo[variant] = (tuple(ids), rows.cache)
    return ids, rows.cache, logits


def _shared_length(seen: tuple[int, ...], ids: list[int]) -> int:
    """Leading tokens `ids` shares with `seen`, leaving it at least one of its own."""
    length, limit = 0, min(len(seen), len(ids) - 1)
    while length < limit and seen[length] == ids[length]:
        length += 1
    return length


def _mixed_adapter_batches(compare: Comparison) -> bool:
    """peft can run base and adapter rows in one forward: one model, LoRA without DoRA."""
    model = compare.tuned
    if model is not compare.base or not hasattr(model, "peft_config"):
        return False
    configs = model.peft_config.values()
    return all(
        getattr(c.peft_type, "value", None) == "LORA" and not getattr(c, "use_dora", False)
        for c in configs
    )


def _model(compare: Comparison, group: _Group) -> Any:
    """The model a group decodes on; a mixed-adapter group of plain LoRA through
    RowScaledLora (per-row scales in one ordinary forward, faster than peft's split)."""
    if group.variant != "fine_tuned":
        return compare.base
    if "adapter_names" in group.rows.model_kwargs:
        return RowScaledLora.of(compare.tuned) or compare.tuned
    return compare.tuned


def _answers(compare: Comparison, update: Snapshot, started: float) -> tuple[dict, set]:
    tokens, times, done = update
    pad = compare.tokenizer.pad_token_id
    answers = {
        variant: Answer(
            compare.tokenizer.decode(ids, skip_special_tokens=True).strip(),
            times.get(variant, started) - started,
            sum(token != pad for token in ids),
        )
        for variant, ids in tokens.items()
    }
    return answers, done


def _one_after_another(
    compare: Comparison, chats: dict[str, Messages], max_new_tokens: int,
    temperature: float, top_p: float,
) -> Iterator[tuple[dict[str, Answer], set[str]]]:  # fmt: skip
    """Comparison.stream for each variant in turn (models RowBatch cannot serve)."""
    decoding = {"do_sample": True, "temperature": temperature, "top_p": top_p}
    if temperature <= 0:
        decoding = {"do_sample": False}
    answers = {variant: Answer("", 0.0, 0) for variant in chats}
    done: set[str] = set()
    for variant, chat in chats.items():
        for answer in compare.stream(chat, variant, max_new_tokens, **decoding):
            answers[variant] = answer
            yield dict(answers), set(done)
        done.add(variant)
        yield dict(answers), set(done)
