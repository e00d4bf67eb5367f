"""The config tree: the single source of truth for a fine-tuning job.

Everything ftui does is described by one `FtuiConfig` — model, data, method, train, eval.
Presets are YAML files of this tree, the CLI reads them, and the training subprocess gets the
resolved tree as `runs/<id>/config.yaml`. Each field is made by `setting()` (ftui.config.fields)
and declares its help, label, range, slider and tab once; the UI widgets, CLI help and YAML
comments are built from that.

Every number is checked against its range when a section is made and again by
`FtuiConfig.check()`, together with the rules that span sections, so YAML, the CLI and the UI
share one set of rules; messages name the dotted key and an example
(`train.epochs: -1 is out of range; use a number from 0.01 to 100, e.g. 3`).
`check_runnable()` adds what depends on this machine (no more processes than its devices).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import ClassVar, Literal

from ftui.config.devices import count_devices
from ftui.config.fields import ConfigError, Section, setting, type_hints
from ftui.methods import METHODS, objective_problem

DEFAULT_MODEL = "default"  # the bundled SmolLM2-135M-Instruct
MAX_SEED = 2**32 - 1  # numpy's seeds are 32-bit
MAX_PROCESSES = 64  # a hard ceiling; check_runnable() also holds it to this machine's devices

DataFormat = Literal[
    "auto", "alpaca", "chat", "sharegpt", "prompt_completion", "text", "preference", "kto"
]
Objective = Literal["instruction", "domain", "dpo", "kto"]
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


@dataclass
class ModelConfig(Section):
    key: ClassVar[str] = "model"

    name_or_path: str = setting(
        DEFAULT_MODEL,
        "Model to fine-tune: 'default' (bundled SmolLM2-135M-Instruct), a local folder "
        "or a Hugging Face Hub id.",
        label="Base model",
    )
    revision: str | None = setting(
        None, "Hub revision (branch, tag or commit); empty = main.", label="Revision"
    )
    device: Literal["auto", "cpu", "cuda"] = setting(
        "auto", "Where the model runs: auto picks CUDA when present, else CPU.", label="Device"
    )
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = setting(
        "auto",
        "Weight dtype: auto = bfloat16 on CUDA GPUs that support it, else float32.",
        label="Weights dtype",
    )
    attn_implementation: Attention = setting(
        "auto",
        "Attention kernel: auto = flash_attention_2 with padding-free batches on a bf16/fp16 "
        "GPU when the flash-attn package is installed, else sdpa; eager materialises the "
        "full attention matrix.",
        label="Attention kernel",
    )
    trust_remote_code: bool = setting(
        False,
        "Run Python code shipped with the model repository. Off by default: only turn it "
        "on for repositories you trust.",
        label="Trust remote code",
    )


@dataclass
class DataConfig(Section):
    key: ClassVar[str] = "data"

    path: str = setting(
        "",
        "Training data: a file in the workspace, a local path or a Hub dataset id.",
        label="Dataset",
    )
    format: DataFormat = setting(
        "auto", "Dataset layout; auto detects it from the columns.", label="Format", tab="data"
    )
    columns: dict[str, str] = setting(
        {},
        "Column mapping when detection is unsure, role -> column name "
        "(e.g. instruction: question, output: answer).",
        label="Column mapping",
    )
    validation_path: str = setting(
        "",
        "Held-out validation file; empty = split it off the training data.",
        label="Validation file",
    )
    validation_fraction: float = setting(
        0.1,
        "Share of rows held out for validation when no validation file is given.",
        label="Validation share",
        min=0, max=1, max_open=True, slider=(0.0, 0.5, 0.01), tab="data",
    )  # fmt: skip
    max_length: int = setting(
        1024,
        "Maximum tokens per example; longer examples are truncated.",
        label="Max length (tokens)",
        min=8, max=131072, slider=(16, 8192, 16), tab="method",
    )  # fmt: skip
    system_prompt: str = setting(
        "",
        "System prompt put before every example; empty = the model's default.",
        label="System prompt",
    )
    seed: int = setting(
        42, "Seed for shuffling and the validation split.", label="Data seed",
        min=0, max=MAX_SEED,
    )  # fmt: skip


@dataclass
class MethodConfig(Section):
    key: ClassVar[str] = "method"

    name: MethodName = setting(
        "lora", "Fine-tuning method; few_shot is the no-training baseline.", label="Method"
    )
    objective: Objective = setting(
        "instruction",
        "instruction = loss on responses only; domain = continued pretraining on raw text; "
        "dpo = preference pairs; kto = answers labelled good or bad (unpaired).",
        label="Objective",
    )
    lora_r: int = setting(
        16, "LoRA rank: size of the low-rank update.", label="LoRA rank r",
        min=1, max=1024, slider=(1, 256, 1), tab="method",
    )  # fmt: skip
    lora_alpha: int = setting(
        32, "LoRA scaling numerator (alpha / r scales the update).", label="LoRA alpha",
        min=1, max=4096, slider=(1, 512, 1), tab="method",
    )  # fmt: skip
    lora_dropout: float = setting(
        0.0,
        "Dropout on the LoRA input. 0 saves memory: any dropout keeps a copy of every adapted "
        "layer's input for the backward pass.",
        label="LoRA dropout",
        min=0, max=1, max_open=True, example=0.05, slider=(0.0, 0.5, 0.01), tab="method",
    )  # fmt: skip
    target_modules: str = setting(
        "all-linear",
        "Layers that get adapters: all-linear or a comma list (q_proj,v_proj).",
        label="Target modules",
        tab="method",
    )
    use_dora: bool = setting(
        False, "DoRA: learn magnitude and direction separately (slower).", label="DoRA",
        tab="method",
    )  # fmt: skip
    use_rslora: bool = setting(
        False, "rsLoRA: scale by alpha/sqrt(r), steadier at high rank.", label="rsLoRA",
        tab="method",
    )  # fmt: skip
    quant_type: Literal["nf4", "fp4"] = setting(
        "nf4", "4-bit data type for QLoRA weights.", label="4-bit type", tab="method"
    )
    double_quant: bool = setting(
        True,
        "Quantize the 4-bit scaling constants too (~0.4 bit/param).",
        label="Double quantization",
        tab="method",
    )
    kbit_upcast: bool = setting(
        False,
        "QLoRA / 8-bit: upcast norms, embeddings and the LM head to fp32 (peft's "
        "prepare_model_for_kbit_training). Off keeps them in the model's dtype: less memory "
        "and bf16 activations on GPUs; on is the older recipe, sometimes steadier.",
        label="fp32 upcast",
        tab="method",
    )
    compute_dtype: Literal["auto", "bfloat16", "float16", "float32"] = setting(
        "auto",
        "Dtype the 4/8-bit layers compute in; auto = the model's training dtype.",
        label="Compute dtype",
    )
    freeze_trainable_layers: int = setting(
        2,
        "freeze: how many of the top transformer blocks are trained (the rest stay frozen).",
        label="Trained top blocks",
        min=0, max=1000, slider=(0, 128, 1), tab="method",
    )  # fmt: skip
    num_virtual_tokens: int = setting(
        20,
        "prefix / prompt tuning: learned virtual tokens put before every input.",
        label="Virtual tokens",
        min=1, max=1024, slider=(1, 256, 1), tab="method",
    )  # fmt: skip
    adapter_len: int = setting(
        10, "LLaMA-Adapter: learned prompt length per adapted layer.", label="Adapter length",
        min=1, max=1024, slider=(1, 128, 1), tab="method",
    )  # fmt: skip
    adapter_layers: int = setting(
        8, "LLaMA-Adapter: how many top layers get adaption prompts.", label="Adapted layers",
        min=1, max=1024, slider=(1, 128, 1), tab="method",
    )  # fmt: skip
    bottleneck_size: int = setting(
        64,
        "Bottleneck adapters: width of the down/up projection added after each block's MLP.",
        label="Bottleneck width",
        min=1, max=65536, slider=(8, 1024, 8), tab="method",
    )  # fmt: skip
    dpo_beta: float = setting(
        0.1, "DPO and KTO: how far the model may move from the reference (the base); "
        "higher = stay closer.", label="DPO/KTO beta", min=0, max=100, min_open=True,
    )  # fmt: skip


@dataclass
class TrainConfig(Section):
    key: ClassVar[str] = "train"

    epochs: float = setting(
        1.0, "Passes over the training data.", label="Epochs",
        min=0.01, max=100, example=3, tab="train",
    )  # fmt: skip
    max_steps: int = setting(
        -1,
        "Stop after this many optimizer steps; -1 = run all epochs.",
        label="Max steps",
        min=1, max=1_000_000, also=((-1, "run all epochs"),), example=100, tab="train",
    )  # fmt: skip
    learning_rate: float = setting(
        2e-4, "Peak learning rate.", label="Learning rate",
        min=0, max=1, min_open=True, tab="train",
    )  # fmt: skip
    batch_size: int = setting(
        8, "Examples per device per step.", label="Batch size",
        min=1, max=4096, slider=(1, 64, 1), tab="method",
    )  # fmt: skip
    gradient_accumulation: int = setting(
        1, "Steps whose gradients are summed per update.", label="Gradient accumulation",
        min=1, max=1024, tab="train",
    )  # fmt: skip
    gradient_checkpointing: bool = setting(
        False,
        "Recompute activations in the backward pass: less memory, ~30% slower.",
        label="Gradient checkpointing",
        tab="method",
    )
    auto_checkpointing: bool = setting(
        True,
        "Turn gradient checkpointing on when the estimate says the run would not fit on the "
        "GPU without it (GPU runs only; the run's config.yaml keeps what you chose).",
        label="Automatic checkpointing",
    )
    activation_offloading: Literal["auto", "on", "off"] = setting(
        "auto",
        "Keep the activations saved for the backward pass in CPU memory instead of on the GPU "
        "(GPU runs only): less GPU memory, somewhat slower steps. auto = on when gradient "
        "checkpointing is on and max length is 16,384 tokens or more, or when the estimate "
        "says the run would not fit on the GPU even with checkpointing.",
        label="Activation offloading",
    )
    optimizer: Optimizer = setting(
        "adamw_torch",
        "adamw_torch keeps two fp32 states per trained weight; adamw_8bit (bitsandbytes) "
        "keeps them in 8 bits; sgd keeps none (momentum off); adafactor factorises them.",
        label="Optimizer",
        tab="method",
    )
    warmup_ratio: float = setting(
        0.05, "Share of steps spent warming the learning rate up.", label="Warmup share",
        min=0, max=1, max_open=True, tab="train",
    )  # fmt: skip
    eval_every: int = setting(
        20, "Evaluate on the validation split every N steps.", label="Eval every (steps)",
        min=1, max=1_000_000, tab="train",
    )  # fmt: skip
    save_every: int = setting(
        50, "Save a checkpoint every N steps.", label="Save every (steps)",
        min=1, max=1_000_000, tab="train",
    )  # fmt: skip
    save_total_limit: int = setting(
        2,
        "How many checkpoints to keep: older ones are deleted as new ones are saved (the "
        "best one is kept too when early stopping is on).",
        label="Checkpoints kept",
        min=1, max=1000, tab="train",
    )  # fmt: skip
    seed: int = setting(
        42, "Seed for initialisation and data order.", label="Training seed",
        min=0, max=MAX_SEED, tab="train",
    )  # fmt: skip
    early_stopping_patience: int = setting(
        0,
        "Stop when eval loss has not improved for this many evaluations; 0 = never.",
        label="Early-stopping patience",
        min=0, max=1000, example=3, tab="train",
    )  # fmt: skip
    num_processes: int = setting(
        1,
        "Training processes: one per GPU (DDP), or CPU processes (torchrun, gloo); at most "
        "the GPUs (or CPU cores) of this machine, or of the Ray cluster with FTUI_RAY_ADDRESS.",
        label="Processes",
        min=1, max=MAX_PROCESSES, tab="train",
    )  # fmt: skip
    accelerate_config: str = setting(
        "",
        "An accelerate config file for several GPUs of this machine (FSDP, DeepSpeed); "
        "empty = DDP with num_processes. Several machines go through Ray, not accelerate.",
        label="accelerate config",
    )
    report_to: str = setting(
        "none",
        "Extra loggers, e.g. 'tensorboard' or 'wandb,mlflow' (must be installed).",
        label="Report to",
    )


@dataclass
class EvalConfig(Section):
    key: ClassVar[str] = "eval"

    few_shot_k: int = setting(
        3, "Examples from the training split shown to the few-shot baseline.",
        label="Few-shot examples", min=0, max=32,
    )  # fmt: skip
    max_new_tokens: int = setting(
        128, "Longest generated answer.", label="Max new tokens",
        min=1, max=4096, slider=(8, 512, 8),
    )  # fmt: skip
    limit: int = setting(
        50, "Validation rows scored in a batch evaluation.", label="Rows scored",
        min=1, max=100_000, slider=(1, 500, 1),
    )  # fmt: skip


@dataclass
class FtuiConfig:
    name: str = setting("my-run", "A short name for runs made from this config.", label="Run name")
    description: str = setting("", "What this config is for.", label="Description")
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
        for name, hint in type_hints(type(self)).items():
            if dataclasses.is_dataclass(hint):
                getattr(self, name).check_bounds()
        train = self.train
        if train.early_stopping_patience > 0 and train.save_every % train.eval_every:
            raise ConfigError(
                "train.early_stopping_patience keeps the best checkpoint, so train.save_every "
                f"({train.save_every}) must be a multiple of train.eval_every ({train.eval_every})"
            )
        if problem := objective_problem(self.method.objective, train.batch_size):
            raise ConfigError(problem)
        method = METHODS[self.method.name]
        if self.train.gradient_checkpointing and not method.gradient_checkpointing:
            raise ConfigError(
                f"method.name {method.name} does not work with train.gradient_checkpointing "
                "(peft refuses it); turn checkpointing off, or use prompt tuning or LoRA"
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
