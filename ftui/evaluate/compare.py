"""Base, few-shot and fine-tuned answers from one copy of the base weights.

    compare = Comparison.load(run)                  # base model + the run's adapter
    chat = compare.chat(prompt_messages, "few_shot") # the messages that variant sees
    answers = compare.generate([chat, ...], "fine_tuned", max_new_tokens=32)

For adapter runs the fine-tuned variant is the base with the adapter enabled; base and
few-shot run inside `disable_adapter()`, so one copy of the weights serves all three. A full
fine-tune saves a whole model: it is loaded as a second model. Few-shot shows the base model
k examples from the run's training split as earlier chat turns, with the same system prompt
and chat template the run was trained with. Greedy answers run on a shared KV cache
(ftui.evaluate.decoding) where the model allows; the Playground streams the three variants
together (ftui.evaluate.side_by_side).

Generation never hangs its caller: a streamed answer that produces no new text for
FTUI_GENERATION_TIMEOUT_SECONDS (default 120) is stopped, and a generation that fails ends
the stream at once; both raise GenerationError with a readable message. Where the models
load is decided by ftui.runs.device_lease (a GPU lease, or the CPU while a run trains on the GPU).
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from ftui.config import FtuiConfig
from ftui.runs.rundir import RunDir

VARIANTS = ("base", "few_shot", "fine_tuned")
# Adapters that only change weights (no virtual tokens in the cache): safe for RowBatch.
CACHE_SAFE_PEFT_TYPES = {"LORA", "IA3"}
DEFAULT_GENERATION_TIMEOUT_SECONDS = 120.0
TITLES = {"base": "Base", "few_shot": "Few-shot", "fine_tuned": "Fine-tuned"}
Messages = list[dict[str, str]]


class GenerationError(RuntimeError):
    """A generation that failed, stalled or could not start; the message is for the user."""


def generation_timeout() -> float:
    """Seconds a generation may go without a new token (FTUI_GENERATION_TIMEOUT_SECONDS)."""
    return float(
        os.environ.get("FTUI_GENERATION_TIMEOUT_SECONDS", DEFAULT_GENERATION_TIMEOUT_SECONDS)
    )


@dataclass
class Answer:
    text: str
    seconds: float
    new_tokens: int

    @property
    def tokens_per_second(self) -> float:
        return self.new_tokens / self.seconds if self.seconds > 0 else 0.0


@dataclass
class Comparison:
    config: FtuiConfig
    tokenizer: Any
    base: Any  # the base model, with the adapter attached for adapter runs
    tuned: Any  # the same object for adapter runs; a second model for full fine-tunes
    shots: list[dict[str, Messages]]  # {"prompt": [...], "completion": [...]} training rows
    device: str
    note: str = ""  # why it runs where it runs, when that is not what the run asked for
    # Switching the adapter off is global to the model: one generation at a time.
    lock: threading.Lock = field(default_factory=threading.Lock)
    last_used: float = field(default_factory=time.monotonic)
    closed: bool = False
    # The Playground's last prompt per variant, {variant: (token ids, KV cache)}: the next
    # question reuses what it shares with it (ftui.evaluate.side_by_side).
    prefix_memo: dict = field(default_factory=dict)

    @classmethod
    def load(cls, run: RunDir, shots: int | None = None, device: str | None = None) -> Comparison:
        """The run's base model with its adapter (or its saved model), on `device` (default:
        the run's device; callers in the web process pass the one ftui.runs.device_lease picks)."""
        from ftui.evaluate.few_rows import narrow_decoding
        from ftui.models import load_model, saved_model_config

        config = run.read_config()
        output = run.output
        if output is None:
            raise ValueError(f"run {run.run_id} has saved no adapter or model yet")
        loaded = load_model(config.model, device)
        tokenizer = loaded.tokenizer
        tokenizer.padding_side = "left"  # batched generation continues each row's own end
        if output == run.adapter:
            from peft import PeftModel

            # low_cpu_mem_usage: the adapter is created empty and filled from the file, not
            # initialised randomly first (no second copy of it while loading).
            base = PeftModel.from_pretrained(loaded.model, output, low_cpu_mem_usage=True).eval()
            tuned = base
        else:
            base = loaded.model
            _check_second_copy_fits(base, loaded.device)
            tuned = load_model(saved_model_config(config.model, output), loaded.device).model
        narrow_decoding(base)  # a few rows per step as W·xᵀ on CPU (ftui.evaluate.few_rows)
        if tuned is not base:
            narrow_decoding(tuned)
        k = config.eval.few_shot_k if shots is None else shots
        return cls(config, tokenizer, base, tuned, _training_shots(config, k), loaded.device)

    # ------------------------------------------------------------ prompts

    def chat(
        self, prompt: Messages, variant: str, shots: list[dict[str, Messages]] | None = None
    ) -> Messages:
        """The messages a variant answers: few-shot puts the examples (default: the run's
        first k training rows) before the question, after any system prompt."""
        shots = self.shots if shots is None else shots
        if variant != "few_shot" or not shots:
            return prompt
        system = [m for m in prompt if m["role"] == "system"]
        turns = [m for m in prompt if m["role"] != "system"]
        examples = []
        for shot in shots:
            examples += [m for m in shot["prompt"] if m["role"] != "system"]
            examples += shot["completion"]
        return [*system, *examples, *turns]

    # ------------------------------------------------------------ generation

    def generate(
        self, chats: list[Messages], variant: str, max_new_tokens: int, **decoding: Any
    ) -> list[Answer]:
        """Answers to several chats at once; greedy unless told otherwise. Greedy answers run
        on a shared KV cache where the model allows (ftui.evaluate.decoding), else through
        transformers' generate (left-padded batch)."""
        import torch

        if not decoding and self.shares_cache(variant):
            prompts = [self.prompt_ids(chat) for chat in chats]
            return [self.answer(row) for row in self.answer_rows(prompts, variant, max_new_tokens)]
        batch = self.tokenizer.apply_chat_template(
            chats, add_generation_prompt=True, return_tensors="pt", return_dict=True,
            padding=True,
        ).to(self.device)  # fmt: skip
        settings = {"do_sample": False, **decoding}
        started = time.perf_counter()
        with torch.inference_mode(), self.variant_model(variant) as model:
            output = model.generate(
                **batch,
                max_new_tokens=max_new_tokens,
                pad_token_id=self.tokenizer.pad_token_id,
                **settings,
            )
        seconds = time.perf_counter() - started
        new = output[:, batch["input_ids"].shape[1] :]
        answers = []
        for row in new:
            count = int((row != self.tokenizer.pad_token_id).sum())
            text = self.tokenizer.decode(row, skip_special_tokens=True).strip()
            answers.append(Answer(text, seconds / len(chats), count))
        return answers

    def shares_cache(self, variant: str) -> bool:
        """Whether `variant`'s greedy answers can run on ftui.evaluate.decoding's shared
        KV cache (a plain decoder, no logits processors, an adapter that only changes weights)."""
        from ftui.evaluate.decoding import plain_greedy
        from ftui.evaluate.kv_rows import shares_kv_cache

        model = self.tuned if variant == "fine_tuned" else self.base
        if not (shares_kv_cache(model) and plain_greedy(model.generation_config)):
            return False
        if variant != "fine_tuned" or not hasattr(model, "peft_config"):
            return True  # base and few-shot run with the adapter switched off
        types = {getattr(c.peft_type, "value", c.peft_type) for c in model.peft_config.values()}
        return types <= CACHE_SAFE_PEFT_TYPES

    def prompt_ids(self, chat: Messages, answer: bool = True) -> list[int]:
        """The token ids of a chat, ending with the assistant's turn opened (`answer`)."""
        return self.tokenizer.apply_chat_template(
            chat, add_generation_prompt=answer, return_dict=True
        )["input_ids"]

    def answer_rows(
        self, prompts: list[list[int]], variant: str, max_new_tokens: int,
        references: list[list[int]] | None = None, on_batch: Any = None,
    ) -> list[Any]:  # fmt: skip
        """ftui.evaluate.decoding.answer_rows for `variant` (call where shares_cache says so)."""
        import torch

        from ftui.evaluate.decoding import answer_rows, rows_per_batch, stop_ids

        longest = max(len(p) for p in prompts) + max_new_tokens
        scored = max((len(r) for r in references), default=0) if references else 0
        with torch.inference_mode(), self.variant_model(variant) as model:
            rows = rows_per_batch(model, longest + scored, scored)
            stop = stop_ids(model.generation_config, self.tokenizer)
            pad = self.tokenizer.pad_token_id
            return answer_rows(
                model, prompts, max_new_tokens, stop, pad, references, rows, on_batch
            )

    def answer(self, row: Any) -> Answer:
        """A decoded answer from ftui.evaluate.decoding's RowResult."""
        count = sum(token != self.tokenizer.pad_token_id for token in row.tokens)
        text = self.tokenizer.decode(row.tokens, skip_special_tokens=True).strip()
        return Answer(text, row.seconds, count)

    def stream(
        self, chat: Messages, variant: str, max_new_tokens: int, **decoding: Any
    ) -> Iterator[Answer]:
        """The answer as it grows: one Answer (text so far, seconds, tokens) per new piece.
        Raises GenerationError when the model fails or goes generation_timeout() seconds
        without a new piece; the model thread is told to stop whenever the stream ends."""
        from transformers import TextIteratorStreamer

        timeout = generation_timeout()
        inputs = self.tokenizer.apply_chat_template(
            chat, add_generation_prompt=True, return_tensors="pt", return_dict=True
        ).to(self.device)
        streamer = TextIteratorStreamer(
            self.tokenizer, skip_prompt=True, skip_special_tokens=True, timeout=timeout
        )
        stop = threading.Event()
        failures: list[BaseException] = []
        settings = {
            "do_sample": False, **decoding, "max_new_tokens": max_new_tokens,
            "streamer": streamer, "pad_token_id": self.tokenizer.pad_token_id,
            "stopping_criteria": _stop_when_set(stop),
        }  # fmt: skip
        worker = threading.Thread(
            target=self._generate_into, args=(variant, inputs, settings, failures), daemon=True
        )
        self.take(variant)  # here, so "busy" reaches the caller rather than a timeout
        started = time.perf_counter()
        worker.start()
        text = ""
        try:
            for piece in streamer:
                text += piece
                tokens = len(self.tokenizer(text, add_special_tokens=False)["input_ids"])
                yield Answer(text.strip(), time.perf_counter() - started, tokens)
        except queue.Empty:
            raise stalled(timeout, "this answer was") from None
        finally:
            stop.set()  # a stream that ends early (timeout, closed page) stops the model too
        worker.join(timeout)
        if failures:
            raise generation_error(failures[0])

    def _generate_into(
        self, variant: str, inputs: Any, settings: dict, failures: list[BaseException]
    ) -> None:
        """The streaming generation's thread (the caller took the lock; this releases it): a
        failure is kept for the reader, and the stream is ended at once so the reader does
        not wait for the timeout."""
        import torch

        try:
            with torch.inference_mode(), self.taken_model(variant) as model:
                model.generate(**inputs, **settings)
        except Exception as exc:
            failures.append(exc)
            settings["streamer"].end()

    @contextlib.contextmanager
    def variant_model(self, variant: str):
        """The model answering as `variant` (adapter switched off for base and few-shot).
        Waits at most generation_timeout() for another generation to finish."""
        self.take(variant)
        with self.taken_model(variant) as model:
            yield model

    def take(self, variant: str) -> None:
        """Take the one-generation-at-a-time lock, or say why not (busy, or unloaded)."""
        if variant not in VARIANTS:
            raise ValueError(f"unknown variant {variant!r}; one of {', '.join(VARIANTS)}")
        if not self.lock.acquire(timeout=generation_timeout()):
            raise GenerationError(
                "the model is still busy with another answer; try again in a moment"
            )
        if self.closed:
            self.lock.release()
            raise GenerationError(
                "this model was unloaded (its GPU was given back after being idle); "
                "ask again to load it"
            )
        self.last_used = time.monotonic()

    @contextlib.contextmanager
    def taken_model(self, variant: str):
        """The variant's model for whoever took the lock (any thread); releases it after."""
        try:
            yield from self._switch(variant)
        finally:
            self.last_used = time.monotonic()
            self.lock.release()

    @contextlib.contextmanager
    def as_variant(self, variant: str):
        """The model answering as `variant`, for whoever holds the lock (take)."""
        yield from self._switch(variant)

    def _switch(self, variant: str):
        if variant == "fine_tuned":
            yield self.tuned
        elif self.base is self.tuned:
            with self.base.disable_adapter():
                yield self.base
        else:
            yield self.base

    def close(self) -> None:
        """Free the weights: they move to the meta device, so their memory (GPU included) is
        released even where a reference to the model lingers. Waits up to generation_timeout()
        for a generation in progress."""
        acquired = self.lock.acquire(timeout=generation_timeout())
        try:
            models = [self.base] if self.base is self.tuned else [self.base, self.tuned]
            for model in models:
                if model is not None:
                    model.to("meta")
            self.base = self.tuned = None
            self.prefix_memo.clear()
            self.closed = True
        finally:
            if acquired:
                self.lock.release()


def _stop_when_set(event: threading.Event) -> Any:
    """Stopping criteria for generate that end the generation once `event` is set."""
    import torch
    from transformers import StoppingCriteria, StoppingCriteriaList

    class StopWhenSet(StoppingCriteria):
        def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
            rows = input_ids.shape[0]
            return torch.full((rows,), event.is_set(), dtype=torch.bool, device=input_ids.device)

    return StoppingCriteriaList([StopWhenSet()])


def stalled(timeout: float, what: str) -> GenerationError:
    """The error of a stream whose model produced nothing new for `timeout` seconds."""
    return GenerationError(
        f"the model produced no new text for {timeout:g} s, so {what} stopped "
        "(FTUI_GENERATION_TIMEOUT_SECONDS sets the limit); try again, or ask for fewer tokens"
    )


def generation_error(exc: BaseException) -> GenerationError:
    if isinstance(exc, GenerationError):
        return exc
    detail = (str(exc).strip().splitlines() or [""])[0][:300]
    return GenerationError(f"generation failed: {type(exc).__name__}: {detail}")


def _check_second_copy_fits(model: Any, device: str) -> None:
    """A full fine-tune is a second model of the same size: refuse when it cannot fit."""
    import torch

    needed = sum(p.numel() * p.element_size() for p in model.parameters())
    if device.startswith("cuda"):
        free = torch.cuda.mem_get_info()[0]
    else:
        free = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
    if needed > 0.9 * free:
        raise ValueError(
            f"this run fine-tuned every weight, so comparing needs a second copy of the model "
            f"({needed / 1e9:.1f} GB) and only {free / 1e9:.1f} GB is free on {device}; free "
            "memory, or compare an adapter run (LoRA, QLoRA) which shares the base weights"
        )


def _training_shots(config: FtuiConfig, k: int) -> list[dict[str, Messages]]:
    """The first k rows of the training split, as prompt/completion message lists."""
    if k <= 0 or config.method.objective != "instruction":
        return []
    from ftui.data.training_data import load_training_rows

    train, _ = load_training_rows(config.data, config.method.objective)
    return train[:k]


def shot_from_pair(question: str, answer: str) -> dict[str, Messages]:
    """An edited few-shot example (question, answer) as a training-row shot."""
    return {
        "prompt": [{"role": "user", "content": question}],
        "completion": [{"role": "assistant", "content": answer}],
    }


def prompt_from_text(config: FtuiConfig, text: str) -> Messages:
    """A typed question as the chat the run was trained on (its system prompt first)."""
    system = config.data.system_prompt
    user = [{"role": "user", "content": text}]
    return [{"role": "system", "content": system}, *user] if system else user
