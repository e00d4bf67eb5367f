"""The numbers of a decoder-only transformer that memory and time depend on.

`Architecture.from_hf_config` reads them from a transformers config (Llama, Mistral, Qwen,
Gemma, Phi... all name them the same way); nothing is loaded. Parameter totals here are the
closed form for a Llama-style block and are used to split weights into "decoder linears" (what
4-bit quantization packs) and "the rest" (embeddings, norms, untied head).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

LINEAR_NAMES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
# Families whose MLP is up -> activation -> down (no gate projection).
NON_GATED_TYPES = {
    "phi",
    "gpt2",
    "gpt_neox",
    "gptj",
    "falcon",
    "opt",
    "bloom",
    "starcoder2",
    "gpt_bigcode",
    "mpt",
}
# Families normalising with LayerNorm rather than RMSNorm.
LAYER_NORM_TYPES = NON_GATED_TYPES | {"stablelm", "cohere", "olmo"}


@dataclass(frozen=True)
class Architecture:
    hidden: int
    intermediate: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab: int
    tied_embeddings: bool
    gated_mlp: bool = True
    rms_norm: bool = True

    @classmethod
    def from_hf_config(cls, config: Any) -> Architecture:
        text = getattr(config, "text_config", None) or config  # multimodal wrappers
        hidden = text.hidden_size
        heads = text.num_attention_heads
        head_dim = getattr(text, "head_dim", None) or hidden // heads
        return cls(
            hidden=hidden,
            intermediate=getattr(text, "intermediate_size", None) or 4 * hidden,
            layers=text.num_hidden_layers,
            heads=heads,
            kv_heads=getattr(text, "num_key_value_heads", None) or heads,
            head_dim=head_dim,
            vocab=text.vocab_size,
            tied_embeddings=bool(getattr(config, "tie_word_embeddings", False)),
            gated_mlp=getattr(text, "model_type", "") not in NON_GATED_TYPES,
            rms_norm=getattr(text, "model_type", "") not in LAYER_NORM_TYPES,
        )

    @property
    def kv_width(self) -> int:
        return self.kv_heads * self.head_dim

    @property
    def q_width(self) -> int:
        return self.heads * self.head_dim

    def linear_shapes(self) -> dict[str, tuple[int, int]]:
        """(in_features, out_features) of each projection in one block."""
        h, i = self.hidden, self.intermediate
        shapes = {
            "q_proj": (h, self.q_width),
            "k_proj": (h, self.kv_width),
            "v_proj": (h, self.kv_width),
            "o_proj": (self.q_width, h),
            "up_proj": (h, i),
            "down_proj": (i, h),
        }
        if self.gated_mlp:
            shapes["gate_proj"] = (h, i)
        return shapes

    @property
    def linear_params(self) -> int:
        """Weights of all decoder-block projections (what QLoRA stores in 4 bits)."""
        per_block = sum(a * b for a, b in self.linear_shapes().values())
        return per_block * self.layers

    @property
    def embedding_params(self) -> int:
        return self.vocab * self.hidden * (1 if self.tied_embeddings else 2)

    @property
    def norm_params(self) -> int:
        return self.hidden * (2 * self.layers + 1)

    @property
    def total_params(self) -> int:
        return self.linear_params + self.embedding_params + self.norm_params
