"""Turning dataset rows into the shape the trainers take, whatever the file's layout.

`to_example` normalises one row, given its format and role -> column mapping:

- alpaca, chat, sharegpt, prompt_completion -> {"messages": [{"role", "content"}, ...]}
- text -> {"text": ...}
- preference -> {"prompt": [messages], "chosen": [messages], "rejected": [messages]}

Message lists may come as lists, NumPy arrays (Parquet) or JSON text (CSV); a row that cannot
be normalised raises DataError naming the message and column.
"""

from __future__ import annotations

import json
import math
import numbers
from collections.abc import Mapping
from typing import Any

import pandas as pd

from ftui.data.errors import DataError, value_kind

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


def to_example(row: Mapping, format: str, columns: dict[str, str], system_prompt: str = "") -> dict:
    """One row in the trainers' shape (see the module docstring); DataError if it cannot be."""
    build = _BUILDERS.get(format)
    if build is None:
        raise DataError(f"unknown format '{format}'", hint=f"Use one of: {', '.join(_BUILDERS)}.")
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
    if is_missing(value):
        return True
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, (list, tuple, dict)) or getattr(value, "ndim", 0) == 1:
        return len(value) == 0
    return False


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
    items = parse_list(row.get(column))
    if items and all(isinstance(item, dict) for item in items):
        return [_chat_message(item, index, column) for index, item in enumerate(items, 1)]
    text = _field_text(row, columns, role)
    return [_message(speaker, text)] if text.strip() or keep_empty else []


def _field_text(row: Mapping, columns: dict[str, str], role: str) -> str:
    column = columns.get(role)
    if column is None:
        return ""
    value = row.get(column)
    if is_missing(value):
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
    items = parse_list(value)
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


def parse_list(value: Any) -> list | None:
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


def is_missing(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float) and math.isnan(value)
