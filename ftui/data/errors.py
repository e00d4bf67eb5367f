"""DataError, the one exception for a dataset ftui cannot use, and what its messages share.

Every reader (ftui.data.reading, json_rows, delimited, bounded) and every row check raises
DataError; its text names the file, line and column, what is wrong and what to do about it.
"""

from __future__ import annotations

import numbers
from pathlib import Path
from typing import Any


class DataError(Exception):
    """A dataset cannot be used; `str()` says where, what is wrong and what to do."""

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        column: str | None = None,
        hint: str = "",
    ) -> None:
        super().__init__(message)
        self.message = message
        self.file = file
        self.line = line
        self.column = column
        self.hint = hint

    def __str__(self) -> str:
        where = []
        if self.file:
            where.append(Path(self.file).name)
        if self.line is not None:
            where.append(f"line {self.line}")
        if self.column is not None:
            where.append(f"column '{self.column}'")
        text = f"{', '.join(where)}: {self.message}" if where else self.message
        if self.hint:
            text = f"{text.rstrip('.')}. {self.hint}"
        return text


def check_row_count(rows_so_far: int, max_rows: int) -> None:
    """Called before adding a row: refuses the one past the row cap (FTUI_MAX_ROWS)."""
    if rows_so_far >= max_rows:
        raise DataError(
            f"more than {max_rows:,} rows, over this server's row limit",
            hint="Use a sample of fewer rows, or ask the admin to raise FTUI_MAX_ROWS.",
        )


def value_kind(value: Any) -> str:
    """What a value is, for messages: 'a string', 'a list', 'an object', 'a number', 'null'."""
    if getattr(value, "ndim", 0) == 1:
        return "a list"  # a NumPy array: how Parquet lists arrive
    kinds = (
        (type(None), "null"),
        (str, "a string"),
        (dict, "an object"),
        (bool, "true/false"),
        (numbers.Number, "a number"),
        ((list, tuple), "a list"),
    )
    return next((kind for types, kind in kinds if isinstance(value, types)), type(value).__name__)
