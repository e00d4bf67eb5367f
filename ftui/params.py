"""Exact parameter counts from a model's architecture alone: no weights are loaded.

The model is built on PyTorch's meta device (shapes only, no memory), the method is applied
with `ftui.translate.apply_method` exactly as for training, and the parameters are counted.
An 8B config takes about a second.

For qlora and lora_8bit nothing is quantized on the meta device: the counts are *logical*
parameters (a 4-bit weight of shape out x in counts as out x in, as peft's
`get_nb_trainable_parameters` reports it). LoRA adds the same adapters on quantized and
unquantized Linear layers, so the trainable count is the same as for a real quantized model.

    hf_config = load_architecture("HuggingFaceTB/SmolLM2-1.7B")   # or a config.json path
    counts = count_parameters(hf_config, FtuiConfig())
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ftui.config import DEFAULT_MODEL, FtuiConfig
from ftui.heavy_imports import import_heavy_libraries
from ftui.methods import METHODS
from ftui.models import (
    ModelLoadError,
    bundled_gguf_path,
    bundled_model_dir,
    confine_model_source,
    hub_failure_reason,
    is_bundled_model_ready,
)
from ftui.translate import apply_method


@dataclass
class ParamCounts:
    total: int  # the model as trained: base plus any adapters
    trainable: int
    base_total: int  # the base model alone

    @property
    def trainable_percent(self) -> float:
        return 100.0 * self.trainable / self.total if self.total else 0.0


def load_architecture(name_or_path: str = DEFAULT_MODEL, trust_remote_code: bool = False) -> Any:
    """A transformers PretrainedConfig: the bundled model, a config.json (file or folder),
    a model folder, or a Hub id. A web server's confinement of local paths applies
    (ftui.models.confine_model_source)."""
    import_heavy_libraries()
    if name_or_path in ("", DEFAULT_MODEL):
        return _bundled_architecture()
    name_or_path = confine_model_source(name_or_path)
    local = Path(name_or_path).expanduser()
    if local.is_file():
        return _local_architecture(local, trust_remote_code)
    if local.is_dir():
        if not (local / "config.json").is_file():
            raise ModelLoadError(f"{local}: no config.json here; point at a model folder")
        return _local_architecture(local, trust_remote_code)
    return _hub_architecture(name_or_path, trust_remote_code)


def _bundled_architecture() -> Any:
    """The converted folder's config; before conversion, read it from the GGUF (~4 s, not 30)."""
    from transformers import AutoConfig

    if is_bundled_model_ready():
        return AutoConfig.from_pretrained(bundled_model_dir())
    gguf = bundled_gguf_path()
    return AutoConfig.from_pretrained(gguf.parent, gguf_file=gguf.name)


def _local_architecture(path: Path, trust_remote_code: bool) -> Any:
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(str(path), trust_remote_code=trust_remote_code)
    except (OSError, ValueError, KeyError) as exc:
        raise ModelLoadError(
            f"{path}: not a usable model config.json (it needs a 'model_type' transformers "
            f"knows). {type(exc).__name__}: {str(exc)[:200]}"
        ) from None


def _hub_architecture(model_id: str, trust_remote_code: bool) -> Any:
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(model_id, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as exc:
        raise ModelLoadError(
            f"Could not read the architecture of '{model_id}': {hub_failure_reason(exc)}. It "
            "is not a local folder or config.json file either. Check the id, connect to the "
            "network, or give the path of its config.json."
        ) from None


def _count(model: Any) -> tuple[int, int]:
    """(total, trainable); tied weights count once."""
    total = trainable = 0
    for param in model.parameters():
        total += param.numel()
        if param.requires_grad:
            trainable += param.numel()
    return total, trainable


def count_parameters(hf_config: Any, config: FtuiConfig) -> ParamCounts:
    """Exact total and trainable parameters of `config.method` on this architecture."""
    import_heavy_libraries()
    import torch
    from transformers import AutoModelForCausalLM

    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(
            copy.deepcopy(hf_config), trust_remote_code=config.model.trust_remote_code
        )
        base_total, _ = _count(model)
        if not METHODS[config.method.name].trains:
            return ParamCounts(total=base_total, trainable=0, base_total=base_total)
        model = apply_method(model, config)
    total, trainable = _count(model)
    return ParamCounts(total=total, trainable=trainable, base_total=base_total)
