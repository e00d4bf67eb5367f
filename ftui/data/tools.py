"""Tool calling in datasets: the tools a row offers, the calls its assistant turns make, and
whether a model's chat template can render them.

    tools_of(row_value, "tools")          # [{"type": "function", "function": {...}}, ...]
    tool_calls_of(message["tool_calls"], 2, "messages")
    function_call_turn('{"name": "f", "arguments": {...}}', 3, "conversations")  # ShareGPT
    require_tool_support(tokenizer, example)   # DataError when the template drops them

Everything comes out in the shape transformers' chat templates take (the OpenAI shape, with a
call's arguments as an object, not as JSON text): tools as {"type": "function", "function":
{name, description, parameters}} whether the file wrote them that way (OpenAI) or bare
(LLaMA-Factory's ShareGPT `tools` column), calls as {"type": "function", "function": {name,
arguments}}.

A template that ignores `tools=` or `tool_calls` would train the model on conversations with
the calls cut out, so `require_tool_support` probes the template once and refuses, naming it.
"""

from __future__ import annotations

import json
from typing import Any

from ftui.data.errors import DataError, value_kind

PROBE_DESCRIPTION = "ftui-probe: looks up an order"  # appears only if tools are rendered
PROBE_CALL = "ftui_probe_call"  # appears only if tool calls are rendered
_PROBE_TOOL = {
    "type": "function",
    "function": {
        "name": "ftui_probe_tool",
        "description": PROBE_DESCRIPTION,
        "parameters": {"type": "object", "properties": {"order": {"type": "string"}}},
    },
}
_PROBE_MESSAGES = [
    {"role": "user", "content": "Where is order 7?"},
    {
        "role": "assistant",
        "content": "",
        "tool_calls": [
            {"type": "function", "function": {"name": PROBE_CALL, "arguments": {"order": "7"}}}
        ],
    },
]
TOOL_TEMPLATE_MODELS = "Qwen2.5-Instruct, Qwen3, Llama-3.1-Instruct or SmolLM3"
_support_cache: dict[tuple[str, str], tuple[bool, bool, str]] = {}


def _json_value(value: Any) -> Any:
    """A value, or the JSON it holds when it is text (CSV cells, ShareGPT values)."""
    if isinstance(value, str) and value.strip()[:1] in ("[", "{"):
        try:
            return json.loads(value)
        except ValueError:
            return value
    if hasattr(value, "tolist") and getattr(value, "ndim", 0) == 1:
        return value.tolist()  # a Parquet list
    return value


def _empty_cell(value: Any) -> bool:
    """None, NaN, pandas' NA or blank text: a cell with nothing in it."""
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, float):
        return value != value
    return value is None or type(value).__name__ == "NAType"


def tools_of(value: Any, column: str) -> list[dict[str, Any]]:
    """The row's tool definitions in the OpenAI shape; [] when the cell is empty."""
    value = _json_value(value)
    if not isinstance(value, list) and _empty_cell(value):
        return []
    if not isinstance(value, list):
        raise DataError(
            f"tools should be a list of function definitions but is {value_kind(value)}",
            column=str(column),
            hint='Use [{"type": "function", "function": {"name": ..., "parameters": {...}}}].',
        )
    return [_tool(item, number, column) for number, item in enumerate(value, start=1)]


def _tool(item: Any, number: int, column: str) -> dict[str, Any]:
    function = item.get("function") if isinstance(item, dict) else None
    if isinstance(function, dict) and item.get("type", "function") == "function":
        definition = function
    elif isinstance(item, dict) and "name" in item:
        definition = item  # LLaMA-Factory writes the function itself
    else:
        raise DataError(
            f"tool {number} is {value_kind(item)} without a function name",
            column=str(column),
            hint='Each tool needs {"type": "function", "function": {"name": ...}}.',
        )
    if not isinstance(definition.get("name"), str) or not definition["name"]:
        raise DataError(f"tool {number} has no function name", column=str(column))
    return {"type": "function", "function": definition}


def tool_calls_of(value: Any, index: int, column: str) -> list[dict[str, Any]]:
    """An assistant message's tool calls, arguments as objects; [] when it makes none."""
    value = _json_value(value)
    if not isinstance(value, list) and _empty_cell(value):
        return []
    if not isinstance(value, list):
        raise DataError(
            f"message {index} tool_calls should be a list but is {value_kind(value)}",
            column=str(column),
        )
    return [_call(call, index, column) for call in value]


def _call(call: Any, index: int, column: str) -> dict[str, Any]:
    function = call.get("function", call) if isinstance(call, dict) else None
    name = function.get("name") if isinstance(function, dict) else None
    if not isinstance(name, str) or not name:
        raise DataError(
            f"message {index} has a tool call without a function name",
            column=str(column),
            hint='Write calls as {"type": "function", "function": {"name": ..., "arguments": '
            "{...}}}.",
        )
    arguments = _json_value(function.get("arguments", function.get("parameters", {})))
    if arguments in (None, ""):
        arguments = {}
    if not isinstance(arguments, dict):
        raise DataError(
            f"message {index} calls {name} with arguments that are {value_kind(arguments)}, "
            "not an object",
            column=str(column),
            hint='Give arguments as a JSON object, e.g. {"city": "Paris"}.',
        )
    normalised: dict[str, Any] = {
        "type": "function",
        "function": {"name": name, "arguments": arguments},
    }
    if isinstance(call.get("id"), str):
        normalised["id"] = call["id"]
    return normalised


def function_call_turn(value: Any, index: int, column: str) -> dict[str, Any]:
    """A ShareGPT `function_call` turn: its value is one call, or a list, as JSON."""
    parsed = _json_value(value)
    calls = parsed if isinstance(parsed, list) else [parsed]
    if not calls or not all(isinstance(call, dict) for call in calls):
        raise DataError(
            f"message {index} (function_call) value should be JSON like "
            f'{{"name": ..., "arguments": {{...}}}} but is {value_kind(value)}',
            column=str(column),
            hint="Write the call as JSON text with the function's name and arguments.",
        )
    return {"role": "assistant", "content": "", "tool_calls": tool_calls_of(calls, index, column)}


def uses_tools(example: dict[str, Any]) -> tuple[bool, bool]:
    """(offers tools, makes tool calls) for a normalised example."""
    messages = [
        *example.get("messages", []),
        *example.get("prompt", []),
        *example.get("completion", []),
        *example.get("chosen", []),
        *example.get("rejected", []),
    ]
    calls = any(isinstance(m, dict) and m.get("tool_calls") for m in messages)
    return bool(example.get("tools")), calls


def require_tool_support(tokenizer: Any, example: dict[str, Any]) -> None:
    """Raise DataError when the example has tools or tool calls the template would drop."""
    offers, calls = uses_tools(example)
    if not (offers or calls):
        return
    renders_tools, renders_calls, error = template_tool_support(tokenizer)
    missing = [
        what
        for what, needed, rendered in (
            ("the tools list", offers, renders_tools),
            ("assistant tool calls", calls, renders_calls),
        )
        if needed and not rendered
    ]
    if not missing:
        return
    name = getattr(tokenizer, "name_or_path", "") or "this model"
    why = f" ({error})" if error else ""
    raise DataError(
        f"the chat template of {name} does not render {' or '.join(missing)}{why}, so the "
        "model would be trained on conversations with them cut out",
        hint=f"Choose a model whose chat template supports tool calling (e.g. "
        f"{TOOL_TEMPLATE_MODELS}), or drop the tools and tool turns from the data.",
    )


def template_tool_support(tokenizer: Any) -> tuple[bool, bool, str]:
    """(renders tools, renders tool calls, the template's error if it raised), cached."""
    template = tokenizer.chat_template if isinstance(tokenizer.chat_template, str) else ""
    key = (getattr(tokenizer, "name_or_path", ""), template or repr(tokenizer.chat_template))
    if key not in _support_cache:
        _support_cache[key] = _probe(tokenizer)
    return _support_cache[key]


def _probe(tokenizer: Any) -> tuple[bool, bool, str]:
    try:
        with_tools = tokenizer.apply_chat_template(
            _PROBE_MESSAGES[:1], tools=[_PROBE_TOOL], tokenize=False, add_generation_prompt=True
        )
        with_call = tokenizer.apply_chat_template(
            _PROBE_MESSAGES, tools=[_PROBE_TOOL], tokenize=False
        )
    except Exception as exc:  # a template that raises on tools supports none of them
        return False, False, f"{type(exc).__name__}: {str(exc)[:200]}"
    return PROBE_DESCRIPTION in with_tools, PROBE_CALL in with_call, ""
