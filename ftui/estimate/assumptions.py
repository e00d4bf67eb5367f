"""What an estimate takes for granted about the training run, in words a user can check.

The memory and time model (ftui.estimate.memory, speed) assumes a particular training path:
these sentences say which, so the Method tab and `ftui estimate` can show them beside the
numbers (and change when the model of the path changes).
"""

from __future__ import annotations

from ftui.estimate.memory import TrainingSetup, activation_element_bytes

LOSS_SENTENCES = {
    "fused": "TRL's fused LM head (logits in tiles, never the full logits)",
    "chunked": "a chunked loss (no full fp32 logits)",
    "full": "the loss over the full vocabulary in fp32",
}


BATCHING = {
    "padded": "rows padded to the longest in it",
    "packed": "rows packed to the max length",
    "joined": "rows joined without padding, varlen attention",
}


def assumptions(setup: TrainingSetup, batching: str = "padded") -> list[str]:
    """One short sentence per assumption, most important first; `batching` is how rows make
    a batch (a BATCHING key)."""
    sentences = [
        _batch(setup, batching),
        _precision(setup),
        _attention(setup),
        "gradient checkpointing " + ("on" if setup.gradient_checkpointing else "off"),
        LOSS_SENTENCES[setup.loss],
        f"optimizer {setup.optimizer}",
    ]
    if setup.activation_offload:
        sentences.append("activations offloaded to CPU memory until the backward pass")
    info = setup.method_info
    if info.lora and setup.adapter_fp32:
        sentences.append("LoRA adapters kept in fp32")
    if info.quantized:
        sentences.append(
            f"{info.quantized_bits}-bit base with peft's k-bit recipe: norms, embeddings and "
            "LM head upcast to fp32"
            if setup.kbit_upcast
            else f"{info.quantized_bits}-bit base without the fp32 upcast (norms, embeddings "
            "and LM head in the model's dtype)"
        )
    return sentences


def _batch(setup: TrainingSetup, batching: str) -> str:
    tokens = setup.seq_len + setup.virtual_tokens
    virtual = f", plus {setup.virtual_tokens} virtual tokens" if setup.virtual_tokens else ""
    return (
        f"the longest batch is {setup.batch_size} x {tokens:,} tokens "
        f"({BATCHING[batching]}{virtual})"
    )


def _precision(setup: TrainingSetup) -> str:
    compute = "bf16" if setup.param_bytes == 2 else "fp32"
    activations = "fp32" if activation_element_bytes(setup) == 4 else "bf16"
    bits = setup.method_info.quantized_bits
    weights = f"{bits}-bit base weights computing in {compute}" if bits else f"{compute} weights"
    return f"{weights}, {activations} activations"


def _attention(setup: TrainingSetup) -> str:
    if setup.attn_implementation == "eager":
        return "eager attention (keeps the full attention matrix)"
    return f"{setup.attn_implementation} attention (no attention matrix kept)"
