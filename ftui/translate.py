"""The one translator from ftui's config tree to transformers / peft / bitsandbytes objects.

No other module builds a `BitsAndBytesConfig` or a `PeftConfig`, or decides which weights a
method trains: the trainer (ftui.runs.train) and the estimator (ftui.params) both come here.

    loaded = load_model(config.model, device, model_load_kwargs(config, device))
    model = apply_method(loaded.model, config)   # trainable parameters set, adapters added

Heavy libraries are imported inside the functions, so importing this module is cheap.
"""

from __future__ import annotations

from typing import Any

from ftui.config import FtuiConfig, MethodConfig
from ftui.methods import METHODS
from ftui.models import choose_dtype
from ftui.runs.memory_choices import attention_kernel, offloads_activations, padding_free_rows

# IA3 for Llama-likes, used when peft has no defaults for the model type.
IA3_TARGETS = ["k_proj", "v_proj", "down_proj"]
IA3_FEEDFORWARD = ["down_proj"]
FINAL_NORM_NAMES = ("norm", "final_layernorm", "final_layer_norm", "ln_f")


def _torch_dtype(name: str) -> Any:
    import torch

    return getattr(torch, name)


def quantization_config(method: MethodConfig, compute_dtype: Any) -> Any:
    """A BitsAndBytesConfig for a method whose base the catalog stores in 4 bits (qlora) or
    8 bits (lora_8bit); None for other methods.

    `compute_dtype` is the model's training dtype; it is used when method.compute_dtype is
    'auto'.
    """
    from transformers import BitsAndBytesConfig

    bits = METHODS[method.name].quantized_bits
    if bits == 4:
        if method.compute_dtype != "auto":
            compute_dtype = _torch_dtype(method.compute_dtype)
        return BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type=method.quant_type,
            bnb_4bit_use_double_quant=method.double_quant,
            bnb_4bit_compute_dtype=compute_dtype,
        )
    if bits == 8:
        return BitsAndBytesConfig(load_in_8bit=True)
    return None


def target_modules(method: MethodConfig) -> str | list[str]:
    """'all-linear' passes through; 'q_proj, v_proj' becomes ['q_proj', 'v_proj']."""
    text = method.target_modules.strip()
    if text in ("", "all-linear"):
        return "all-linear"
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise ValueError("method.target_modules: give all-linear or a comma list of layers")
    return names


def uses_peft(name: str) -> bool:
    """Whether peft builds this method's adapters (the LoRA family, IA3, prefix, prompt and
    LLaMA-Adapter); full, freeze and bottleneck adapters are ftui's own."""
    return METHODS[name].lora or name in _PEFT_BUILDERS


def peft_config(method: MethodConfig, hf_config: Any) -> Any:
    """The peft config for a method on this architecture; None where peft is not used."""
    if METHODS[method.name].lora:  # lora, qlora, lora_8bit: the same adapters
        return _lora_config(method, hf_config)
    builder = _PEFT_BUILDERS.get(method.name)
    return builder(method, hf_config) if builder else None


def _lora_config(method: MethodConfig, hf_config: Any) -> Any:
    from peft import LoraConfig, TaskType

    return LoraConfig(
        task_type=TaskType.CAUSAL_LM,
        r=method.lora_r,
        lora_alpha=method.lora_alpha,
        lora_dropout=method.lora_dropout,
        target_modules=target_modules(method),
        use_dora=method.use_dora,
        use_rslora=method.use_rslora,
    )


def _ia3_config(method: MethodConfig, hf_config: Any) -> Any:
    """peft's own IA3 defaults where it knows the model type, else Llama-style names."""
    from peft import IA3Config, TaskType
    from peft.utils import TRANSFORMERS_MODELS_TO_IA3_TARGET_MODULES_MAPPING

    if getattr(hf_config, "model_type", None) in TRANSFORMERS_MODELS_TO_IA3_TARGET_MODULES_MAPPING:
        return IA3Config(task_type=TaskType.CAUSAL_LM)
    return IA3Config(
        task_type=TaskType.CAUSAL_LM,
        target_modules=list(IA3_TARGETS),
        feedforward_modules=list(IA3_FEEDFORWARD),
    )


def _prefix_config(method: MethodConfig, hf_config: Any) -> Any:
    from peft import PrefixTuningConfig, TaskType

    return PrefixTuningConfig(
        task_type=TaskType.CAUSAL_LM, num_virtual_tokens=method.num_virtual_tokens
    )


def _prompt_config(method: MethodConfig, hf_config: Any) -> Any:
    from peft import PromptTuningConfig, PromptTuningInit, TaskType

    return PromptTuningConfig(
        task_type=TaskType.CAUSAL_LM,
        num_virtual_tokens=method.num_virtual_tokens,
        prompt_tuning_init=PromptTuningInit.RANDOM,
    )


def _llama_adapter_config(method: MethodConfig, hf_config: Any) -> Any:
    from peft import AdaptionPromptConfig, TaskType
    from peft.tuners.adaption_prompt.config import TRANSFORMERS_MODEL_CONFIG

    model_type = getattr(hf_config, "model_type", None)
    if model_type not in TRANSFORMERS_MODEL_CONFIG:
        raise ValueError(
            f"llama_adapter does not support model type {model_type!r}; peft supports "
            f"{', '.join(TRANSFORMERS_MODEL_CONFIG)}. Pick LoRA or another method."
        )
    layers = min(method.adapter_layers, hf_config.num_hidden_layers)
    return AdaptionPromptConfig(
        task_type=TaskType.CAUSAL_LM, adapter_len=method.adapter_len, adapter_layers=layers
    )


# ftui's optimizer names -> transformers' TrainingArguments.optim names
TRAINER_OPTIMIZERS = {
    "adamw_torch": "adamw_torch",
    "adamw_8bit": "adamw_bnb_8bit",
    "sgd": "sgd",
    "adafactor": "adafactor",
}


_PEFT_BUILDERS = {
    "ia3": _ia3_config,
    "prefix": _prefix_config,
    "prompt": _prompt_config,
    "llama_adapter": _llama_adapter_config,
}


def trainer_optimizer(config: FtuiConfig) -> str:
    """The `optim` value for transformers' TrainingArguments (TRL's SFTConfig)."""
    return TRAINER_OPTIMIZERS[config.train.optimizer]


def model_load_kwargs(config: FtuiConfig, device: str) -> dict[str, Any]:
    """Keyword arguments for AutoModelForCausalLM.from_pretrained to train this config
    (ftui.models.load_model's `training_kwargs`).

    Quantized models are placed at load time (device_map); do not `.to()` them afterwards.
    """
    dtype = choose_dtype(config.model.dtype, device)
    quantization = quantization_config(config.method, dtype)
    kwargs: dict[str, Any] = {
        "dtype": dtype,
        "quantization_config": quantization,
        "attn_implementation": attention_kernel(config, device, dtype),
        "trust_remote_code": config.model.trust_remote_code,
        "use_safetensors": True,
        "revision": config.model.revision or None,
    }
    if quantization is not None:
        kwargs["device_map"] = {"": device}
    return kwargs


def apply_method(model: Any, config: FtuiConfig) -> Any:
    """Set what trains: unfreeze, freeze, or add adapters. Returns the model to train."""
    name = config.method.name
    if not METHODS[name].trains:
        raise ValueError(f"{name} trains nothing: it is the prompting baseline")
    if name == "full":
        for param in model.parameters():
            param.requires_grad_(True)
        return model
    if name == "freeze":
        return _freeze_lower_blocks(model, config.method.freeze_trainable_layers)
    if name == "bottleneck":
        from ftui.adapters.bottleneck import add_bottleneck_adapters

        add_bottleneck_adapters(model, config.method.bottleneck_size)
        return model
    if uses_peft(name):
        return _apply_peft(model, config)
    raise ValueError(f"unknown method {name!r}")


def _apply_peft(model: Any, config: FtuiConfig) -> Any:
    from peft import get_peft_model, prepare_model_for_kbit_training

    if METHODS[config.method.name].quantized and config.method.kbit_upcast:
        # The older k-bit recipe, on request: freezes the base and upcasts non-quantized
        # weights to fp32; on an unquantized model (the meta-device count) it only freezes.
        # Without it get_peft_model freezes the base, and norms, embeddings and the LM head
        # stay in the model's dtype (bf16 on GPUs): less memory, bf16 activations.
        # Non-reentrant checkpointing: the reentrant default is deprecated in torch.
        model = prepare_model_for_kbit_training(
            model,
            use_gradient_checkpointing=config.train.gradient_checkpointing,
            gradient_checkpointing_kwargs={"use_reentrant": False},
        )
    return get_peft_model(model, peft_config(config.method, model.config))


def _freeze_lower_blocks(model: Any, trainable_layers: int) -> Any:
    """Train only the top `trainable_layers` blocks and the final norm."""
    from ftui.adapters.bottleneck import find_decoder_blocks

    name, blocks = find_decoder_blocks(model)
    for param in model.parameters():
        param.requires_grad_(False)
    first_trained = max(len(blocks) - trainable_layers, 0)
    for block in list(blocks)[first_trained:]:
        for param in block.parameters():
            param.requires_grad_(True)
    parent = model.get_submodule(name.rpartition(".")[0])
    for norm_name in FINAL_NORM_NAMES:
        norm = getattr(parent, norm_name, None)
        if norm is not None:
            for param in norm.parameters():
                param.requires_grad_(True)
            break
    return model


def sft_arguments(
    config: FtuiConfig,
    output_dir: Any,
    device: str,
    dtype: Any,
    columns: list[str],
    has_validation: bool,
) -> Any:
    """TRL's SFTConfig for this run: precision, batching, loss masking, eval and saving.

    `columns` are the training dataset's columns (prompt/completion rows get the loss on the
    completion only); `dtype` is the model's load dtype from `model_load_kwargs`. On CPU this
    also makes TRL's LM head score only the positions that have a label (see
    `score_labelled_positions_only`). benchmarks/train_throughput.py measures the choices.
    With padding-free rows max_length is None: the trainer truncates the rows it prepared
    (ftui.runs.memory_choices.truncate_rows).
    """
    from trl import SFTConfig

    domain = config.method.objective == "domain"
    if not device.startswith("cuda"):
        score_labelled_positions_only()
    # Rows of similar length share a batch: little padding, and still batch_size rows a
    # step (packing would change how many rows make a step). Measured faster on CPU than
    # packing, and no worse in eval loss over three seeds. With flash attention on a GPU the
    # rows of a batch are joined instead (padding-free), and TRL then refuses max_length.
    grouping = {} if domain else {"train_sampling_strategy": "group_by_length"}
    attention = attention_kernel(config, device, dtype)
    padding_free = padding_free_rows(config, device, attention)
    # Best-fit packing needs flash attention to keep packed rows apart; else wrap rows.
    flash = attention == "flash_attention_2"
    return SFTConfig(
        **_common_arguments(config, output_dir, device, dtype, has_validation),
        **grouping,
        max_length=None if padding_free else config.data.max_length,
        padding_free=padding_free,
        activation_offloading=offloads_activations(config, device),
        # Loss on the answers only: TRL masks the prompt of prompt/completion rows.
        completion_only_loss=not domain and "prompt" in columns,
        packing=domain,
        packing_strategy="bfd" if flash else "wrapped",
    )


def score_labelled_positions_only() -> None:
    """Make TRL's fused LM head score only labelled positions on CPU, as it does on CUDA.

    With the loss on completions only, most positions are prompt: their next-token scores
    over the whole vocabulary are computed and thrown away. TRL skips them on Triton devices
    and scores every position elsewhere, to keep tile shapes fixed for compilers (Neuron);
    eager CPU has no such cost. The results are identical (loss, gradients, entropy and
    accuracy metrics); a step on the bundled model is about 40% shorter. Process-wide and
    idempotent; TRL versions without the fused head are left alone.
    """
    try:
        from trl.trainer import utils as trl_utils
    except ImportError:
        return
    scores_compact = getattr(trl_utils, "_use_triton", None)
    if scores_compact is None or getattr(scores_compact, "ftui_cpu", False):
        return

    def compact_on_cpu(device: Any) -> bool:
        return device.type == "cpu" or scores_compact(device)

    compact_on_cpu.ftui_cpu = True  # type: ignore[attr-defined]
    trl_utils._use_triton = compact_on_cpu


def dpo_arguments(
    config: FtuiConfig, output_dir: Any, device: str, dtype: Any, has_validation: bool
) -> Any:
    """TRL's DPOConfig for preference pairs; the reference model is the base (adapter off)."""
    from trl import DPOConfig

    return DPOConfig(
        **_common_arguments(config, output_dir, device, dtype, has_validation),
        beta=config.method.dpo_beta,
        max_length=config.data.max_length,
    )


def kto_arguments(
    config: FtuiConfig, output_dir: Any, device: str, dtype: Any, has_validation: bool
) -> Any:
    """TRL's KTOConfig for answers labelled good or bad; the reference is the base, as DPO's."""
    from trl import KTOConfig

    return KTOConfig(
        **_common_arguments(config, output_dir, device, dtype, has_validation),
        beta=config.method.dpo_beta,
        max_length=config.data.max_length,
    )


def _common_arguments(
    config: FtuiConfig, output_dir: Any, device: str, dtype: Any, has_validation: bool
) -> dict[str, Any]:
    """The TrainingArguments every ftui trainer shares: schedule, precision, eval, saving."""
    import torch

    train = config.train
    on_cuda = device.startswith("cuda")  # mixed precision only on CUDA: bf16 on CPU is slow
    return dict(
        output_dir=str(output_dir),
        num_train_epochs=train.epochs,
        max_steps=train.max_steps,
        learning_rate=train.learning_rate,
        per_device_train_batch_size=train.batch_size,
        per_device_eval_batch_size=train.batch_size,
        gradient_accumulation_steps=train.gradient_accumulation,
        # TRL turns checkpointing on by default; the config decides.
        gradient_checkpointing=train.gradient_checkpointing,
        gradient_checkpointing_kwargs={"use_reentrant": False},
        optim=trainer_optimizer(config),
        warmup_steps=train.warmup_ratio,  # a float below 1 is a ratio of all steps
        bf16=on_cuda and dtype == torch.bfloat16,
        fp16=on_cuda and dtype == torch.float16,
        use_cpu=not on_cuda,
        eval_strategy="steps" if has_validation else "no",
        eval_steps=train.eval_every,
        save_strategy="steps",
        save_steps=train.save_every,
        # Older checkpoints are deleted as new ones land; transformers always keeps the
        # newest (for resume) and, with load_best_model_at_end, the best one as well.
        save_total_limit=train.save_total_limit,
        logging_steps=1,
        report_to=report_to(train.report_to),
        seed=train.seed,
        data_seed=config.data.seed,
        **_early_stopping_arguments(config, has_validation),
    )


def report_to(value: str) -> list[str]:
    """'tensorboard, wandb' -> ['tensorboard', 'wandb']; 'none' or '' -> []."""
    import importlib.util

    names = [name.strip() for name in value.split(",") if name.strip() not in ("", "none")]
    for name in names:
        if importlib.util.find_spec(name) is None:
            raise ValueError(
                f"train.report_to names {name!r}, but the {name} package is not installed: "
                f"pip install {name}, or remove it from report_to"
            )
    return names


def _early_stopping_arguments(config: FtuiConfig, has_validation: bool) -> dict[str, Any]:
    """Keep the best checkpoint by eval loss when early stopping is on."""
    if config.train.early_stopping_patience <= 0 or not has_validation:
        return {}
    return dict(
        load_best_model_at_end=True, metric_for_best_model="eval_loss", greater_is_better=False
    )
