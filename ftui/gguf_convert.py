"""Write a Hugging Face model folder as one GGUF file (what llama.cpp, Ollama, LM Studio read).

    plan = plan_gguf(config, tokenizer, "q8_0")   # refuses what it cannot convert, before any work
    write_gguf(plan, folder, folder / "model-q8_0.gguf", progress)

Built on the `gguf` package that llama.cpp publishes: its writer (streamed: one tensor in memory
at a time), its tensor-name map, its special-token and merges reader (chat template included)
and its q8_0 quantizer. What that package leaves to the caller follows llama.cpp's
convert_hf_to_gguf.py (TextModel, LlamaModel, Qwen2Model): the hyperparameter keys, the q/k row
order of llama's rotary layout, which tensors stay f32, the token types, and the pre-tokenizer
name found by hashing the tokens of llama.cpp's check text. q4_k_m has no quantizer in the
`gguf` package (its k-quants only de-quantize), so it is offered only where llama.cpp's own
`llama-quantize` is installed (ftui.gguf_export).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gguf
import numpy as np

# ftui's name -> (file type written in the header, type of the quantized tensors)
FORMATS: dict[str, tuple[gguf.LlamaFileType, gguf.GGMLQuantizationType]] = {
    "f16": (gguf.LlamaFileType.MOSTLY_F16, gguf.GGMLQuantizationType.F16),
    "q8_0": (gguf.LlamaFileType.MOSTLY_Q8_0, gguf.GGMLQuantizationType.Q8_0),
}
# transformers architecture -> (GGUF architecture, whether q/k rows are permuted as llama.cpp's
# LlamaModel does: its rotary embedding pairs neighbouring dimensions, transformers' pairs halves)
ARCHITECTURES: dict[str, tuple[gguf.MODEL_ARCH, bool]] = {
    "LlamaForCausalLM": (gguf.MODEL_ARCH.LLAMA, True),
    "Qwen2ForCausalLM": (gguf.MODEL_ARCH.QWEN2, False),
    "Qwen3ForCausalLM": (gguf.MODEL_ARCH.QWEN3, False),
}
ROPE_TYPES = ("default", "linear", "llama3")
# llama.cpp's check text and the hashes of its tokens for the pre-tokenizers of the
# architectures above (convert_hf_to_gguf.py, get_vocab_base_pre; MIT licensed)
CHECK_TEXT = (
    "\n \n\n \n\n\n \t \t\t \t\n  \n   \n    \n     \n🚀 (normal) 😶\u200d🌫️ (multiple emojis "
    "concatenated) ✅ 🦙🦙 3 33 333 3333 33333 333333 3333333 33333333 3.3 3..3 3...3 "
    "កាន់តែពិសេសអាច😁 ?我想在apple工作1314151天～ ------======= нещо на Български "
    "''''''```````\"\"\"\"......!!!!!!?????? I've been 'told he's there, 'RE you sure? 'M not "
    "sure I'll make it, 'D you like some tea? We'Ve a'lL"
)
PRE_TOKENIZERS = {
    "855059429035d75a914d1eda9f10a876752e281a054a7a3d421ef0533e5b6249": "smollm",
    "0ef9807a4087ebef797fc749390439009c3b9eda9ad1a097abbe738f486c01e5": "llama-bpe",
    "e636dc30a262dcc0d8c323492e32ae2b70728f4df7dfe9737d9f920a282b8aea": "qwen2",
    "d4540891389ea895b53b399da6ac824becc30f2fba0e9ddbb98f92e55ca0e97c": "qwen2",
    "3ce83efda5659b07b1ad37ca97ca5797ea4285d9b9ab0dc679e4a720c9da7454": "gpt-2",
}
Progress = Callable[[float, str], None]


class GgufUnsupported(ValueError):
    """The model cannot be written as GGUF by ftui; the message says why and what can."""


@dataclass
class GgufPlan:
    """What to write, decided from the config and tokenizer alone (no weights read)."""

    format: str
    arch: gguf.MODEL_ARCH
    permute_qk: bool
    config: Any  # a transformers PretrainedConfig
    tokenizer: Any
    pre_tokenizer: str


def supported_text() -> str:
    names = ", ".join(sorted(ARCHITECTURES))
    return f"ftui writes GGUF for {names}, with formats {', '.join(FORMATS)}"


def plan_gguf(config: Any, tokenizer: Any, format: str) -> GgufPlan:
    """Check the architecture, RoPE scaling, tokenizer and format; raise GgufUnsupported with
    the list of what ftui can convert."""
    arch, permute = check_architecture(config, format)
    return GgufPlan(format, arch, permute, config, tokenizer, pre_tokenizer_name(tokenizer))


def check_architecture(config: Any, format: str) -> tuple[gguf.MODEL_ARCH, bool]:
    """The GGUF architecture and whether q/k rows are permuted; refuses the format, the
    architecture or a RoPE scaling ftui does not write."""
    if format not in FORMATS:
        raise GgufUnsupported(f"GGUF format {format!r} is not offered here: {supported_text()}")
    architecture = (getattr(config, "architectures", None) or [None])[0]
    architecture = architecture or f"model type {getattr(config, 'model_type', '?')!r}"
    if architecture not in ARCHITECTURES:
        raise GgufUnsupported(f"{architecture} cannot be exported to GGUF: {supported_text()}")
    rope_type = _rope_parameters(config).get("rope_type", "default")
    if rope_type not in ROPE_TYPES:
        raise GgufUnsupported(
            f"{architecture} with {rope_type!r} RoPE scaling cannot be exported to GGUF here "
            f"(RoPE scalings written: {', '.join(ROPE_TYPES)})"
        )
    return ARCHITECTURES[architecture]


def pre_tokenizer_name(tokenizer: Any) -> str:
    """llama.cpp's name for the tokenizer's pre-tokenizer (how text is split before BPE)."""
    if _is_sentencepiece_style(tokenizer):
        raise GgufUnsupported(
            "this model's tokenizer is SentencePiece-style (byte-fallback BPE, as in Llama 2 "
            "and Mistral); ftui writes GGUF only for GPT-2-style byte-level BPE tokenizers "
            "(SmolLM, Llama 3, Qwen 2 and 3). Convert the merged folder with llama.cpp's "
            "convert_hf_to_gguf.py instead."
        )
    digest = hashlib.sha256(str(tokenizer.encode(CHECK_TEXT)).encode()).hexdigest()
    if digest not in PRE_TOKENIZERS:
        raise GgufUnsupported(
            f"this model's tokenizer (pre-tokenizer hash {digest[:12]}…) is not one ftui knows "
            f"({', '.join(sorted(set(PRE_TOKENIZERS.values())))}); convert the merged folder "
            "with llama.cpp's convert_hf_to_gguf.py instead."
        )
    return PRE_TOKENIZERS[digest]


def _is_sentencepiece_style(tokenizer: Any) -> bool:
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        return True  # a slow (SentencePiece) tokenizer
    model = json.loads(backend.to_str())["model"]
    return model.get("type") != "BPE" or bool(model.get("byte_fallback"))


def write_gguf(plan: GgufPlan, folder: Path, out_file: Path, name: str, progress: Progress) -> Path:
    """Write the model in `folder` (safetensors, tokenizer files) as one GGUF file."""
    writer = gguf.GGUFWriter(out_file, gguf.MODEL_ARCH_NAMES[plan.arch])
    file_type, _ = FORMATS[plan.format]
    writer.add_type(gguf.GGUFType.MODEL)
    writer.add_name(name)
    writer.add_file_type(file_type)
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
    _write_parameters(writer, plan)
    _write_vocab(writer, plan, folder)
    sources = _tensor_sources(folder, plan)
    for gguf_name, (shape, qtype, _, _) in sources.items():
        _add_tensor_info(writer, gguf_name, shape, qtype)
    try:
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_ti_data_to_file()
        for index, (gguf_name, (_, qtype, load, hf_name)) in enumerate(sources.items()):
            writer.write_tensor_data(_converted(plan, hf_name, load(), qtype))
            progress((index + 1) / len(sources), f"wrote {gguf_name}")
    finally:
        writer.close()
    return out_file


def _rope_parameters(config: Any) -> dict[str, Any]:
    rope = getattr(config, "rope_parameters", None) or {}
    return rope.get("full_attention", rope)


def _head_dim(config: Any) -> int:
    return getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads


def _write_parameters(writer: gguf.GGUFWriter, plan: GgufPlan) -> None:
    """The hyperparameters llama.cpp's TextModel.set_gguf_parameters writes for these models."""
    config, rope = plan.config, _rope_parameters(plan.config)
    writer.add_block_count(config.num_hidden_layers)
    writer.add_context_length(config.max_position_embeddings)
    writer.add_embedding_length(config.hidden_size)
    writer.add_feed_forward_length(config.intermediate_size)
    writer.add_head_count(config.num_attention_heads)
    writer.add_head_count_kv(getattr(config, "num_key_value_heads", config.num_attention_heads))
    writer.add_rope_freq_base(rope.get("rope_theta", 10000.0))
    writer.add_layer_norm_rms_eps(config.rms_norm_eps)
    if rope.get("rope_type") == "linear":
        writer.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
        writer.add_rope_scaling_factor(rope["factor"])
    if getattr(config, "head_dim", None) is not None:
        writer.add_key_length(config.head_dim)
        writer.add_value_length(config.head_dim)
    if plan.arch == gguf.MODEL_ARCH.LLAMA:
        writer.add_vocab_size(config.vocab_size)
        writer.add_rope_dimension_count(_head_dim(config))


def _write_vocab(writer: gguf.GGUFWriter, plan: GgufPlan, folder: Path) -> None:
    """Tokens, their types, merges, special tokens and the chat template (gpt2-style BPE)."""
    tokens, types = vocab_tokens(plan.tokenizer, plan.config.vocab_size)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(plan.pre_tokenizer)
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    special = gguf.SpecialVocab(folder, load_merges=True, n_vocab=len(tokens))
    # Whether llama.cpp puts BOS/EOS around a prompt: as the tokenizer itself does.
    ids = plan.tokenizer("a")["input_ids"]
    bos, eos = plan.tokenizer.bos_token_id, plan.tokenizer.eos_token_id
    special.add_special_token["bos"] = bos is not None and ids[:1] == [bos]
    special.add_special_token["eos"] = eos is not None and ids[-1:] == [eos]
    special.add_to_gguf(writer, quiet=True)


def vocab_tokens(tokenizer: Any, vocab_size: int) -> tuple[list[str], list[int]]:
    """Every id's token text and GGUF token type, as llama.cpp's get_vocab_base lists them:
    added special tokens are CONTROL (llama.cpp parses them in prompts), other added ones
    USER_DEFINED, ids the tokenizer lacks padding."""
    reverse = {index: text for text, index in tokenizer.get_vocab().items()}
    added = tokenizer.added_tokens_decoder
    tokens, types = [], []
    for index in range(vocab_size):
        if index not in reverse:
            tokens.append(f"[PAD{index}]")
            types.append(gguf.TokenType.UNUSED)
        elif index in added:
            special = added[index].special or _looks_special(reverse[index])
            tokens.append(reverse[index])
            types.append(gguf.TokenType.CONTROL if special else gguf.TokenType.USER_DEFINED)
        else:
            tokens.append(reverse[index])
            types.append(gguf.TokenType.NORMAL)
    return tokens, types


def _looks_special(text: str) -> bool:
    return text.startswith("<|") and text.endswith("|>")


# ---------------------------------------------------------------- tensors


def _tensor_sources(folder: Path, plan: GgufPlan) -> dict[str, tuple]:
    """GGUF name -> (shape, GGML type, loader, HF name), from the safetensors headers only."""
    names = gguf.get_tensor_name_map(plan.arch, plan.config.num_hidden_layers)
    tied = getattr(plan.config, "tie_word_embeddings", False)
    sources: dict[str, tuple] = {}
    for hf_name, shape, load in _safetensors(folder):
        if hf_name.endswith("rotary_emb.inv_freq") or (tied and hf_name == "lm_head.weight"):
            continue  # recomputed by llama.cpp / the embedding read twice
        gguf_name = names.get_name(hf_name, try_suffixes=(".weight", ".bias"))
        if gguf_name is None:
            raise GgufUnsupported(f"tensor {hf_name} has no GGUF name for {plan.arch.name}")
        sources[gguf_name] = (shape, tensor_type(gguf_name, shape, plan.format), load, hf_name)
    for gguf_name, data in _extra_tensors(plan):
        shape = data.shape
        sources[gguf_name] = (shape, gguf.GGMLQuantizationType.F32, lambda d=data: d, gguf_name)
    return sources


def _safetensors(folder: Path) -> Iterator[tuple[str, tuple[int, ...], Callable[[], Any]]]:
    from safetensors import safe_open

    files = sorted(folder.glob("*.safetensors"))
    if not files:
        raise GgufUnsupported(f"{folder} has no safetensors weights to convert")
    for path in files:
        with safe_open(path, framework="pt") as handle:
            keys = sorted(handle.keys())
            shapes = {key: tuple(handle.get_slice(key).get_shape()) for key in keys}
        for key in keys:
            yield key, shapes[key], lambda p=path, k=key: _read_tensor(p, k)


def _read_tensor(path: Path, key: str) -> Any:
    from safetensors import safe_open

    with safe_open(path, framework="pt") as handle:
        return handle.get_tensor(key)


def tensor_type(gguf_name: str, shape: tuple[int, ...], format: str) -> gguf.GGMLQuantizationType:
    """f32 for norms, biases and other 1-D tensors (llama.cpp reads them so), f16 where a row
    does not split into whole quantization blocks, the format's type otherwise."""
    _, wanted = FORMATS[format]
    if len(shape) <= 1 or gguf_name.endswith("_norm.weight") or not gguf_name.endswith(".weight"):
        return gguf.GGMLQuantizationType.F32
    block, _ = gguf.GGML_QUANT_SIZES[wanted]
    return wanted if shape[-1] % block == 0 else gguf.GGMLQuantizationType.F16


def _add_tensor_info(writer: gguf.GGUFWriter, name: str, shape: tuple, qtype: Any) -> None:
    if qtype in (gguf.GGMLQuantizationType.F32, gguf.GGMLQuantizationType.F16):
        dtype = np.float32 if qtype == gguf.GGMLQuantizationType.F32 else np.float16
        nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
        writer.add_tensor_info(name, shape, np.dtype(dtype), nbytes)
        return
    byte_shape = gguf.quant_shape_to_byte_shape(shape, qtype)
    nbytes = int(np.prod(byte_shape))
    writer.add_tensor_info(name, byte_shape, np.dtype(np.uint8), nbytes, raw_dtype=qtype)


def _converted(plan: GgufPlan, hf_name: str, tensor: Any, qtype: Any) -> np.ndarray:
    """The tensor as float32 numpy, q/k rows reordered for llama, then cast or quantized."""
    data = tensor if isinstance(tensor, np.ndarray) else tensor.float().numpy()
    if plan.permute_qk and hf_name.endswith(("q_proj.weight", "q_proj.bias")):
        data = permute_rotary_rows(data, plan.config.num_attention_heads)
    elif plan.permute_qk and hf_name.endswith(("k_proj.weight", "k_proj.bias")):
        data = permute_rotary_rows(data, plan.config.num_key_value_heads)
    return gguf.quants.quantize(np.ascontiguousarray(data, dtype=np.float32), qtype)


def permute_rotary_rows(weights: np.ndarray, heads: int) -> np.ndarray:
    """llama.cpp's LlamaModel.permute: within each head, interleave the two rotary halves."""
    shape = weights.shape
    return (
        weights.reshape(heads, 2, shape[0] // heads // 2, *shape[1:]).swapaxes(1, 2).reshape(shape)
    )


def _extra_tensors(plan: GgufPlan) -> Iterator[tuple[str, np.ndarray]]:
    """Llama 3.1+ RoPE scaling as llama.cpp stores it: one divisor per rotary frequency
    (rope_freqs.weight), computed with transformers' own RoPE functions."""
    if _rope_parameters(plan.config).get("rope_type") != "llama3":
        return
    from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

    scaled, _ = ROPE_INIT_FUNCTIONS["llama3"](plan.config, "cpu")
    base = _rope_parameters(plan.config)["rope_theta"]
    dim = _head_dim(plan.config)
    plain = 1.0 / (base ** (np.arange(0, dim, 2, dtype=np.float32) / dim))
    name = gguf.TENSOR_NAMES[gguf.MODEL_TENSOR.ROPE_FREQS] + ".weight"
    yield name, (plain / scaled.numpy()).astype(np.float32)
