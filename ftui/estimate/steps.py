"""How many optimizer steps a run takes: the one formula the estimator and the demo's step cap
share.

It is the Trainer's: each of `processes` takes `batch_size` sequences per micro-batch, every
`accumulation` micro-batches make one optimizer step, an epoch has at least one step, and a
fractional number of epochs rounds up.

    optimizer_steps(300, batch_size=4)                              -> 75
    optimizer_steps(300, batch_size=4, processes=2, accumulation=2) -> 19
"""

from __future__ import annotations

import math

from ftui.config import FtuiConfig


def optimizer_steps(
    sequences: int,
    batch_size: int,
    processes: int = 1,
    accumulation: int = 1,
    epochs: float = 1.0,
) -> int:
    """Optimizer steps over `epochs` passes of `sequences` training sequences."""
    micro_batches = math.ceil(sequences / (batch_size * processes))
    per_epoch = max(1, math.ceil(micro_batches / accumulation))
    return math.ceil(per_epoch * epochs)


def epoch_steps(config: FtuiConfig, rows: int, tokens: int) -> int:
    """Optimizer steps in one epoch of this config's data; 0 when its size is unknown.

    Instruction data is padded, one row per sequence; packed raw text (the domain objective),
    or data known only by its token count, fills sequences of max_length tokens.
    """
    if rows and config.method.objective != "domain":
        sequences = rows
    else:
        sequences = math.ceil(tokens / config.data.max_length)
    if not sequences:
        return 0
    train = config.train
    return optimizer_steps(
        sequences, train.batch_size, train.num_processes, train.gradient_accumulation
    )
