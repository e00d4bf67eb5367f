"""Read a dataset file (or a Hub dataset) into a pandas DataFrame, or say clearly why not.

`read_table(path)` picks the reader from the extension (CSV, TSV, JSON, JSONL, Parquet, TXT)
and checks what users get wrong most: empty or oversized files, bytes that are not UTF-8,
a file that is not what its extension says (a PNG named .csv, JSON Lines named .json),
malformed JSON, ragged CSV rows, values nested absurdly deep. Every failure is a `DataError`
whose text names the file, the line or column, what is wrong and what to do about it.

`load_source(source)` takes what a user types: a local path, or a Hub id `owner/name[:split]`.

Reads are bounded (ftui.data.bounded): text files are already capped by their size and stop at
the row cap (FTUI_MAX_ROWS) while rows are built; Parquet files and Hub datasets, which can
decode to far more than their size, are checked against the row and memory caps as they are
read and refused before passing them.
"""

from __future__ import annotations

import csv
import io
import json
import numbers
import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from ftui.workspace import DEFAULT_MAX_UPLOAD_BYTES

SUPPORTED_EXTENSIONS = (".csv", ".tsv", ".json", ".jsonl", ".parquet", ".txt")
MAX_NESTING = 8  # levels of list/dict inside one value; real datasets need 2 or 3
MAX_INT_DIGITS = 100  # a longer number is an attack or a mistake, never a dataset value

_BINARY_SIGNATURES = (  # (leading bytes, what the file is, what to do)
    (b"\x89PNG", "a PNG image", "Upload the dataset file itself."),
    (b"%PDF", "a PDF document", "Export the table as CSV or JSON Lines."),
    (b"PK\x03\x04", "a ZIP archive (or an Excel file)", "Unzip it, or save the sheet as CSV."),
    (b"\xd0\xcf\x11\xe0", "an old Office/Excel file", "Save the sheet as CSV (UTF-8)."),
    (b"\x1f\x8b", "a gzip archive", "Decompress it first (gunzip)."),
    (b"PAR1", "a Parquet file", "Rename it to .parquet."),
)
_HUB_ID = re.compile(r"[\w.-]+/[\w.-]+(:[\w.-]+)?")


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


def read_table(path: str | Path, *, max_bytes: int = DEFAULT_MAX_UPLOAD_BYTES) -> pd.DataFrame:
    """Read a CSV/TSV/JSON/JSONL/Parquet/TXT file into a DataFrame; raise DataError if unusable."""
    path = Path(path)
    try:
        frame = _read_checked(path, max_bytes)
    except DataError as err:
        err.file = err.file or str(path)
        raise
    except Exception as exc:  # a parser bug or an odd file must not surface as a traceback
        raise DataError(
            f"could not read the file ({type(exc).__name__}: {exc})",
            file=str(path),
            hint="Check that it is a valid file of its type, or save it again as JSON Lines.",
        ) from exc
    return frame


def _read_checked(path: Path, max_bytes: int) -> pd.DataFrame:
    from ftui.data.bounded import ReadLimits, read_parquet

    _check_file_basics(path, max_bytes)
    ext, limits = path.suffix.lower(), ReadLimits.from_env()
    if ext == ".parquet":
        frame = read_parquet(path, limits)
    else:
        text = _decode(path.read_bytes(), ext)  # no larger than the file-size cap
        if ext in (".csv", ".tsv"):
            frame = _read_delimited(text, "," if ext == ".csv" else "\t", limits.max_rows)
        else:
            readers = {".json": _read_json, ".jsonl": _read_jsonl, ".txt": _read_txt}
            frame = readers[ext](text, limits.max_rows)
    if len(frame) == 0:
        raise DataError("no data rows", hint="Add at least one row below the header.")
    if len(frame.columns) == 0:
        raise DataError("no columns found", hint="Give rows at least one field.")
    return frame


def load_source(
    source: str,
    *,
    max_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
    allowed_roots: Sequence[Path] | None = None,
) -> pd.DataFrame:
    """Read a local file, or load a Hub dataset `owner/name[:split]`; raise DataError if unusable.

    With `allowed_roots`, a path must resolve inside one of them (relative paths are looked up
    in each root in turn).
    """
    source = source.strip()
    if not source:
        raise DataError("no data source given", hint="Upload a file or give a path or Hub id.")
    if not _looks_like_path(source):
        return _load_hub_dataset(source)
    path = Path(source).expanduser()
    if allowed_roots is not None:
        path = _inside_roots(path, allowed_roots)
    return read_table(path, max_bytes=max_bytes)


def _looks_like_path(source: str) -> bool:
    if Path(source).expanduser().exists() or source.lower().endswith(SUPPORTED_EXTENSIONS):
        return True
    if source.startswith((".", "/", "~")) or (os.altsep and os.altsep in source):
        return True
    return os.sep in source and not _HUB_ID.fullmatch(source)


def _inside_roots(path: Path, roots: Sequence[Path]) -> Path:
    resolved_roots = [Path(root).resolve() for root in roots]
    if path.is_absolute():
        candidates = [path.resolve()]
    else:
        candidates = [(root / path).resolve() for root in resolved_roots]
        candidates = [c for c in candidates if c.exists()] or candidates[:1]
    for candidate in candidates:
        if any(root == candidate or root in candidate.parents for root in resolved_roots):
            return candidate
    raise DataError(
        "this path is outside the workspace",
        file=str(path),
        hint="Upload the file instead, or copy it into the workspace folder.",
    )


def _load_hub_dataset(source: str) -> pd.DataFrame:
    from ftui.data.bounded import ReadLimits, load_hub_rows

    name, _, split = source.partition(":")
    try:
        frame = load_hub_rows(name, split or "train", ReadLimits.from_env())
    except DataError:
        raise
    except Exception as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(
            f"could not load Hub dataset {name!r}: {reason[:300]} — check the id, your "
            "network, or download it and upload the file"
        ) from exc
    if len(frame) == 0:
        raise DataError(f"Hub dataset {name!r} split {split or 'train'!r} has no rows")
    return frame


def _check_file_basics(path: Path, max_bytes: int) -> None:
    if not path.exists():
        raise DataError("file not found", hint="Check the path, or upload the file.")
    if path.is_dir():
        raise DataError("this is a folder, not a file", hint="Pick one data file.")
    ext = path.suffix.lower()
    if ext not in SUPPORTED_EXTENSIONS:
        supported = ", ".join(SUPPORTED_EXTENSIONS)
        hint = f"Use one of: {supported} (save spreadsheets as .csv)."
        raise DataError(f"unsupported file type '{ext or '(none)'}'", hint=hint)
    size = path.stat().st_size
    if size > max_bytes:
        raise DataError(
            f"file is {_megabytes(size)} ({size:,} bytes), over the {_megabytes(max_bytes)} "
            f"limit ({max_bytes:,} bytes)",
            hint="Split it into smaller files, or sample fewer rows.",
        )
    if size == 0:
        raise DataError("file is empty (0 bytes)", hint="Upload a file with rows.")


def _megabytes(size: int) -> str:
    megabytes = size / (1024 * 1024)
    return f"{megabytes:.1f} MB" if megabytes >= 0.1 else f"{megabytes:.2g} MB"


def _decode(data: bytes, ext: str) -> str:
    """Bytes -> text, refusing binary files and non-UTF-8 encodings with a precise message."""
    for signature, kind, hint in _BINARY_SIGNATURES:
        if data.startswith(signature):
            raise DataError(f"this is {kind}, not a {ext} text file", hint=hint)
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise DataError("file is UTF-16 text, not UTF-8", hint="Save it again as UTF-8.")
    nul = data.find(b"\x00", 0, 65536)
    if nul >= 0:
        line = data.count(b"\n", 0, nul) + 1
        message = f"binary data (a NUL byte at offset {nul}), not UTF-8 text"
        raise DataError(message, line=line, hint=f"Upload a {ext} text file saved as UTF-8.")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(
            f"byte 0x{data[exc.start]:02x} at offset {exc.start} is not valid UTF-8",
            line=data.count(b"\n", 0, exc.start) + 1,
            hint="Save the file as UTF-8 (it may be Latin-1/Windows-1252; in Excel choose "
            "'CSV UTF-8').",
        ) from None
    if not text.strip():
        raise DataError("file is empty (only whitespace)", hint="Add data rows.")
    return text


def _read_delimited(text: str, delimiter: str, max_rows: int) -> pd.DataFrame:
    _refuse_json_text(text)
    # Long text fields (whole documents) exceed csv's default 128 KB field limit.
    csv.field_size_limit(max(csv.field_size_limit(), len(text) + 1))
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    rows = []
    try:
        header = _checked_header(next(reader), delimiter)
        for row in filter(None, reader):  # skips blank lines
            if len(row) != len(header):
                raise DataError(
                    f"row has {len(row)} fields but the header has {len(header)}",
                    line=reader.line_num,
                    hint="Quote fields that contain the delimiter, or fix that line.",
                )
            _check_row_count(len(rows), max_rows)
            rows.append(row)
    except csv.Error as exc:
        message = f"malformed CSV ({exc})"
        raise DataError(message, line=reader.line_num, hint="Fix that line.") from None
    return pd.DataFrame(rows, columns=header, dtype=str)


def _checked_header(header: list[str], delimiter: str) -> list[str]:
    other = "\t" if delimiter == "," else ","
    if len(header) == 1 and other in header[0]:
        right, found = (".tsv", "tabs") if other == "\t" else (".csv", "commas")
        message = f"the header has no '{delimiter}' delimiters but has {found}"
        raise DataError(message, line=1, hint=f"Rename the file to {right}.")
    names = [column.strip() or f"unnamed_{i}" for i, column in enumerate(header)]
    twice = next((name for i, name in enumerate(names) if name in names[:i]), None)
    if twice is not None:
        message = f"column '{twice}' appears twice in the header"
        raise DataError(message, line=1, hint="Give each column a unique name.")
    return names


def _refuse_json_text(text: str) -> None:
    """A .csv/.tsv that actually holds JSON gets a rename hint instead of a confusing parse."""
    stripped = text.lstrip()
    if not stripped.startswith(("{", "[")):
        return
    for candidate, right in ((stripped.split("\n", 1)[0], ".jsonl"), (stripped, ".json")):
        if _parses(candidate):
            raise DataError("this file holds JSON, not CSV", hint=f"Rename it to {right}.")


def _parses(text: str) -> bool:
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


def _check_row_count(rows_so_far: int, max_rows: int) -> None:
    """Called before adding a row: refuses the one past the row cap."""
    if rows_so_far >= max_rows:
        raise DataError(
            f"more than {max_rows:,} rows, over this server's row limit",
            hint="Use a sample of fewer rows, or ask the admin to raise FTUI_MAX_ROWS.",
        )


def _read_json(text: str, max_rows: int) -> pd.DataFrame:
    try:
        document = _loads(text)
    except RecursionError:
        raise _too_deep(None, None) from None
    except _UnsafeJSON as exc:
        raise _unsafe(exc, None) from None
    except json.JSONDecodeError as exc:
        first_line = text.lstrip().split("\n", 1)[0]
        if exc.msg.startswith("Extra data") and first_line.startswith("{") and _parses(first_line):
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
    _check_row_count(len(rows) - 1, max_rows)
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


def _read_jsonl(text: str, max_rows: int) -> pd.DataFrame:
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
        _check_row_count(len(rows), max_rows)
        rows.append(row)
    return pd.DataFrame(rows)


def _refuse_single_document(text: str, number: int) -> None:
    """A .jsonl holding one (pretty-printed) JSON document gets a rename hint."""
    first_line = text[: len(text) - len(text.lstrip())].count("\n") + 1
    if number == first_line and text.lstrip().startswith(("[", "{")) and _parses(text):
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


def _read_txt(text: str, max_rows: int) -> pd.DataFrame:
    """Documents separated by blank lines -> one row each; no blank lines -> one row per line."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    blocks = [block.strip() for block in re.split(r"\n[ \t]*\n", text.strip())]
    if len(blocks) == 1:
        blocks = [line.strip() for line in text.split("\n")]
    rows = [block for block in blocks if block]
    _check_row_count(len(rows) - 1, max_rows)
    return pd.DataFrame({"text": rows}, dtype=str)
