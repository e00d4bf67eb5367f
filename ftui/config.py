"""The config tree: the single source of truth for a fine-tuning job.

Everything ftui does is described by one `FtuiConfig` — model, data, method, train, eval.
The UI widgets take their defaults, choices and help text from here, presets are YAML files
of this tree, the CLI reads them, and the training subprocess (later) gets the resolved tree
as `runs/<id>/config.yaml`.

Help text lives once, in each field's `metadata["help"]`; `field_help()` reads it back for
UI `info=` strings and CLI help. Every number carries its allowed range there too
(`metadata["bounds"]`, read by `field_bounds()`), checked when a section is made and again by
`FtuiConfig.check()`, so YAML, the CLI and the UI share one set of rules. Loading is strict:
an unknown key, a wrong type or a number out of range is an error that names the dotted key
(`train.epochs: -1 is out of range; use a number from 0.01 to 100, e.g. 3`).
`check_runnable()` adds what depends on this machine (no more processes than its devices).
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import os
import shutil
import subprocess
import sys
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import yaml

DEFAULT_MODEL = "default"  # the bundled SmolLM2-135M-Instruct
MAX_SEED = 2**32 - 1  # numpy's seeds are 32-bit
MAX_PROCESSES = 64  # a hard ceiling; check_runnable() also holds it to this machine's devices

DataFormat = Literal[
    "auto", "alpaca", "chat", "sharegpt", "prompt_completion", "text", "preference"
]
Objective = Literal["instruction", "domain", "dpo"]
MethodName = Literal[
    "full",
    "freeze",
    "lora",
    "qlora",
    "lora_8bit",
    "ia3",
    "prefix",
    "prompt",
    "llama_adapter",
    "bottleneck",
    "few_shot",
]
Optimizer = Literal["adamw_torch", "adamw_8bit", "sgd", "adafactor"]
Attention = Literal["auto", "eager", "sdpa", "flash_attention_2"]


class ConfigError(ValueError):
    """A config file or value is invalid; the message names the key and what to do."""


@dataclass(frozen=True)
class Bounds:
    """The allowed range of a number field; `also` holds special values outside it, with
    what they mean (e.g. max_steps -1 = run all epochs). Issue 10's widgets read it too."""

    low: float
    high: float
    low_open: bool = False  # the value must be above `low`, not equal to it
    high_open: bool = False  # the value must be below `high`
    also: tuple[tuple[float, str], ...] = ()
    example: float | None = None

    def allows(self, value: float) -> bool:
        if any(value == special for special, _ in self.also):
            return True
        above = value > self.low if self.low_open else value >= self.low
        below = value < self.high if self.high_open else value <= self.high
        return above and below

    def describe(self, whole: bool) -> str:
        """'a whole number from 1 to 1,024', 'a number above 0 and at most 1', ..."""
        low, high = _shown_number(self.low), _shown_number(self.high)
        if not (self.low_open or self.high_open):
            span = f"from {low} to {high}"
        else:
            start = f"above {low}" if self.low_open else f"at least {low}"
            span = f"{start} and " + (f"below {high}" if self.high_open else f"at most {high}")
        text = f"{'a whole number' if whole else 'a number'} {span}"
        specials = [f"{_shown_number(value)} ({meaning})" for value, meaning in self.also]
        return " or ".join([*specials, text])


def _shown_number(value: float) -> str:
    """2e-4 -> '0.0002', 1.0 -> '1', 1000000 -> '1,000,000' (for messages, not YAML)."""
    if isinstance(value, float) and not value.is_integer():
        return repr(value)
    return f"{int(value):,}"


def _field(
    default: Any,
    help: str,
    *,
    min: float | None = None,
    max: float | None = None,
    min_open: bool = False,
    max_open: bool = False,
    also: tuple[tuple[float, str], ...] = (),
    example: float | None = None,
) -> Any:
    """A dataclass field carrying its help text and, for numbers, its allowed range
    (`min`..`max`, either end open); mutable defaults are copied per instance."""
    metadata: dict[str, Any] = {"help": help}
    if min is not None and max is not None:
        metadata["bounds"] = Bounds(min, max, min_open, max_open, also, example)
    if isinstance(default, (dict, list)):
        return field(default_factory=lambda: type(default)(default), metadata=metadata)
    return field(default=default, metadata=metadata)


class _Section:
    """A config section whose number fields are checked against their bounds on creation
    and again by FtuiConfig.check() (which catches values changed in place)."""

    key: ClassVar[str] = ""

    def __post_init__(self) -> None:
        self.check_bounds()

    def check_bounds(self) -> None:
        hints = _type_hints(type(self))
        for item in dataclasses.fields(self):  # type: ignore[arg-type]
            bounds = item.metadata.get("bounds")
            if bounds is not None:
                whole = hints[item.name] is int
                _check_number(f"{self.key}.{item.name}", getattr(self, item.name), bounds, whole)


@functools.cache
def _type_hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _check_number(key: str, value: Any, bounds: Bounds, whole: bool) -> None:
    kind = "a whole number" if whole else "a number"
    if isinstance(value, bool) or not isinstance(value, int if whole else (int, float)):
        raise ConfigError(f"{key}: expected {kind}, got {value!r}")
    if not bounds.allows(value):
        example = bounds.example if bounds.example is not None else _default_of(key)
        raise ConfigError(
            f"{key}: {_shown_value(value)} is out of range; use {bounds.describe(whole)}, "
            f"e.g. {_shown_value(example)}"
        )


def _shown_value(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return repr(value) if isinstance(value, float) else str(value)


def _default_of(key: str) -> Any:
    section_name, name = key.split(".", 1)
    section = _type_hints(FtuiConfig)[section_name]
    return {f.name: f for f in dataclasses.fields(section)}[name].default


@dataclass
class ModelConfig(_Section):
    key: ClassVar[str] = "model"

    name_or_path: str = _field(
        DEFAULT_MODEL,
        "Model to fine-tune: 'default' (bundled SmolLM2-135M-Instruct), a local folder "
        "or a Hugging Face Hub id.",
    )
    revision: str | None = _field(None, "Hub revision (branch, tag or commit); empty = main.")
    device: Literal["auto", "cpu", "cuda"] = _field(
        "auto", "Where the model runs: auto picks CUDA when present, else CPU."
    )
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = _field(
        "auto", "Weight dtype: auto = bfloat16 on CUDA GPUs that support it, else float32."
    )
    attn_implementation: Attention = _field(
        "auto", "Attention kernel: auto = sdpa; eager materialises the full attention matrix."
    )
    trust_remote_code: bool = _field(
        False,
        "Run Python code shipped with the model repository. Off by default: only turn it "
        "on for repositories you trust.",
    )


@dataclass
class DataConfig(_Section):
    key: ClassVar[str] = "data"

    path: str = _field(
        "", "Training data: a file in the workspace, a local path or a Hub dataset id."
    )
    format: DataFormat = _field("auto", "Dataset layout; auto detects it from the columns.")
    columns: dict[str, str] = _field(
        {},
        "Column mapping when detection is unsure, role -> column name "
        "(e.g. instruction: question, output: answer).",
    )
    validation_path: str = _field(
        "", "Held-out validation file; empty = split it off the training data."
    )
    validation_fraction: float = _field(
        0.1,
        "Share of rows held out for validation when no validation file is given.",
        min=0, max=1, max_open=True,
    )  # fmt: skip
    max_length: int = _field(
        1024, "Maximum tokens per example; longer examples are truncated.", min=8, max=131072
    )
    system_prompt: str = _field(
        "", "System prompt put before every example; empty = the model's default."
    )
    seed: int = _field(42, "Seed for shuffling and the validation split.", min=0, max=MAX_SEED)


@dataclass
class MethodConfig(_Section):
    key: ClassVar[str] = "method"

    name: MethodName = _field("lora", "Fine-tuning method; few_shot is the no-training baseline.")
    objective: Objective = _field(
        "instruction",
        "instruction = loss on responses only; domain = continued pretraining on raw text; "
        "dpo = preference pairs.",
    )
    lora_r: int = _field(16, "LoRA rank: size of the low-rank update.", min=1, max=1024)
    lora_alpha: int = _field(
        32, "LoRA scaling numerator (alpha / r scales the update).", min=1, max=4096
    )
    lora_dropout: float = _field(
        0.0,
        "Dropout on the LoRA input. 0 saves memory: any dropout keeps a copy of every adapted "
        "layer's input for the backward pass.",
        min=0, max=1, max_open=True, example=0.05,
    )  # fmt: skip
    target_modules: str = _field(
        "all-linear", "Layers that get adapters: all-linear or a comma list (q_proj,v_proj)."
    )
    use_dora: bool = _field(False, "DoRA: learn magnitude and direction separately (slower).")
    use_rslora: bool = _field(False, "rsLoRA: scale by alpha/sqrt(r), steadier at high rank.")
    quant_type: Literal["nf4", "fp4"] = _field("nf4", "4-bit data type for QLoRA weights.")
    double_quant: bool = _field(True, "Quantize the 4-bit scaling constants too (~0.4 bit/param).")
    compute_dtype: Literal["auto", "bfloat16", "float16", "float32"] = _field(
        "auto", "Dtype the 4/8-bit layers compute in; auto = the model's training dtype."
    )
    freeze_trainable_layers: int = _field(
        2,
        "freeze: how many of the top transformer blocks are trained (the rest stay frozen).",
        min=0, max=1000,
    )  # fmt: skip
    num_virtual_tokens: int = _field(
        20, "prefix / prompt tuning: learned virtual tokens put before every input.",
        min=1, max=1024,
    )  # fmt: skip
    adapter_len: int = _field(
        10, "LLaMA-Adapter: learned prompt length per adapted layer.", min=1, max=1024
    )
    adapter_layers: int = _field(
        8, "LLaMA-Adapter: how many top layers get adaption prompts.", min=1, max=1024
    )
    bottleneck_size: int = _field(
        64,
        "Bottleneck adapters: width of the down/up projection added after each block's MLP.",
        min=1, max=65536,
    )  # fmt: skip
    dpo_beta: float = _field(
        0.1,
        "DPO: how far the model may move from the reference (the base); higher = stay closer.",
        min=0, max=100, min_open=True,
    )  # fmt: skip


@dataclass
class TrainConfig(_Section):
    key: ClassVar[str] = "train"

    epochs: float = _field(1.0, "Passes over the training data.", min=0.01, max=100, example=3)
    max_steps: int = _field(
        -1,
        "Stop after this many optimizer steps; -1 = run all epochs.",
        min=1, max=1_000_000, also=((-1, "run all epochs"),), example=100,
    )  # fmt: skip
    learning_rate: float = _field(2e-4, "Peak learning rate.", min=0, max=1, min_open=True)
    batch_size: int = _field(8, "Examples per device per step.", min=1, max=4096)
    gradient_accumulation: int = _field(
        1, "Steps whose gradients are summed per update.", min=1, max=1024
    )
    gradient_checkpointing: bool = _field(
        False, "Recompute activations in the backward pass: less memory, ~30% slower."
    )
    optimizer: Optimizer = _field(
        "adamw_torch",
        "adamw_torch keeps two fp32 states per trained weight; adamw_8bit (bitsandbytes) "
        "keeps them in 8 bits; sgd keeps none (momentum off); adafactor factorises them.",
    )
    warmup_ratio: float = _field(
        0.05, "Share of steps spent warming the learning rate up.", min=0, max=1, max_open=True
    )
    eval_every: int = _field(
        20, "Evaluate on the validation split every N steps.", min=1, max=1_000_000
    )
    save_every: int = _field(50, "Save a checkpoint every N steps.", min=1, max=1_000_000)
    save_total_limit: int = _field(
        2,
        "How many checkpoints to keep: older ones are deleted as new ones are saved (the "
        "best one is kept too when early stopping is on).",
        min=1, max=1000,
    )  # fmt: skip
    seed: int = _field(42, "Seed for initialisation and data order.", min=0, max=MAX_SEED)
    early_stopping_patience: int = _field(
        0,
        "Stop when eval loss has not improved for this many evaluations; 0 = never.",
        min=0, max=1000, example=3,
    )  # fmt: skip
    num_processes: int = _field(
        1,
        "Training processes: one per GPU (DDP through accelerate), or CPU processes "
        "(torchrun with the gloo backend); at most the GPUs (or CPU cores) this machine has.",
        min=1, max=MAX_PROCESSES,
    )  # fmt: skip
    accelerate_config: str = _field(
        "",
        "An accelerate config file for several GPUs or nodes (FSDP, DeepSpeed); "
        "empty = DDP with num_processes.",
    )
    report_to: str = _field(
        "none", "Extra loggers, e.g. 'tensorboard' or 'wandb,mlflow' (must be installed)."
    )


@dataclass
class EvalConfig(_Section):
    key: ClassVar[str] = "eval"

    few_shot_k: int = _field(
        3, "Examples from the training split shown to the few-shot baseline.", min=0, max=32
    )
    max_new_tokens: int = _field(128, "Longest generated answer.", min=1, max=4096)
    limit: int = _field(50, "Validation rows scored in a batch evaluation.", min=1, max=100_000)


@dataclass
class FtuiConfig:
    name: str = _field("my-run", "A short name for runs made from this config.")
    description: str = _field("", "What this config is for.")
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    method: MethodConfig = field(default_factory=MethodConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    def __post_init__(self) -> None:
        self.check()

    def check(self) -> None:
        """Every field's bounds and the rules that span sections; call again after changing
        fields in place (a setattr skips the checks done on creation)."""
        for section in (self.model, self.data, self.method, self.train, self.eval):
            section.check_bounds()
        train = self.train
        if train.early_stopping_patience > 0 and train.save_every % train.eval_every:
            raise ConfigError(
                "train.early_stopping_patience keeps the best checkpoint, so train.save_every "
                f"({train.save_every}) must be a multiple of train.eval_every ({train.eval_every})"
            )
        if self.method.name == "prefix" and self.train.gradient_checkpointing:
            raise ConfigError(
                "method.name prefix does not work with train.gradient_checkpointing (peft "
                "refuses it); turn checkpointing off, or use prompt tuning or LoRA"
            )

    def check_runnable(self) -> None:
        """check(), plus the rules that depend on this machine: call it where a run is queued
        or launched. Kept out of loading, so a run written on a bigger machine stays readable."""
        self.check()
        processes = self.train.num_processes
        available, kind = count_devices(self.model.device)
        if available == 0:
            raise ConfigError(
                "model.device is cuda, but this machine shows no CUDA GPU; set model.device "
                "to auto or cpu"
            )
        if processes > available:
            raise ConfigError(
                f"train.num_processes: {processes} is more than the {available} {kind} this "
                f"machine has; use a whole number from 1 to {available}, e.g. 1"
            )


# ---------------------------------------------------------------- this machine's devices


def count_devices(device: str) -> tuple[int, str]:
    """(how many training processes `device` can have here, what they are), cheaply:
    CUDA GPUs for cuda (and for auto when there are any), else CPU cores. No torch import."""
    if device != "cpu":
        gpus = count_cuda_devices()
        if gpus or device == "cuda":
            return gpus, "CUDA GPUs"
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return cores or 1, "CPU cores"


def count_cuda_devices() -> int:
    """Visible CUDA GPUs: torch's count when torch is already imported, else
    CUDA_VISIBLE_DEVICES, else `nvidia-smi -L`, else the driver's /proc entries."""
    torch = sys.modules.get("torch")
    if torch is not None and hasattr(torch, "cuda"):
        return int(torch.cuda.device_count())
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        # CUDA stops at the first invalid entry, e.g. "-1" hides every GPU.
        entries = (entry.strip() for entry in visible.split(","))
        return sum(1 for _ in itertools.takewhile(lambda e: e and e[0] != "-", entries))
    return _nvidia_smi_count()


def _nvidia_smi_count() -> int:
    smi = shutil.which("nvidia-smi")
    if smi:
        try:
            listing = subprocess.run(
                [smi, "-L"], capture_output=True, text=True, timeout=10, check=False
            ).stdout
        except (OSError, subprocess.SubprocessError):
            listing = ""
        return sum(line.startswith("GPU ") for line in listing.splitlines())
    proc = Path("/proc/driver/nvidia/gpus")
    return sum(1 for _ in proc.iterdir()) if proc.is_dir() else 0


# ---------------------------------------------------------------- strict loading


def config_from_dict(data: dict[str, Any] | None) -> FtuiConfig:
    """Build a FtuiConfig from plain data, rejecting unknown keys and wrong types."""
    return _build(FtuiConfig, data or {}, prefix="")


def load_config(path: str | Path) -> FtuiConfig:
    """Read a YAML config; errors name the file and the offending key."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if data is not None and not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of sections (model, data...)")
    try:
        return config_from_dict(data)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def config_to_dict(config: FtuiConfig) -> dict[str, Any]:
    return dataclasses.asdict(config)


def save_config(config: FtuiConfig, path: str | Path) -> None:
    text = yaml.safe_dump(config_to_dict(config), sort_keys=False, allow_unicode=True)
    Path(path).write_text(text, encoding="utf-8")


def field_help(section: type, name: str) -> str:
    """The help text of one field, e.g. field_help(DataConfig, "max_length")."""
    return {f.name: f for f in dataclasses.fields(section)}[name].metadata.get("help", "")


def field_bounds(section: type, name: str) -> Bounds | None:
    """The allowed range of a number field (None for other fields), e.g. for a slider."""
    return {f.name: f for f in dataclasses.fields(section)}[name].metadata.get("bounds")


def field_choices(section: type, name: str) -> list[str]:
    """The allowed values of a Literal field, for dropdowns."""
    hint = typing.get_type_hints(section)[name]
    return list(typing.get_args(hint))


def _build(cls: type, data: Any, prefix: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix.rstrip('.') or 'config'}: expected a mapping")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    for key in data:
        if key not in known:
            raise ConfigError(
                f"{prefix}{key}: unknown key; allowed here: {', '.join(sorted(known))}"
            )
    values = {name: _coerce(hints[name], data[name], f"{prefix}{name}") for name in data}
    try:
        return cls(**values)
    except ConfigError:
        raise
    except TypeError as exc:
        raise ConfigError(f"{prefix.rstrip('.') or 'config'}: {exc}") from None


def _coerce(hint: Any, value: Any, key: str) -> Any:
    if dataclasses.is_dataclass(hint):
        return _build(hint, value if value is not None else {}, prefix=f"{key}.")
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _coerce(inner, value, key)
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{key}: {value!r} is not one of {', '.join(map(str, args))}")
        return value
    if origin is dict:
        if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()
        ):
            raise ConfigError(f"{key}: expected a mapping of names to names")
        return dict(value)
    return _coerce_scalar(hint, value, key)


def _coerce_scalar(hint: type, value: Any, key: str) -> Any:
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected true or false, got {value!r}")
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected a whole number, got {value!r}")
    if hint is float:
        # YAML reads 2e-4 as a string (no dot); accept numeric strings here only.
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        raise ConfigError(f"{key}: expected a number, got {value!r}")
    if hint is str:
        if isinstance(value, str):
            return value
        if value is None:
            return ""
        raise ConfigError(f"{key}: expected text, got {value!r}")
    raise ConfigError(f"{key}: unsupported field type {hint}")
