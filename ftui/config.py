"""The config tree: the single source of truth for a fine-tuning job.

Everything ftui does is described by one `FtuiConfig` — model, data, method, train, eval.
The UI widgets take their defaults, choices and help text from here, presets are YAML files
of this tree, the CLI reads them, and the training subprocess (later) gets the resolved tree
as `runs/<id>/config.yaml`.

Help text lives once, in each field's `metadata["help"]`; `field_help()` reads it back for
UI `info=` strings and CLI help. Loading is strict: an unknown key or a wrong type is an error
that names the dotted key (`train.learning_rat: unknown key ...`).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

DEFAULT_MODEL = "default"  # the bundled SmolLM2-135M-Instruct

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


def _field(default: Any, help: str) -> Any:
    """A dataclass field carrying its help text; mutable defaults are copied per instance."""
    if isinstance(default, (dict, list)):
        return field(default_factory=lambda: type(default)(default), metadata={"help": help})
    return field(default=default, metadata={"help": help})


@dataclass
class ModelConfig:
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
class DataConfig:
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
        0.1, "Share of rows held out for validation when no validation file is given."
    )
    max_length: int = _field(1024, "Maximum tokens per example; longer examples are truncated.")
    system_prompt: str = _field(
        "", "System prompt put before every example; empty = the model's default."
    )
    seed: int = _field(42, "Seed for shuffling and the validation split.")

    def __post_init__(self) -> None:
        if not 0.0 <= self.validation_fraction < 1.0:
            raise ConfigError("data.validation_fraction must be in [0, 1), e.g. 0.1")
        if self.max_length < 8:
            raise ConfigError("data.max_length must be at least 8 tokens")


@dataclass
class MethodConfig:
    name: MethodName = _field("lora", "Fine-tuning method; few_shot is the no-training baseline.")
    objective: Objective = _field(
        "instruction",
        "instruction = loss on responses only; domain = continued pretraining on raw text; "
        "dpo = preference pairs.",
    )
    lora_r: int = _field(16, "LoRA rank: size of the low-rank update.")
    lora_alpha: int = _field(32, "LoRA scaling numerator (alpha / r scales the update).")
    lora_dropout: float = _field(
        0.0,
        "Dropout on the LoRA input. 0 saves memory: any dropout keeps a copy of every adapted "
        "layer's input for the backward pass.",
    )
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
        2, "freeze: how many of the top transformer blocks are trained (the rest stay frozen)."
    )
    num_virtual_tokens: int = _field(
        20, "prefix / prompt tuning: learned virtual tokens put before every input."
    )
    adapter_len: int = _field(10, "LLaMA-Adapter: learned prompt length per adapted layer.")
    adapter_layers: int = _field(8, "LLaMA-Adapter: how many top layers get adaption prompts.")
    bottleneck_size: int = _field(
        64, "Bottleneck adapters: width of the down/up projection added after each block's MLP."
    )
    dpo_beta: float = _field(
        0.1,
        "DPO: how far the model may move from the reference (the base); higher = stay closer.",
    )

    def __post_init__(self) -> None:
        if self.lora_r < 1:
            raise ConfigError("method.lora_r must be a positive integer, e.g. 16")
        for name in ("num_virtual_tokens", "adapter_len", "adapter_layers", "bottleneck_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"method.{name} must be a positive integer")
        if self.freeze_trainable_layers < 0:
            raise ConfigError("method.freeze_trainable_layers must be 0 or more")


@dataclass
class TrainConfig:
    epochs: float = _field(1.0, "Passes over the training data.")
    max_steps: int = _field(-1, "Stop after this many optimizer steps; -1 = run all epochs.")
    learning_rate: float = _field(2e-4, "Peak learning rate.")
    batch_size: int = _field(8, "Examples per device per step.")
    gradient_accumulation: int = _field(1, "Steps whose gradients are summed per update.")
    gradient_checkpointing: bool = _field(
        False, "Recompute activations in the backward pass: less memory, ~30% slower."
    )
    optimizer: Optimizer = _field(
        "adamw_torch",
        "adamw_torch keeps two fp32 states per trained weight; adamw_8bit (bitsandbytes) "
        "keeps them in 8 bits; sgd keeps none (momentum off); adafactor factorises them.",
    )
    warmup_ratio: float = _field(0.05, "Share of steps spent warming the learning rate up.")
    eval_every: int = _field(20, "Evaluate on the validation split every N steps.")
    save_every: int = _field(50, "Save a checkpoint every N steps.")
    seed: int = _field(42, "Seed for initialisation and data order.")
    early_stopping_patience: int = _field(
        0, "Stop when eval loss has not improved for this many evaluations; 0 = never."
    )
    num_processes: int = _field(
        1,
        "Training processes: one per GPU (DDP through accelerate), or CPU processes "
        "(torchrun with the gloo backend).",
    )
    accelerate_config: str = _field(
        "",
        "An accelerate config file for several GPUs or nodes (FSDP, DeepSpeed); "
        "empty = DDP with num_processes.",
    )
    report_to: str = _field(
        "none", "Extra loggers, e.g. 'tensorboard' or 'wandb,mlflow' (must be installed)."
    )

    def __post_init__(self) -> None:
        if self.num_processes < 1:
            raise ConfigError("train.num_processes must be at least 1")
        if self.batch_size < 1:
            raise ConfigError("train.batch_size must be at least 1")
        if self.learning_rate <= 0:
            raise ConfigError("train.learning_rate must be positive, e.g. 2e-4")


@dataclass
class EvalConfig:
    few_shot_k: int = _field(3, "Examples from the training split shown to the few-shot baseline.")
    max_new_tokens: int = _field(128, "Longest generated answer.")
    limit: int = _field(50, "Validation rows scored in a batch evaluation.")


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
        """Rules that span sections; call again after changing fields in place."""
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
