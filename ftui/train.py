"""Train one run directory in this process: `python -m ftui train runs/<id>`.

The runner (ftui/runner.py) starts this as a detached subprocess with its output going to
runs/<id>/train.log. It reads runs/<id>/config.yaml and goes
seed -> tokenizer/model -> method -> data -> SFTTrainer -> train -> save,
appending one metrics.jsonl line per logged step and a heartbeat to status.json. The final
adapter lands in runs/<id>/adapter/ in plain PEFT format (full weights: runs/<id>/model/).
Any exception marks the run failed with the traceback's last lines and exits 1.

Heavy libraries are imported at the top: this module only ever runs in the training
subprocess, never in the web app.
"""

from __future__ import annotations

import os
import resource
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback, set_seed
from trl import SFTTrainer

from ftui.config import FtuiConfig
from ftui.data.training_data import load_training_data
from ftui.models import choose_device, resolve_model_dir
from ftui.rundir import RunDir
from ftui.translate import (
    PEFT_METHODS,
    apply_method,
    model_load_kwargs,
    sft_arguments,
)

ERROR_LINES = 15  # traceback lines kept in status.json


def train_run_dir(path: str | Path, resume: bool = False) -> int:
    """Train the run in `path`; return the exit code (0 completed, 1 failed)."""
    run = RunDir(Path(path))
    now = time.time()
    run.write_status("running", pid=os.getpid(), started=now, heartbeat=now, error=None)
    try:
        train(run, resume=resume)
    except Exception:
        traceback.print_exc()
        lines = traceback.format_exc().strip().splitlines()[-ERROR_LINES:]
        run.write_status("failed", error="\n".join(lines), finished=time.time())
        return 1
    run.write_status("completed", finished=time.time())
    return 0


def train(run: RunDir, resume: bool = False) -> None:
    config = run.read_config()
    trainer = build_trainer(config, run.checkpoints, callbacks=[RunDirCallback(run)])
    trainer.train(resume_from_checkpoint=True if resume else None)

    # PEFT adapters save as adapter_config.json + adapter_model.safetensors: loadable by
    # PeftModel.from_pretrained without ftui. Other methods save the whole model.
    target = run.adapter if config.method.name in PEFT_METHODS else run.model
    trainer.model.save_pretrained(target)
    trainer.processing_class.save_pretrained(target)
    print(f"[ftui] saved to {target}")


def build_trainer(config: FtuiConfig, output_dir: Path, callbacks: list[Any]) -> SFTTrainer:
    """Tokenizer, model, method, data and TRL trainer for `config`, ready to train."""
    set_seed(config.train.seed)

    # Tokenizer and model: dtype, attention and quantization all come from the translator.
    device = choose_device(config.model.device)
    source = resolve_model_dir(config.model.name_or_path)
    tokenizer = AutoTokenizer.from_pretrained(
        source,
        revision=config.model.revision or None,
        trust_remote_code=config.model.trust_remote_code,
    )
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    load_kwargs = model_load_kwargs(config, device)
    model = AutoModelForCausalLM.from_pretrained(source, **load_kwargs)
    model = apply_method(model, config)

    train_data, eval_data = load_training_data(config.data)
    print(f"[ftui] {len(train_data)} training rows, {len(eval_data or [])} validation rows")

    args = sft_arguments(
        config,
        output_dir=output_dir,
        device=device,
        dtype=load_kwargs["dtype"],
        columns=train_data.column_names,
        has_validation=eval_data is not None,
    )
    return SFTTrainer(
        model=model,
        args=args,
        train_dataset=train_data,
        eval_dataset=eval_data,
        processing_class=tokenizer,
        callbacks=callbacks,
    )


class RunDirCallback(TrainerCallback):
    """Appends each log step to metrics.jsonl and beats the heart in status.json."""

    def __init__(self, run: RunDir) -> None:
        self.run = run
        self.started = time.perf_counter()
        self.last_time = self.started
        self.last_tokens = 0.0

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.started = self.last_time = time.perf_counter()  # after model and data loading

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.run.heartbeat()

    def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kwargs: Any) -> None:
        if not state.is_world_process_zero or not logs:
            return
        now = time.perf_counter()
        record: dict[str, Any] = {"step": state.global_step}
        record.update({k: v for k, v in logs.items() if isinstance(v, (int, float))})
        tokens = logs.get("num_tokens")
        if tokens is not None and "loss" in logs:
            if tokens > self.last_tokens:  # TRL's count restarts when a run is resumed
                seconds = max(now - self.last_time, 1e-9)
                record["tokens_per_second"] = (tokens - self.last_tokens) / seconds
            self.last_time, self.last_tokens = now, tokens
        record["elapsed"] = now - self.started
        record["memory_bytes"] = _peak_memory_bytes()
        self.run.append_metrics(record)


def _peak_memory_bytes() -> int:
    """Peak CUDA memory on a GPU, else the process's peak resident memory."""
    if torch.cuda.is_available():
        return int(torch.cuda.max_memory_allocated())
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


if __name__ == "__main__":
    sys.exit(train_run_dir(sys.argv[1]))
