"""The dataset layouts ftui reads, as plain data: the one list of formats.

Each format has roles (`FORMAT_ROLES`): the fields it needs and the ones it can use, and the
column names each role answers to (`ROLE_NAMES`). The config's `data.format` choices, the
method catalog's formats per objective, detection (`ftui.data.formats`) and the Data tab's
column mapping all read this module; it imports nothing, so the catalog and the config stay
light.

The layouts, with the files they come from:

- alpaca: instruction / input / output (Stanford Alpaca, LLaMA-Factory's default)
- chat: `messages` of role/content (OpenAI and TRL), with `tools`, assistant `tool_calls`,
  `tool` turns, content parts and per-turn `weight`
- sharegpt: `conversations` of from/value, with `function_call` / `observation` turns and a
  `tools` column (LLaMA-Factory)
- prompt_completion: prompt / completion (TRL)
- text: raw text for continued pretraining
- preference: prompt / chosen / rejected pairs (TRL, DPO), also ShareGPT-style
  (`conversations` + chosen/rejected messages) and OpenAI's preference layout
  (`input` / `preferred_output` / `non_preferred_output`)
- kto: unpaired preference, a prompt and completion with a true/false `label` (TRL), or a
  conversation with a `kto_tag` (LLaMA-Factory)
"""

from __future__ import annotations

FORMATS = ("alpaca", "chat", "sharegpt", "prompt_completion", "text", "preference", "kto")

FORMAT_ROLES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "alpaca": (("instruction", "output"), ("input", "system")),
    "chat": (("messages",), ("tools",)),
    "sharegpt": (("conversations",), ("system", "tools")),
    "prompt_completion": (("prompt", "completion"), ()),
    "text": (("text",), ()),
    "preference": (("chosen", "rejected"), ("prompt", "system", "tools")),
    "kto": (("prompt", "label"), ("completion", "system", "tools")),
}

# Column names each role answers to, lower-case; the first is the canonical one.
ROLE_NAMES: dict[str, dict[str, tuple[str, ...]]] = {
    "alpaca": {
        "instruction": ("instruction", "question", "query"),
        "output": ("output", "response", "answer"),
        "input": ("input", "context"),
        "system": ("system",),
    },
    "chat": {"messages": ("messages",), "tools": ("tools", "functions")},
    "sharegpt": {"conversations": ("conversations",), "system": ("system",), "tools": ("tools",)},
    "prompt_completion": {"prompt": ("prompt",), "completion": ("completion",)},
    "text": {"text": ("text", "content", "document", "body")},
    "preference": {
        "chosen": ("chosen", "preferred_output"),
        "rejected": ("rejected", "non_preferred_output"),
        "prompt": ("prompt", "question", "conversations", "messages", "input"),
        "system": ("system",),
        "tools": ("tools",),
    },
    "kto": {
        "prompt": ("prompt", "messages", "conversations"),
        "label": ("label", "kto_tag"),
        "completion": ("completion",),
        "system": ("system",),
        "tools": ("tools",),
    },
}

# Names other than the first that are a standard spelling, not a guess (OpenAI's preference
# layout, LLaMA-Factory's KTO layout): detection is as sure of them as of the canonical name.
STANDARD_NAMES: dict[str, dict[str, tuple[str, ...]]] = {
    "preference": {"chosen": ("preferred_output",), "rejected": ("non_preferred_output",)},
    "kto": {"prompt": ("messages", "conversations"), "label": ("kto_tag",)},
}

# Formats trained as instruction data (loss on the assistant turns): a true/false label column
# beside them marks rows as bad answers, which instruction tuning would learn.
INSTRUCTION_FORMATS = ("alpaca", "chat", "sharegpt", "prompt_completion")
LABEL_COLUMN_NAMES = ("label", "kto_tag")


def is_standard_name(fmt: str, role: str, name: str) -> bool:
    """Whether `name` is the canonical or a standard column name of `role` in `fmt`."""
    names = ROLE_NAMES[fmt][role]
    return name == names[0] or name in STANDARD_NAMES.get(fmt, {}).get(role, ())


LAYOUT_EXAMPLES: dict[str, str] = {
    "alpaca": '{"instruction": "Classify the ticket", "input": "Printer on fire", '
    '"output": "urgent"}',
    "chat": '{"messages": [{"role": "user", "content": "Hi"}, '
    '{"role": "assistant", "content": "Hello!"}]}',
    "sharegpt": '{"conversations": [{"from": "human", "value": "Hi"}, '
    '{"from": "gpt", "value": "Hello!"}]}',
    "prompt_completion": '{"prompt": "2+2=", "completion": "4"}',
    "text": '{"text": "The pump runs at 40 bar."}',
    "preference": '{"prompt": "Help?", "chosen": "Sure, here is how.", "rejected": "No."}',
    "kto": '{"prompt": "Help?", "completion": "No.", "label": false}',
}
