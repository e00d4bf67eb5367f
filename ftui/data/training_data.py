"""The config's data section as the two datasets TRL's trainers take (train, validation).

Instruction-style rows (alpaca, chat, sharegpt, prompt_completion) become conversational
prompt/completion pairs: the prompt is every message before the last assistant turn and the
completion is that turn. TRL then masks the prompt out of the loss (`completion_only_loss`),
which is what makes small models learn the answer format. Raw text rows stay `{"text": ...}`;
preference rows stay {"prompt", "chosen", "rejected"} message lists for DPOTrainer.

Validation comes from `data.validation_path` when given, else a seeded split of the training
file. Relative paths resolve against the current directory.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from ftui.config import DataConfig
from ftui.data.check import check_dataframe
from ftui.data.errors import DataError
from ftui.data.examples import examples_from_frame
from ftui.data.reading import load_source
from ftui.data.split import split_train_validation


def load_training_data(data: DataConfig, objective: str = "instruction") -> tuple[Any, Any]:
    """(train Dataset, validation Dataset or None when no rows are held out).

    Preference pairs go with the dpo objective only, and the dpo objective needs them.
    """
    from datasets import Dataset

    train_rows, validation_rows = load_training_rows(data, objective)
    return Dataset.from_list(train_rows), (
        Dataset.from_list(validation_rows) if validation_rows else None
    )


def load_training_rows(data: DataConfig, objective: str = "instruction") -> tuple[list, list]:
    """The same rows as plain lists of dicts (the playground needs no `datasets` import)."""
    frame = load_source(data.path)
    if data.validation_path:
        validation = load_source(data.validation_path)
    else:
        frame, validation = split_train_validation(frame, data.validation_fraction, data.seed)
    format, columns = _resolve_layout(frame, data)
    _check_objective(format, objective, data.path)
    return (
        training_rows(frame, format, columns, data.system_prompt),
        training_rows(validation, format, columns, data.system_prompt),
    )


def _resolve_layout(frame: pd.DataFrame, data: DataConfig) -> tuple[str, dict[str, str]]:
    report = check_dataframe(frame, file=data.path, format=data.format, columns=data.columns)
    if report.format is None or report.errors:
        first = report.errors[0].message if report.errors else report.reason
        raise DataError(f"{data.path}: {first}", hint="Run `ftui data check` on the file.")
    return report.format, report.columns


def _check_objective(format: str, objective: str, path: str) -> None:
    if format == "preference" and objective != "dpo":
        raise DataError(
            f"{path}: preference pairs (chosen/rejected) train with DPO",
            hint="Set method.objective to dpo, or use instruction, chat or text data.",
        )
    if objective == "dpo" and format != "preference":
        raise DataError(
            f"{path}: DPO needs preference pairs (prompt, chosen, rejected); this is {format}",
            hint="Use a preference dataset, or set method.objective to instruction.",
        )


def training_rows(
    frame: pd.DataFrame, format: str, columns: dict[str, str], system_prompt: str = ""
) -> list[dict]:
    """Rows in TRL's shape: {"prompt": [...], "completion": [...]} or {"text": ...}."""
    examples = examples_from_frame(frame, format, columns, system_prompt)
    if format == "text":
        return [{"text": example["text"]} for example in examples]
    if format == "preference":
        return examples  # TRL's conversational preference rows: prompt, chosen, rejected
    return [prompt_completion(example["messages"]) for example in examples]


def prompt_completion(messages: list[dict[str, str]]) -> dict[str, list[dict[str, str]]]:
    """Split a conversation at its last assistant message."""
    last = max(
        (index for index, message in enumerate(messages) if message["role"] == "assistant"),
        default=None,
    )
    if last is None:
        raise DataError("a conversation has no assistant message to learn from")
    return {"prompt": messages[:last], "completion": [messages[last]]}
