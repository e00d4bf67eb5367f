"""`--set KEY=VALUE` for `ftui train` and `ftui estimate`, and the settings list of their --help.

Both are read from the config's fields (`schema_fields`), so a field added to the schema can be
set and is listed without touching the CLI. Values reach the config through
`config_from_dotted`, which checks every rule; the CLI checks none itself.
"""

from __future__ import annotations

import argparse
import itertools
import math
import textwrap
from typing import Any

import yaml

from ftui.config import (
    FieldSpec,
    FtuiConfig,
    config_from_dotted,
    parse_assignments,
    schema_fields,
)

SETTINGS_DEST = "settings"  # where --set and its short flags collect KEY=VALUE, in order
HELP_WIDTH = 79
SETTINGS_TITLE = (
    "settings: change any with --set KEY=VALUE (text is taken as typed; numbers,\n"
    "true/false and mappings are read as YAML)"
)


class AssignSetting(argparse.Action):
    """Collect `KEY=VALUE` from `--set`, or from a short flag standing for one key
    (`--lora-r 8` is `--set method.lora_r=8`), in command-line order: the last one wins."""

    def __init__(self, *args: Any, key: str = "", mapping: dict | None = None, **kwargs: Any):
        self.key = key
        self.mapping = mapping or {}
        if kwargs.get("default") is None:  # the first action of a dest sets its default
            kwargs["default"] = []
        super().__init__(*args, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        value = self.const if self.nargs == 0 else values
        assignment = f"{self.key}={self.mapping.get(value, value)}" if self.key else value
        collected = list(getattr(namespace, self.dest, None) or [])
        setattr(namespace, self.dest, [*collected, assignment])


def add_set_option(parser: argparse.ArgumentParser, root: type = FtuiConfig) -> None:
    """Give `parser` a repeatable --set and end its --help with every setting of `root`."""
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = settings_help(root)
    parser.add_argument(
        "--set",
        action=AssignSetting,
        dest=SETTINGS_DEST,
        metavar="KEY=VALUE",
        help="change one setting of the config, e.g. --set train.epochs=3 (repeatable; every "
        "setting is listed below)",
    )


def add_setting_flag(
    parser: argparse.ArgumentParser,
    flag: str,
    key: str,
    metavar: str | None = None,
    mapping: dict[str, str] | None = None,
) -> None:
    """A short flag for one setting: `flag VALUE` is `--set key=VALUE`; with a mapping, its
    choices stand for values (`--quant 4bit` is `--set method.name=qlora`); with neither it
    takes no value and sets true. What the values mean is in the settings list of --help."""
    options: dict[str, Any] = {"metavar": metavar}
    if mapping:
        options["choices"] = list(mapping)
        help = "; ".join(f"{name} is --set {key}={value}" for name, value in mapping.items())
    else:
        if metavar is None:
            options.update(nargs=0, const="true")
        help = f"same as --set {key}={metavar or 'true'}"
    parser.add_argument(
        flag,
        action=AssignSetting,
        dest=SETTINGS_DEST,
        key=key,
        mapping=mapping,
        help=help,
        **options,
    )


def config_with_settings(
    assignments: list[str], base: Any | None = None, root: type = FtuiConfig
) -> Any:
    """`base` (the defaults if None) with ['train.epochs=3', ...] on top, every rule checked:
    a ConfigError names the key."""
    return config_from_dotted(parse_assignments(assignments), base, root)


def settings_help(root: type = FtuiConfig, width: int = HELP_WIDTH) -> str:
    """Every field of `root` by section: its dotted key, default, help and allowed values."""
    lines = [SETTINGS_TITLE]
    by_section = itertools.groupby(schema_fields(root), key=_section_of)
    for section, specs in by_section:
        lines += ["", f"  {section}:"]
        for spec in specs:
            lines.append(f"    {spec.key} = {shown_default(spec)}")
            lines += textwrap.wrap(
                spec.describe(), width, initial_indent=" " * 8, subsequent_indent=" " * 8
            )
    return "\n".join(lines)


def _section_of(spec: FieldSpec) -> str:
    return spec.key.split(".", 1)[0] if "." in spec.key else "top level"


def shown_default(spec: FieldSpec) -> str:
    """A field's default as you would type it after --set (text as it is, the rest as YAML)."""
    if spec.kind in ("text", "choice"):
        return "(empty)" if spec.default in ("", None) else str(spec.default)
    text = yaml.safe_dump(spec.default, default_flow_style=True, width=math.inf)
    return text.removesuffix("\n").removesuffix("\n...").strip()
