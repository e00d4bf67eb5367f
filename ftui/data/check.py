"""Check a dataset before training on it: its format, and every row's problems.

`check_file(path)` never raises for bad data: whatever is wrong ends up in the `CheckReport`
as a `Problem` (error or warning) naming the row and column. The Data tab shows the report,
and `ftui data check FILE [--json]` prints it (exit 0 when `report.ok`, else 2): the format,
the layout (the format and what its rows use: tools, tool calls, turn weights) and how the
file was read (a CSV's delimiter and encoding, a spreadsheet's sheet). The row checks
themselves live in `ftui.data.row_checks`.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ftui.data.errors import DataError
from ftui.data.examples import is_blank, to_example
from ftui.data.formats import detect_format, resolve_columns
from ftui.data.layouts import FORMAT_ROLES, FORMATS
from ftui.data.reading import read_table
from ftui.data.row_checks import (
    Problem,
    example_problems,
    label_balance_problem,
    label_column_problem,
)
from ftui.data.tools import uses_tools
from ftui.workspace import DEFAULT_MAX_UPLOAD_BYTES

MAX_ROW_PROBLEMS = 50  # listed one by one; the rest are summed up in one line
MAX_ROWS_NAMED = 10  # row numbers quoted in the empty/duplicate warnings
MIN_ROWS = 2  # fewer teaches nothing and leaves none to validate on


@dataclass
class CheckReport:
    file: str
    format: str | None
    confident: bool
    rows: int
    columns: dict[str, str]
    problems: list[Problem] = field(default_factory=list)
    empty_rows: int = 0
    duplicate_rows: int = 0
    reason: str = ""
    features: list[str] = field(default_factory=list)  # tools, tool calls, turn weights...
    read_as: dict[str, str] = field(default_factory=dict)  # delimiter, encoding, sheet

    @property
    def layout(self) -> str:
        """The format and what its rows use, e.g. 'chat with tools, tool calls'."""
        if self.format is None:
            return "unknown"
        return f"{self.format} with {', '.join(self.features)}" if self.features else self.format

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_dict(self) -> dict[str, Any]:
        """A plain, JSON-able dict (what `ftui data check --json` prints)."""
        return {
            "file": self.file,
            "format": self.format,
            "layout": self.layout,
            "features": list(self.features),
            "read_as": dict(self.read_as),
            "confident": self.confident,
            "rows": self.rows,
            "columns": {role: str(column) for role, column in self.columns.items()},
            "empty_rows": self.empty_rows,
            "duplicate_rows": self.duplicate_rows,
            "ok": self.ok,
            "problems": [asdict(problem) for problem in self.problems],
            "reason": self.reason,
        }

    def summary_text(self, limit: int = 20) -> str:
        """A headline (`file: format, N rows — OK`) and one line per problem."""
        name = self.file or "(data)"
        rows = f"{self.rows} row{'s' * (self.rows != 1)}"
        layout = self.layout if self.format else "unknown format"
        read = f" ({_read_as_text(self.read_as)})" if self.read_as else ""
        head = f"{name}: {layout}, {rows}{read} — {self._verdict()}"
        lines = [head, *(f"  {problem}" for problem in self.problems[:limit])]
        if len(self.problems) > limit:
            lines.append(f"  ... and {len(self.problems) - limit} more")
        return "\n".join(lines)

    def _verdict(self) -> str:
        errors, warnings = len(self.errors), len(self.warnings)
        parts = [f"{errors} error{'s' * (errors != 1)}"] if errors else ["OK"]
        if warnings:
            parts.append(f"{warnings} warning{'s' * (warnings != 1)}")
        return ", ".join(parts)


def check_file(
    path: str | Path,
    *,
    format: str = "auto",
    columns: dict[str, str] | None = None,
    max_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
) -> CheckReport:
    """Read and check a file; an unreadable file gives a report with one error, not an exception."""
    name = Path(path).name
    try:
        frame = read_table(path, max_bytes=max_bytes)
    except DataError as err:
        problem = Problem("error", str(err))  # str(err) already names file, line and column
        return CheckReport(name, None, False, 0, {}, [problem], reason=err.message)
    return check_dataframe(frame, file=name, format=format, columns=columns)


def check_dataframe(
    df: pd.DataFrame,
    *,
    file: str = "",
    format: str = "auto",
    columns: dict[str, str] | None = None,
) -> CheckReport:
    """Detect (or take) the format, map the columns and list every row's problems."""
    fmt, confident, reason = _choose_format(df, format, columns)
    report = CheckReport(file, fmt, confident, len(df), {}, reason=reason)
    report.read_as = {key: str(value) for key, value in df.attrs.get("read_as", {}).items()}
    if fmt is None:
        hint = "Pass a column mapping (e.g. instruction: question, output: answer) or a format."
        report.problems.append(Problem("error", f"{reason}. {hint}"))
        return report
    try:
        report.columns = resolve_columns(df, fmt, columns)
    except DataError as err:
        report.problems.append(Problem("error", _describe(err), column=err.column))
        return report
    if not confident:
        report.problems.append(Problem("warning", f"format guessed: {reason}"))
    labelled = label_column_problem(df, fmt, report.columns)
    if labelled is not None:
        report.problems.append(labelled)
    try:
        _check_rows(df, report)
    except Exception as exc:  # a checker bug must still give a report, not a traceback
        message = f"could not check the rows ({type(exc).__name__}: {exc})"
        report.problems.append(Problem("error", message))
    return report


def _choose_format(
    df: pd.DataFrame, format: str, columns: dict[str, str] | None
) -> tuple[str | None, bool, str]:
    if format != "auto":
        return format, True, f"format {format} chosen"
    detection = detect_format(df)
    given = {role for role, column in (columns or {}).items() if column}
    if given and detection.format is not None:
        fits = given <= set(sum(FORMAT_ROLES[detection.format], ()))
        if fits:
            return detection.format, True, f"{detection.reason}; mapping given"
    if given:
        for fmt in FORMATS:
            if set(FORMAT_ROLES[fmt][0]) <= given:
                return fmt, True, f"format {fmt} implied by the column mapping"
    return detection.format, detection.confident, detection.reason


def _check_rows(df: pd.DataFrame, report: CheckReport) -> None:
    fmt, columns = report.format, report.columns
    row_problems: list[Problem] = []
    empty: list[int] = []
    duplicates: list[int] = []
    seen: set[bytes] = set()
    labels: Counter = Counter()
    features: set[str] = set()
    for number, row in enumerate(df.to_dict("records"), start=1):
        if all(is_blank(row.get(column)) for column in columns.values()):
            empty.append(number)
            continue
        try:
            example = to_example(row, fmt, columns)
        except DataError as err:
            row_problems.append(Problem("error", _describe(err), number, err.column))
            continue
        row_problems.extend(example_problems(example, fmt, columns, number))
        features |= example_features(example)
        if fmt == "kto":
            labels[example["label"]] += 1
        key = hashlib.blake2b(repr(example).encode(), digest_size=16).digest()
        if key in seen:
            duplicates.append(number)
        seen.add(key)
    report.problems.extend(_capped(row_problems))
    report.empty_rows, report.duplicate_rows = len(empty), len(duplicates)
    report.problems.extend(_row_set_problems(empty, duplicates, report.rows))
    balance = label_balance_problem(labels) if fmt == "kto" else None
    report.problems.extend([balance] if balance else [])
    report.features = [name for name in FEATURES if name in features]


FEATURES = ("tools", "tool calls", "tool results", "turn weights")


def example_features(example: dict) -> set[str]:
    """Which of FEATURES a normalised example uses."""
    offers, calls = uses_tools(example)
    messages = [m for key in ("messages", "prompt", "completion") for m in example.get(key, [])]
    found = {"tools"} if offers else set()
    found |= {"tool calls"} if calls else set()
    found |= {"tool results"} if any(m["role"] == "tool" for m in messages) else set()
    found |= {"turn weights"} if any("weight" in m for m in messages) else set()
    return found


def _read_as_text(read_as: dict[str, str]) -> str:
    return ", ".join(f"{key} {value}" for key, value in read_as.items())


def _capped(problems: list[Problem]) -> list[Problem]:
    if len(problems) <= MAX_ROW_PROBLEMS:
        return problems
    rest = problems[MAX_ROW_PROBLEMS:]
    severity = "error" if any(p.severity == "error" for p in rest) else "warning"
    rows = len({p.row for p in rest} - {p.row for p in problems[:MAX_ROW_PROBLEMS]})
    summary = f"... and {len(rest)} more problems ({rows} more rows)"
    return [*problems[:MAX_ROW_PROBLEMS], Problem(severity, summary)]


def _row_set_problems(empty: list[int], duplicates: list[int], total: int) -> list[Problem]:
    problems = []
    if empty and len(empty) == total:
        problems.append(Problem("error", "every row is empty in the mapped columns"))
    elif total - len(empty) < MIN_ROWS:
        message = (
            f"only {total - len(empty)} usable row: too few to learn from, and none is left "
            "for validation; add more examples (dozens at least)"
        )
        problems.append(Problem("warning", message))
    elif empty:
        message = f"{len(empty)} empty rows (skipped in training): rows {_row_list(empty)}"
        problems.append(Problem("warning", message))
    if duplicates:
        message = f"{len(duplicates)} exact duplicate rows: rows {_row_list(duplicates)}"
        problems.append(Problem("warning", message))
    return problems


def _row_list(rows: list[int]) -> str:
    shown = ", ".join(map(str, rows[:MAX_ROWS_NAMED]))
    return shown + (f" and {len(rows) - MAX_ROWS_NAMED} more" if len(rows) > MAX_ROWS_NAMED else "")


def _describe(err: DataError) -> str:
    return f"{err.message.rstrip('.')}. {err.hint}" if err.hint else err.message
