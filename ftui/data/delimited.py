"""Text tables into rows: CSV and TSV files, and .txt files of plain documents.

    delimiter = sniff_delimiter(text, ",")        # ',', ';', tab or '|': what the file uses
    frame = read_delimited(text, delimiter, max_rows)   # a header line, then one row per line
    frame = read_documents(text, max_rows)        # blank-line-separated documents, or lines

Spreadsheets exported in many locales separate columns with semicolons (the comma is their
decimal mark), so the delimiter is sniffed: the one that splits the header into several
columns and the first rows into as many fields, the extension's own on a tie.

A header split by the other delimiter (a TSV named .csv), a column named twice, a ragged row
or a file that really holds JSON each get a DataError naming the line and the fix.
"""

from __future__ import annotations

import csv
import io
import re

import pandas as pd

from ftui.data.errors import DataError, check_row_count
from ftui.data.json_rows import parses_as_json

DELIMITER_NAMES = {",": "comma (,)", ";": "semicolon (;)", "\t": "tab", "|": "pipe (|)"}
SNIFF_CHARS = 65536  # the start of the file the delimiter is judged on
SNIFF_ROWS = 50


def sniff_delimiter(text: str, preferred: str) -> str:
    """The delimiter of DELIMITER_NAMES that fits the file best; `preferred` on a tie, and
    when none splits the header (a one-column file)."""
    sample = text[:SNIFF_CHARS]
    scores = {
        delimiter: _fit(sample, delimiter, cut=len(text) > SNIFF_CHARS)
        for delimiter in DELIMITER_NAMES
    }
    best = max(scores, key=lambda d: (scores[d][0], d == preferred, scores[d][1]))
    return best if scores[best][0] > 0 else preferred


def _fit(sample: str, delimiter: str, cut: bool) -> tuple[float, int]:
    """(share of the first rows with as many fields as the header, 0 when the delimiter does
    not split the header; the header's columns)."""
    reader = csv.reader(io.StringIO(sample, newline=""), delimiter=delimiter)
    try:
        rows = [row for _, row in zip(range(SNIFF_ROWS + 2), reader, strict=False) if row]
    except csv.Error:
        return 0.0, 0
    if cut and len(rows) > 1:
        rows = rows[:-1]  # the sample may end inside the last row
    if not rows or len(rows[0]) < 2:
        return 0.0, 0
    width, body = len(rows[0]), rows[1:]
    matching = sum(len(row) == width for row in body) / len(body) if body else 1.0
    return matching, width


def read_delimited(text: str, delimiter: str, max_rows: int) -> pd.DataFrame:
    """Delimited text (CSV, TSV, semicolons) with a header line; every value stays a string."""
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
            check_row_count(len(rows), max_rows)
            rows.append(row)
    except csv.Error as exc:
        message = f"malformed CSV ({exc})"
        raise DataError(message, line=reader.line_num, hint="Fix that line.") from None
    return pd.DataFrame(rows, columns=header, dtype=str)


def _checked_header(header: list[str], delimiter: str) -> list[str]:
    other = "\t" if delimiter == "," else ","
    if len(header) == 1 and other in header[0] and delimiter in ",\t":
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
        if parses_as_json(candidate):
            raise DataError("this file holds JSON, not CSV", hint=f"Rename it to {right}.")


def read_documents(text: str, max_rows: int) -> pd.DataFrame:
    """Documents separated by blank lines -> one row each; no blank lines -> one row per line."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    blocks = [block.strip() for block in re.split(r"\n[ \t]*\n", text.strip())]
    if len(blocks) == 1:
        blocks = [line.strip() for line in text.split("\n")]
    rows = [block for block in blocks if block]
    check_row_count(len(rows) - 1, max_rows)
    return pd.DataFrame({"text": rows}, dtype=str)
