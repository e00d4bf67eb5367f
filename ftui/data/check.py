"""Check a dataset before training on it: its format, and every row's problems.

`check_file(path)` never raises for bad data: whatever is wrong ends up in the `CheckReport`
as a `Problem` (error or warning) naming the row and column. The Data tab shows the report,
and `ftui data check FILE [--json]` prints it (exit 0 when `report.ok`, else 2).
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from ftui.data.errors import DataError
from ftui.data.examples import is_blank, to_example
from ftui.data.formats import detect_format, resolve_columns
from ftui.data.layouts import FORMAT_ROLES, FORMATS
from ftui.data.reading import read_table
from ftui.workspace import DEFAULT_MAX_UPLOAD_BYTES

MAX_ROW_PROBLEMS = 50  # listed one by one; the rest are summed up in one line
MAX_ROWS_NAMED = 10  # row numbers quoted in the empty/duplicate warnings
MIN_ROWS = 2  # fewer teaches nothing and leaves none to validate on


@dataclass
class Problem:
    severity: Literal["error", "warning"]
    message: str
    row: int | None = None  # 1-based data row
    column: str | None = None

    def __str__(self) -> str:
        where = []
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.column is not None:
            where.append(f"column '{self.column}'")
        prefix = f"{', '.join(where)}: " if where else ""
        return f"{self.severity}: {prefix}{self.message}"


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
        head = f"{name}: {self.format or 'unknown format'}, {rows} — {self._verdict()}"
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
    for number, row in enumerate(df.to_dict("records"), start=1):
        if all(is_blank(row.get(column)) for column in columns.values()):
            empty.append(number)
            continue
        try:
            example = to_example(row, fmt, columns)
        except DataError as err:
            row_problems.append(Problem("error", _describe(err), number, err.column))
            continue
        row_problems.extend(_example_problems(example, fmt, columns, number))
        key = hashlib.blake2b(repr(example).encode(), digest_size=16).digest()
        if key in seen:
            duplicates.append(number)
        seen.add(key)
    report.problems.extend(_capped(row_problems))
    report.empty_rows, report.duplicate_rows = len(empty), len(duplicates)
    report.problems.extend(_row_set_problems(empty, duplicates, report.rows))


def _example_problems(example: dict, fmt: str, columns: dict[str, str], row: int) -> list[Problem]:
    """What makes a well-formed row useless for training (nothing to learn from)."""
    if fmt in ("alpaca", "prompt_completion"):
        reply_role = "output" if fmt == "alpaca" else "completion"
        prompt_role = "instruction" if fmt == "alpaca" else "prompt"
        turns = [m for m in example["messages"] if m["role"] != "system"]
        problems = []
        if not _text_of(turns, "assistant").strip():
            problems.append(Problem("error", f"{reply_role} is empty", row, columns[reply_role]))
        if not _text_of(turns, "user").strip():
            column = columns.get(prompt_role)
            problems.append(Problem("warning", f"{prompt_role} is empty", row, column))
        return problems
    if fmt in ("chat", "sharegpt"):
        return _conversation_problems(example["messages"], columns[FORMAT_ROLES[fmt][0][0]], row)
    if fmt == "preference":
        return _preference_problems(example, columns, row)
    return []


def _conversation_problems(messages: list[dict], column: str, row: int) -> list[Problem]:
    if not messages:
        return [Problem("error", "the conversation has no messages", row, column)]
    roles = [m["role"] for m in messages]
    if "assistant" not in roles:
        message = (
            f"no assistant turn (roles found: {', '.join(roles)}); add the reply the model "
            "should learn as a message with role 'assistant'"
        )
        return [Problem("error", message, row, column)]
    return [
        Problem("error", f"message {index} (assistant) is empty", row, column)
        for index, m in enumerate(messages, start=1)
        if m["role"] == "assistant" and not m["content"].strip()
    ]


def _preference_problems(example: dict, columns: dict[str, str], row: int) -> list[Problem]:
    problems = [
        Problem("error", f"{side} is empty", row, columns[side])
        for side in ("chosen", "rejected")
        if not "".join(m["content"] for m in example[side]).strip()
    ]
    if not problems and example["chosen"] == example["rejected"]:
        message = (
            "chosen and rejected are identical, so the pair teaches nothing; make the rejected "
            "answer the worse one, or remove the row"
        )
        problems.append(Problem("error", message, row))
    return problems


def _text_of(messages: list[dict], role: str) -> str:
    return "".join(m["content"] for m in messages if m["role"] == role)


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
