"""Dataset formats: detect which one a table is in, map its columns, normalise its rows.

Six layouts are understood (`FORMATS`). Each has roles (`FORMAT_ROLES`): the fields it needs
and the ones it can use. `detect_format` matches column names (case-insensitively, with common
synonyms) and looks inside message columns to tell chat (`role`/`content`) from ShareGPT
(`from`/`value`). `resolve_columns` merges a user's role -> column mapping over that guess.
`to_example` turns one row into the shape the trainers take:

- alpaca, chat, sharegpt, prompt_completion -> {"messages": [{"role", "content"}, ...]}
- text -> {"text": ...}
- preference -> {"prompt": [messages], "chosen": [messages], "rejected": [messages]}
"""

from __future__ import annotations

import json
import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from ftui.data.reading import DataError, value_kind

FORMATS = ("alpaca", "chat", "sharegpt", "prompt_completion", "text", "preference")

FORMAT_ROLES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "alpaca": (("instruction", "output"), ("input", "system")),
    "chat": (("messages",), ()),
    "sharegpt": (("conversations",), ("system",)),
    "prompt_completion": (("prompt", "completion"), ()),
    "text": (("text",), ()),
    "preference": (("chosen", "rejected"), ("prompt",)),
}

# Column names each role answers to, lower-case; the first is the canonical one.
ROLE_NAMES: dict[str, dict[str, tuple[str, ...]]] = {
    "alpaca": {
        "instruction": ("instruction", "question", "query"),
        "output": ("output", "response", "answer"),
        "input": ("input", "context"),
        "system": ("system",),
    },
    "chat": {"messages": ("messages",)},
    "sharegpt": {"conversations": ("conversations",), "system": ("system",)},
    "prompt_completion": {"prompt": ("prompt",), "completion": ("completion",)},
    "text": {"text": ("text", "content", "document", "body")},
    "preference": {
        "chosen": ("chosen",),
        "rejected": ("rejected",),
        "prompt": ("prompt", "question"),
    },
}

CHAT_ROLES = ("system", "user", "assistant", "tool")
SHAREGPT_ROLES = {
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "model": "assistant",
    "system": "system",
    "function_call": "assistant",
    "observation": "tool",
    "tool": "tool",
}
_EXPECTED = (
    "instruction/output (alpaca), messages (chat), conversations (sharegpt), "
    "prompt/completion (prompt_completion), text (text) or chosen/rejected (preference)"
)


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
    matches = _settle_message_style(df, matches)
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


def to_example(row: Mapping, format: str, columns: dict[str, str], system_prompt: str = "") -> dict:
    """One row in the trainers' shape (see the module docstring); DataError if it cannot be."""
    build = _BUILDERS.get(format)
    if build is None:
        raise DataError(f"unknown format '{format}'", hint=f"Use one of: {', '.join(FORMATS)}.")
    return build(row, columns, system_prompt)


def examples_from_frame(
    df: pd.DataFrame, format: str, columns: dict[str, str], system_prompt: str = ""
) -> list[dict]:
    """Every row through `to_example`; an error names the 1-based row."""
    examples = []
    for number, row in enumerate(df.to_dict("records"), start=1):
        try:
            examples.append(to_example(row, format, columns, system_prompt))
        except DataError as err:
            message = f"row {number}: {err.message}"
            raise DataError(message, column=err.column, hint=err.hint) from err
    return examples


def is_blank(value: Any) -> bool:
    """True for None, NaN, whitespace-only text and empty lists."""
    if _is_missing(value):
        return True
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, (list, tuple, dict)) or getattr(value, "ndim", 0) == 1:
        return len(value) == 0
    return False


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
        for rank, name in enumerate(ROLE_NAMES[fmt][role]):
            column = by_name.get(name)
            if column is not None and column not in roles.values():
                roles[role] = column
                exact += rank == 0 and role in required
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
        system = next((c for c in df.columns if str(c).strip().lower() == "system"), None)
        if actual == "sharegpt" and system is not None:
            settled["system"] = system
        matches[actual] = (settled, 1)  # the content confirms it: as good as the right name
    return matches


def _message_style(series: pd.Series) -> str | None:
    """'role' (chat) or 'from' (ShareGPT) from the first messages found; None if unclear."""
    for value in series.head(20):
        messages = _as_list(value)
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
        sample = [v for v in df.iloc[:, 0].head(20) if not _is_missing(v)]
        if sample and all(isinstance(v, str) for v in sample):
            reason = f"the only column '{columns[0]}' holds text; treating it as raw text"
            return Detection("text", {"text": df.columns[0]}, False, reason, ["text"])
    reason = f"no known format: columns found are {', '.join(columns)}; expected {_EXPECTED}"
    return Detection(None, {}, False, reason, [])


# --- normalising rows ----------------------------------------------------------------------


def _alpaca(row: Mapping, columns: dict[str, str], system_prompt: str) -> dict:
    parts = [_field_text(row, columns, "instruction"), _field_text(row, columns, "input")]
    user = "\n\n".join(part for part in parts if part.strip())
    system = _field_text(row, columns, "system") or system_prompt
    output = _field_text(row, columns, "output")
    messages = [_message("user", user), _message("assistant", output)]
    return {"messages": _with_system(system, messages)}


def _chat(row: Mapping, columns: dict[str, str], system_prompt: str) -> dict:
    column = columns["messages"]
    items = enumerate(_message_list(row, column), start=1)
    messages = [_chat_message(item, index, column) for index, item in items]
    return {"messages": _with_system(system_prompt, messages)}


def _sharegpt(row: Mapping, columns: dict[str, str], system_prompt: str) -> dict:
    column = columns["conversations"]
    items = enumerate(_message_list(row, column), start=1)
    messages = [_sharegpt_message(item, index, column) for index, item in items]
    system = _field_text(row, columns, "system") or system_prompt
    return {"messages": _with_system(system, messages)}


def _prompt_completion(row: Mapping, columns: dict[str, str], system_prompt: str) -> dict:
    prompt = _turns(row, columns, "prompt", "user", keep_empty=True)
    completion = _turns(row, columns, "completion", "assistant", keep_empty=True)
    return {"messages": _with_system(system_prompt, prompt + completion)}


def _text(row: Mapping, columns: dict[str, str], system_prompt: str) -> dict:
    return {"text": _field_text(row, columns, "text")}


def _preference(row: Mapping, columns: dict[str, str], system_prompt: str) -> dict:
    prompt = _turns(row, columns, "prompt", "user", keep_empty=False)
    return {
        "prompt": _with_system(system_prompt, prompt),
        "chosen": _turns(row, columns, "chosen", "assistant", keep_empty=True),
        "rejected": _turns(row, columns, "rejected", "assistant", keep_empty=True),
    }


_BUILDERS = {
    "alpaca": _alpaca,
    "chat": _chat,
    "sharegpt": _sharegpt,
    "prompt_completion": _prompt_completion,
    "text": _text,
    "preference": _preference,
}


def _message(role: str, content: str) -> dict[str, str]:
    return {"role": role, "content": content}


def _with_system(system: str, messages: list[dict]) -> list[dict]:
    if not system or (messages and messages[0]["role"] == "system"):
        return messages
    return [_message("system", system), *messages]


def _turns(
    row: Mapping, columns: dict[str, str], role: str, speaker: str, *, keep_empty: bool
) -> list[dict]:
    """A field holding either plain text (one `speaker` message) or a list of messages."""
    column = columns.get(role)
    if column is None:
        return []
    items = _as_list(row.get(column))
    if items and all(isinstance(item, dict) for item in items):
        return [_chat_message(item, index, column) for index, item in enumerate(items, 1)]
    text = _field_text(row, columns, role)
    return [_message(speaker, text)] if text.strip() or keep_empty else []


def _field_text(row: Mapping, columns: dict[str, str], role: str) -> str:
    column = columns.get(role)
    if column is None:
        return ""
    value = row.get(column)
    if _is_missing(value):
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, numbers.Number):
        return str(value)
    raise DataError(
        f"{role} should be text but is {value_kind(value)}",
        column=str(column),
        hint="Put plain text in this column (flatten the nested value).",
    )


def _message_list(row: Mapping, column: str) -> list:
    value = row.get(column)
    items = _as_list(value)
    if items is None:
        raise DataError(
            f"messages should be a list of objects but is {value_kind(value)}",
            column=str(column),
            hint='Use [{"role": "user", "content": "..."}, {"role": "assistant", ...}].',
        )
    return items


def _chat_message(item: Any, index: int, column: str) -> dict[str, str]:
    if not isinstance(item, dict):
        raise DataError(
            f"message {index} is {value_kind(item)}, not an object with role and content",
            column=str(column),
        )
    if "role" not in item:
        keys = ", ".join(map(str, item)) or "none"
        raise DataError(f"message {index} has no 'role' (keys: {keys})", column=str(column))
    role = item["role"]
    if role not in CHAT_ROLES:
        raise DataError(
            f"message {index} has role {role!r}; allowed roles are {', '.join(CHAT_ROLES)}",
            column=str(column),
        )
    content = item.get("content")
    if content is None and not is_blank(item.get("tool_calls")):
        content = ""  # an assistant tool call carries no text
    if not isinstance(content, str):
        raise DataError(
            f"message {index} ({role}) content should be a string but is {value_kind(content)}",
            column=str(column),
            hint="Put the message text in 'content' as plain text.",
        )
    return _message(role, content)


def _sharegpt_message(item: Any, index: int, column: str) -> dict[str, str]:
    if not isinstance(item, dict) or "from" not in item:
        raise DataError(
            f"message {index} should be an object with 'from' and 'value' but is "
            f"{value_kind(item) if not isinstance(item, dict) else 'missing from'}",
            column=str(column),
        )
    speaker = item["from"]
    role = SHAREGPT_ROLES.get(str(speaker).lower()) if isinstance(speaker, str) else None
    if role is None:
        raise DataError(
            f"message {index} has from={speaker!r}; allowed: {', '.join(SHAREGPT_ROLES)}",
            column=str(column),
        )
    value = item.get("value")
    if not isinstance(value, str):
        raise DataError(
            f"message {index} ({speaker}) value should be a string but is {value_kind(value)}",
            column=str(column),
        )
    return _message(role, value)


def _as_list(value: Any) -> list | None:
    """A list from a list, a NumPy array (Parquet) or a JSON-encoded string (CSV); else None."""
    if isinstance(value, str):
        if not value.strip().startswith("["):
            return None
        try:
            parsed = json.loads(value)
        except (ValueError, RecursionError):
            return None
        return parsed if isinstance(parsed, list) else None
    if isinstance(value, (list, tuple)):
        return list(value)
    if hasattr(value, "tolist") and getattr(value, "ndim", 0) == 1:
        return value.tolist()
    return None


def _is_missing(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float) and math.isnan(value)
