"""Linear layers that decode a few rows on CPU as W·xᵀ instead of x·Wᵀ.

A decoding step feeds each linear layer 1 to 4 rows. For such thin inputs, MKL's product
x·Wᵀ (what torch.nn.functional.linear asks for) takes a slow path; the same numbers computed
as W·xᵀ run at the memory's speed. Measured on this 2-core CPU for SmolLM2-135M: its LM head
(576 → 49,152) took 9.7 ms for one row and 17.2 ms for four, against 3.2 ms and 4.7 ms as
W·xᵀ (one row is sent as two: MKL's matrix-vector product is slow too). A decoding step of
the flagship LoRA run went from 60 to 37 ms for one row and from 104 to 61 ms for four (130
to 60 ms for three), measured in the model, where every weight comes from memory (a layer
timed alone stays in the CPU's cache and tells another story). From 16 rows up the plain
layer is faster again (its output is laid out the way the next layer reads it), so prompts
and batch evaluation's wide steps keep it.

The sums run in another order, so a logit can differ in its last bits, as it does between a
one-row and a four-row batch; benchmarks/eval_speed.py checks every greedy answer against
the code before this work, word for word.

    narrow_decoding(model)   # the big plain torch.nn.Linear layers of a CPU float32 model
"""

from __future__ import annotations

from typing import Any

import torch

FEW_ROWS = 4  # at most this many rows go through W·xᵀ (measured: 8 is a draw, 16 slower)
BIG_WEIGHT = 1 << 18  # smaller weights (LoRA's A and B, 576 → 192) gain nothing: kept plain


class FewRowLinear(torch.nn.Linear):
    """torch.nn.Linear whose forward computes W·xᵀ for 1 to FEW_ROWS rows on CPU."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = x.numel() // self.in_features if x.dim() > 1 else 0
        if not 0 < rows <= FEW_ROWS or x.device.type != "cpu" or x.dtype != torch.float32:
            return super().forward(x)
        flat = x.reshape(rows, self.in_features)
        if rows == 1:
            flat = torch.cat([flat, flat])  # MKL's matrix-vector product is the slow path too
        out = torch.mm(self.weight, flat.t()).t()[:rows]
        if self.bias is not None:
            out = out + self.bias
        return out.contiguous().view(*x.shape[:-1], self.out_features)


def narrow_decoding(model: Any) -> int:
    """Turns the big plain torch.nn.Linear layers of a float32 CPU model into FewRowLinear
    (the same weights and module tree; peft's LoRA layers keep wrapping them). Returns how
    many layers it changed: none on another device or dtype, nor quantized layers."""
    changed = 0
    for module in model.modules():
        weight = getattr(module, "weight", None)
        if type(module) is not torch.nn.Linear or weight is None or weight.numel() < BIG_WEIGHT:
            continue
        if weight.device.type == "cpu" and weight.dtype == torch.float32:
            module.__class__ = FewRowLinear
            changed += 1
    return changed
