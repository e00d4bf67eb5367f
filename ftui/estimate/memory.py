"""Peak training memory, component by component, from the architecture and the setup alone.

The model of a training step on CUDA (what `torch.cuda.max_memory_allocated` sees):

    peak = weights + adapters + optimizer states
           + max(activations + loss + LM-head gradient,     # end of forward / backward
                 gradients + optimizer-step transient)      # inside optimizer.step()

On CPU the trainer's figure is the process's peak RSS (ru_maxrss), so the estimate adds what
the process holds besides tensors (the libraries, the tokenized dataset), counts activations
at what the allocator keeps for them, and takes the larger of the training peak and the load
peak (a quantized model is read in full precision before it is packed).

Each term is a closed form in the architecture (hidden size, intermediate size, layers, vocab,
kv heads), the method (which weights train, how weights are stored: the estimator terms of its
entry in `ftui.methods.METHODS`) and the setup (batch, sequence, checkpointing, attention
kernel, optimizer, dtype, loss). Activation bytes per token and layer are counted from what
autograd saves in a Llama-style block. The loss is TRL's fused LM head by default (ftui's
trainer: no full logits), or the full-logits loss of a plain loop. The few constants that
depend on kernels and allocators rather than shapes (marked CALIBRATED) were fitted once
against measured tables in benchmarks/results/ and are checked there by tests on shapes
outside the fit, so a regression fails CI.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ftui.estimate.arch import LINEAR_NAMES, Architecture
from ftui.methods import METHODS, MethodInfo

GIB = 1024**3

# Losses: "fused" is TRL's fused LM head (ftui's trainer): logits are computed in tiles of
# at most FUSED_TOKEN_TILE tokens x FUSED_VOCAB_TILE vocabulary entries and never kept.
# "chunked" keeps the model-dtype logits and their gradient (LitGPT's chunked cross-entropy);
# "full" is transformers' own loss (logits, their fp32 copy, log-softmax and its gradient).
LOSSES = ("fused", "chunked", "full")
FUSED_TOKEN_TILE = 4096  # trl.kernels.chunked_logprob.TOKEN_CHUNK_SIZE
FUSED_VOCAB_TILE = 32768  # trl.trainer.utils._CHUNKED_LOGPROB_CHUNK_SIZE
# CALIBRATED (H100 plain-loop grid): bytes per token and vocabulary entry of the "full" loss.
LOGIT_BYTES_PER_VOCAB = 12.5
CUDA_CONTEXT_BYTES = int(0.5 * GIB)  # CUDA context + cuBLAS workspace, outside the allocator
ALLOCATOR_SLACK = 1.07  # CUDA: reserved/allocated headroom to keep when judging "fits"
# CPU, fitted on benchmarks/results/trainer_memory_cpu.json (ftui's own trainer, ru_maxrss)
# and checked on trainer_memory_heldout.json:
CPU_PROCESS_BYTES = int(0.63e9)  # CALIBRATED: torch, transformers, TRL, datasets, the data
CPU_ACTIVATION_FACTOR = 1.63  # CALIBRATED: RSS per byte autograd saves (temporaries, arenas)
CPU_CHECKPOINT_KEEP = 0.3  # CALIBRATED: share of that RSS checkpointing leaves resident
# CALIBRATED: TRL's fused head without Triton folds a tile in torch; about seven fp32 tile-sized
# temporaries live at once in its backward.
CPU_FUSED_BYTES_PER_TILE_ENTRY = 29
# Projections grouped by the tensor they read: an adapter on any member saves that input once.
INPUT_GROUPS = {
    "q_proj": "x",
    "k_proj": "x",
    "v_proj": "x",
    "o_proj": "attn",
    "gate_proj": "x2",
    "up_proj": "x2",
    "down_proj": "act",
}


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
    trained_top_layers: int | None = None  # freeze / LLaMA-Adapter: only the top N blocks
    # The training stack. Defaults are ftui's trainer (transformers + peft + TRL): adapters in
    # fp32, TRL's fused LM head. Other stacks differ (LitGPT keeps adapters in bf16, skips the
    # k-bit upcast and chunks the loss; a plain loop computes the full loss); tests use that.
    adapter_fp32: bool = True
    kbit_upcast: bool = True
    loss: str = "fused"  # one of LOSSES
    activation_offload: bool = False  # saved activations wait in CPU memory until backward

    @property
    def method_info(self) -> MethodInfo:
        return METHODS[self.method]


@dataclass
class MemoryEstimate:
    components: dict[str, int] = field(default_factory=dict)
    peak_bytes: int = 0
    device_overhead_bytes: int = 0
    allocator_slack: float = ALLOCATOR_SLACK

    @property
    def peak_gib(self) -> float:
        return self.peak_bytes / GIB

    def required_bytes(self) -> int:
        """What the device must have free: on a GPU the peak plus context and allocator
        headroom; on CPU the peak RSS itself (it already counts the allocator)."""
        return int(self.peak_bytes * self.allocator_slack) + self.device_overhead_bytes


def estimate_memory(arch: Architecture, setup: TrainingSetup) -> MemoryEstimate:
    weights = weight_bytes(arch, setup)
    trainable = setup.trainable_params
    adapter_dtype_bytes = 4 if setup.adapter_fp32 else setup.param_bytes
    trains_base = setup.method_info.trains_base
    adapter_bytes = 0 if trains_base else trainable * adapter_dtype_bytes
    grad_bytes = trainable * (setup.param_bytes if trains_base else adapter_dtype_bytes)
    state_bytes = optimizer_state_bytes(trainable, grad_bytes, setup.optimizer)
    activations = activation_bytes(arch, setup)
    loss = loss_bytes(arch, setup)
    transient = optimizer_transient_bytes(arch, setup, grad_bytes)
    # gradients grow as activations are freed, so the backward peak is activations + loss;
    # with checkpointing on a GPU, the loss and one recomputed block never coexist
    if setup.gradient_checkpointing and setup.device == "cuda" and not setup.activation_offload:
        kept = checkpoint_bytes(arch, setup)
        during_backward = kept + max(loss, activations - kept)
    else:
        during_backward = activations + loss
    during_step = grad_bytes + transient
    components = {
        "weights": weights,
        "trainable_adapters": adapter_bytes,
        "gradients": grad_bytes,
        "optimizer_states": state_bytes,
        "activations": activations,
        "logits_and_loss": loss,
        "optimizer_step_transient": transient,
    }
    peak = weights + adapter_bytes + state_bytes + max(during_backward, during_step)
    if setup.device == "cpu":
        components["process"] = CPU_PROCESS_BYTES
        peak = CPU_PROCESS_BYTES + max(peak, cpu_load_peak_bytes(arch, setup))
        return MemoryEstimate(components=components, peak_bytes=int(peak), allocator_slack=1.0)
    return MemoryEstimate(
        components=components, peak_bytes=int(peak), device_overhead_bytes=CUDA_CONTEXT_BYTES
    )


def cpu_load_peak_bytes(arch: Architecture, setup: TrainingSetup) -> int:
    """Quantizing on load reads the full-precision weights (the mapped file and a copy)
    before they are packed; an unquantized model maps its file into the weights it uses."""
    if setup.method_info.quantized_bits is None:
        return 0
    return 2 * arch.total_params * setup.param_bytes


def weight_bytes(arch: Architecture, setup: TrainingSetup) -> int:
    bits = setup.method_info.quantized_bits
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
    rest = (arch.total_params - linear) * (4 if setup.kbit_upcast else setup.param_bytes)
    return int(packed + rest)


def optimizer_transient_bytes(arch: Architecture, setup: TrainingSetup, grad_bytes: int) -> int:
    """On CUDA, foreach AdamW holds one more tensor list the size of the gradients; on CPU
    AdamW steps tensor by tensor, so only the largest one's temporaries coexist."""
    if setup.optimizer not in ("adamw_torch", "adamw_8bit"):
        return 0
    if setup.device == "cuda":
        return grad_bytes
    largest = max(arch.vocab * arch.hidden, arch.hidden * arch.intermediate)
    return min(grad_bytes, 2 * largest * (grad_bytes // max(setup.trainable_params, 1)))


def optimizer_state_bytes(trainable: int, grad_bytes: int, optimizer: str) -> int:
    """AdamW keeps two states in the weights' dtype; 8-bit AdamW two 1-byte states."""
    if optimizer == "sgd":
        return 0
    if optimizer == "adamw_8bit":
        return int(trainable * 2 * (1 + 4 / 2048))  # blockwise 8-bit + fp32 absmax per block
    if optimizer == "adafactor":
        return int(grad_bytes * 0.05)  # factored second moment, no first moment
    return 2 * grad_bytes


def activation_element_bytes(setup: TrainingSetup) -> int:
    """bf16 on GPUs; fp32 on CPU, and for 4/8-bit training on GPUs too: the usual
    prepare_model_for_kbit_training upcasts embeddings and norms to fp32, so the residual
    stream and everything computed from it is fp32."""
    if setup.device == "cpu" or (setup.method_info.quantized and setup.kbit_upcast):
        return 4
    return 2  # bf16 weights, or fp32 weights under bf16 autocast


def activation_bytes(arch: Architecture, setup: TrainingSetup) -> int:
    """Everything autograd keeps for the backward pass, all layers, without checkpointing
    (with it on a GPU: the block inputs plus one recomputed block). On CPU: what the process
    holds for it, which is more than the saved tensors (CPU_ACTIVATION_FACTOR)."""
    tokens = setup.batch_size * (setup.seq_len + setup.virtual_tokens)
    layer = per_token_layer_bytes(arch, setup) * tokens + attention_matrix_bytes(arch, setup)
    if setup.device == "cpu":
        # checkpointing makes the embeddings' output require grad: every block keeps some
        layers = arch.layers if setup.gradient_checkpointing else trained_layers(arch, setup)
        held = CPU_ACTIVATION_FACTOR * layers * layer
        return int(held * CPU_CHECKPOINT_KEEP if setup.gradient_checkpointing else held)
    full = trained_layers(arch, setup) * layer
    if setup.activation_offload:
        # what waits on the CPU comes back a block ahead of use: with checkpointing, two block
        # inputs and the block being recomputed; without, the block in use and the next one
        if setup.gradient_checkpointing:
            inputs = checkpoint_bytes(arch, setup) // trained_layers(arch, setup)
            return int(2 * inputs + layer)
        return int(min(2, trained_layers(arch, setup)) * layer)
    if not setup.gradient_checkpointing:
        return int(full)
    return int(checkpoint_bytes(arch, setup) + layer)


def checkpoint_bytes(arch: Architecture, setup: TrainingSetup) -> int:
    tokens = setup.batch_size * (setup.seq_len + setup.virtual_tokens)
    element = activation_element_bytes(setup)
    return trained_layers(arch, setup) * tokens * arch.hidden * element


def trained_layers(arch: Architecture, setup: TrainingSetup) -> int:
    """Blocks at or above the lowest trained weight; those below keep nothing for backward."""
    if setup.trained_top_layers is None:
        return arch.layers
    return max(1, min(arch.layers, setup.trained_top_layers))


def attention_matrix_bytes(arch: Architecture, setup: TrainingSetup) -> int:
    """Eager attention keeps the probabilities. SDPA keeps none with flash or memory-efficient
    kernels, but fp32 inputs (k-bit training on GPUs) with grouped-query attention fall back
    to the math kernel, which keeps them (measured on H100: Llama-3 yes, Llama-2 no)."""
    positions = setup.seq_len + setup.virtual_tokens
    matrix = setup.batch_size * arch.heads * positions * positions
    element = activation_element_bytes(setup)
    if setup.attn_implementation == "eager":
        return matrix * (4 + element)  # fp32 softmax output and its cast copy
    if setup.device == "cuda" and element == 4 and arch.kv_heads < arch.heads:
        return matrix * 4
    return 0


def per_token_layer_bytes(arch: Architecture, setup: TrainingSetup) -> int:
    """Bytes one block keeps per token, counted from what a Llama-style block saves."""
    e = activation_element_bytes(setup)
    h, q, kv, i = arch.hidden, arch.q_width, arch.kv_width, arch.intermediate
    # RMSNorm keeps an fp32 copy of its input; LayerNorm its input and two statistics
    size = 2 * (4 * h if arch.rms_norm else e * h + 8)
    size += e * (2 * q + 2 * kv)  # SDPA keeps q, k, v and its output
    size += (3 if arch.gated_mlp else 1) * e * i  # SwiGLU: gate, SiLU(gate), up; GELU: input
    method = setup.method_info
    if method.trains_base:
        size += e * (2 * h + q + i)  # inputs of every projection, for weight gradients
    elif method.lora:
        size += lora_input_bytes(arch, setup, e)
    return size


def lora_input_bytes(arch: Architecture, setup: TrainingSetup, e: int) -> int:
    """Adapters keep their input for their own weight gradient. With bf16 base layers and
    fp32 adapters, peft casts the input once per adapted projection, so nothing is shared."""
    shapes = arch.linear_shapes()
    targets = [name for name in setup.lora_targets if name in shapes]
    if e == 2 and setup.adapter_fp32:
        size = sum(4 * shapes[name][0] for name in targets)
    else:
        groups = {INPUT_GROUPS[name]: shapes[name][0] for name in targets}
        size = sum(e * width for width in groups.values())
    if setup.lora_dropout > 0:  # a dropped-out copy of the input and its mask, per projection
        size += sum((max(e, 4) + 1) * shapes[name][0] for name in targets)
    return size


def loss_bytes(arch: Architecture, setup: TrainingSetup) -> int:
    """The LM head and loss at their peak (the start of backward), by loss implementation."""
    tokens = setup.batch_size * setup.seq_len
    if setup.loss == "full":
        return int(tokens * arch.vocab * LOGIT_BYTES_PER_VOCAB)
    if setup.loss == "chunked":  # model-dtype logits and their gradient
        return tokens * arch.vocab * 2 * setup.param_bytes
    tile = min(tokens, FUSED_TOKEN_TILE) * min(arch.vocab, FUSED_VOCAB_TILE)
    # the LM head's fp32 weight gradient, when the head trains (full fine-tuning)
    trains_head = setup.method_info.trains_base and setup.trained_top_layers is None
    head = arch.vocab * arch.hidden * 4 if trains_head else 0
    if setup.device == "cpu":
        return tile * CPU_FUSED_BYTES_PER_TILE_ENTRY + head
    # Triton: one tile in the compute dtype, the fp32 gradient of the hidden states, and the
    # gathered hidden states of the labelled positions
    element = activation_element_bytes(setup)
    return tile * setup.param_bytes + tokens * arch.hidden * (4 + element) + head
