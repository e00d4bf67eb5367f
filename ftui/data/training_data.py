"""The config's data section as the two datasets TRL's trainers take (train, validation).

Instruction-style rows (alpaca, chat, sharegpt, prompt_completion) are rendered through the
model's chat template (tools included) and tokenized here, with labels that keep the loss on
every assistant turn not weighted 0, tool calls included (`ftui.data.tokens.masked_token_ids`,
the same marks the Data tab highlights); TRL takes such rows as they are. Without a tokenizer
they become conversational prompt/completion pairs split at the last trained assistant turn,
which is also what the Playground and evaluation read (`load_training_rows`). Raw text rows
stay `{"text": ...}`; preference rows stay {"prompt", "chosen", "rejected"} message lists for
DPOTrainer; KTO rows are {"prompt", "completion", "label"} for KTOTrainer, shuffled with the
data seed (KTO reads them in order and needs good and bad answers mixed in its batches).

Validation comes from `data.validation_path` when given, else a seeded split of the training
file. Relative paths resolve against the current directory.
"""

from __future__ import annotations

import json
import random
from typing import Any

import pandas as pd

from ftui.config import DataConfig
from ftui.data.check import check_dataframe
from ftui.data.errors import DataError
from ftui.data.examples import examples_from_frame
from ftui.data.layouts import INSTRUCTION_FORMATS
from ftui.data.messages import is_trained
from ftui.data.reading import load_source
from ftui.data.split import split_train_validation

_PAIRED = {  # the rows each preference objective trains on
    "dpo": "preference pairs (prompt, chosen, rejected)",
    "kto": "KTO rows (a prompt, a completion and a true/false label)",
}


def load_training_data(
    data: DataConfig, objective: str = "instruction", tokenizer: Any | None = None
) -> tuple[Any, Any]:
    """(train Dataset, validation Dataset or None when no rows are held out).

    With the model's `tokenizer`, instruction rows come tokenized, their labels masked; see
    the module docstring. Preference pairs go with the dpo objective and KTO rows with kto.
    """
    from datasets import Dataset

    format, train, validation = _load_examples(data, objective)
    train_rows = trainer_rows(format, train, tokenizer, data.seed)
    validation_rows = trainer_rows(format, validation, tokenizer, data.seed)
    return Dataset.from_list(train_rows), (
        Dataset.from_list(validation_rows) if validation_rows else None
    )


def load_training_rows(data: DataConfig, objective: str = "instruction") -> tuple[list, list]:
    """Plain rows for the Playground and evaluation (no `datasets` import): prompt/completion
    pairs for instruction data, and for KTO data its good answers only (the references)."""
    format, train, validation = _load_examples(data, objective)
    return rows_of(format, train), rows_of(format, validation)


def _load_examples(data: DataConfig, objective: str) -> tuple[str, list[dict], list[dict]]:
    frame = load_source(data.path)
    if data.validation_path:
        validation = load_source(data.validation_path)
    else:
        frame, validation = split_train_validation(frame, data.validation_fraction, data.seed)
    format, columns = _resolve_layout(frame, data)
    _check_objective(format, objective, data.path)
    return (
        format,
        examples_from_frame(frame, format, columns, data.system_prompt),
        examples_from_frame(validation, format, columns, data.system_prompt),
    )


def _resolve_layout(frame: pd.DataFrame, data: DataConfig) -> tuple[str, dict[str, str]]:
    report = check_dataframe(frame, file=data.path, format=data.format, columns=data.columns)
    if report.format is None or report.errors:
        first = report.errors[0].message if report.errors else report.reason
        raise DataError(f"{data.path}: {first}", hint="Run `ftui data check` on the file.")
    return report.format, report.columns


def _check_objective(format: str, objective: str, path: str) -> None:
    """Preference pairs train with DPO and KTO rows with KTO, and those objectives need them."""
    for pairs_format, pairs_objective in (("preference", "dpo"), ("kto", "kto")):
        layout = _PAIRED[pairs_objective]
        if format == pairs_format and objective != pairs_objective:
            raise DataError(
                f"{path}: {layout} train with {pairs_objective.upper()}",
                hint=f"Set method.objective to {pairs_objective}, or use instruction, chat or "
                "text data.",
            )
        if objective == pairs_objective and format != pairs_format:
            raise DataError(
                f"{path}: {pairs_objective.upper()} needs {layout}; this is {format}",
                hint="Use a dataset in that layout, or set method.objective to instruction.",
            )


def trainer_rows(format: str, examples: list[dict], tokenizer: Any | None, seed: int) -> list:
    """The rows one trainer takes for `examples` (see the module docstring)."""
    if format in INSTRUCTION_FORMATS and tokenizer is not None:
        from ftui.data.tokens import masked_token_ids

        return [masked_token_ids(tokenizer, example) for example in examples]
    if format == "kto":
        rows = [_kto_row(example) for example in examples]
        random.Random(seed).shuffle(rows)
        return rows
    return rows_of(format, examples)


def rows_of(format: str, examples: list[dict]) -> list[dict]:
    """Rows in TRL's untokenized shape: {"prompt": [...], "completion": [...]} or {"text": ...}
    (KTO: the good answers), or the preference rows as they are."""
    if format == "text":
        return [{"text": example["text"]} for example in examples]
    if format == "preference":
        return examples  # TRL's conversational preference rows: prompt, chosen, rejected
    if format == "kto":
        good = [example for example in examples if example["label"]]
        return [{"prompt": e["prompt"], "completion": e["completion"]} for e in good]
    return [prompt_completion(example["messages"]) for example in examples]


def training_rows(
    frame: pd.DataFrame, format: str, columns: dict[str, str], system_prompt: str = ""
) -> list[dict]:
    """A frame's rows in TRL's untokenized shape (`rows_of`)."""
    return rows_of(format, examples_from_frame(frame, format, columns, system_prompt))


def _kto_row(example: dict) -> dict[str, Any]:
    """TRL's conversational KTO row; tools as JSON text (TRL parses it) so that tables of
    tools with different parameters do not become one merged Arrow type."""
    tools = example.get("tools")
    return {
        "prompt": [_plain(m) for m in example["prompt"]],
        "completion": [_plain(m) for m in example["completion"]],
        "label": bool(example["label"]),
        "tools": json.dumps(tools) if tools else None,
    }


def _plain(message: dict) -> dict:
    """A message without ftui's own keys (weight), for Arrow and the template."""
    return {key: value for key, value in message.items() if key != "weight"}


def prompt_completion(messages: list[dict]) -> dict[str, list[dict]]:
    """Split a conversation at its last trained assistant message (weight not 0)."""
    trained = [index for index, message in enumerate(messages) if is_trained(message)]
    last = trained[-1] if trained else None
    if last is None:
        raise DataError("a conversation has no assistant message to learn from")
    return {"prompt": messages[:last], "completion": [messages[last]]}
