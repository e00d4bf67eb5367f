"""Adapter methods that peft does not provide, implemented in ftui (bottleneck adapters)."""

from ftui.adapters.bottleneck import (
    BottleneckAdapter,
    add_bottleneck_adapters,
    load_bottleneck_adapters,
    save_bottleneck_adapters,
    set_bottleneck_enabled,
)

__all__ = [
    "BottleneckAdapter",
    "add_bottleneck_adapters",
    "load_bottleneck_adapters",
    "save_bottleneck_adapters",
    "set_bottleneck_enabled",
]
