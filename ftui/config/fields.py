"""What a config field declares about itself, how to read it back, and its range check.

Every field of the config tree is made by `setting()`: its default, its help sentence, its
label, its allowed range (numbers), the slider range and step the UI offers, and the tab that
shows it. The UI's widget builder (`ftui.ui.widgets`), the CLI's `--help` and `--set`, and the
commented YAML all read these through `schema_fields()`, so a field added to a section with a
label, bounds and help appears everywhere without touching another file.
"""

from __future__ import annotations

import dataclasses
import functools
import typing
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

Tab = Literal["data", "method", "train", ""]


class ConfigError(ValueError):
    """A config file or value is invalid; the message names the key and what to do."""


@dataclass(frozen=True)
class Bounds:
    """The allowed range of a number field; `also` holds special values outside it, with
    what they mean (e.g. max_steps -1 = run all epochs)."""

    low: float
    high: float
    low_open: bool = False  # the value must be above `low`, not equal to it
    high_open: bool = False  # the value must be below `high`
    also: tuple[tuple[float, str], ...] = ()
    example: float | None = None

    def allows(self, value: float) -> bool:
        if any(value == special for special, _ in self.also):
            return True
        above = value > self.low if self.low_open else value >= self.low
        below = value < self.high if self.high_open else value <= self.high
        return above and below

    def describe(self, whole: bool) -> str:
        """'a whole number from 1 to 1,024', 'a number above 0 and at most 1', ..."""
        low, high = shown_number(self.low), shown_number(self.high)
        if not (self.low_open or self.high_open):
            span = f"from {low} to {high}"
        else:
            start = f"above {low}" if self.low_open else f"at least {low}"
            span = f"{start} and " + (f"below {high}" if self.high_open else f"at most {high}")
        text = f"{'a whole number' if whole else 'a number'} {span}"
        specials = [f"{shown_number(value)} ({meaning})" for value, meaning in self.also]
        return " or ".join([*specials, text])


def shown_number(value: float) -> str:
    """2e-4 -> '0.0002', 1.0 -> '1', 1000000 -> '1,000,000' (for messages, not YAML)."""
    if isinstance(value, float) and not value.is_integer():
        return repr(value)
    return f"{int(value):,}"


def setting(
    default: Any,
    help: str,
    *,
    label: str,
    min: float | None = None,
    max: float | None = None,
    min_open: bool = False,
    max_open: bool = False,
    also: tuple[tuple[float, str], ...] = (),
    example: float | None = None,
    slider: tuple[float, float, float] | None = None,
    step: float | None = None,
    tab: Tab = "",
) -> Any:
    """A config field with everything the UI, CLI and YAML need to show it.

    `min`..`max` (either end open) is the allowed range of a number, checked on load;
    `slider=(low, high, step)` makes the UI show a slider over that (narrower) range instead
    of a number box; `step` is a number box's step; `tab` names the tab that shows the field
    among its settings ('' = none; the Method tab shows method fields per the catalog)."""
    metadata: dict[str, Any] = {"help": help, "label": label, "tab": tab}
    if min is not None and max is not None:
        metadata["bounds"] = Bounds(min, max, min_open, max_open, also, example)
    if slider is not None:
        metadata["slider"] = slider
    if step is not None:
        metadata["step"] = step
    if isinstance(default, (dict, list)):
        return field(default_factory=lambda: type(default)(default), metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass(frozen=True)
class FieldSpec:
    """One field of the config tree, by its dotted key, with what it declares."""

    key: str  # "train.epochs"; top-level fields have no dot ("name")
    section: type  # the dataclass that holds it
    name: str
    hint: Any  # int, float, bool, str, a Literal, dict[str, str], or an optional of one
    default: Any
    help: str
    label: str
    tab: str
    bounds: Bounds | None
    slider: tuple[float, float, float] | None
    step: float | None

    @property
    def kind(self) -> str:
        """'bool', 'int', 'float', 'choice', 'mapping' or 'text'."""
        hint = _without_none(self.hint)
        if typing.get_origin(hint) is Literal:
            return "choice"
        if typing.get_origin(hint) is dict:
            return "mapping"
        return {bool: "bool", int: "int", float: "float"}.get(hint, "text")

    @property
    def choices(self) -> list[Any]:
        return list(typing.get_args(_without_none(self.hint))) if self.kind == "choice" else []

    def describe(self) -> str:
        """The help sentence plus what values it takes, for --help and YAML comments."""
        if self.bounds is not None:
            return f"{self.help} ({self.bounds.describe(self.kind == 'int')})"
        if self.kind == "choice":
            return f"{self.help} (one of: {', '.join(map(str, self.choices))})"
        return self.help


def _without_none(hint: Any) -> Any:
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if typing.get_origin(hint) in (typing.Union, _UNION_TYPE) and len(args) == 1:
        return args[0]
    return hint


_UNION_TYPE = type(int | None)


def _default(item: dataclasses.Field) -> Any:
    if item.default is not dataclasses.MISSING:
        return item.default
    return item.default_factory()  # type: ignore[misc]


@functools.cache
def type_hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def section_fields(section: type, prefix: str = "") -> list[FieldSpec]:
    """The leaf fields of one section class, keys prefixed with `prefix` ("train.")."""
    hints = type_hints(section)
    return [
        FieldSpec(
            key=f"{prefix}{item.name}",
            section=section,
            name=item.name,
            hint=hints[item.name],
            default=_default(item),
            help=item.metadata.get("help", ""),
            label=item.metadata.get("label", ""),
            tab=item.metadata.get("tab", ""),
            bounds=item.metadata.get("bounds"),
            slider=item.metadata.get("slider"),
            step=item.metadata.get("step"),
        )
        for item in dataclasses.fields(section)
        if not dataclasses.is_dataclass(hints[item.name])
    ]


def schema_fields(root: type) -> list[FieldSpec]:
    """Every leaf field of the tree `root` (FtuiConfig or a copy of it), in file order."""
    specs = section_fields(root)
    for item in dataclasses.fields(root):
        hint = type_hints(root)[item.name]
        if dataclasses.is_dataclass(hint):
            specs += section_fields(hint, prefix=f"{item.name}.")
    return specs


def sections(root: type) -> dict[str, type]:
    """Section name -> its class, e.g. {"model": ModelConfig, ...}."""
    hints = type_hints(root)
    return {name: hint for name, hint in hints.items() if dataclasses.is_dataclass(hint)}


class Section:
    """A config section whose number fields are checked against their bounds on creation
    and again by FtuiConfig.check() (which catches values changed in place)."""

    key: ClassVar[str] = ""

    def __post_init__(self) -> None:
        self.check_bounds()

    def check_bounds(self) -> None:
        hints = type_hints(type(self))
        for item in dataclasses.fields(self):  # type: ignore[arg-type]
            bounds = item.metadata.get("bounds")
            if bounds is not None:
                whole = hints[item.name] is int
                _check_number(
                    f"{self.key}.{item.name}", getattr(self, item.name), bounds, whole, item
                )


def _check_number(
    key: str, value: Any, bounds: Bounds, whole: bool, item: dataclasses.Field
) -> None:
    kind = "a whole number" if whole else "a number"
    if isinstance(value, bool) or not isinstance(value, int if whole else (int, float)):
        raise ConfigError(f"{key}: expected {kind}, got {value!r}")
    if not bounds.allows(value):
        example = bounds.example if bounds.example is not None else item.default
        raise ConfigError(
            f"{key}: {_shown_value(value)} is out of range; use {bounds.describe(whole)}, "
            f"e.g. {_shown_value(example)}"
        )


def _shown_value(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return repr(value) if isinstance(value, float) else str(value)
