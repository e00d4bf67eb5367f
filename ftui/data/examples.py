"""Turning dataset rows into the shape the trainers take, whatever the file's layout.

`to_example` normalises one row, given its format and role -> column mapping:

- alpaca, chat, sharegpt, prompt_completion -> {"messages": [...], "tools": [...]?}
- text -> {"text": ...}
- preference -> {"prompt": [messages], "chosen": [messages], "rejected": [messages]}
- kto -> {"prompt": [messages], "completion": [messages], "label": True/False}

Messages are {"role", "content"} with, where the row has them, tool calls, tool results and
per-turn weights (`ftui.data.messages`); "tools" is the row's tool definitions
(`ftui.data.tools`), present only when it has some. Message lists may come as lists, NumPy
arrays (Parquet) or JSON text (CSV); a row that cannot be normalised raises DataError naming
the message and column.
"""

from __future__ import annotations

import json
import math
import numbers
from collections.abc import Mapping
from typing import Any

import pandas as pd

from ftui.data.errors import DataError, value_kind
from ftui.data.messages import any_message, chat_message, sharegpt_message
from ftui.data.tools import tools_of

TRUE_LABELS = ("true", "1", "yes", "desirable", "good")
FALSE_LABELS = ("false", "0", "no", "undesirable", "bad")


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


def kto_label(value: Any) -> bool | None:
    """True/False from a KTO label cell (booleans, 0/1, 'true'/'false', ...); None if not one."""
    if isinstance(value, bool) or type(value).__name__ == "bool_":
        return bool(value)
    if isinstance(value, numbers.Number) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if text in TRUE_LABELS:
            return True
        if text in FALSE_LABELS:
            return False
    return None


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
    messages = [chat_message(item, index, column) for index, item in items]
    return _with_tools({"messages": _with_system(system_prompt, messages)}, row, columns)


def _sharegpt(row: Mapping, columns: dict[str, str], system_prompt: str) -> dict:
    column = columns["conversations"]
    items = enumerate(_message_list(row, column), start=1)
    messages = [sharegpt_message(item, index, column) for index, item in items]
    system = _field_text(row, columns, "system") or system_prompt
    return _with_tools({"messages": _with_system(system, messages)}, row, columns)


def _prompt_completion(row: Mapping, columns: dict[str, str], system_prompt: str) -> dict:
    prompt = _turns(row, columns, "prompt", "user", keep_empty=True)
    completion = _turns(row, columns, "completion", "assistant", keep_empty=True)
    return {"messages": _with_system(system_prompt, prompt + completion)}


def _text(row: Mapping, columns: dict[str, str], system_prompt: str) -> dict:
    return {"text": _field_text(row, columns, "text")}


def _preference(row: Mapping, columns: dict[str, str], system_prompt: str) -> dict:
    prompt, tools = _prompt_turns(row, columns)
    system = _field_text(row, columns, "system") or system_prompt
    example = {
        "prompt": _with_system(system, prompt),
        "chosen": _turns(row, columns, "chosen", "assistant", keep_empty=True),
        "rejected": _turns(row, columns, "rejected", "assistant", keep_empty=True),
    }
    return _with_tools(example, row, columns, tools)


def _kto(row: Mapping, columns: dict[str, str], system_prompt: str) -> dict:
    label = kto_label(row.get(columns["label"]))
    if label is None:
        raise DataError(
            f"label should be true or false but is {value_kind(row.get(columns['label']))}",
            column=str(columns["label"]),
            hint="Mark each row true (a good answer) or false (a bad one).",
        )
    prompt, tools = _prompt_turns(row, columns)
    if columns.get("completion"):
        completion = _turns(row, columns, "completion", "assistant", keep_empty=True)
    else:  # one conversation: the last assistant turn is the labelled answer
        last = max((i for i, m in enumerate(prompt) if m["role"] == "assistant"), default=None)
        if last is None:
            raise DataError(
                "the conversation has no assistant turn for the label to judge",
                column=str(columns["prompt"]),
                hint="End each conversation with the assistant answer the label is about.",
            )
        prompt, completion = prompt[:last], [prompt[last]]
    system = _field_text(row, columns, "system") or system_prompt
    example = {"prompt": _with_system(system, prompt), "completion": completion, "label": label}
    return _with_tools(example, row, columns, tools)


_BUILDERS = {
    "alpaca": _alpaca,
    "chat": _chat,
    "sharegpt": _sharegpt,
    "prompt_completion": _prompt_completion,
    "text": _text,
    "preference": _preference,
    "kto": _kto,
}


def _message(role: str, content: str) -> dict[str, str]:
    return {"role": role, "content": content}


def _with_system(system: str, messages: list[dict]) -> list[dict]:
    if not system or (messages and messages[0]["role"] == "system"):
        return messages
    return [_message("system", system), *messages]


def _with_tools(
    example: dict, row: Mapping, columns: dict[str, str], found: list | None = None
) -> dict:
    """The row's tools (from its tools column, or found inside the prompt) when it has any."""
    column = columns.get("tools")
    tools = found or (tools_of(row.get(column), column) if column is not None else [])
    return {**example, "tools": tools} if tools else example


def _prompt_turns(row: Mapping, columns: dict[str, str]) -> tuple[list[dict], list[dict]]:
    """The prompt's messages, and tools when it is OpenAI's {"messages", "tools"} object."""
    column = columns.get("prompt")
    value = _structured(row.get(column)) if column is not None else None
    if isinstance(value, dict) and "messages" in value:
        items = parse_list(value["messages"]) or []
        messages = [any_message(item, index, column) for index, item in enumerate(items, 1)]
        return messages, tools_of(value.get("tools"), column)
    return _turns(row, columns, "prompt", "user", keep_empty=False), []


def _turns(
    row: Mapping, columns: dict[str, str], role: str, speaker: str, *, keep_empty: bool
) -> list[dict]:
    """A field holding plain text (one `speaker` message), a list of messages in either style,
    or one message object (ShareGPT-style chosen/rejected)."""
    column = columns.get(role)
    if column is None:
        return []
    value = _structured(row.get(column))
    if isinstance(value, dict):
        value = [value]
    items = parse_list(value)
    if items and all(isinstance(item, dict) for item in items):
        return [any_message(item, index, column) for index, item in enumerate(items, 1)]
    text = _field_text(row, columns, role)
    return [_message(speaker, text)] if text.strip() or keep_empty else []


def _structured(value: Any) -> Any:
    """JSON text holding an object becomes that object (CSV cells); anything else as is."""
    if isinstance(value, str) and value.strip().startswith("{"):
        try:
            return json.loads(value)
        except (ValueError, RecursionError):
            return value
    return value


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
