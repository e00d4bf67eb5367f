"""Time per step and per epoch, and what it costs, from FLOPs and a measured utilisation.

FLOPs of a step: 2 x (matmul weights) x tokens for the forward pass, plus attention scores;
the backward pass costs twice the forward when the weights train (input and weight
gradients) and about once when they are frozen (input gradients only, as in every PEFT
method); gradient checkpointing adds one more forward. Seconds = FLOPs / (peak x utilisation),
but never less than the launch-bound floor of a small step on a GPU. An optimizer step is
`accumulation` such micro-batches (each process runs its own in parallel); how many of them an
epoch takes is `ftui.estimate.steps`.
The utilisations (CALIBRATED) were measured with benchmarks/memory_grid.py: on this 2-core CPU
class and on an H100 (benchmarks/results/).
"""

from __future__ import annotations

from dataclasses import dataclass

from ftui.estimate.arch import Architecture
from ftui.estimate.gpus import GPU
from ftui.estimate.memory import TrainingSetup

# CALIBRATED on an H100 (benchmarks/results/memory_grid_h100.json): fraction of the peak a
# transformers/peft step reaches once the batch is large enough; 4/8-bit layers (keyed by the
# method's quantized_bits) dequantize their weights on every matmul and reach much less.
GPU_UTILIZATION = {4: 0.15, 8: 0.10}
GPU_UTILIZATION_DEFAULT = 0.45
# CALIBRATED: small steps are bound by Python and kernel launches, ~7 ms per block per step.
GPU_SECONDS_PER_LAYER = 0.007
# CALIBRATED: sustained fp32 FLOP/s of a 2-core x86 CPU (this machine class) in training.
CPU_FLOPS = 90e9


@dataclass
class TimeEstimate:
    seconds_per_step: float
    tokens_per_second: float
    steps_per_epoch: int
    seconds_per_epoch: float
    price_per_hour: float  # per GPU (or machine) hour
    cost_per_step: float  # every GPU the step runs on is paid for
    cost_per_epoch: float


def step_flops(arch: Architecture, setup: TrainingSetup) -> float:
    tokens = setup.batch_size * (setup.seq_len + setup.virtual_tokens)
    matmul_weights = arch.linear_params + arch.vocab * arch.hidden  # blocks + LM head
    attention = (
        4
        * setup.batch_size
        * (setup.seq_len + setup.virtual_tokens) ** 2
        * (arch.q_width * arch.layers)
    )
    forward = 2 * matmul_weights * tokens + attention
    backward_factor = 2.0 if setup.method_info.trains_base else 1.0
    if setup.trained_top_layers is not None:  # backward stops below the lowest trained block
        backward_factor *= min(1.0, setup.trained_top_layers / arch.layers)
    recompute = 1.0 if setup.gradient_checkpointing else 0.0
    return forward * (1.0 + backward_factor + recompute)


def micro_batch_seconds(arch: Architecture, setup: TrainingSetup, gpu: GPU | None) -> float:
    """Forward and backward of one batch_size x seq_len batch on `gpu` (None = this CPU)."""
    if gpu is None:
        return step_flops(arch, setup) / CPU_FLOPS
    utilization = GPU_UTILIZATION.get(setup.method_info.quantized_bits, GPU_UTILIZATION_DEFAULT)
    compute = step_flops(arch, setup) / (gpu.peak_tflops * 1e12 * utilization)
    return max(compute, arch.layers * GPU_SECONDS_PER_LAYER)


def estimate_time(
    arch: Architecture,
    setup: TrainingSetup,
    gpu: GPU | None,
    price_per_hour: float | None = None,
    *,
    steps_per_epoch: int = 0,
    accumulation: int = 1,
    processes: int = 1,
) -> TimeEstimate:
    """Seconds per optimizer step on `gpu` (None = this CPU), tokens per second over all
    `processes`, and the time and cost of an epoch of `steps_per_epoch` steps.

    Each of `processes` GPUs runs its micro-batches in parallel and is paid for; CPU
    processes share one machine, so they take turns on its cores.
    """
    gpus = processes if gpu else 1
    micro_batches = accumulation * processes / gpus  # one after another, per device
    seconds = micro_batch_seconds(arch, setup, gpu) * micro_batches
    tokens_per_step = setup.batch_size * setup.seq_len * accumulation * processes
    price = price_per_hour if price_per_hour is not None else (gpu.price_per_hour if gpu else 0)
    step_cost = seconds / 3600 * price * gpus
    return TimeEstimate(
        seconds_per_step=seconds,
        tokens_per_second=tokens_per_step / seconds,
        steps_per_epoch=steps_per_epoch,
        seconds_per_epoch=steps_per_epoch * seconds,
        price_per_hour=price,
        cost_per_step=step_cost,
        cost_per_epoch=steps_per_epoch * step_cost,
    )
