"""Peak training memory, component by component, from the architecture and the setup alone.

The model of a training step (what `torch.cuda.max_memory_allocated` or the process RSS sees):

    peak = weights + adapters + optimizer states
           + max(activations + logits/loss + gradients,      # end of forward / backward
                 gradients + optimizer-step transient)       # inside optimizer.step()

Each term is a closed form in the architecture (hidden size, intermediate size, layers, vocab,
kv heads), the method (which weights train, how weights are stored) and the setup (batch,
sequence, checkpointing, attention kernel, optimizer, dtype). Activation bytes per token and
layer are counted from what autograd saves in a Llama-style block; the few constants that
depend on kernels rather than shapes (marked CALIBRATED) were fitted once against the measured
grids in benchmarks/results/ and are checked there by tests, so a regression fails CI.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ftui.estimate.arch import LINEAR_NAMES, Architecture

GIB = 1024**3
QUANTIZED_METHODS = {"qlora": 4, "lora_8bit": 8}
PEFT_METHODS = {
    "lora",
    "qlora",
    "lora_8bit",
    "ia3",
    "prefix",
    "prompt",
    "llama_adapter",
    "bottleneck",
}

# CALIBRATED: bytes per activation element saved per token and layer, as multiples of the
# hidden size h and intermediate size i, by how much of the block needs input gradients.
# Fitted on benchmarks/results/memory_grid_*.json (see benchmarks/estimator_accuracy.py).
ACTIVATION_ELEMENTS = {
    # (per h, per i): full fine-tuning saves every linear input for its weight gradient
    "full": (16.0, 4.0),
    # adapters on every linear: the same inputs are saved for the adapter's gradient
    "all-linear": (14.0, 4.0),
    # adapters on a few projections, or none (prompt methods): only what the chain rule needs
    "partial": (12.0, 3.0),
}
RMSNORM_FP32_BYTES_PER_H = 8  # two RMSNorms upcast their input to fp32 when training in bf16
LOGIT_BYTES_PER_VOCAB = {2: 12.0, 4: 12.0}  # bf16 logits + fp32 copy + log-softmax + grad
OPTIMIZER_STEP_TRANSIENT = 1.0  # foreach AdamW holds about one extra copy of the states' size
CUDA_CONTEXT_BYTES = int(0.5 * GIB)  # CUDA context + cuBLAS workspace, outside the allocator
ALLOCATOR_SLACK = 1.07  # reserved/allocated headroom to keep when judging "fits"


@dataclass(frozen=True)
class TrainingSetup:
    """Everything besides the architecture that changes memory."""

    method: str
    trainable_params: int
    batch_size: int = 1
    seq_len: int = 512
    gradient_checkpointing: bool = False
    optimizer: str = "adamw_torch"
    attn_implementation: str = "sdpa"
    device: str = "cuda"
    param_bytes: int = 2  # compute dtype: 2 = bf16/fp16, 4 = fp32 (also the weights' dtype)
    lora_targets: tuple[str, ...] = LINEAR_NAMES
    lora_dropout: float = 0.0
    double_quant: bool = True
    virtual_tokens: int = 0  # prefix / prompt tuning lengthen every sequence


@dataclass
class MemoryEstimate:
    components: dict[str, int] = field(default_factory=dict)
    peak_bytes: int = 0
    device_overhead_bytes: int = 0

    @property
    def peak_gib(self) -> float:
        return self.peak_bytes / GIB

    def required_bytes(self) -> int:
        """What a GPU must have free: the peak plus context and allocator headroom."""
        return int(self.peak_bytes * ALLOCATOR_SLACK) + self.device_overhead_bytes


def estimate_memory(arch: Architecture, setup: TrainingSetup) -> MemoryEstimate:
    weights = weight_bytes(arch, setup)
    trainable = setup.trainable_params
    adapter_bytes = 0 if setup.method in ("full", "freeze") else trainable * 4
    grad_bytes = trainable * (setup.param_bytes if setup.method in ("full", "freeze") else 4)
    state_bytes = optimizer_state_bytes(trainable, grad_bytes, setup.optimizer)
    activations = activation_bytes(arch, setup)
    logits = logits_bytes(arch, setup)
    transient = int(state_bytes / 2 * OPTIMIZER_STEP_TRANSIENT) if state_bytes else 0
    during_backward = activations + logits + grad_bytes
    during_step = grad_bytes + transient
    components = {
        "weights": weights,
        "trainable_adapters": adapter_bytes,
        "gradients": grad_bytes,
        "optimizer_states": state_bytes,
        "activations": activations,
        "logits_and_loss": logits,
        "optimizer_step_transient": transient,
    }
    peak = weights + adapter_bytes + state_bytes + max(during_backward, during_step)
    overhead = CUDA_CONTEXT_BYTES if setup.device == "cuda" else 0
    return MemoryEstimate(
        components=components, peak_bytes=int(peak), device_overhead_bytes=overhead
    )


def weight_bytes(arch: Architecture, setup: TrainingSetup) -> int:
    bits = QUANTIZED_METHODS.get(setup.method)
    if bits is None:
        return arch.total_params * setup.param_bytes
    linear = arch.linear_params
    if bits == 4:
        # nf4/fp4: 0.5 B per weight; absmax per 64 weights in fp32, or in 8 bits plus an fp32
        # per 256 blocks with double quantization.
        constants = linear / 64 * (1 + 4 / 256) if setup.double_quant else linear / 64 * 4
        packed = linear // 2 + constants
    else:
        packed = linear + arch.layers * sum(o for _, o in arch.linear_shapes().values()) * 4
    # prepare_model_for_kbit_training upcasts every non-quantized weight to fp32
    rest = (arch.total_params - linear) * 4
    return int(packed + rest)


def optimizer_state_bytes(trainable: int, grad_bytes: int, optimizer: str) -> int:
    """AdamW keeps two states in the weights' dtype; 8-bit AdamW two 1-byte states."""
    if optimizer == "sgd":
        return 0
    if optimizer == "adamw_8bit":
        return int(trainable * 2 * (1 + 4 / 2048))  # blockwise 8-bit + fp32 absmax per block
    if optimizer == "adafactor":
        return int(grad_bytes * 0.05)  # factored second moment, no first moment
    return 2 * grad_bytes


def activation_bytes(arch: Architecture, setup: TrainingSetup) -> int:
    tokens = setup.batch_size * (setup.seq_len + setup.virtual_tokens)
    element = setup.param_bytes  # activations live in the compute dtype
    per_layer = per_token_layer_bytes(arch, setup, element) * tokens
    if setup.attn_implementation == "eager":
        # the softmax probabilities (and their dropout-free copy) for every head
        per_layer += (
            2
            * setup.batch_size
            * arch.heads
            * (setup.seq_len + setup.virtual_tokens) ** 2
            * element
        )
    if setup.gradient_checkpointing:
        # keep each block's input; recompute one block at a time in backward
        return int(arch.layers * tokens * arch.hidden * element + per_layer)
    return int(arch.layers * per_layer)


def per_token_layer_bytes(arch: Architecture, setup: TrainingSetup, element: int) -> float:
    kind = _activation_kind(setup)
    per_h, per_i = ACTIVATION_ELEMENTS[kind]
    size = (per_h * arch.hidden + per_i * arch.intermediate) * element
    if element == 2:
        size += RMSNORM_FP32_BYTES_PER_H * arch.hidden
    if setup.method in ("lora", "qlora", "lora_8bit") and setup.lora_dropout > 0:
        # dropout keeps a masked copy of every adapted layer's input, plus the mask
        shapes = arch.linear_shapes()
        size += sum(
            shapes[name][0] * (element + 1) for name in setup.lora_targets if name in shapes
        )
    return size


def _activation_kind(setup: TrainingSetup) -> str:
    if setup.method in ("full", "freeze"):
        return "full"
    if setup.method in ("lora", "qlora", "lora_8bit") and set(LINEAR_NAMES) <= set(
        setup.lora_targets
    ):
        return "all-linear"
    return "partial"


def logits_bytes(arch: Architecture, setup: TrainingSetup) -> int:
    tokens = setup.batch_size * setup.seq_len
    element = setup.param_bytes
    return int(tokens * arch.vocab * LOGIT_BYTES_PER_VOCAB[element])
