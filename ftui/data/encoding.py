"""Bytes of a text dataset -> text, or a DataError saying what the file really is.

    text, encoding = decode_text(data, ".csv")   # encoding: 'UTF-8', 'UTF-8 with BOM', ...

Binary files under a text extension (a PNG, a PDF, a ZIP) are named. Spreadsheet exports
(.csv, .tsv, .txt) may carry a byte-order mark: UTF-8, UTF-16 (Excel's "Unicode Text") and
UTF-32 with a BOM are read, the BOM says which. JSON is UTF-8 by its standard (RFC 8259), so
.json and .jsonl files must be UTF-8 (a UTF-8 BOM is skipped). Text without a BOM that is not
UTF-8 is refused with the byte and line, rather than guessed: a wrong guess (Windows-1252 for
a Cyrillic file) would silently garble the training text.
"""

from __future__ import annotations

import codecs

from ftui.data.errors import DataError

SPREADSHEET_TEXT = (".csv", ".tsv", ".txt")

_BINARY_SIGNATURES = (  # (leading bytes, what the file is, what to do)
    (b"\x89PNG", "a PNG image", "Upload the dataset file itself."),
    (b"%PDF", "a PDF document", "Export the table as CSV or JSON Lines."),
    (b"PK\x03\x04", "a ZIP archive (or an Excel file)", "Unzip it, or name an Excel file .xlsx."),
    (b"\xd0\xcf\x11\xe0", "an old Office/Excel file", "Save the sheet as .xlsx or CSV UTF-8."),
    (b"\x1f\x8b", "a gzip archive", "Decompress it first (gunzip)."),
    (b"PAR1", "a Parquet file", "Rename it to .parquet."),
)
# UTF-32 first: its little-endian BOM starts with UTF-16's.
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32", "UTF-32 with BOM"),
    (codecs.BOM_UTF32_BE, "utf-32", "UTF-32 with BOM"),
    (codecs.BOM_UTF8, "utf-8-sig", "UTF-8 with BOM"),
    (codecs.BOM_UTF16_LE, "utf-16", "UTF-16 with BOM"),
    (codecs.BOM_UTF16_BE, "utf-16", "UTF-16 with BOM"),
)


def decode_text(data: bytes, ext: str) -> tuple[str, str]:
    """(text, the encoding it was read in); DataError for binary or undecodable bytes."""
    for signature, kind, hint in _BINARY_SIGNATURES:
        if data.startswith(signature):
            raise DataError(f"this is {kind}, not a {ext} text file", hint=hint)
    codec, label = next(((c, name) for bom, c, name in _BOMS if data.startswith(bom)), (None, ""))
    if codec in ("utf-16", "utf-32") and ext not in SPREADSHEET_TEXT:
        message = f"file is {label.split()[0]} text, not UTF-8"
        raise DataError(message, hint="Save it again as UTF-8.")
    if codec is not None and codec != "utf-8-sig":
        text = _decode_unicode(data, codec, label)
    else:
        _refuse_nul_bytes(data, ext)
        text = _decode_utf8(data)
        label = label or "UTF-8"
    if not text.strip():
        raise DataError("file is empty (only whitespace)", hint="Add data rows.")
    return text, label


def _decode_unicode(data: bytes, codec: str, label: str) -> str:
    try:
        text = data.decode(codec)  # the BOM is consumed
    except UnicodeDecodeError as exc:
        raise DataError(
            f"the file starts with a {label.replace(' with BOM', '')} byte-order mark but byte "
            f"{exc.start} is not valid {label.split()[0]}",
            hint="Save the file again as CSV UTF-8.",
        ) from None
    if "\x00" in text[:65536]:
        line = text.count("\n", 0, text.index("\x00")) + 1
        raise DataError("binary data (a NUL character)", line=line, hint="Save it as UTF-8 text.")
    return text


def _refuse_nul_bytes(data: bytes, ext: str) -> None:
    nul = data.find(b"\x00", 0, 65536)
    if nul >= 0:
        line = data.count(b"\n", 0, nul) + 1
        message = f"binary data (a NUL byte at offset {nul}), not UTF-8 text"
        raise DataError(message, line=line, hint=f"Upload a {ext} text file saved as UTF-8.")


def _decode_utf8(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(
            f"byte 0x{data[exc.start]:02x} at offset {exc.start} is not valid UTF-8",
            line=data.count(b"\n", 0, exc.start) + 1,
            hint="Save the file as UTF-8 (it may be Latin-1/Windows-1252; in Excel choose "
            "'CSV UTF-8').",
        ) from None
