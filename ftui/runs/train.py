"""Train one run directory in this process: `python -m ftui train runs/<id>`.

The runner (ftui/runs/runner.py) starts this as a detached subprocess with its output going to
runs/<id>/train.log. It reads runs/<id>/config.yaml and goes
seed -> tokenizer/model -> method -> data -> SFTTrainer (DPOTrainer for preference pairs,
KTOTrainer for answers labelled good or bad) -> train -> save,
appending one metrics.jsonl line per logged step and a heartbeat to status.json. The final
adapter lands in runs/<id>/adapter/ in plain PEFT format (full weights: runs/<id>/model/).
Any exception marks the run failed with the traceback's last lines and exits 1; a full disk
("No space left on device") removes the checkpoint it was writing and says so in plain words.

Heavy libraries are imported at the top: this module only ever runs in the training
subprocess, never in the web app.
"""

from __future__ import annotations

import os
import resource
import shutil
import sys
import time
import traceback
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import EarlyStoppingCallback, TrainerCallback, set_seed
from trl import DPOTrainer, KTOTrainer, SFTTrainer

from ftui.config import FtuiConfig
from ftui.data.training_data import load_training_data
from ftui.models import choose_device, load_model
from ftui.runs.memory_choices import choose_memory_settings, truncate_rows
from ftui.runs.run_inputs import fill_in_hub_commit
from ftui.runs.rundir import RunDir
from ftui.runs.runner import disk_full_message, is_disk_full, process_start_time
from ftui.translate import (
    apply_method,
    dpo_arguments,
    kto_arguments,
    model_load_kwargs,
    sft_arguments,
    uses_peft,
)

ERROR_LINES = 15  # traceback lines kept in status.json


# Deprecation notices from the libraries would crowd the log tail the Train tab shows.
warnings.filterwarnings("ignore", category=FutureWarning)


def train_run_dir(path: str | Path, resume: bool = False) -> int:
    """Train the run in `path`; return the exit code (0 completed or cancelled, 1 failed).

    With several processes (torchrun, accelerate launch) only rank 0 writes status.json.
    """
    run = RunDir(Path(path))
    main = _is_main_process()
    world = os.environ.get("WORLD_SIZE", "1")
    print(f"[ftui] process {os.environ.get('RANK', '0')} of {world}", flush=True)
    now = time.time()
    if main:
        pid = os.getpid()
        run.write_status(
            "running", pid=pid, pid_started=process_start_time(pid), started=now, heartbeat=now,
            error=None,
        )  # fmt: skip
    try:
        outcome = train(run, resume=resume)
    except torch.OutOfMemoryError:
        traceback.print_exc()
        if main:
            run.write_status("failed", error=_out_of_memory_message(run), finished=time.time())
        return 1
    except Exception as exc:
        traceback.print_exc()
        if is_disk_full(exc):
            _fail_on_full_disk(run, main)
            return 1
        lines = traceback.format_exc().strip().splitlines()[-ERROR_LINES:]
        if main:
            run.write_status("failed", error="\n".join(lines), finished=time.time())
        return 1
    if main:
        run.write_status(outcome.state, error=outcome.note, finished=time.time())
    return 0


def _fail_on_full_disk(run: RunDir, main: bool) -> None:
    """Free the half-written checkpoint (the last complete one stays), then say so plainly."""
    if not main:
        return
    for folder in run.incomplete_checkpoints():
        shutil.rmtree(folder, ignore_errors=True)
    try:
        run.write_status("failed", error=disk_full_message(run), finished=time.time())
    except OSError:  # not even status.json fits: the supervisor reads train.log instead
        print(f"[ftui] {disk_full_message(run)}", flush=True)


@dataclass
class Outcome:
    state: str  # completed or cancelled
    note: str | None = None


def train(run: RunDir, resume: bool = False) -> Outcome:
    """Train, save the adapter (or model), and say how it ended."""
    config = run.read_config()
    checkpoint = _checkpoint_to_resume(run) if resume else None
    stopper = RunDirCallback(run)
    trainer = build_trainer(config, run.checkpoints, callbacks=[stopper])
    if _is_main_process():
        fill_in_hub_commit(run, config.model)  # pins a Hub model downloaded just now
    trainer.train(resume_from_checkpoint=checkpoint)

    # PEFT adapters save as adapter_config.json + adapter_model.safetensors: loadable by
    # PeftModel.from_pretrained without ftui. Other methods save the whole model.
    # save_model writes from rank 0 only and unwraps DDP/FSDP.
    target = run.adapter if uses_peft(config.method.name) else run.model
    trainer.save_model(str(target))
    if _is_main_process():
        trainer.processing_class.save_pretrained(target)
    print(f"[ftui] saved to {target}", flush=True)
    if stopper.cancelled:
        step = trainer.state.global_step
        return Outcome(
            "cancelled",
            f"Cancelled at step {step} of {trainer.state.max_steps}; what was trained so far "
            f"is saved in {target.name}/.",
        )
    return Outcome("completed")


def _checkpoint_to_resume(run: RunDir) -> str | None:
    """The last complete checkpoint; later metrics lines are dropped (they will be redone)."""
    found = run.last_checkpoint()
    if _is_main_process():
        run.keep_metrics_up_to(found[1] if found else 0)
    if found is None:
        print("[ftui] no complete checkpoint: starting from the beginning", flush=True)
        return None
    print(f"[ftui] resuming from {found[0].name}", flush=True)
    return str(found[0])


def _is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def _out_of_memory_message(run: RunDir) -> str:
    """Plain words and the estimator's fixes for an out-of-memory crash."""
    lines = [
        "Out of GPU memory: this configuration needs more memory than the GPU has free.",
    ]
    try:
        from ftui.estimate.gpus import local_gpu
        from ftui.estimate.plan import suggest_fixes
        from ftui.params import load_architecture

        config = run.read_config()
        gpu = local_gpu()
        if gpu is not None:
            fixes = suggest_fixes(config, load_architecture(config.model.name_or_path), gpu)
            lines += [f"- {fix}" for fix in fixes]
    except Exception as exc:  # the advice is a bonus; never hide the real error behind it
        lines.append(f"(no estimator advice: {exc})")
    if len(lines) == 1:
        lines.append("- Lower the batch size or max length, or turn gradient checkpointing on.")
    return "\n".join(lines)


def build_trainer(config: FtuiConfig, output_dir: Path, callbacks: list[Any]) -> Any:
    """Tokenizer, model, method, data and TRL trainer (SFT, or DPO for preference pairs).
    The model's dtype, attention and quantization come from the translator; on a GPU,
    checkpointing and offloading may be turned on for this process (`_fit_to_free_memory`)."""
    set_seed(config.train.seed)
    device = _process_device(config.model.device)
    config = _fit_to_free_memory(config, device)
    loaded = load_model(config.model, device, model_load_kwargs(config, device))
    model = apply_method(loaded.model, config)

    train_data, eval_data = load_training_data(
        config.data, config.method.objective, loaded.tokenizer
    )
    print(f"[ftui] {len(train_data)} training rows, {len(eval_data or [])} validation rows")
    shared = dict(output_dir=output_dir, device=device, dtype=loaded.dtype)
    if config.train.early_stopping_patience > 0 and eval_data is not None:
        callbacks = [*callbacks, EarlyStoppingCallback(config.train.early_stopping_patience)]
    if config.method.objective == "dpo":
        # With a PEFT model and no ref_model, TRL uses the model with its adapter disabled as
        # the reference: one copy of the base weights.
        return DPOTrainer(
            model=model,
            args=dpo_arguments(config, has_validation=eval_data is not None, **shared),
            train_dataset=train_data,
            eval_dataset=eval_data,
            processing_class=loaded.tokenizer,
            callbacks=callbacks,
        )
    if config.method.objective == "kto":
        data = (train_data, eval_data)
        return _kto_trainer(config, model, loaded.tokenizer, data, callbacks, shared)
    args = sft_arguments(
        config,
        columns=train_data.column_names,
        has_validation=eval_data is not None,
        **shared,
    )
    trainer = SFTTrainer(
        model=model,
        args=args,
        train_dataset=train_data,
        eval_dataset=eval_data,
        processing_class=loaded.tokenizer,
        callbacks=callbacks,
    )
    if args.padding_free and not args.packing:  # TRL refuses max_length here: cut rows now
        print("[ftui] padding-free batches (flash attention): no padding is computed")
        trainer.train_dataset = truncate_rows(trainer.train_dataset, config.data.max_length)
        trainer.eval_dataset = truncate_rows(trainer.eval_dataset, config.data.max_length)
    return trainer


def _kto_trainer(
    config: FtuiConfig, model: Any, tokenizer: Any, data: tuple, callbacks: list, shared: dict
) -> Any:
    """KTOTrainer for answers labelled good or bad, its desirable weight balancing the two
    kinds. With a PEFT model and no ref_model, TRL's reference is a frozen copy of the fresh
    adapter (the base's behaviour): one copy of the base weights."""
    train_data, eval_data = data
    good = sum(train_data["label"])
    bad = len(train_data) - good
    weight = bad / good if good and bad else 1.0  # the KTO paper: weight x good ~ bad
    print(f"[ftui] KTO: {good} good and {bad} bad answers; desirable_weight {weight:.2f}")
    args = kto_arguments(config, has_validation=eval_data is not None, **shared)
    args.desirable_weight = weight
    return KTOTrainer(
        model=model,
        args=args,
        train_dataset=train_data,
        eval_dataset=eval_data,
        processing_class=tokenizer,
        callbacks=callbacks,
    )


def _fit_to_free_memory(config: FtuiConfig, device: str) -> FtuiConfig:
    """On a GPU, the config to train given the estimate and this GPU's free memory (see
    ftui.runs.memory_choices); each change is said in train.log. CPU runs train as written,
    and so does a run the estimator cannot size (the reason is logged)."""
    if not device.startswith("cuda"):
        return config
    from ftui.params import load_architecture

    free_bytes, _ = torch.cuda.mem_get_info(torch.device(device))
    try:
        hf_config = load_architecture(config.model.name_or_path, config.model.trust_remote_code)
        choice = choose_memory_settings(config, hf_config, free_bytes)
    except Exception as exc:  # a bonus: never fail the run over it
        print(f"[ftui] memory settings kept as written (no estimate: {exc})", flush=True)
        return config
    for note in choice.notes:
        print(f"[ftui] {note}", flush=True)
    return choice.config


def _process_device(preference: str) -> str:
    """The device this process trains on; with several processes (torchrun), its own GPU."""
    device = choose_device(preference)
    if device == "cuda" and "LOCAL_RANK" in os.environ:
        device = f"cuda:{os.environ['LOCAL_RANK']}"
    return device


class RunDirCallback(TrainerCallback):
    """Appends each log step to metrics.jsonl, beats the heart, and stops on a cancel request.

    Every process checks runs/<id>/cancel at each step end; with several processes they agree
    (all-reduce) so all stop at the same step.
    """

    def __init__(self, run: RunDir) -> None:
        self.run = run
        self.main = _is_main_process()
        self.cancelled = False
        self.started = time.perf_counter()
        self.last_time = self.started
        self.last_tokens = 0.0

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.started = self.last_time = time.perf_counter()  # after model and data loading
        if self.main:
            self.run.write_status("running", max_steps=state.max_steps)

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.main:
            self.run.heartbeat()
        if _agreed(self.run.cancel_requested()):
            self.cancelled = True
            control.should_training_stop = True
            control.should_save = False  # the final save follows at once

    def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kwargs: Any) -> None:
        if not state.is_world_process_zero or not logs:
            return
        now = time.perf_counter()
        record: dict[str, Any] = {"step": state.global_step, "max_steps": state.max_steps}
        record.update({k: v for k, v in logs.items() if isinstance(v, (int, float))})
        tokens = logs.get("num_tokens")
        if tokens is not None and "loss" in logs:
            if tokens > self.last_tokens:  # TRL's count restarts when a run is resumed
                seconds = max(now - self.last_time, 1e-9)
                record["tokens_per_second"] = (tokens - self.last_tokens) / seconds
            self.last_time, self.last_tokens = now, tokens
        record["elapsed"] = now - self.started
        record["memory_bytes"] = _peak_memory_bytes()
        if torch.cuda.is_available():  # what the caching allocator holds, for headroom
            record["memory_reserved_bytes"] = int(torch.cuda.max_memory_reserved())
        self.run.append_metrics(record)


def _agreed(flag: bool) -> bool:
    """True on every process when any process saw `flag` (no-op without torch.distributed)."""
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return flag
    value = torch.tensor([1.0 if flag else 0.0])
    if torch.distributed.get_backend() == "nccl":
        value = value.cuda()
    torch.distributed.all_reduce(value, op=torch.distributed.ReduceOp.MAX)
    return bool(value.item())


def _peak_memory_bytes() -> int:
    """Peak CUDA memory on a GPU, else the process's peak resident memory."""
    if torch.cuda.is_available():
        return int(torch.cuda.max_memory_allocated())
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


if __name__ == "__main__":
    sys.exit(train_run_dir(sys.argv[1]))
