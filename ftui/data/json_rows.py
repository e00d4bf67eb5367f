"""JSON and JSON Lines text into rows, refusing what a dataset must not hold.

    frame = read_json(text, max_rows)     # a list of objects, or an object with one such list
    frame = read_jsonl(text, max_rows)    # one object per line

Python's json module accepts NaN, numbers thousands of digits long (slow to convert) and a key
twice in one object (the second silently wins); these readers refuse all three, and values
nested more than MAX_NESTING levels deep. A .json that is really JSON Lines, or a .jsonl that
is one pretty-printed document, gets a rename hint. Every failure is a DataError with the line.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from typing import Any

import pandas as pd

from ftui.data.errors import DataError, check_row_count, value_kind

MAX_NESTING = 8  # levels of list/dict inside one value; real datasets need 2 or 3
MAX_INT_DIGITS = 100  # a longer number is an attack or a mistake, never a dataset value


def parses_as_json(text: str) -> bool:
    try:
        json.loads(text)
    except (ValueError, RecursionError):
        return False
    return True


class _UnsafeJSON(ValueError):
    """Text Python's json module accepts but a dataset must not hold (NaN, 5000-digit numbers,
    a key twice in one object: the second silently wins)."""


def _no_constant(name: str) -> Any:
    raise _UnsafeJSON(f"{name} is not valid JSON; write null, or put the value in quotes")


def _bounded_int(digits: str) -> int:
    if len(digits.lstrip("-")) > MAX_INT_DIGITS:
        raise _UnsafeJSON(f"a number has {len(digits)} digits (more than {MAX_INT_DIGITS})")
    return int(digits)


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    row = dict(pairs)
    if len(row) < len(pairs):
        twice = next(key for i, (key, _) in enumerate(pairs) if key in dict(pairs[:i]))
        raise _UnsafeJSON(f"key '{twice}' appears twice in one object")
    return row


def _loads(text: str) -> Any:
    """json.loads, refusing what `_UnsafeJSON` names."""
    return json.loads(
        text, parse_constant=_no_constant, parse_int=_bounded_int, object_pairs_hook=_unique_keys
    )


def _unsafe(exc: _UnsafeJSON, line: int | None) -> DataError:
    return DataError(str(exc), line=line, hint="Fix that value and save the file again.")


def read_json(text: str, max_rows: int) -> pd.DataFrame:
    """One JSON document: a list of row objects, or an object holding exactly one such list."""
    try:
        document = _loads(text)
    except RecursionError:
        raise _too_deep(None, None) from None
    except _UnsafeJSON as exc:
        raise _unsafe(exc, None) from None
    except json.JSONDecodeError as exc:
        first_line = text.lstrip().split("\n", 1)[0]
        extra = exc.msg.startswith("Extra data")
        if extra and first_line.startswith("{") and parses_as_json(first_line):
            raise DataError(
                "this looks like JSON Lines (one object per line), not one JSON document",
                hint="Rename the file to .jsonl.",
            ) from None
        raise DataError(
            f"not valid JSON ({exc.msg} at column {exc.colno})",
            line=exc.lineno,
            hint="Fix that line (a missing comma or quote is the usual cause).",
        ) from None
    rows = _rows_of_document(document)
    check_row_count(len(rows) - 1, max_rows)
    for index, row in enumerate(rows):
        if not isinstance(row, dict):
            raise DataError(
                f"row {index + 1} is {value_kind(row)}, not an object",
                line=_array_item_line(text, index),
                hint='Make every row an object like {"instruction": ..., "output": ...}.',
            )
        _check_nesting(row, lambda i=index: _array_item_line(text, i))
    return pd.DataFrame(rows)


def _rows_of_document(document: Any) -> list[Any]:
    if isinstance(document, list):
        return document
    if not isinstance(document, dict):
        message = f"the top level is {value_kind(document)}, not a list of rows"
        raise DataError(message, hint="Use a list of objects: [{...}, {...}].")
    lists = [
        value
        for value in document.values()
        if isinstance(value, list) and all(isinstance(item, dict) for item in value)
    ]
    if len(lists) != 1:
        raise DataError(
            f"the top level is an object (keys: {', '.join(list(document)[:10])}), "
            "not a list of rows",
            hint='Use a list of objects, or an object with one list like {"data": [...]}.',
        )
    return lists[0]


def _array_item_line(text: str, index: int) -> int | None:
    """1-based line where item `index` of a top-level JSON array starts (None if not a list)."""
    decoder = json.JSONDecoder()
    position = text.find("[")
    if position < 0 or text[:position].strip():
        return None
    position += 1
    for current in range(index + 1):
        while position < len(text) and text[position] in " \t\r\n,":
            position += 1
        if current == index:
            return text.count("\n", 0, position) + 1
        _, position = decoder.raw_decode(text, position)
    return None


def read_jsonl(text: str, max_rows: int) -> pd.DataFrame:
    """JSON Lines: one object per line; blank lines are skipped."""
    rows = []
    for number, line in enumerate(io.StringIO(text, newline="\n"), start=1):
        line = line.rstrip("\n")
        if not line.strip():
            continue
        try:
            row = _loads(line)
        except RecursionError:
            raise _too_deep(number, None) from None
        except _UnsafeJSON as exc:
            raise _unsafe(exc, number) from None
        except json.JSONDecodeError as exc:
            _refuse_single_document(text, number)
            message = f"not valid JSON ({exc.msg} at column {exc.colno})"
            raise DataError(message, line=number, hint="Fix that line or remove it.") from None
        if not isinstance(row, dict):
            _refuse_single_document(text, number)
            message = f"expected a JSON object, found {value_kind(row)}"
            raise DataError(message, line=number, hint='Put one object per line: {"text": ...}.')
        _check_nesting(row, lambda n=number: n)
        check_row_count(len(rows), max_rows)
        rows.append(row)
    return pd.DataFrame(rows)


def _refuse_single_document(text: str, number: int) -> None:
    """A .jsonl holding one (pretty-printed) JSON document gets a rename hint."""
    first_line = text[: len(text) - len(text.lstrip())].count("\n") + 1
    if number == first_line and text.lstrip().startswith(("[", "{")) and parses_as_json(text):
        raise DataError(
            "this is one JSON document, not JSON Lines (one object per line)",
            hint="Rename the file to .json.",
        )


def _check_nesting(row: dict, line_of_row: Callable[[], int | None]) -> None:
    for key, value in row.items():
        if _nesting(value, MAX_NESTING + 1) > MAX_NESTING:
            raise _too_deep(line_of_row(), str(key))


def _nesting(value: Any, stop: int) -> int:
    """Levels of list/dict inside `value` (a string is 0), counting no further than `stop`."""
    if stop <= 0 or not isinstance(value, (list, dict)):
        return 0
    children = value.values() if isinstance(value, dict) else value
    return 1 + max((_nesting(child, stop - 1) for child in children), default=0)


def _too_deep(line: int | None, column: str | None) -> DataError:
    return DataError(
        f"a value is nested more than {MAX_NESTING} levels deep",
        line=line,
        column=column,
        hint="Flatten it: fields should hold text, or a list of messages.",
    )
