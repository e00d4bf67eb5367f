"""Base, few-shot and fine-tuned answers from one copy of the base weights.

    compare = Comparison.load(run)                  # base model + the run's adapter
    chat = compare.chat(prompt_messages, "few_shot") # the messages that variant sees
    answers = compare.generate([chat, ...], "fine_tuned", max_new_tokens=32)

For adapter runs the fine-tuned variant is the base with the adapter enabled; base and
few-shot run inside `disable_adapter()`, so one copy of the weights serves all three. A full
fine-tune saves a whole model: it is loaded as a second model. Few-shot shows the base model
k examples from the run's training split as earlier chat turns, with the same system prompt
and chat template the run was trained with.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from ftui.config import FtuiConfig
from ftui.rundir import RunDir

VARIANTS = ("base", "few_shot", "fine_tuned")
TITLES = {"base": "Base", "few_shot": "Few-shot", "fine_tuned": "Fine-tuned"}
Messages = list[dict[str, str]]


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
    # Switching the adapter off is global to the model: one generation at a time.
    lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def load(cls, run: RunDir, shots: int | None = None) -> Comparison:
        """The run's base model with its adapter (or its saved model), on the run's device."""
        from ftui.heavy_imports import import_heavy_libraries

        import_heavy_libraries()
        from ftui.models import load_model

        config = run.read_config()
        output = run.output
        if output is None:
            raise ValueError(f"run {run.run_id} has saved no adapter or model yet")
        loaded = load_model(config.model)
        tokenizer = loaded.tokenizer
        tokenizer.padding_side = "left"  # batched generation continues each row's own end
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        if output == run.adapter:
            from peft import PeftModel

            # low_cpu_mem_usage: the adapter is created empty and filled from the file, not
            # initialised randomly first (no second copy of it while loading).
            base = PeftModel.from_pretrained(loaded.model, output, low_cpu_mem_usage=True).eval()
            tuned = base
        else:
            from transformers import AutoModelForCausalLM

            base = loaded.model
            _check_second_copy_fits(base, loaded.device)
            tuned = AutoModelForCausalLM.from_pretrained(
                output, dtype=loaded.dtype, use_safetensors=True
            ).to(loaded.device)
            tuned.eval()
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
        """Answers to several chats at once (left-padded batch); greedy unless told otherwise."""
        import torch

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

    def stream(
        self, chat: Messages, variant: str, max_new_tokens: int, **decoding: Any
    ) -> Iterator[Answer]:
        """The answer as it grows: one Answer (text so far, seconds, tokens) per new piece."""
        import torch
        from transformers import TextIteratorStreamer

        inputs = self.tokenizer.apply_chat_template(
            chat, add_generation_prompt=True, return_tensors="pt", return_dict=True
        ).to(self.device)
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)
        settings = {"do_sample": False, **decoding}

        def generate() -> None:
            with torch.inference_mode(), self.variant_model(variant) as model:
                model.generate(
                    **inputs, max_new_tokens=max_new_tokens, streamer=streamer,
                    pad_token_id=self.tokenizer.pad_token_id, **settings,
                )  # fmt: skip

        worker = threading.Thread(target=generate, daemon=True)
        started = time.perf_counter()
        worker.start()
        text = ""
        for piece in streamer:
            text += piece
            tokens = len(self.tokenizer(text, add_special_tokens=False)["input_ids"])
            yield Answer(text.strip(), time.perf_counter() - started, tokens)
        worker.join()

    @contextlib.contextmanager
    def variant_model(self, variant: str):
        """The model answering as `variant` (adapter switched off for base and few-shot)."""
        if variant not in VARIANTS:
            raise ValueError(f"unknown variant {variant!r}; one of {', '.join(VARIANTS)}")
        with self.lock:
            yield from self._switch(variant)

    def _switch(self, variant: str):
        if variant == "fine_tuned":
            yield self.tuned
        elif self.base is self.tuned:
            with self.base.disable_adapter():
                yield self.base
        else:
            yield self.base


def _check_second_copy_fits(model: Any, device: str) -> None:
    """A full fine-tune is a second model of the same size: refuse when it cannot fit."""
    import os

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


class ComparisonCache:
    """One loaded comparison at a time, shared by every browser session (one base copy)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._key: tuple[str, float] | None = None
        self._comparison: Comparison | None = None

    def get(self, run: RunDir) -> Comparison:
        output = run.output
        if output is None:
            raise ValueError(f"run {run.run_id} has saved no adapter or model yet")
        key = (str(run.path), output.stat().st_mtime)
        with self._lock:
            if self._key != key:
                self._comparison = None  # drop the old weights before loading new ones
                self._comparison = Comparison.load(run)
                self._key = key
            return self._comparison
