"""Dataset formats: detect which one a table is in and map its columns to roles.

The layouts and their roles are plain data in `ftui.data.layouts` (`FORMATS`, `FORMAT_ROLES`,
`ROLE_NAMES`). `detect_format` matches column names (case-insensitively, with common
synonyms) and looks inside columns where names are not enough: message columns tell chat
(`role`/`content`) from ShareGPT (`from`/`value`), and a `label` / `kto_tag` column of
true/false values makes unpaired preference (KTO) rows, never instruction data.
`resolve_columns` merges a user's role -> column mapping over that guess. Turning rows into
training examples is `ftui.data.examples`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from ftui.data.errors import DataError
from ftui.data.examples import is_missing, kto_label, parse_list
from ftui.data.layouts import FORMAT_ROLES, FORMATS, ROLE_NAMES, is_standard_name

_LAYOUTS = [f"{'/'.join(FORMAT_ROLES[fmt][0])} ({fmt})" for fmt in FORMATS]
_EXPECTED = f"{', '.join(_LAYOUTS[:-1])} or {_LAYOUTS[-1]}"  # the needed columns of each format


@dataclass
class Detection:
    format: str | None
    columns: dict[str, str] = field(default_factory=dict)  # role -> actual column
    confident: bool = False
    reason: str = ""
    candidates: list[str] = field(default_factory=list)


def detect_format(df: pd.DataFrame) -> Detection:
    """Guess the format from column names and, for message columns, their content."""
    matches = {}
    for fmt in FORMATS:
        match = _match_roles(list(df.columns), fmt)
        if match is not None:
            matches[fmt] = match
    matches = _settle_kto(df, _settle_message_style(df, matches))
    if not matches:
        return _detect_plain_text(df)
    ranked = sorted(matches, key=lambda f: _score(f, matches[f]), reverse=True)
    best = ranked[0]
    tied = [f for f in ranked if _score(f, matches[f])[:2] == _score(best, matches[best])[:2]]
    roles, exact = matches[best]
    shown = ", ".join(f"{role}={column}" for role, column in roles.items())
    if len(tied) > 1:
        reason = f"the columns fit several formats ({', '.join(tied)}); picked {best}"
    elif exact < len(FORMAT_ROLES[best][0]):
        canonical = "/".join(FORMAT_ROLES[best][0])
        reason = f"guessed {best} from similar column names ({shown}; usual: {canonical})"
    else:
        reason = f"columns match {best} ({shown})"
    confident = len(tied) == 1 and exact == len(FORMAT_ROLES[best][0])
    return Detection(best, dict(roles), confident, reason, ranked)


def resolve_columns(
    df: pd.DataFrame, format: str, columns: dict[str, str] | None
) -> dict[str, str]:
    """Role -> column for `format`: the user's mapping over what the names suggest."""
    if format not in FORMAT_ROLES:
        raise DataError(f"unknown format '{format}'", hint=f"Use one of: {', '.join(FORMATS)}.")
    required, optional = FORMAT_ROLES[format]
    available = ", ".join(str(c) for c in df.columns)
    user = {role: column for role, column in (columns or {}).items() if column}
    for role, column in user.items():
        if role not in required + optional:
            raise DataError(
                f"unknown role '{role}' for {format}",
                hint=f"Roles are: {', '.join(required + optional)}.",
            )
        if column not in df.columns:
            raise DataError(f"unknown column '{column}'; columns are: {available}")
    guessed = _guess_roles(df, format)
    merged = {role: user.get(role, guessed.get(role)) for role in required + optional}
    merged = {role: column for role, column in merged.items() if column is not None}
    for role in required:
        if role not in merged:
            raise DataError(
                f"no column for '{role}' ({format} needs {', '.join(required)}); "
                f"columns are: {available}",
                hint=f"Map one, e.g. {role}: <column name>.",
            )
    return merged


# --- detection ---------------------------------------------------------------------------


def _match_roles(columns: list, fmt: str) -> tuple[dict[str, str], int] | None:
    """Roles of `fmt` found among `columns`, and how many required ones used canonical names."""
    by_name: dict[str, Any] = {}
    for column in columns:
        by_name.setdefault(str(column).strip().lower(), column)
    required, optional = FORMAT_ROLES[fmt]
    roles: dict[str, str] = {}
    exact = 0
    for role in required + optional:
        for name in ROLE_NAMES[fmt][role]:
            column = by_name.get(name)
            if column is not None and column not in roles.values():
                roles[role] = column
                exact += is_standard_name(fmt, role, name) and role in required
                break
    if not all(role in roles for role in required):
        return None
    return roles, exact


def _guess_roles(df: pd.DataFrame, fmt: str) -> dict[str, str]:
    detection = detect_format(df)
    if detection.format == fmt:
        return detection.columns
    match = _match_roles(list(df.columns), fmt)
    if match is not None:
        return match[0]
    if fmt in ("chat", "sharegpt"):  # a message column under the other format's name
        other = _match_roles(list(df.columns), "sharegpt" if fmt == "chat" else "chat")
        if other is not None:
            column = next(iter(other[0].values()))
            return {FORMAT_ROLES[fmt][0][0]: column}
    return {}


def _settle_message_style(df: pd.DataFrame, matches: dict) -> dict:
    """A message column holding from/value is ShareGPT, one holding role/content is chat."""
    for fmt in ("chat", "sharegpt"):
        if fmt not in matches:
            continue
        roles, _ = matches[fmt]
        column = roles[FORMAT_ROLES[fmt][0][0]]
        actual = {"role": "chat", "from": "sharegpt"}.get(_message_style(df[column]), fmt)
        if actual == fmt:
            continue
        del matches[fmt]
        settled = {FORMAT_ROLES[actual][0][0]: column}
        by_name = {str(c).strip().lower(): c for c in df.columns}
        for role in FORMAT_ROLES[actual][1]:  # system, tools: by their usual names
            found = next((by_name[n] for n in ROLE_NAMES[actual][role] if n in by_name), None)
            if found is not None and found not in settled.values():
                settled[role] = found
        matches[actual] = (settled, 1)  # the content confirms it: as good as the right name
    return matches


def _settle_kto(df: pd.DataFrame, matches: dict) -> dict:
    """A label column of true/false values makes the rows KTO's, whatever else they fit:
    read as instruction data, the answers labelled false would be learned. A label column
    holding anything else (a class name) is not KTO's."""
    if "kto" not in matches:
        return matches
    roles, _ = matches["kto"]
    if not _holds_labels(df[roles["label"]]):
        return {fmt: match for fmt, match in matches.items() if fmt != "kto"}
    return {"kto": (roles, len(FORMAT_ROLES["kto"][0]))}  # the labels confirm it


def _holds_labels(series: pd.Series) -> bool:
    sample = [value for value in series.head(50) if not is_missing(value)]
    return bool(sample) and all(kto_label(value) is not None for value in sample)


def _message_style(series: pd.Series) -> str | None:
    """'role' (chat) or 'from' (ShareGPT) from the first messages found; None if unclear."""
    for value in series.head(20):
        messages = parse_list(value)
        if not messages or not isinstance(messages[0], dict):
            continue
        keys = set(messages[0])
        if keys & {"from", "value"}:
            return "from"
        if keys & {"role", "content"}:
            return "role"
    return None


def _score(fmt: str, match: tuple[dict[str, str], int]) -> tuple[int, int, int]:
    roles, exact = match
    return len(FORMAT_ROLES[fmt][0]), exact, len(roles)


def _detect_plain_text(df: pd.DataFrame) -> Detection:
    columns = [str(c) for c in df.columns]
    if len(columns) == 1:
        sample = [v for v in df.iloc[:, 0].head(20) if not is_missing(v)]
        if sample and all(isinstance(v, str) for v in sample):
            reason = f"the only column '{columns[0]}' holds text; treating it as raw text"
            return Detection("text", {"text": df.columns[0]}, False, reason, ["text"])
    reason = f"no known format: columns found are {', '.join(columns)}; expected {_EXPECTED}"
    return Detection(None, {}, False, reason, [])
