"""The dataset layouts ftui reads, as plain data: the one list of formats.

Each format has roles (`FORMAT_ROLES`): the fields it needs and the ones it can use, and the
column names each role answers to (`ROLE_NAMES`). The config's `data.format` choices, the
method catalog's formats per objective, detection (`ftui.data.formats`) and the Data tab's
column mapping all read this module; it imports nothing, so the catalog and the config stay
light.
"""

from __future__ import annotations

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
