"""Strict loading of the config tree from YAML, plain data, or dotted `key=value` settings.

An unknown key, a wrong type or a number out of range is a ConfigError that names the dotted
key. The UI, the CLI's `--set` and the Method tab all go through `config_from_dotted()`, so the
only thing they do themselves is hand over values; every rule lives on the config.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, Literal

import yaml

from ftui.config.fields import ConfigError, FieldSpec, schema_fields, type_hints
from ftui.config.schema import FtuiConfig


def config_from_dict(data: dict[str, Any] | None, root: type = FtuiConfig) -> Any:
    """Build a config from plain data, rejecting unknown keys and wrong types."""
    return _build(root, data or {}, prefix="")


def load_config(path: str | Path) -> FtuiConfig:
    """Read a YAML config; errors name the file and the offending key."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if data is not None and not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of sections (model, data...)")
    try:
        return config_from_dict(data)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def config_to_dict(config: Any) -> dict[str, Any]:
    return dataclasses.asdict(config)


def config_from_dotted(
    settings: dict[str, Any], base: Any | None = None, root: type = FtuiConfig
) -> Any:
    """`base` (defaults if None) with dotted settings on top ({"train.epochs": 3}), checked.

    Values may come from widgets (a slider's 8.0 for an int field becomes 8) or from the
    command line as text (`--set train.epochs=3`: text is read as YAML, so 3, 2e-4, true
    and null mean what they say)."""
    specs = {spec.key: spec for spec in schema_fields(root)}
    tree = config_to_dict(base) if base is not None else {}
    for key, value in settings.items():
        spec = specs.get(key)
        if spec is None:
            raise ConfigError(f"{key}: unknown setting; see `ftui train --help` for the list")
        target = tree.setdefault(key.split(".", 1)[0], {}) if "." in key else tree
        target[spec.name] = widget_value(spec, value)
    return config_from_dict(tree, root)


def widget_value(spec: FieldSpec, value: Any) -> Any:
    """A value as a widget or the command line hands it over, in the field's own type:
    whole floats become ints for int fields, text is read as YAML for non-text fields."""
    if isinstance(value, str) and spec.kind not in ("text", "choice"):
        try:
            value = yaml.safe_load(value)
        except yaml.YAMLError:
            raise ConfigError(f"{spec.key}: {value!r} is not a valid value") from None
    if spec.kind == "int" and isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def parse_assignments(assignments: list[str]) -> dict[str, str]:
    """['train.epochs=3', ...] -> {'train.epochs': '3'}; a missing '=' is a ConfigError."""
    settings = {}
    for assignment in assignments:
        key, equals, value = assignment.partition("=")
        if not equals or not key.strip():
            raise ConfigError(
                f"--set {assignment!r}: write KEY=VALUE with a dotted key, e.g. train.epochs=3"
            )
        settings[key.strip()] = value
    return settings


def _build(cls: type, data: Any, prefix: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix.rstrip('.') or 'config'}: expected a mapping")
    hints = type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    for key in data:
        if key not in known:
            raise ConfigError(
                f"{prefix}{key}: unknown key; allowed here: {', '.join(sorted(known))}"
            )
    values = {name: _coerce(hints[name], data[name], f"{prefix}{name}") for name in data}
    try:
        return cls(**values)
    except ConfigError:
        raise
    except TypeError as exc:
        raise ConfigError(f"{prefix.rstrip('.') or 'config'}: {exc}") from None


def _coerce(hint: Any, value: Any, key: str) -> Any:
    if dataclasses.is_dataclass(hint):
        return _build(hint, value if value is not None else {}, prefix=f"{key}.")
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _coerce(inner, value, key)
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{key}: {value!r} is not one of {', '.join(map(str, args))}")
        return value
    if origin is dict:
        if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()
        ):
            raise ConfigError(f"{key}: expected a mapping of names to names")
        return dict(value)
    return _coerce_scalar(hint, value, key)


def _coerce_scalar(hint: type, value: Any, key: str) -> Any:
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected true or false, got {value!r}")
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected a whole number, got {value!r}")
    if hint is float:
        # YAML reads 2e-4 as a string (no dot); accept numeric strings here only.
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        raise ConfigError(f"{key}: expected a number, got {value!r}")
    if hint is str:
        if isinstance(value, str):
            return value
        if value is None:
            return ""
        raise ConfigError(f"{key}: expected text, got {value!r}")
    raise ConfigError(f"{key}: unsupported field type {hint}")
