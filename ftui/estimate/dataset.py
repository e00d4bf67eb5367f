"""How much a config's own dataset trains on: rows and tokens per epoch, for steps and time.

The dataset is read and measured the way the Data tab does it (`ftui.data.preview`): its
training rows after the validation split, and token lengths through the model's tokenizer and
chat template on a sample of at most STATS_ROW_LIMIT rows, each capped at the max length (longer
examples are truncated when training).

    size = measure_dataset(config)
    # DatasetSize(rows=270, mean_tokens=153.0, tokens=41_310, longest_tokens=412)
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass
from typing import Any

from ftui.config import FtuiConfig


@dataclass(frozen=True)
class DatasetSize:
    source: str
    rows: int  # training rows, after the validation split
    mean_tokens: float  # per example, each capped at the max length
    tokens: int  # in one epoch: rows x mean tokens
    longest_tokens: int  # the longest example (of the sample), at most the max length

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        return (
            f"dataset {self.source}: {self.rows:,} training rows x {self.mean_tokens:,.0f} "
            f"tokens (mean, at most the max length; longest {self.longest_tokens:,}) = "
            f"{self.tokens:,} tokens per epoch"
        )


def measure_dataset(config: FtuiConfig) -> DatasetSize:
    """Rows and tokens of config.data.path; a ValueError says what is wrong with the data."""
    from ftui.data.preview import load_preview
    from ftui.models import load_tokenizer

    data = config.data
    preview = load_preview(
        data.path,
        tokenizer=load_tokenizer(config.model.name_or_path, config.model.trust_remote_code),
        format=data.format,
        columns=data.columns or None,
        max_length=data.max_length,
        validation_fraction=0.0 if data.validation_path else data.validation_fraction,
        seed=data.seed,
        system_prompt=data.system_prompt,
    )
    errors = [str(problem) for problem in preview.report.problems if problem.severity == "error"]
    if errors or not preview.lengths:
        reason = errors[0] if errors else "no usable examples"
        raise ValueError(f"data.path {data.path}: {reason}; check it with `ftui data check`")
    lengths = [min(length, data.max_length) for length in preview.lengths]
    mean = statistics.fmean(lengths)
    rows = preview.train_rows
    return DatasetSize(data.path, rows, round(mean, 1), int(rows * mean), max(lengths))
