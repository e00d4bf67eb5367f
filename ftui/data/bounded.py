"""Reads that stop at the caps: no dataset may hold more rows or memory than the server allows.

A Parquet file of a few MB can decode to many GB (one long string repeated, dictionary-encoded:
the file stores it once), and a Hub id can name a dataset of billions of rows. So:

- `read_parquet` checks the file's metadata first (rows, and every column chunk's decoded size
  where the metadata says it), then reads batch by batch with text kept dictionary-encoded,
  counting the bytes the text would take once decoded, and refuses the file as soon as a cap
  is passed: nothing over the cap is ever built.
- `load_hub_rows` streams a Hub dataset (`datasets.load_dataset(..., streaming=True)`) and stops
  at the same caps. No token is passed: the web process's implicit token is switched off by
  `ftui serve` (see ftui.server.hub_auth).

The caps come from the environment (`ReadLimits.from_env`): FTUI_MAX_ROWS (default 1,000,000)
and FTUI_MAX_DATA_MB, the memory one dataset may take once read (default 1024 MB).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from ftui.data.errors import DataError

DEFAULT_MAX_ROWS = 1_000_000
DEFAULT_MAX_DATA_MB = 1024
BATCH_ROWS = 4096  # rows decoded at a time from Parquet
_FIXED_WIDTH = {"BOOLEAN": 1, "INT32": 4, "FLOAT": 4, "INT64": 8, "DOUBLE": 8, "INT96": 12}
_OFFSET_BYTES = 8  # what each text value costs besides its characters (offsets, indices)


@dataclass(frozen=True)
class ReadLimits:
    max_rows: int = DEFAULT_MAX_ROWS
    max_bytes: int = DEFAULT_MAX_DATA_MB * 1024 * 1024

    @classmethod
    def from_env(cls) -> ReadLimits:
        """FTUI_MAX_ROWS and FTUI_MAX_DATA_MB, or the defaults; a bad value says which."""
        return cls(
            max_rows=_positive_int("FTUI_MAX_ROWS", DEFAULT_MAX_ROWS),
            max_bytes=_positive_int("FTUI_MAX_DATA_MB", DEFAULT_MAX_DATA_MB) * 1024 * 1024,
        )

    def too_many_rows(self, rows: int | str) -> DataError:
        return DataError(
            f"more than {self.max_rows:,} rows ({rows} here), over this server's row limit",
            hint="Use a sample of fewer rows, or ask the admin to raise FTUI_MAX_ROWS.",
        )

    def too_large(self, size: str) -> DataError:
        cap = self.max_bytes / (1024 * 1024)
        return DataError(
            f"the data would take {size} in memory once read, over this server's "
            f"{cap:,.0f} MB limit",
            hint="Use fewer or shorter rows, or ask the admin to raise FTUI_MAX_DATA_MB.",
        )


def _positive_int(name: str, default: int) -> int:
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    if not text.isdigit() or int(text) < 1:
        raise DataError(f"{name}={text!r} is not a whole number above 0", hint="Fix the setting.")
    return int(text)


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):,.0f} MB" if size >= 1024 * 1024 else f"{size:,} bytes"


# ---------------------------------------------------------------- Parquet


def read_parquet(path: Path, limits: ReadLimits) -> pd.DataFrame:
    """A Parquet file as a DataFrame, refused (DataError) before it passes a cap."""
    _check_signature(path)
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        metadata = pq.read_metadata(path)
        fixed_bytes, text_columns = _metadata_checks(metadata, limits)
        parquet = pq.ParquetFile(path, read_dictionary=text_columns)
        batches = _bounded_batches(parquet, fixed_bytes, limits)
        table = pa.Table.from_batches(batches, schema=parquet.schema_arrow)
        return table.cast(_plain_schema(pq.read_schema(path))).to_pandas()  # fits the cap
    except (pa.ArrowException, OSError) as exc:
        raise DataError(f"damaged Parquet file ({exc})", hint="Export it again.") from exc


def _plain_schema(schema: Any) -> Any:
    """The file's schema with dictionary columns as their values (text, not pandas categories)."""
    import pyarrow as pa

    fields = [
        field.with_type(field.type.value_type) if pa.types.is_dictionary(field.type) else field
        for field in schema
    ]
    return pa.schema(fields, metadata=schema.metadata)


def _check_signature(path: Path) -> None:
    with open(path, "rb") as handle:
        head = handle.read(4)
        handle.seek(-4, os.SEEK_END)
        tail = handle.read(4)
    if head != b"PAR1" or tail != b"PAR1":
        raise DataError(
            "not a Parquet file (the 'PAR1' signature is missing)",
            hint="If it is CSV or JSON text, rename it; otherwise export it again as Parquet.",
        )


def _metadata_checks(metadata: Any, limits: ReadLimits) -> tuple[int, list[str]]:
    """Refuse by the footer alone where it can tell (rows; pages too large once decompressed;
    values too many once decoded); return the decoded bytes of everything but the text's
    characters, and the text columns to keep dictionary-encoded."""
    if metadata.num_rows > limits.max_rows:
        raise limits.too_many_rows(f"{metadata.num_rows:,}")
    schema = metadata.schema
    columns = [schema.column(index) for index in range(metadata.num_columns)]
    text_columns = [c.path for c in columns if c.physical_type == "BYTE_ARRAY"]
    pages, decoded = 0, 0
    for group in range(metadata.num_row_groups):
        row_group = metadata.row_group(group)
        for index, column in enumerate(columns):
            chunk = row_group.column(index)
            width = _FIXED_WIDTH.get(column.physical_type, column.length or _OFFSET_BYTES)
            if column.physical_type == "BYTE_ARRAY":
                width = _OFFSET_BYTES  # the characters are counted while reading
            pages += chunk.total_uncompressed_size
            decoded += chunk.num_values * width
        if max(pages, decoded) > limits.max_bytes:
            raise limits.too_large(f"over {_megabytes(max(pages, decoded))}")
    return decoded, text_columns


def _bounded_batches(parquet: Any, fixed_bytes: int, limits: ReadLimits) -> list:
    """Record batches with text still dictionary-encoded, refused once decoded text would
    pass the memory cap (the text's characters are counted before they are ever decoded)."""
    batches, text_bytes = [], 0
    for batch in parquet.iter_batches(batch_size=BATCH_ROWS):
        text_bytes += sum(_text_bytes(column) for column in batch.columns)
        if fixed_bytes + text_bytes > limits.max_bytes:
            raise limits.too_large(f"over {_megabytes(fixed_bytes + text_bytes)}")
        batches.append(batch)
    return batches


def _text_bytes(array: Any) -> int:
    """Characters the text inside an Arrow array takes once decoded (0 for other values,
    which the metadata check counted)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    kind = array.type
    if pa.types.is_dictionary(kind):
        value = kind.value_type
        if not (pa.types.is_string(value) or pa.types.is_binary(value)):
            return 0
        lengths = pc.take(pc.binary_length(array.dictionary), array.indices)
        return int(pc.sum(lengths).as_py() or 0)
    if pa.types.is_map(kind):
        return _text_bytes(array.keys) + _text_bytes(array.items)
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        return _text_bytes(array.flatten())
    if pa.types.is_fixed_size_list(kind):
        return _text_bytes(array.flatten())
    if pa.types.is_struct(kind):
        return sum(_text_bytes(field) for field in array.flatten())
    if pa.types.is_string(kind) or pa.types.is_binary(kind):
        return int(pc.sum(pc.binary_length(array)).as_py() or 0)
    return 0


# ---------------------------------------------------------------- Hub


def load_hub_rows(name: str, split: str, limits: ReadLimits) -> pd.DataFrame:
    """Stream a Hub dataset's split and keep its rows, refusing it at the caps."""
    import datasets  # imported here: slow to import and only needed for Hub ids

    stream = datasets.load_dataset(name, split=split, streaming=True)
    rows: list[dict] = []
    size = 0
    for row in stream:
        if len(rows) >= limits.max_rows:
            raise limits.too_many_rows(f"{name} {split} has more")
        size += len(json.dumps(row, ensure_ascii=False, default=str))
        if size > limits.max_bytes:
            raise limits.too_large(f"over {_megabytes(size)} after {len(rows):,} rows")
        rows.append(row)
    return pd.DataFrame(rows)
