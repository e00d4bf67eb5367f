"""What makes a well-formed row useless or harmful for training, as `Problem`s.

`example_problems(example, fmt, columns, row)` looks at one normalised example (from
`ftui.data.examples`): an empty answer, a conversation with nothing to learn (no assistant
turn, or every one weighted 0), identical preference answers, an empty KTO completion.
`label_column_problem` catches a true/false label column next to instruction data, which would
teach the model the answers labelled bad. `ftui.data.check` runs these over every row.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Literal

import pandas as pd

from ftui.data.examples import is_missing, kto_label
from ftui.data.layouts import FORMAT_ROLES, INSTRUCTION_FORMATS, LABEL_COLUMN_NAMES
from ftui.data.messages import has_reply, is_trained


@dataclass
class Problem:
    severity: Literal["error", "warning"]
    message: str
    row: int | None = None  # 1-based data row
    column: str | None = None

    def __str__(self) -> str:
        where = []
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.column is not None:
            where.append(f"column '{self.column}'")
        prefix = f"{', '.join(where)}: " if where else ""
        return f"{self.severity}: {prefix}{self.message}"


def example_problems(example: dict, fmt: str, columns: dict[str, str], row: int) -> list[Problem]:
    """What makes a well-formed row useless for training (nothing to learn from)."""
    if fmt in ("alpaca", "prompt_completion"):
        reply_role = "output" if fmt == "alpaca" else "completion"
        prompt_role = "instruction" if fmt == "alpaca" else "prompt"
        turns = [m for m in example["messages"] if m["role"] != "system"]
        problems = []
        if not any(has_reply(m) for m in turns if m["role"] == "assistant"):
            problems.append(Problem("error", f"{reply_role} is empty", row, columns[reply_role]))
        if not _text_of(turns, "user").strip():
            column = columns.get(prompt_role)
            problems.append(Problem("warning", f"{prompt_role} is empty", row, column))
        return problems
    if fmt in ("chat", "sharegpt"):
        return _conversation_problems(example["messages"], columns[FORMAT_ROLES[fmt][0][0]], row)
    if fmt == "preference":
        return _preference_problems(example, columns, row)
    if fmt == "kto" and not any(has_reply(m) for m in example["completion"]):
        column = columns.get("completion", columns["prompt"])
        return [Problem("error", "the completion the label judges is empty", row, column)]
    return []


def _conversation_problems(messages: list[dict], column: str, row: int) -> list[Problem]:
    if not messages:
        return [Problem("error", "the conversation has no messages", row, column)]
    roles = [m["role"] for m in messages]
    if "assistant" not in roles:
        message = (
            f"no assistant turn (roles found: {', '.join(roles)}); add the reply the model "
            "should learn as a message with role 'assistant'"
        )
        return [Problem("error", message, row, column)]
    problems = [
        Problem("error", f"message {index} (assistant) is empty", row, column)
        for index, m in enumerate(messages, start=1)
        if m["role"] == "assistant" and is_trained(m) and not has_reply(m)
    ]
    if not any(is_trained(m) for m in messages):
        message = (
            "every assistant turn has weight 0, so nothing is trained; give the turns the "
            "model should learn weight 1 (or no weight)"
        )
        problems.append(Problem("error", message, row, column))
    return problems


def _preference_problems(example: dict, columns: dict[str, str], row: int) -> list[Problem]:
    problems = [
        Problem("error", f"{side} is empty", row, columns[side])
        for side in ("chosen", "rejected")
        if not any(has_reply(m) for m in example[side])
    ]
    if not problems and example["chosen"] == example["rejected"]:
        message = (
            "chosen and rejected are identical, so the pair teaches nothing; make the rejected "
            "answer the worse one, or remove the row"
        )
        problems.append(Problem("error", message, row))
    return problems


def _text_of(messages: list[dict], role: str) -> str:
    return "".join(m["content"] for m in messages if m["role"] == role)


def label_column_problem(df: pd.DataFrame, fmt: str, columns: dict[str, str]) -> Problem | None:
    """An unmapped true/false label column beside instruction data: refuse, rather than train
    the model on the answers labelled false."""
    if fmt not in INSTRUCTION_FORMATS:
        return None
    mapped = set(columns.values())
    for column in df.columns:
        if str(column).strip().lower() not in LABEL_COLUMN_NAMES or column in mapped:
            continue
        values = [kto_label(v) for v in df[column] if not is_missing(v)]
        if values and None not in values and False in values:
            message = (
                f"column '{column}' marks {values.count(False)} rows as bad answers (false); "
                f"trained as {fmt}, the model would learn them. Use format kto (objective "
                "kto) to learn from good and bad answers, or remove the rows marked false "
                "and the column"
            )
            return Problem("error", message, column=str(column))
    return None


def label_balance_problem(labels: Counter) -> Problem | None:
    """KTO learns from the contrast: all-good or all-bad rows leave it nothing to contrast."""
    good, bad = labels.get(True, 0), labels.get(False, 0)
    if good and bad:
        return None
    if not good and not bad:
        return None
    which = "true (good)" if good else "false (bad)"
    message = (
        f"every row is labelled {which}; KTO learns most from both kinds, so add examples "
        "of the other label"
    )
    return Problem("warning", message)
