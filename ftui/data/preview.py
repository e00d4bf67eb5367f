"""Everything the Data tab shows about a dataset, as plain values.

`load_preview` reads and checks a dataset once and returns a `DatasetPreview`: the check report,
the frame, normalised examples, token-length statistics with the chosen tokenizer, and the
train/validation sizes. `preview_page` and `example_segments` slice it for display. The Data
tab only lays these out; tests call them directly.

A browser session keeps only `preview.sample()` between clicks, not the whole frame: the first
SAMPLE_ROWS rows (cells cut to SAMPLE_CELL_CHARS) and the first examples within
SAMPLE_EXAMPLE_CHARS, like a Hub dataset viewer's first pages. A few hundred KB per session at
most, however large the dataset, and paging needs no re-read of the file.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ftui.data.check import CheckReport, Problem, check_dataframe
from ftui.data.errors import DataError
from ftui.data.examples import examples_from_frame, is_blank
from ftui.data.reading import load_source
from ftui.data.split import split_train_validation
from ftui.data.tokens import highlighted_tokens, length_histogram, length_summary, token_lengths
from ftui.markup import markdown_literal

STATS_ROW_LIMIT = 5000  # token statistics on a sample of at most this many rows
SAMPLE_ROWS = 200  # rows a session can page through (20 pages of 10)
SAMPLE_CELL_CHARS = 1000  # characters kept per cell; the table shows 160 anyway
SAMPLE_EXAMPLE_CHARS = 200_000  # text of the examples a session can render, all together


@dataclass
class DatasetPreview:
    source: str
    report: CheckReport
    frame: pd.DataFrame = field(repr=False)
    examples: list[dict] = field(default_factory=list, repr=False)
    lengths: list[int] = field(default_factory=list, repr=False)
    max_length: int = 1024
    validation_fraction: float = 0.1  # the share held out when no validation file is given
    train_rows: int = 0
    validation_rows: int = 0

    @property
    def ok(self) -> bool:
        return self.report.ok

    def histogram(self) -> pd.DataFrame:
        return length_histogram(self.lengths, self.max_length)

    def length_stats(self) -> dict[str, float | int]:
        return length_summary(self.lengths, self.max_length)

    def sample(self) -> PreviewSample:
        """What a browser session keeps: a bounded first part of the rows and examples."""
        rows = self.frame.iloc[:SAMPLE_ROWS].copy()
        for column in rows.columns:
            rows[column] = rows[column].map(_sample_cell)
        return PreviewSample(rows, len(self.frame), _first_examples(self.examples), self.max_length)


@dataclass(frozen=True)
class PreviewSample:
    """The first rows (cells as display text) and examples of a dataset, for paging."""

    rows: pd.DataFrame = field(repr=False)
    total_rows: int
    examples: list[dict] = field(repr=False)
    max_length: int


def _sample_cell(value: Any) -> str:
    text = _display_value(value)
    return text if len(text) <= SAMPLE_CELL_CHARS else text[: SAMPLE_CELL_CHARS - 1] + "…"


def _first_examples(examples: list[dict]) -> list[dict]:
    """The first examples, stopping once their text passes SAMPLE_EXAMPLE_CHARS (one at least)."""
    kept, size = [], 0
    for example in examples[:SAMPLE_ROWS]:
        size += len(json.dumps(example, ensure_ascii=False, default=str))
        if kept and size > SAMPLE_EXAMPLE_CHARS:
            break
        kept.append(example)
    return kept


def load_preview(
    source: str,
    *,
    tokenizer: Any | None,
    format: str = "auto",
    columns: dict[str, str] | None = None,
    max_length: int = 1024,
    validation_fraction: float = 0.1,
    seed: int = 42,
    system_prompt: str = "",
    max_bytes: int | None = None,
    allowed_roots: list[Path] | None = None,
) -> DatasetPreview:
    """Read, check and measure a dataset. Bad data gives a report with errors, never raises."""
    name = Path(source).name or source
    try:
        kwargs = {"max_bytes": max_bytes} if max_bytes else {}
        frame = load_source(source, allowed_roots=allowed_roots, **kwargs)
    except DataError as exc:
        report = CheckReport(
            file=name,
            format=None,
            confident=False,
            rows=0,
            columns={},
            problems=[_problem(str(exc))],
        )
        empty = pd.DataFrame()
        return DatasetPreview(source, report, empty, validation_fraction=validation_fraction)
    report = check_dataframe(frame, file=name, format=format, columns=columns)
    preview = DatasetPreview(
        source, report, frame, max_length=max_length, validation_fraction=validation_fraction
    )
    if report.format is None or not report.columns:
        return preview
    try:
        usable = _without_empty_rows(frame, report.columns)
        preview.examples = examples_from_frame(usable, report.format, report.columns, system_prompt)
    except DataError as exc:
        report.problems.append(_problem(str(exc)))
        return preview
    if tokenizer is not None and preview.examples:
        try:  # the model's template may not render this data (tools it drops)
            preview.lengths = token_lengths(tokenizer, preview.examples[:STATS_ROW_LIMIT])
        except DataError as exc:
            report.problems.append(_problem(str(exc)))
    train, validation = split_train_validation(frame, validation_fraction, seed)
    preview.train_rows, preview.validation_rows = len(train), len(validation)
    return preview


def _without_empty_rows(frame: pd.DataFrame, columns: dict[str, str]) -> pd.DataFrame:
    """Rows blank in every mapped column are reported by the check and left out here."""
    mapped = frame[list(dict.fromkeys(columns.values()))]
    return frame[~mapped.map(is_blank).all(axis=1)]


def _problem(message: str) -> Problem:
    return Problem(severity="error", message=message)


def preview_page(frame: pd.DataFrame, page: int, page_size: int = 10) -> tuple[pd.DataFrame, int]:
    """One page of rows for display (nested values as JSON text) and the page count."""
    pages = max(1, math.ceil(len(frame) / page_size))
    page = min(max(1, page), pages)
    rows = frame.iloc[(page - 1) * page_size : page * page_size].copy()
    for column in rows.columns:
        rows[column] = rows[column].map(_display_value)
    rows.insert(0, "#", range((page - 1) * page_size + 1, (page - 1) * page_size + len(rows) + 1))
    return rows.reset_index(drop=True), pages


def _display_value(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False)
    if hasattr(value, "tolist"):
        return json.dumps(value.tolist(), ensure_ascii=False, default=str)
    return "" if value is None else str(value)


def example_segments(
    preview: DatasetPreview | PreviewSample, tokenizer: Any, index: int
) -> list[tuple[str, str | None]]:
    """The index-th example (1-based) rendered with its trained tokens marked."""
    if not preview.examples:
        return []
    index = min(max(1, index), len(preview.examples))
    try:
        return highlighted_tokens(tokenizer, preview.examples[index - 1], preview.max_length)
    except DataError as exc:  # the template cannot render it: say why in the pane
        return [(str(exc), "error")]


def status_markdown(preview: DatasetPreview) -> str:
    """A short, readable verdict: format, rows, split, problems.

    File names, column names and values come from the user's file: they are escaped for
    Markdown and HTML (`markdown_literal`), so a hostile dataset shows as text instead of
    loading images, links or markup in the page.
    """
    report = preview.report
    lines = []
    name = markdown_literal(report.file)
    if report.format:
        sure = "" if report.confident else " (not sure: check the column mapping below)"
        uses = f" with {markdown_literal(', '.join(report.features))}" if report.features else ""
        lines.append(f"**{name}** — format **{report.format}**{uses}{sure}, {report.rows} rows")
        if report.read_as:
            read = ", ".join(f"{key}: {value}" for key, value in report.read_as.items())
            lines.append(f"Read as {markdown_literal(read)}")
        if preview.train_rows:
            lines.append(
                f"Split: {preview.train_rows} train / {preview.validation_rows} validation"
            )
    elif report.rows:  # read, but in no known layout: still say which file
        lines.append(f"**{name}** — {report.rows} rows, format not recognised")
    if preview.lengths:
        stats = preview.length_stats()
        lines.append(
            f"Tokens per example: median {stats['median']:.0f}, p95 {stats['p95']}, "
            f"max {stats['max']}; **{stats['truncated']}** rows longer than "
            f"{preview.max_length} would be truncated"
        )
    if report.empty_rows or report.duplicate_rows:
        lines.append(f"Empty rows: {report.empty_rows}, duplicate rows: {report.duplicate_rows}")
    for problem in report.problems[:20]:
        icon = "**Error:**" if problem.severity == "error" else "**Warning:**"
        where = f" (row {problem.row})" if problem.row else ""
        lines.append(f"{icon} {markdown_literal(problem.message)}{where}")
    if not report.ok:
        lines.insert(0, "### This dataset cannot be used yet")
    return "\n\n".join(lines)
