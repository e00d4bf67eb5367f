"""The one writer of config YAML: every saved config (a run's config.yaml, the Train tab's
file for the CLI, a preset made by a test) comes from `config_to_yaml`, with each field's help
as a comment above it, so a saved file explains itself. Values of keys that name a secret are
masked (`***`), so a token typed into a mapping never reaches a file.

    text = config_to_yaml(config, header="Written by the ftui Train tab.")
    write_config(config, path)
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path
from typing import Any

import yaml

from ftui.config.fields import FieldSpec, schema_fields, sections
from ftui.config.loading import config_to_dict

MASK = "***"
SECRET_WORDS = {"token", "secret", "password", "passwd", "apikey"}
COMMENT_WIDTH = 96


def config_to_yaml(config: Any, header: str = "") -> str:
    """YAML of the whole tree, each field preceded by its help as a `#` comment."""
    tree = mask_secrets(config_to_dict(config))
    by_section: dict[str, list[FieldSpec]] = {}
    for spec in schema_fields(type(config)):
        by_section.setdefault(spec.key.rpartition(".")[0], []).append(spec)
    lines = [f"# {line}".rstrip() for line in header.splitlines()] if header else []
    if lines:
        lines.append("")
    for spec in by_section.get("", []):
        lines += _field_lines(spec, tree[spec.name], indent="")
    for section in sections(type(config)):
        lines.append(f"{section}:")
        for spec in by_section.get(section, []):
            lines += _field_lines(spec, tree[section][spec.name], indent="  ")
    return "\n".join(lines) + "\n"


def write_config(config: Any, path: str | Path, header: str = "") -> str:
    """Write config_to_yaml(config) to `path`; return the text written."""
    text = config_to_yaml(config, header)
    Path(path).write_text(text, encoding="utf-8")
    return text


def _field_lines(spec: FieldSpec, value: Any, indent: str) -> list[str]:
    comment = textwrap.wrap(spec.describe(), COMMENT_WIDTH - len(indent) - 2)
    dumped = yaml.safe_dump({spec.name: value}, sort_keys=False, allow_unicode=True, width=1000)
    body = [f"{indent}{line}" for line in dumped.rstrip("\n").splitlines()]
    return [f"{indent}# {line}" for line in comment] + body


def mask_secrets(data: Any) -> Any:
    """A copy of plain data with the value of every key naming a secret replaced by ***."""
    if isinstance(data, dict):
        return {
            key: MASK if _is_secret(key) and value not in (None, "") else mask_secrets(value)
            for key, value in data.items()
        }
    if isinstance(data, list):
        return [mask_secrets(item) for item in data]
    return data


def _is_secret(key: Any) -> bool:
    if not isinstance(key, str):
        return False
    lowered = key.lower()
    words = set(re.split(r"[^a-z0-9]+", lowered))
    return bool(words & SECRET_WORDS) or "api_key" in lowered
