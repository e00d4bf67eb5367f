"""The config -> transformers/peft/bitsandbytes translator, checked on tiny real Llama models.

The key test trains every method for two AdamW steps on random tokens and checks that every
trainable parameter moved and no frozen one did (qlora and lora_8bit load real bitsandbytes
4-bit / 8-bit models on CPU).
"""

from __future__ import annotations

import pytest
import torch
from conftest import TINY_LLAMA as TINY
from peft import (
    AdaptionPromptConfig,
    IA3Config,
    LoraConfig,
    PeftModel,
    PrefixTuningConfig,
    PromptTuningConfig,
)
from transformers import AutoModelForCausalLM, BitsAndBytesConfig, LlamaConfig, OlmoConfig

from ftui.config import FtuiConfig, MethodConfig, ModelConfig, TrainConfig
from ftui.translate import (
    apply_method,
    model_load_kwargs,
    peft_config,
    quantization_config,
    target_modules,
)


def tiny_config(**overrides) -> LlamaConfig:
    return LlamaConfig(**{**TINY, **overrides})


def tiny_model(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return AutoModelForCausalLM.from_config(tiny_config())


def ftui_config(name: str, train: TrainConfig | None = None, **method) -> FtuiConfig:
    return FtuiConfig(method=MethodConfig(name=name, **method), train=train or TrainConfig())


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    """A saved tiny model, for loads that quantize (bitsandbytes quantizes at load time)."""
    folder = tmp_path_factory.mktemp("tiny-llama")
    tiny_model().save_pretrained(folder)
    return folder


# ---------------------------------------------------------------- small translators


@pytest.mark.parametrize("quant_type", ["nf4", "fp4"])
@pytest.mark.parametrize("double_quant", [True, False])
def test_qlora_quantization_config(quant_type, double_quant):
    method = MethodConfig(name="qlora", quant_type=quant_type, double_quant=double_quant)
    q = quantization_config(method, torch.float32)
    assert isinstance(q, BitsAndBytesConfig)
    assert q.load_in_4bit and not q.load_in_8bit
    assert q.bnb_4bit_quant_type == quant_type
    assert q.bnb_4bit_use_double_quant is double_quant
    assert q.bnb_4bit_compute_dtype == torch.float32


def test_compute_dtype_auto_follows_the_model_and_an_explicit_one_wins():
    auto = quantization_config(MethodConfig(name="qlora"), torch.bfloat16)
    assert auto.bnb_4bit_compute_dtype == torch.bfloat16
    explicit = MethodConfig(name="qlora", compute_dtype="float16")
    assert quantization_config(explicit, torch.float32).bnb_4bit_compute_dtype == torch.float16


def test_8bit_and_unquantized_methods():
    q = quantization_config(MethodConfig(name="lora_8bit"), torch.float32)
    assert q.load_in_8bit and not q.load_in_4bit
    for name in ("full", "freeze", "lora", "ia3", "prefix", "bottleneck", "few_shot"):
        assert quantization_config(MethodConfig(name=name), torch.float32) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("all-linear", "all-linear"),
        ("", "all-linear"),
        ("q_proj,v_proj", ["q_proj", "v_proj"]),
        (" q_proj , v_proj, ", ["q_proj", "v_proj"]),
        ("down_proj", ["down_proj"]),
    ],
)
def test_target_modules_parsing(text, expected):
    assert target_modules(MethodConfig(target_modules=text)) == expected


def test_peft_config_types_per_method():
    hf = tiny_config()
    expected = {
        "lora": LoraConfig,
        "qlora": LoraConfig,
        "lora_8bit": LoraConfig,
        "ia3": IA3Config,
        "prefix": PrefixTuningConfig,
        "prompt": PromptTuningConfig,
        "llama_adapter": AdaptionPromptConfig,
    }
    for name, kind in expected.items():
        assert type(peft_config(MethodConfig(name=name), hf)) is kind, name
    for name in ("full", "freeze", "bottleneck", "few_shot"):
        assert peft_config(MethodConfig(name=name), hf) is None


def test_peft_config_values():
    hf = tiny_config()
    method = MethodConfig(
        lora_r=8,
        lora_alpha=16,
        lora_dropout=0.1,
        target_modules="q_proj,v_proj",
        use_dora=True,
        use_rslora=True,
    )
    lora = peft_config(method, hf)
    assert (lora.r, lora.lora_alpha, lora.lora_dropout) == (8, 16, 0.1)
    assert lora.target_modules == {"q_proj", "v_proj"} and lora.use_dora and lora.use_rslora
    assert lora.task_type == "CAUSAL_LM"
    prompt = peft_config(MethodConfig(name="prompt", num_virtual_tokens=7), hf)
    assert prompt.num_virtual_tokens == 7 and prompt.prompt_tuning_init == "RANDOM"
    adapter = peft_config(MethodConfig(name="llama_adapter", adapter_layers=8), hf)
    assert adapter.adapter_layers == 3, "capped at the model's layer count"


def test_ia3_uses_peft_defaults_for_known_types_and_llama_names_otherwise():
    known = peft_config(MethodConfig(name="ia3"), tiny_config())
    assert known.target_modules is None and known.feedforward_modules is None
    olmo = OlmoConfig(
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        vocab_size=256,
    )
    other = peft_config(MethodConfig(name="ia3"), olmo)
    assert set(other.target_modules) == {"k_proj", "v_proj", "down_proj"}
    assert set(other.feedforward_modules) == {"down_proj"}
    torch.manual_seed(0)
    model = apply_method(AutoModelForCausalLM.from_config(olmo), ftui_config("ia3"))
    assert model.get_nb_trainable_parameters()[0] == 2 * (64 + 64 + 128), (
        "k, v outputs and down_proj input"
    )


def test_llama_adapter_refuses_unsupported_model_types_clearly():
    olmo = OlmoConfig(num_hidden_layers=2)
    with pytest.raises(ValueError, match="llama_adapter does not support model type 'olmo'"):
        peft_config(MethodConfig(name="llama_adapter"), olmo)


def test_model_load_kwargs_for_plain_and_quantized_loads():
    plain = model_load_kwargs(FtuiConfig(), "cpu")
    assert plain == {
        "dtype": torch.float32,
        "quantization_config": None,
        "attn_implementation": "sdpa",
        "trust_remote_code": False,
        "use_safetensors": True,
        "revision": None,
    }
    config = FtuiConfig(
        model=ModelConfig(attn_implementation="eager", dtype="bfloat16", revision="v1"),
        method=MethodConfig(name="qlora"),
    )
    quantized = model_load_kwargs(config, "cpu")
    assert quantized["attn_implementation"] == "eager" and quantized["revision"] == "v1"
    assert quantized["quantization_config"].bnb_4bit_compute_dtype == torch.bfloat16
    assert quantized["device_map"] == {"": "cpu"}


# ---------------------------------------------------------------- what each method trains


def _trainable_names(model) -> set[str]:
    return {n for n, p in model.named_parameters() if p.requires_grad}


def test_full_trains_everything():
    model = apply_method(tiny_model(), ftui_config("full"))
    assert all(p.requires_grad for p in model.parameters())


@pytest.mark.parametrize("layers", [0, 2, 9])
def test_freeze_trains_only_the_top_blocks_and_the_final_norm(layers):
    model = apply_method(tiny_model(), ftui_config("freeze", freeze_trainable_layers=layers))
    trained_blocks = {int(n.split(".")[2]) for n in _trainable_names(model) if ".layers." in n}
    assert trained_blocks == set(range(max(3 - layers, 0), 3))
    others = {n for n in _trainable_names(model) if ".layers." not in n}
    assert others == {"model.norm.weight"}


def test_few_shot_trains_nothing():
    with pytest.raises(ValueError, match="few_shot trains nothing"):
        apply_method(tiny_model(), ftui_config("few_shot"))


# ---------------------------------------------------------------- the key training test

TRAINING_CASES = {
    "full": ("full", {}),
    "freeze": ("freeze", {"freeze_trainable_layers": 1}),
    "lora": ("lora", {}),
    "dora": ("lora", {"use_dora": True}),
    "rslora": ("lora", {"use_rslora": True, "target_modules": "q_proj,v_proj"}),
    "qlora": ("qlora", {}),
    "qlora_fp4_checkpointing": ("qlora", {"quant_type": "fp4", "double_quant": False}),
    "qlora_upcast": ("qlora", {"kbit_upcast": True}),
    "lora_8bit": ("lora_8bit", {}),
    "ia3": ("ia3", {}),
    "prefix": ("prefix", {"num_virtual_tokens": 4}),
    "prompt": ("prompt", {"num_virtual_tokens": 4}),
    "llama_adapter": ("llama_adapter", {"adapter_len": 4, "adapter_layers": 2}),
    "bottleneck": ("bottleneck", {"bottleneck_size": 8}),
}


def _prepared_model(case: str, tiny_dir) -> torch.nn.Module:
    name, method = TRAINING_CASES[case]
    train = TrainConfig(gradient_checkpointing=case.endswith("checkpointing"))
    config = ftui_config(name, train=train, **method)
    if name in ("qlora", "lora_8bit"):
        base = AutoModelForCausalLM.from_pretrained(tiny_dir, **model_load_kwargs(config, "cpu"))
        assert getattr(base, f"is_loaded_in_{'4' if name == 'qlora' else '8'}bit")
    else:
        base = tiny_model()
    return apply_method(base, config)


@pytest.mark.parametrize(("upcast", "norm_dtype"), [(False, torch.bfloat16), (True, torch.float32)])
def test_qlora_keeps_norms_in_the_models_dtype_unless_the_upcast_is_asked_for(
    tiny_dir, upcast, norm_dtype
):
    """Without the k-bit recipe's upcast, a bf16 model's norms and embeddings stay bf16 (less
    memory, bf16 activations); with it they become fp32. Adapters train in fp32 either way."""
    config = ftui_config("qlora", kbit_upcast=upcast)
    config.model.dtype = "bfloat16"
    base = AutoModelForCausalLM.from_pretrained(tiny_dir, **model_load_kwargs(config, "cpu"))
    model = apply_method(base, config)
    norms = [p for n, p in model.named_parameters() if n.endswith("norm.weight")]
    embeddings = model.get_input_embeddings().weight
    assert norms and {p.dtype for p in norms} == {norm_dtype} and embeddings.dtype == norm_dtype
    adapters = [p for p in model.parameters() if p.requires_grad]
    assert adapters and {p.dtype for p in adapters} == {torch.float32}


@pytest.mark.parametrize("case", list(TRAINING_CASES))
def test_two_steps_change_every_trainable_parameter_and_no_frozen_one(case, tiny_dir):
    model = _prepared_model(case, tiny_dir)
    model.train()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert trainable, "the method must train something"
    optimizer = torch.optim.AdamW(trainable, lr=1e-2, weight_decay=0.0)
    torch.manual_seed(1)
    tokens = torch.randint(0, 256, (2, 12))
    for _ in range(2):
        loss = model(input_ids=tokens, labels=tokens).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    assert torch.isfinite(loss)
    for name, param in model.named_parameters():
        moved = not torch.equal(before[name], param.detach())
        if param.requires_grad:
            assert moved, f"{case}: trainable {name} did not change"
        else:
            assert not moved, f"{case}: frozen {name} changed"
    if case != "full":
        assert len(trainable) < len(before), "some parameters must stay frozen"
    if case in {"lora", "dora", "rslora", "qlora", "qlora_upcast", "lora_8bit", "ia3", "prefix",
                "prompt"}:  # fmt: skip
        assert isinstance(model, PeftModel)


def test_every_optimizer_choice_maps_to_a_transformers_name():
    from transformers.training_args import OptimizerNames

    from ftui.config import FtuiConfig, TrainConfig, field_choices
    from ftui.translate import trainer_optimizer

    for name in field_choices(TrainConfig, "optimizer"):
        config = FtuiConfig()
        config.train.optimizer = name
        assert OptimizerNames(trainer_optimizer(config))


@pytest.mark.parametrize("objective", ["instruction", "dpo"])
def test_save_total_limit_reaches_the_trainer_arguments(tmp_path, objective):
    from ftui.translate import dpo_arguments, sft_arguments

    config = FtuiConfig(
        method=MethodConfig(objective=objective),
        train=TrainConfig(save_total_limit=3, eval_every=10, save_every=20),
    )
    if objective == "dpo":
        arguments = dpo_arguments(config, tmp_path, "cpu", torch.float32, has_validation=True)
    else:
        columns = ["prompt", "completion"]
        arguments = sft_arguments(config, tmp_path, "cpu", torch.float32, columns, True)
    assert arguments.save_total_limit == 3
    assert (arguments.save_steps, arguments.eval_steps) == (20, 10)
    assert FtuiConfig().train.save_total_limit == 2  # the default keeps the last two


@pytest.mark.parametrize("objective", ["instruction", "domain"])
def test_cpu_runs_keep_padded_rows_max_length_and_no_offloading(tmp_path, objective):
    """The GPU memory choices leave CPU runs as they were: SDPA, padded rows cut at
    max_length (or wrapped packing for domain text), no activation offloading even when
    asked for, checkpointing as written."""
    from ftui.translate import sft_arguments

    config = FtuiConfig(
        model=ModelConfig(attn_implementation="auto"),
        method=MethodConfig(objective=objective),
        train=TrainConfig(gradient_checkpointing=True, activation_offloading="on"),
    )
    config.data.max_length = 16384
    columns = ["prompt", "completion"]
    arguments = sft_arguments(config, tmp_path, "cpu", torch.float32, columns, False)
    assert model_load_kwargs(config, "cpu")["attn_implementation"] == "sdpa"
    assert arguments.max_length == 16384 and not arguments.padding_free
    assert not arguments.activation_offloading and arguments.gradient_checkpointing
    assert arguments.packing is (objective == "domain") and arguments.packing_strategy == "wrapped"


def test_gpu_offloading_follows_the_setting_and_sdpa_rows_stay_padded(tmp_path):
    """On a GPU without flash attention (fp32 here, so it builds on a CPU machine): padded
    rows with max_length, and activation offloading as train.activation_offloading says."""
    from ftui.translate import sft_arguments

    for setting, offloads in (("on", True), ("off", False), ("auto", False)):
        config = FtuiConfig(train=TrainConfig(activation_offloading=setting))
        arguments = sft_arguments(config, tmp_path, "cuda", torch.float32, ["text"], False)
        assert arguments.activation_offloading is offloads, setting
        assert not arguments.padding_free and arguments.max_length == config.data.max_length
