"""The catalog of fine-tuning methods and objectives, as plain data: the one place that
knows what a method is.

Each `MethodInfo` holds the words the Method tab shows (cards, comparison table), the
`method.*` settings the method uses, the objectives it trains with, the facts the memory and
time estimator works from (how the base weights are stored, whether they train, LoRA
adapters, virtual tokens, top blocks only) and the recommender's rules of thumb. The
estimator, the recommender and the config's cross-section rules read these fields instead of
testing method names. It imports only plain data (the formats of `ftui.data.layouts`), so the
config can import it and the first page renders fast.
What each method *does* to a model lives in `ftui.translate`; how many parameters it trains
for a given architecture comes from `ftui.params`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from ftui.data.layouts import FORMATS

OBJECTIVES: tuple[str, ...] = ("instruction", "domain", "dpo", "kto")


@dataclass(frozen=True)
class MethodInfo:
    name: str
    title: str
    summary: str  # one line: what it is
    when_to_use: str
    trainable_params: str
    compute_cost: str
    structure_change: str
    training_time: str
    inference_latency: str  # merged or not
    trains: bool
    settings: tuple[str, ...]  # the method.* fields it uses (the Method tab shows these)
    objectives: tuple[str, ...] = OBJECTIVES  # the method.objective values it trains with
    # Estimator terms.
    quantized_bits: int | None = None  # frozen base stored in 8 or 4 bits; None: compute dtype
    trains_base: bool = False  # gradients for the model's own weights, not for added ones
    lora: bool = False  # LoRA A/B beside Linear layers (each keeps its input for backward)
    virtual_tokens: bool = False  # num_virtual_tokens more positions in every sequence
    top_layers_setting: str | None = None  # the setting naming the top blocks that train
    gradient_checkpointing: bool = True  # peft refuses it for prefix tuning
    # Recommender rules of thumb.
    bytes_per_param: float | None = None  # training memory per model parameter, with margin
    min_model_params: int = 0  # below this size another method does better

    @property
    def quantized(self) -> bool:
        return self.quantized_bits is not None


_LORA_SHAPE = "r x (in + out) per adapted Linear layer"
_LORA_SETTINGS = (
    "lora_r", "lora_alpha", "lora_dropout", "target_modules", "use_dora", "use_rslora"
)  # fmt: skip

METHODS: dict[str, MethodInfo] = {
    "full": MethodInfo(
        name="full",
        title="Full fine-tuning",
        summary="Update every weight of the model.",
        when_to_use="Large, varied datasets and a big change in behaviour, or small models "
        "where memory is plentiful. Highest ceiling, highest risk of forgetting.",
        trainable_params="100% of the model.",
        compute_cost="Highest: weights, gradients and two AdamW states for every parameter: "
        "8 bytes per parameter in pure bf16, 16 with fp32 master weights (mixed precision), "
        "plus activations.",
        structure_change="None: same architecture, new weights.",
        training_time="Slowest per step: gradients and optimizer updates for every weight.",
        inference_latency="None: a plain model. But every fine-tune is a full copy of the "
        "weights to store and serve.",
        trains=True,
        settings=(),
        trains_base=True,
        bytes_per_param=18.0,  # weights, gradients, two AdamW states, fp32 copies
    ),
    "freeze": MethodInfo(
        name="freeze",
        title="Freeze (train the top N layers)",
        summary="Train only the top N transformer blocks and the final norm; the rest stays fixed.",
        when_to_use="Adapting output style or format with modest data when the lower layers' "
        "features are fine; a cheap middle ground between LoRA and full fine-tuning.",
        trainable_params="N of the model's blocks plus the final norm (e.g. 2 of 30 blocks "
        "is about 5% of SmolLM2-135M).",
        compute_cost="Gradients and optimizer states only for the top N blocks; no weight "
        "gradients below them.",
        structure_change="None: same architecture, the top blocks get new weights.",
        training_time="Faster than full fine-tuning: the backward pass stops at the lowest "
        "trained block.",
        inference_latency="None: a plain model.",
        trains=True,
        settings=("freeze_trainable_layers",),
        trains_base=True,
        top_layers_setting="freeze_trainable_layers",
    ),
    "lora": MethodInfo(
        name="lora",
        title="LoRA (+ DoRA, rsLoRA)",
        summary="Learn a low-rank update B x A of rank r beside each frozen Linear layer.",
        when_to_use="The default for most tasks: instruction tuning, formats and styles, "
        "domain tasks on small-to-medium data. DoRA helps at low rank (slower); rsLoRA "
        "keeps high ranks stable.",
        trainable_params=f"{_LORA_SHAPE}; typically 0.1-2% of the model with all-linear at r=16.",
        compute_cost="Frozen weights plus gradients and AdamW states for the adapters only; "
        "activations as usual. DoRA adds a weight-norm computation per step.",
        structure_change="Adds A (r x in) and B (out x r) beside each targeted Linear; B "
        "starts at zero, so the model starts unchanged.",
        training_time="About two thirds of full fine-tuning's compute per step (no "
        "gradients for the frozen weights); DoRA is slower.",
        inference_latency="None once merged into the weights; small extra matmuls per layer "
        "if served unmerged (one base can then serve many adapters).",
        trains=True,
        settings=_LORA_SETTINGS,
        lora=True,
        bytes_per_param=2.0 * 1.3,  # bf16 frozen weights + adapters, states, activations
    ),
    "qlora": MethodInfo(
        name="qlora",
        title="QLoRA (4-bit base)",
        summary="LoRA on a base model whose weights are stored in 4 bits (NF4 or FP4) by "
        "bitsandbytes.",
        when_to_use="When the 16-bit weights do not fit in GPU memory for LoRA (7-70B models "
        "on one GPU). Quality close to 16-bit LoRA.",
        trainable_params=f"Same as LoRA: {_LORA_SHAPE}.",
        compute_cost="Base weights at about 0.5 byte per parameter (double quantization "
        "shrinks the scales further); adapters, gradients and optimizer states in 16/32-bit. "
        "The usual recipe upcasts norms and embeddings to fp32, so activations are fp32: "
        "without gradient checkpointing QLoRA can need more memory than LoRA on small "
        "models or long sequences (measured: Llama-3.2-1B, 2048 tokens, 20 GB vs 11 GB).",
        structure_change="Linear layers become bitsandbytes Linear4bit; LoRA A/B beside "
        "them as in LoRA.",
        training_time="Slower than 16-bit LoRA (weights are de-quantized on every pass). "
        "Works on CPU but about 5x slower than fp32 LoRA there: a correctness path only.",
        inference_latency="Unmerged: 4-bit de-quantization plus adapter matmuls. To merge, "
        "reload the base in 16-bit and merge there.",
        trains=True,
        settings=(*_LORA_SETTINGS, "quant_type", "double_quant", "kbit_upcast"),
        quantized_bits=4,
        lora=True,
        bytes_per_param=0.6 * 1.3,  # 4-bit weights + quantization constants, fp32 norms
    ),
    "lora_8bit": MethodInfo(
        name="lora_8bit",
        title="LoRA on an 8-bit base",
        summary="LoRA with the frozen base stored in 8 bits by bitsandbytes (LLM.int8).",
        when_to_use="Memory between 16-bit LoRA and QLoRA, when 4-bit quality loss is a concern.",
        trainable_params=f"Same as LoRA: {_LORA_SHAPE}.",
        compute_cost="Base weights at about 1 byte per parameter; int8 matmuls with outlier "
        "decomposition; adapters, gradients and optimizer states in 16/32-bit.",
        structure_change="Linear layers become bitsandbytes Linear8bitLt; LoRA A/B beside them.",
        training_time="Often slower than both 16-bit LoRA and QLoRA on GPUs (outlier "
        "handling); slow on CPU, where inputs are cast to fp16 for every matmul.",
        inference_latency="Unmerged: int8 matmuls are slower than bf16. To merge, reload "
        "the base in 16-bit and merge there.",
        trains=True,
        settings=(*_LORA_SETTINGS, "kbit_upcast"),
        quantized_bits=8,
        lora=True,
    ),
    "ia3": MethodInfo(
        name="ia3",
        title="IA3",
        summary="Learn scaling vectors that rescale keys, values and the feed-forward "
        "activations channel by channel.",
        when_to_use="Very small datasets or many tasks sharing one base; tiny checkpoints. "
        "Usually below LoRA on generation quality.",
        trainable_params="One vector per targeted layer (k_proj and v_proj outputs, the "
        "down_proj input): about 0.01% of the model.",
        compute_cost="Lowest of the adapter methods: vectors only; activations as in LoRA.",
        structure_change="Element-wise scales (initialised to 1) on keys, values and the "
        "feed-forward input of down_proj.",
        training_time="About LoRA's: a full backward through the activations, negligible "
        "optimizer work.",
        inference_latency="None once merged (the scales fold into the weights); a tiny "
        "element-wise multiply if unmerged.",
        trains=True,
        settings=(),
    ),
    "prefix": MethodInfo(
        name="prefix",
        title="Prefix tuning",
        summary="Learn virtual key/value vectors prepended to the attention of every layer.",
        when_to_use="Generation tasks with plenty of data where a per-task prefix is swapped "
        "cheaply; usually weaker than LoRA on small models.",
        trainable_params="num_virtual_tokens x layers x 2 x (kv_heads x head_dim), e.g. "
        "20 x 30 x 2 x 192 = 230,400 for SmolLM2-135M.",
        compute_cost="Small trainable set; every layer attends over num_virtual_tokens extra "
        "positions.",
        structure_change="Virtual key/values in every layer (fed as a past key/value cache); "
        "the base weights are untouched.",
        training_time="Close to the frozen model's forward and backward; often needs more "
        "steps than LoRA to converge.",
        inference_latency="Cannot be merged; adds ~num_virtual_tokens of cached context to "
        "every request (KV-cache memory and attention per token).",
        trains=True,
        settings=("num_virtual_tokens",),
        virtual_tokens=True,
        gradient_checkpointing=False,
    ),
    "prompt": MethodInfo(
        name="prompt",
        title="Prompt tuning",
        summary="Learn soft token embeddings put before every input, at the input layer only.",
        when_to_use="Large models (billions of parameters) on simple tasks, with tiny "
        "checkpoints; on small models like SmolLM2-135M it clearly lags LoRA.",
        trainable_params="num_virtual_tokens x hidden_size (e.g. 20 x 576 = 11,520 for "
        "SmolLM2-135M).",
        compute_cost="The smallest trainable set, but gradients still flow through the "
        "whole model to the input; sequences grow by num_virtual_tokens.",
        structure_change="A learned embedding table for the virtual tokens; the base is untouched.",
        training_time="Cheap per step, but usually needs more steps and a higher learning "
        "rate than LoRA.",
        inference_latency="Cannot be merged; num_virtual_tokens extra input positions per request.",
        trains=True,
        settings=("num_virtual_tokens",),
        virtual_tokens=True,
        min_model_params=1_000_000_000,  # prompt tuning works on billion-parameter models
    ),
    "llama_adapter": MethodInfo(
        name="llama_adapter",
        title="LLaMA-Adapter",
        summary="Learned adaption prompts in the top layers' attention, mixed in through "
        "zero-initialised gates.",
        when_to_use="Instruction following with very few trainable parameters on "
        "Llama-family models (peft supports llama, mistral and gpt2 model types only).",
        trainable_params="adapter_layers x (adapter_len x hidden_size + 1 gate).",
        compute_cost="Small trainable set; one extra attention over adapter_len prompt "
        "positions in each adapted layer.",
        structure_change="Wraps the top adapter_layers attention modules; zero gates make "
        "the model start unchanged.",
        training_time="Close to the frozen model's forward and backward.",
        inference_latency="Cannot be merged; a small extra attention per adapted layer on "
        "every token.",
        trains=True,
        settings=("adapter_len", "adapter_layers"),
        top_layers_setting="adapter_layers",
    ),
    "bottleneck": MethodInfo(
        name="bottleneck",
        title="Bottleneck adapters",
        summary="Small down-project, activation, up-project modules after each block's MLP, "
        "with a residual connection (Houlsby/Pfeiffer style).",
        when_to_use="One frozen base with swappable per-task adapters; a well-studied "
        "alternative to LoRA (implemented in ftui, peft has none).",
        trainable_params="layers x (2 x hidden_size x size + hidden_size + size).",
        compute_cost="Small trainable set; two small matmuls added per block.",
        structure_change="Inserts new modules after every MLP (down h->b, up b->h "
        "zero-initialised, so the model starts unchanged): the layer graph changes.",
        training_time="Close to LoRA's.",
        inference_latency="Cannot be merged (the activation is non-linear); two extra "
        "sequential matmuls per layer per token, noticeable at batch size 1.",
        trains=True,
        settings=("bottleneck_size",),
    ),
    "few_shot": MethodInfo(
        name="few_shot",
        title="Few-shot prompting (baseline)",
        summary="No training: put k solved examples from the training split into the prompt.",
        when_to_use="The baseline every fine-tune must beat, and the right choice with only "
        "a handful of examples or no time to train.",
        trainable_params="None.",
        compute_cost="No training cost; every request is longer.",
        structure_change="None.",
        training_time="None.",
        inference_latency="Every request carries k examples of extra prompt: longer prefill "
        "and a bigger KV cache per request.",
        trains=False,
        settings=(),
        objectives=("instruction",),  # the prompting baseline answers tasks
    ),
}

TRAINING_METHODS: tuple[str, ...] = tuple(name for name, info in METHODS.items() if info.trains)

# Raw text trains by continued pretraining, preference pairs by DPO, unpaired good/bad answers
# by KTO; every other data format (the conversational ones) by instruction tuning.
_OBJECTIVE_OF_FORMAT = {"text": "domain", "preference": "dpo", "kto": "kto"}

TABLE_COLUMNS = (
    "trainable_params",
    "compute_cost",
    "structure_change",
    "training_time",
    "inference_latency",
)


def method_table() -> list[dict[str, str]]:
    """One row per method with its trade-off columns, for the comparison table."""
    columns = ("name", "title", *TABLE_COLUMNS)
    return [{c: asdict(info)[c] for c in columns} for info in METHODS.values()]


def compatible_formats(objective: str) -> list[str]:
    """Data formats an objective reads (the Data tab's detected format must be one)."""
    if objective not in OBJECTIVES:
        raise ValueError(f"unknown objective {objective!r}; choose one of {', '.join(OBJECTIVES)}")
    return [fmt for fmt in FORMATS if _OBJECTIVE_OF_FORMAT.get(fmt, "instruction") == objective]


def objective_problem(objective: str, batch_size: int) -> str | None:
    """Why train.batch_size cannot train this objective (the config's check), or None."""
    if objective == "kto" and batch_size < 2:
        return (
            "method.objective kto needs train.batch_size of at least 2: KTO estimates its "
            "reference term from the other rows of a batch; use 2 or more, e.g. 4"
        )
    return None


def objective_for_format(data_format: str | None) -> str | None:
    """The objective a detected data format trains with (text -> domain, pairs -> dpo,
    labelled answers -> kto)."""
    if data_format not in FORMATS:
        return None
    return _OBJECTIVE_OF_FORMAT.get(data_format, "instruction")
