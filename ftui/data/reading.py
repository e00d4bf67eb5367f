"""Read a dataset file (or a Hub dataset) into a pandas DataFrame, or say clearly why not.

`read_table(path)` picks the reader from the extension (CSV, TSV, JSON, JSONL, Parquet, TXT,
XLSX) and checks what users get wrong most: empty or oversized files, bytes that are not UTF-8,
a file that is not what its extension says (a PNG named .csv, JSON Lines named .json),
malformed JSON, ragged CSV rows, values nested absurdly deep. Every failure is a `DataError`
whose text names the file, the line or column, what is wrong and what to do about it.

`load_source(source)` takes what a user types: a local path, or a Hub id `owner/name[:split]`.

Reads are bounded (ftui.data.bounded): text files are already capped by their size and stop at
the row cap (FTUI_MAX_ROWS) while rows are built; Parquet files and Hub datasets, which can
decode to far more than their size, are checked against the row and memory caps as they are
read and refused before passing them.

The readers of each format live beside this module: ftui.data.json_rows (JSON, JSON Lines),
ftui.data.delimited (CSV, TSV, TXT; the delimiter is sniffed), ftui.data.spreadsheet (XLSX)
and ftui.data.bounded (Parquet, Hub datasets); ftui.data.encoding turns bytes into text
(byte-order marks included), and DataError comes from ftui.data.errors.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from ftui.data.bounded import ReadLimits, load_hub_rows, read_parquet
from ftui.data.delimited import DELIMITER_NAMES, read_delimited, read_documents, sniff_delimiter
from ftui.data.encoding import decode_text
from ftui.data.errors import DataError
from ftui.data.json_rows import read_json, read_jsonl
from ftui.data.spreadsheet import read_xlsx
from ftui.workspace import DEFAULT_MAX_UPLOAD_BYTES

SUPPORTED_EXTENSIONS = (".csv", ".tsv", ".json", ".jsonl", ".parquet", ".txt", ".xlsx")

_HUB_ID = re.compile(r"[\w.-]+/[\w.-]+(:[\w.-]+)?")


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
    """The frame, with how it was read in `frame.attrs["read_as"]` (delimiter, encoding,
    sheet) for the check report to show."""
    _check_file_basics(path, max_bytes)
    ext, limits = path.suffix.lower(), ReadLimits.from_env()
    if ext == ".parquet":
        frame = read_parquet(path, limits)
    elif ext == ".xlsx":
        frame = read_xlsx(path, limits)
    else:
        text, encoding = decode_text(path.read_bytes(), ext)  # no larger than the size cap
        read_as = {"encoding": encoding}
        if ext in (".csv", ".tsv"):
            delimiter = sniff_delimiter(text, "," if ext == ".csv" else "\t")
            frame = read_delimited(text, delimiter, limits.max_rows)
            read_as = {"delimiter": DELIMITER_NAMES[delimiter], **read_as}
        else:
            readers = {".json": read_json, ".jsonl": read_jsonl, ".txt": read_documents}
            frame = readers[ext](text, limits.max_rows)
        frame.attrs["read_as"] = read_as
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
        for root in resolved_roots:
            if candidate.is_relative_to(root) and not _hidden(candidate.relative_to(root)):
                return candidate
    raise DataError(
        "this path is outside the workspace (or in a hidden folder of it)",
        file=str(path),
        hint="Upload the file instead, or copy it into the workspace folder.",
    )


def _hidden(inside: Path) -> bool:
    """A path below a root through a hidden name (the workspace's .private holds logins)."""
    return any(part.startswith(".") for part in inside.parts)


def _load_hub_dataset(source: str) -> pd.DataFrame:

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
        hint = f"Use one of: {supported} (save older .xls sheets as .xlsx or CSV UTF-8)."
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
