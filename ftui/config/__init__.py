"""The config tree, the single source of truth for a fine-tuning job (see schema.py).

fields.py     what a field declares (help, label, range, slider, tab) and how to read it
schema.py     the sections and FtuiConfig, with every rule that spans them
loading.py    strict loading from YAML, plain data and dotted settings (UI, --set)
yaml_text.py  the one YAML writer, with each field's help as a comment
devices.py    how many training processes this machine can run
"""

from ftui.config.devices import count_cuda_devices, count_devices
from ftui.config.fields import (
    Bounds,
    ConfigError,
    FieldSpec,
    schema_fields,
    section_fields,
    sections,
    setting,
)
from ftui.config.loading import (
    config_from_dict,
    config_from_dotted,
    config_to_dict,
    load_config,
    parse_assignments,
    widget_value,
)
from ftui.config.schema import (
    DEFAULT_MODEL,
    MAX_PROCESSES,
    MAX_SEED,
    DataConfig,
    EvalConfig,
    FtuiConfig,
    MethodConfig,
    ModelConfig,
    TrainConfig,
)
from ftui.config.yaml_text import config_to_yaml, mask_secrets, write_config

__all__ = [
    "DEFAULT_MODEL",
    "MAX_PROCESSES",
    "MAX_SEED",
    "Bounds",
    "ConfigError",
    "DataConfig",
    "EvalConfig",
    "FieldSpec",
    "FtuiConfig",
    "MethodConfig",
    "ModelConfig",
    "TrainConfig",
    "config_from_dict",
    "config_from_dotted",
    "config_to_dict",
    "config_to_yaml",
    "count_cuda_devices",
    "count_devices",
    "field_bounds",
    "field_choices",
    "field_help",
    "field_spec",
    "load_config",
    "mask_secrets",
    "parse_assignments",
    "schema_fields",
    "section_fields",
    "sections",
    "setting",
    "widget_value",
    "write_config",
]


def field_spec(key: str, root: type = FtuiConfig) -> FieldSpec:
    """One field by its dotted key, e.g. field_spec("train.epochs")."""
    for spec in schema_fields(root):
        if spec.key == key:
            return spec
    raise KeyError(key)


def _spec(section: type, name: str) -> FieldSpec:
    return next(spec for spec in section_fields(section) if spec.name == name)


def field_help(section: type, name: str) -> str:
    """The help text of one field, e.g. field_help(DataConfig, "max_length")."""
    return _spec(section, name).help


def field_bounds(section: type, name: str) -> Bounds | None:
    """The allowed range of a number field (None for other fields)."""
    return _spec(section, name).bounds


def field_choices(section: type, name: str) -> list[str]:
    """The allowed values of a Literal field, for dropdowns."""
    return _spec(section, name).choices
