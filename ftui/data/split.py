"""Split a dataset into train and validation parts, the same way for the same seed."""

from __future__ import annotations

import numpy as np
import pandas as pd


def split_train_validation(
    df: pd.DataFrame, fraction: float, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Hold out `fraction` of the rows, chosen by a seeded shuffle; always keep one train row.

    Both parts keep the file's row order (the trainer shuffles), with fresh 0-based indexes.
    """
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"validation fraction must be in [0, 1), got {fraction}")
    rows = len(df)
    held_out = 0
    if fraction > 0 and rows > 1:
        held_out = min(max(1, round(rows * fraction)), rows - 1)
    order = np.random.default_rng(seed).permutation(rows)
    validation = np.sort(order[:held_out])
    train = np.sort(order[held_out:])
    return df.iloc[train].reset_index(drop=True), df.iloc[validation].reset_index(drop=True)
