"""One message of a conversation, from the layouts people have, in the shape templates take.

    chat_message({"role": "assistant", "content": None, "tool_calls": [...]}, 2, "messages")
    sharegpt_message({"from": "function_call", "value": '{"name": ...}'}, 2, "conversations")

The result is {"role", "content"} plus, where the row has them, "tool_calls" (OpenAI shape,
arguments as an object), "tool_call_id" and "name" (tool results), and "weight" (0 or 1: an
assistant turn with weight 0 is context, not trained). Content given as OpenAI content parts
is joined from its text parts; image, audio and file parts are refused, naming the part,
since ftui trains text-only models. Every refusal is a DataError naming the message and the
column, and saying what to change.
"""

from __future__ import annotations

import json
from typing import Any

from ftui.data.errors import DataError, value_kind
from ftui.data.tools import function_call_turn, tool_calls_of

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
TEXT_PARTS = ("text", "input_text", "output_text")  # chat completions and responses APIs
WEIGHT_KEYS = ("weight", "loss_weight")


def chat_message(item: Any, index: int, column: str) -> dict[str, Any]:
    """An OpenAI/TRL message (role, content, tool_calls, tool_call_id, weight) normalised."""
    if not isinstance(item, dict):
        raise DataError(
            f"message {index} is {value_kind(item)}, not an object with role and content",
            column=str(column),
        )
    if "role" not in item:
        keys = ", ".join(map(str, item)) or "none"
        raise DataError(f"message {index} has no 'role' (keys: {keys})", column=str(column))
    role = item["role"]
    if role == "developer":  # OpenAI's newer name for the system turn
        role = "system"
    if role not in CHAT_ROLES:
        raise DataError(
            f"message {index} has role {role!r}; allowed roles are {', '.join(CHAT_ROLES)}",
            column=str(column),
        )
    calls = tool_calls_of(item.get("tool_calls"), index, column)
    content = item.get("content")
    if content is None and calls:
        content = ""  # an assistant tool call carries no text
    message = {"role": role, "content": content_text(content, index, role, column)}
    if calls:
        message["tool_calls"] = calls
    for key in ("tool_call_id", "name"):
        if role == "tool" and isinstance(item.get(key), str):
            message[key] = item[key]
    message.update(turn_weight(item, index, column))
    return message


def sharegpt_message(item: Any, index: int, column: str) -> dict[str, Any]:
    """A ShareGPT turn (from/value; function_call and observation for tools) normalised."""
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
    if str(speaker).lower() == "function_call":
        return {**function_call_turn(value, index, column), **turn_weight(item, index, column)}
    if not isinstance(value, str):
        raise DataError(
            f"message {index} ({speaker}) value should be a string but is {value_kind(value)}",
            column=str(column),
        )
    return {"role": role, "content": value, **turn_weight(item, index, column)}


def any_message(item: Any, index: int, column: str) -> dict[str, Any]:
    """Either style: role/content, or ShareGPT's from/value (preference and KTO rows)."""
    if isinstance(item, dict) and "from" in item and "role" not in item:
        return sharegpt_message(item, index, column)
    return chat_message(item, index, column)


def content_text(content: Any, index: int, role: str, column: str) -> str:
    """A message's text: a string, or the text of OpenAI content parts joined by newlines."""
    if isinstance(content, str):
        return content
    if role == "tool" and isinstance(content, dict):
        return json.dumps(content, ensure_ascii=False)  # a tool result given as an object
    if isinstance(content, list):
        return "\n".join(_part_text(part, index, role, column) for part in content)
    raise DataError(
        f"message {index} ({role}) content should be a string but is {value_kind(content)}",
        column=str(column),
        hint="Put the message text in 'content' as plain text, or as a list of "
        '{"type": "text", "text": "..."} parts.',
    )


def _part_text(part: Any, index: int, role: str, column: str) -> str:
    if isinstance(part, str):
        return part
    kind = part.get("type") if isinstance(part, dict) else None
    if kind in TEXT_PARTS and isinstance(part.get("text"), str):
        return part["text"]
    if kind is None:
        raise DataError(
            f"message {index} ({role}) has a content part that is {value_kind(part)} with no "
            "'type'",
            column=str(column),
            hint='Write text parts as {"type": "text", "text": "..."}.',
        )
    raise DataError(
        f"message {index} ({role}) has a {kind!r} content part; ftui trains text-only models, "
        "so only text parts can be read",
        column=str(column),
        hint="Remove the image, audio or file parts (or describe them in text), and keep "
        '{"type": "text", "text": "..."} parts.',
    )


def turn_weight(item: dict, index: int, column: str) -> dict[str, int]:
    """{"weight": 0 or 1} from OpenAI's `weight` (or `loss_weight`); {} when not given."""
    for key in WEIGHT_KEYS:
        value = item.get(key)
        if value is None:
            continue
        if value in (0, 1):  # True/False and 0.0/1.0 too
            return {"weight": int(value)}
        raise DataError(
            f"message {index} has {key}={value!r}; a turn's weight is 0 (not trained) or 1",
            column=str(column),
            hint="Use 0 to leave an assistant turn out of the loss and 1 (the default) to "
            "train it; fractional weights are not supported.",
        )
    return {}


def is_trained(message: dict[str, Any]) -> bool:
    """An assistant turn carries the loss unless its weight is 0."""
    return message["role"] == "assistant" and message.get("weight", 1) != 0


def has_reply(message: dict[str, Any]) -> bool:
    """Whether a turn says something: text, or a tool call."""
    return bool(message["content"].strip() or message.get("tool_calls"))
