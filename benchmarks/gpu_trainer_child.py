"""Fresh processes of benchmarks/gpu_trainer.py: one job each, so the GPU starts empty.

    python benchmarks/gpu_trainer_child.py prepare SPEC.json   # models, data, estimates
    python benchmarks/gpu_trainer_child.py baseline SPEC.json  # a plain transformers Trainer

`prepare` builds each Llama-shaped model with random weights on the device (nothing is
downloaded; memory and speed do not depend on weight values), saves it once as a bf16
safetensors folder with a tokenizer, writes each row's data (alpaca rows longer than its max
length) and computes ftui's estimate of every row; it also names the GPU and the library
versions. `baseline` trains the same model on the same rows, tokenized to the same length,
with transformers' `Trainer` (SDPA, peft LoRA, bitsandbytes 4-bit for QLoRA rows, no fp32
upcast) and writes its peak and step times. (ftui's own part needs no wrapper here: it is
`python -m ftui train RUNFOLDER`, and the trainer logs its peaks itself.)
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import resource
import shutil
import sys
import time
from pathlib import Path
from typing import Any

LIBRARIES = ("torch", "transformers", "trl", "peft", "bitsandbytes", "accelerate", "datasets")
MODEL_MARKER = "gpu-trainer-model.json"
CHATML = (
    "{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\n' + m['content'] + "
    "'<|im_end|>\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}"
    "{% endif %}"
)


# ---------------------------------------------------------------- prepare


def prepare(spec: dict[str, Any]) -> dict[str, Any]:
    """Build the models the rows need (once per scratch folder), write the rows' data, and
    estimate every row."""
    import torch

    if spec["device"] == "cuda" and not torch.cuda.is_available():
        raise SystemExit("no CUDA GPU is visible; use --smoke to try the script on CPU")
    scratch = Path(spec["scratch"])
    tokenizer = write_tokenizer(spec["tokenizer"], scratch / "tokenizer")
    models = {}
    for shape, dims in spec["shapes"].items():
        folder = scratch / "models" / shape
        started = time.perf_counter()
        built = build_model(dims, folder, scratch / "tokenizer", tokenizer, spec["device"])
        models[shape] = {"path": str(folder), "built": built,
                         "seconds": round(time.perf_counter() - started, 1)}  # fmt: skip
    for name, (count, tokens) in spec["data"].items():
        write_rows(Path(spec["work"]) / f"{name}.jsonl", count, tokens)
    estimates = {
        name: estimate_row(dotted, spec["device"]) for name, dotted in spec["rows"].items()
    }
    return {"environment": environment(spec["device"]), "tokenizer": tokenizer,
            "models": models, "estimates": estimates}  # fmt: skip


def environment(device: str) -> dict[str, Any]:
    """The GPU (or this CPU) and the versions of the libraries the trainers use."""
    import platform

    import torch

    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    versions["cuda"] = torch.version.cuda
    versions["python"] = platform.python_version()
    if device == "cuda":
        properties = torch.cuda.get_device_properties(0)
        gpu = {"name": torch.cuda.get_device_name(0), "memory_bytes": properties.total_memory}
    else:
        gpu = {"name": "cpu", "memory_bytes": None, "cores": os.cpu_count()}
    return {"gpu": gpu, "versions": versions}


def write_tokenizer(choice: str, folder: Path) -> str:
    """The rows' tokenizer in `folder`: a tokenizer folder named by `choice`, the bundled
    SmolLM2 model's ('auto', when it is converted on this machine), or a byte-level one built
    here ('bytes', and 'auto' elsewhere: a GPU machine has no bundled model and no network).
    Every id is far below Llama 3's vocabulary, which is all the rows need."""
    from transformers import AutoTokenizer

    source = _tokenizer_source(choice)
    shutil.rmtree(folder, ignore_errors=True)
    if source is None:
        byte_level_tokenizer().save_pretrained(folder)
        return "byte-level (built offline, 256 bytes + 3 ChatML specials)"
    AutoTokenizer.from_pretrained(source).save_pretrained(folder)
    return f"copied from {source}"


def _tokenizer_source(choice: str) -> Path | None:
    if choice == "bytes":
        return None
    if choice != "auto":
        return Path(choice)
    from ftui.models import bundled_model_dir, is_bundled_model_ready

    return bundled_model_dir() if is_bundled_model_ready() else None


def byte_level_tokenizer() -> Any:
    """One token per byte (no merges) and ChatML's special tokens, from `tokenizers` alone."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    core = Tokenizer(models.BPE(vocab={ch: i for i, ch in enumerate(alphabet)}, merges=[]))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core,
        bos_token="<|im_start|>",
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
    )
    tokenizer.chat_template = CHATML
    return tokenizer


def build_model(dims: dict, folder: Path, tokenizer_dir: Path, note: str, device: str) -> bool:
    """A Llama with `dims` and random bf16 weights made on `device`, saved once in `folder`
    with the tokenizer. Returns False when an identical folder was already there."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    wanted = {"dims": dims, "tokenizer": note}
    marker = folder / MODEL_MARKER
    if marker.is_file() and json.loads(marker.read_text()) == wanted:
        return False
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    if len(tokenizer) > dims["vocab_size"]:
        raise SystemExit(f"the tokenizer has {len(tokenizer)} ids, the model {dims['vocab_size']}")
    config = LlamaConfig(
        **dims,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    with torch.device(device):
        model = LlamaForCausalLM._from_config(config, dtype=torch.bfloat16)
    shutil.rmtree(folder, ignore_errors=True)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    marker.write_text(json.dumps(wanted))
    return True


def write_rows(path: Path, count: int, tokens: int) -> None:
    """Alpaca rows whose answers run past `tokens` for any tokenizer (a word is >= 1 token),
    so every batch is full: the worst case a user meets."""
    answer = " ".join(f"word{i % 7}" for i in range(tokens + 64))
    rows = [{"instruction": f"Repeat the words, case {i}.", "output": answer} for i in range(count)]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")


def estimate_row(dotted: dict[str, Any], device: str) -> dict[str, Any]:
    """What `ftui estimate` says for the row's config (the dataset is not counted)."""
    from ftui.cli.estimate_view import estimate_config
    from ftui.config import config_from_dotted

    config = config_from_dotted(dotted)
    estimate = estimate_config(config, device=device, gpu_name=None, dataset_tokens=0, price=None)
    keys = ("peak_memory_bytes", "required_memory_bytes", "components", "seconds_per_step",
            "tokens_per_second", "assumptions")  # fmt: skip
    found = estimate.to_dict()
    return {key: found[key] for key in keys if key in found}


# ---------------------------------------------------------------- the plain Trainer


def baseline(spec: dict[str, Any]) -> dict[str, Any]:
    """Train the row with transformers' Trainer; out of memory is a result, not a crash."""
    import torch

    try:
        trainer, timer = plain_trainer(spec)
        trainer.train()
    except torch.OutOfMemoryError as exc:
        return {"error": f"out of memory: {str(exc).splitlines()[0][:300]}", **_peaks(spec)}
    return {"step_seconds": timer.seconds, **_peaks(spec)}


def plain_trainer(spec: dict[str, Any]) -> tuple[Any, Any]:
    """The Trainer a user writes by hand: SDPA, bf16 on CUDA, peft LoRA on all linear layers,
    4-bit NF4 with double quantization for QLoRA, the row's checkpointing; no fp32 upcast."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig, Trainer, TrainingArguments
    from transformers import default_data_collator as collate

    cuda = spec["device"] == "cuda"
    dtype = torch.bfloat16 if cuda else torch.float32
    load: dict[str, Any] = {"dtype": dtype, "attn_implementation": "sdpa"}
    if spec["method"] == "qlora":
        load["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=dtype,
        )  # fmt: skip
        load["device_map"] = {"": spec["device"]}
    model = AutoModelForCausalLM.from_pretrained(spec["model"], **load)
    lora = LoraConfig(task_type="CAUSAL_LM", r=spec["lora_r"], lora_alpha=spec["lora_alpha"],
                      lora_dropout=0.0, target_modules="all-linear")  # fmt: skip
    model = get_peft_model(model, lora)
    args = TrainingArguments(
        output_dir=spec["output_dir"], max_steps=spec["steps"], learning_rate=1e-4,
        per_device_train_batch_size=spec["batch_size"], optim="adamw_torch",
        gradient_checkpointing=spec["gradient_checkpointing"],
        gradient_checkpointing_kwargs={"use_reentrant": False},
        bf16=cuda, use_cpu=not cuda, logging_steps=1, save_strategy="no", report_to=[],
        remove_unused_columns=False, dataloader_drop_last=True,
    )  # fmt: skip
    timer = step_timer(cuda)
    rows = tokenized_rows(spec)
    return Trainer(model=model, args=args, train_dataset=rows, data_collator=collate,
                   callbacks=[timer]), timer  # fmt: skip


def tokenized_rows(spec: dict[str, Any]) -> list[dict[str, list[int]]]:
    """The benchmark's rows through the model's chat template, cut to exactly `tokens`."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(spec["model"])
    rows = []
    for line in Path(spec["data"]).read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        chat = [{"role": "user", "content": row["instruction"]},
                {"role": "assistant", "content": row["output"]}]  # fmt: skip
        text = tokenizer.apply_chat_template(chat, tokenize=False)
        ids = tokenizer(text, add_special_tokens=False)["input_ids"][: spec["tokens"]]
        if len(ids) < spec["tokens"]:
            raise ValueError(f"a row has {len(ids)} tokens, fewer than {spec['tokens']}")
        rows.append({"input_ids": ids, "attention_mask": [1] * len(ids), "labels": ids})
    return rows


def step_timer(cuda: bool) -> Any:
    """A TrainerCallback that keeps each optimizer step's wall time, end to end as ftui's
    metrics count it (batch loading included), with the GPU's work finished."""
    import torch
    from transformers import TrainerCallback

    class StepTimer(TrainerCallback):
        def __init__(self) -> None:
            self.seconds: list[float] = []
            self.last = 0.0

        def _now(self) -> float:
            if cuda:
                torch.cuda.synchronize()
            return time.perf_counter()

        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.last = self._now()

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            now = self._now()
            self.seconds.append(round(now - self.last, 4))
            self.last = now

    return StepTimer()


def _peaks(spec: dict[str, Any]) -> dict[str, Any]:
    import torch

    if spec["device"] == "cuda":
        return {"peak_allocated_bytes": torch.cuda.max_memory_allocated(),
                "peak_reserved_bytes": torch.cuda.max_memory_reserved()}  # fmt: skip
    return {"peak_allocated_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}


def main() -> None:
    job, target = sys.argv[1], sys.argv[2]
    spec = json.loads(Path(target).read_text(encoding="utf-8"))
    result = prepare(spec) if job == "prepare" else baseline(spec)
    Path(spec["out"]).write_text(json.dumps(result, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
