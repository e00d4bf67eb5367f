"""Bottleneck adapters (Houlsby/Pfeiffer style) for decoder-only models; peft has none.

Each decoder block's `mlp` is wrapped so that its output h becomes h + up(act(down(h))),
with `up` zero-initialised: at the start the model computes exactly what the base did.
Everything except the adapters is frozen. Adapters are saved on their own, as
`adapter_model.safetensors` plus `bottleneck_config.json` (not `adapter_config.json`, so that
peft's loaders never mistake the folder for one of theirs).

    from ftui.adapters.bottleneck import add_bottleneck_adapters
    trainable = add_bottleneck_adapters(model, size=64)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

WEIGHTS_NAME = "adapter_model.safetensors"
CONFIG_NAME = "bottleneck_config.json"
ACTIVATIONS = {"silu": nn.SiLU, "relu": nn.ReLU}


class BottleneckAdapter(nn.Module):
    """h -> h + up(act(down(h))); `up` starts at zero so the adapter starts as the identity."""

    def __init__(
        self,
        hidden_size: int,
        size: int,
        activation: str = "silu",
        dtype: torch.dtype | None = None,
        device: Any = None,
    ) -> None:
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {', '.join(ACTIVATIONS)}")
        self.down = nn.Linear(hidden_size, size, dtype=dtype, device=device)
        self.act = ACTIVATIONS[activation]()
        self.up = nn.Linear(size, hidden_size, dtype=dtype, device=device)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return hidden + self.up(self.act(self.down(hidden)))


class AdaptedMLP(nn.Module):
    """A block's original MLP followed by its bottleneck adapter (which can be switched off)."""

    def __init__(self, mlp: nn.Module, adapter: BottleneckAdapter) -> None:
        super().__init__()
        self.mlp = mlp
        self.adapter = adapter
        self.adapter_enabled = True

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        out = self.mlp(*args, **kwargs)
        return self.adapter(out) if self.adapter_enabled else out


def find_decoder_blocks(model: nn.Module) -> tuple[str, nn.ModuleList]:
    """The decoder blocks: `model.layers` for Llama-likes, else the largest ModuleList."""
    inner = getattr(model, "model", None)
    layers = getattr(inner, "layers", None)
    if isinstance(layers, nn.ModuleList) and len(layers) > 0:
        return "model.layers", layers
    candidates = [
        (name, module)
        for name, module in model.named_modules()
        if isinstance(module, nn.ModuleList) and len(module) > 0
    ]
    if not candidates:
        raise ValueError(
            f"{type(model).__name__}: found no list of decoder blocks (no nn.ModuleList); "
            "this architecture is not supported by freeze or bottleneck adapters"
        )
    return max(candidates, key=lambda item: len(item[1]))


def _block_mlps(model: nn.Module) -> list[tuple[nn.Module, nn.Module]]:
    name, blocks = find_decoder_blocks(model)
    missing = [i for i, block in enumerate(blocks) if not hasattr(block, "mlp")]
    if missing:
        raise ValueError(
            f"{type(model).__name__}: blocks in '{name}' have no 'mlp' submodule; "
            "bottleneck adapters need one per block"
        )
    return [(block, block.mlp) for block in blocks]


def _hidden_size(model: nn.Module) -> int:
    config = getattr(model, "config", None)
    size = getattr(config, "hidden_size", None) or getattr(config, "n_embd", None)
    if not size:
        raise ValueError(f"{type(model).__name__}: config has no hidden_size")
    return int(size)


def add_bottleneck_adapters(model: nn.Module, size: int, activation: str = "silu") -> int:
    """Wrap every block's MLP with an adapter, freeze everything else; return trainable count."""
    if size < 1:
        raise ValueError("bottleneck size must be a positive integer")
    hidden = _hidden_size(model)
    for param in model.parameters():
        param.requires_grad_(False)
    for block, mlp in _block_mlps(model):
        if isinstance(mlp, AdaptedMLP):
            raise ValueError("this model already has bottleneck adapters")
        reference = next(mlp.parameters())
        dtype = reference.dtype if reference.is_floating_point() else None
        adapter = BottleneckAdapter(hidden, size, activation, dtype, reference.device)
        block.mlp = AdaptedMLP(mlp, adapter)
    model.bottleneck_config = {"size": size, "activation": activation, "hidden_size": hidden}
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def bottleneck_modules(model: nn.Module) -> list[AdaptedMLP]:
    return [module for module in model.modules() if isinstance(module, AdaptedMLP)]


def set_bottleneck_enabled(model: nn.Module, enabled: bool) -> None:
    """Switch the adapters off to get the base model's outputs (and on again)."""
    for module in bottleneck_modules(model):
        module.adapter_enabled = enabled


def _adapter_state(model: nn.Module) -> dict[str, nn.Parameter]:
    """Adapter parameters by their full name in the model."""
    return {
        f"{name}.adapter.{param_name}": param
        for name, module in model.named_modules()
        if isinstance(module, AdaptedMLP)
        for param_name, param in module.adapter.named_parameters()
    }


def save_bottleneck_adapters(model: nn.Module, folder: str | Path) -> Path:
    """Write the adapter weights and their config into `folder`; return the folder."""
    from safetensors.torch import save_file

    config = getattr(model, "bottleneck_config", None)
    if not config:
        raise ValueError("this model has no bottleneck adapters to save")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {name: p.detach().contiguous().cpu() for name, p in _adapter_state(model).items()}
    save_file(state, str(folder / WEIGHTS_NAME), metadata={"format": "pt"})
    info = {"type": "bottleneck", "num_layers": len(bottleneck_modules(model)), **config}
    (folder / CONFIG_NAME).write_text(json.dumps(info, indent=2), encoding="utf-8")
    return folder


def load_bottleneck_adapters(
    model: nn.Module, folder: str | Path, size: int | None = None
) -> nn.Module:
    """Add adapters to a base model and load saved weights into them; size defaults to saved."""
    from safetensors.torch import load_file

    folder = Path(folder)
    if not (folder / CONFIG_NAME).is_file():
        raise FileNotFoundError(f"{folder}: no {CONFIG_NAME}; not a bottleneck adapter folder")
    saved = json.loads((folder / CONFIG_NAME).read_text(encoding="utf-8"))
    if size is not None and size != saved["size"]:
        raise ValueError(f"{folder}: adapters were saved with size {saved['size']}, not {size}")
    add_bottleneck_adapters(model, saved["size"], saved.get("activation", "silu"))
    state = load_file(str(folder / WEIGHTS_NAME))
    params = _adapter_state(model)
    if set(state) != set(params):
        raise ValueError(
            f"{folder}: saved adapters do not match this model "
            f"({len(state)} tensors saved, {len(params)} expected)"
        )
    with torch.no_grad():
        for name, tensor in state.items():
            params[name].copy_(tensor)
    return model
