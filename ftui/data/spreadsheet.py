"""Excel workbooks (.xlsx) into rows: the first sheet, its first row as the header.

    frame = read_xlsx(path, ReadLimits.from_env())
    frame.attrs["read_as"]    # {"sheet": "'Tickets' (the first of 3)"}

An .xlsx file is a ZIP of XML parts, and a small one can unpack to gigabytes, so the parts'
unpacked sizes are summed from the ZIP directory first and the file is refused over this
server's memory cap (FTUI_MAX_DATA_MB); rows are streamed (openpyxl's read-only mode) and
stop at the row cap. Cells keep their types (text, numbers, TRUE/FALSE); formulas give the
value Excel last computed. Empty trailing rows and columns are dropped.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import pandas as pd

from ftui.data.bounded import ReadLimits
from ftui.data.errors import DataError, check_row_count


def read_xlsx(path: Path, limits: ReadLimits) -> pd.DataFrame:
    """The first sheet of a workbook as a DataFrame; DataError when it cannot be read."""
    _check_unpacked_size(path, limits)
    from openpyxl import load_workbook

    try:
        workbook = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # a ZIP that is not a workbook, or a damaged one
        raise DataError(
            f"could not open the workbook ({type(exc).__name__}: {str(exc)[:200]})",
            hint="Save it again from Excel as .xlsx, or as CSV UTF-8.",
        ) from None
    try:
        sheet = workbook.worksheets[0]
        rows = _sheet_rows(sheet.iter_rows(values_only=True), limits.max_rows)
        count = len(workbook.worksheets)
    finally:
        workbook.close()
    if not rows:
        raise DataError("the first sheet is empty", hint="Put a header row and data rows in it.")
    header = _header(rows[0])
    frame = pd.DataFrame([row[: len(header)] for row in rows[1:]], columns=header)
    which = f"'{sheet.title}'" + (f" (the first of {count})" if count > 1 else "")
    frame.attrs["read_as"] = {"sheet": which}
    return frame


def _check_unpacked_size(path: Path, limits: ReadLimits) -> None:
    try:
        with zipfile.ZipFile(path) as archive:
            unpacked = sum(info.file_size for info in archive.infolist())
    except zipfile.BadZipFile:
        raise DataError(
            "this is not an .xlsx workbook (not a ZIP archive)",
            hint="Save it again from Excel as .xlsx, or as CSV UTF-8.",
        ) from None
    if unpacked > limits.max_bytes:
        raise DataError(
            f"the workbook unpacks to {unpacked >> 20} MB, over this server's "
            f"{limits.max_bytes >> 20} MB limit",
            hint="Save the sheet as CSV, or use fewer rows.",
        )


def _sheet_rows(values: Any, max_rows: int) -> list[list[Any]]:
    """Non-empty rows as lists of cell values, header first, trailing empty columns cut."""
    rows: list[list[Any]] = []
    for row in values:
        cells = [_cell(value) for value in row]
        if all(cell is None for cell in cells):
            continue
        if rows:
            check_row_count(len(rows) - 1, max_rows)
        rows.append(cells)
    if not rows:
        return []
    width = max(max((i + 1 for i, c in enumerate(r) if c is not None), default=0) for r in rows)
    return [(row + [None] * width)[:width] for row in rows]


def _cell(value: Any) -> Any:
    """Text, numbers and booleans as they are; dates and times as text; blank text is empty."""
    if value is None or isinstance(value, (bool, int, float)):
        return value
    text = str(value)
    return text if text.strip() else None


def _header(cells: list[Any]) -> list[str]:
    names = [
        str(cell).strip() if cell is not None else f"unnamed_{i}" for i, cell in enumerate(cells)
    ]
    twice = next((name for i, name in enumerate(names) if name in names[:i]), None)
    if twice is not None:
        raise DataError(
            f"column '{twice}' appears twice in the header row",
            line=1,
            hint="Give each column a unique name.",
        )
    return names
