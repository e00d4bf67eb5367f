"""The estimate against ftui's own trainer (issue 11): the committed tables of
benchmarks/trainer_memory.py, recomputed here with today's estimator.

The CPU constants of ftui/estimate/memory.py were fitted on the `cpu` grid; the `heldout` grid
holds shapes outside it, and `presets` the flagship preset on its own dataset. A change to the
estimator that moves a committed estimate fails `test_the_committed_estimates_are_todays` until
`trainer_memory.py --recompute` rewrites the tables (and the README's figures are redone); one
that makes it worse fails the targets.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from trainer_memory import GRIDS, METHODS, reestimate, summary, table_path  # noqa: E402


def measured_rows(grid: str) -> list[dict]:
    table = json.loads(table_path(grid).read_text())
    return [row for row in table["rows"] if "measured_bytes" in row]


@pytest.fixture(scope="module")
def recomputed() -> dict[str, list[dict]]:
    """Every measured row with today's estimate beside the committed one."""
    tables = {}
    for grid in ("cpu", "heldout", "presets"):
        rows = measured_rows(grid)
        tables[grid] = [{**row, "today": reestimate(row)} for row in rows]
    return tables


def shape(row: dict) -> tuple:
    return (row["method"], row["batch_size"], row["tokens"], row["gradient_checkpointing"])


def errors(rows: list[dict]) -> dict:
    return summary([{**row, **row["today"]} for row in rows])


def test_on_shapes_outside_the_fit_the_estimate_is_within_10_percent_median(recomputed):
    rows = recomputed["heldout"]
    assert {shape(r) for r in rows} == set(GRIDS["heldout"]), "held-out grid not all measured"
    assert {r["method"] for r in rows} == set(METHODS)
    calibration = {(r["batch_size"], r["tokens"]) for r in recomputed["cpu"]}
    assert not {(r["batch_size"], r["tokens"]) for r in rows} & calibration
    result = errors(rows)
    assert result["median_abs_error"] <= 0.10, result
    assert result["worst_abs_error"] <= 0.20, result


def test_the_calibration_grid_is_met_too(recomputed):
    rows = recomputed["cpu"]
    assert len(rows) == len(GRIDS["cpu"])
    result = errors(rows)
    assert result["median_abs_error"] <= 0.10 and result["worst_abs_error"] <= 0.20, result


def test_a_preset_on_its_own_dataset_is_on_the_safe_side(recomputed):
    """Rows of real lengths (the flagship preset): the longest batch comes from the dataset.
    Its loss is on the answers only and TRL's head scores only labelled positions, while the
    estimate counts every position of the longest batch: high, never low, by a bounded amount."""
    (row,) = recomputed["presets"]
    assert row["preset"] == "presets/triage-lora.yaml"
    assert 0 < row["today"]["longest_row_tokens"] < row["tokens"]
    ratio = row["today"]["estimated_required_bytes"] / row["measured_bytes"]
    assert 1.0 <= ratio <= 1.30, f"estimate / measured = {ratio:.2f}"


def test_the_committed_estimates_are_todays(recomputed):
    """The tables (and the README figures made from them) show what the estimator says now."""
    for grid, rows in recomputed.items():
        stale = [
            shape(row)
            for row in rows
            if row["today"]["estimated_required_bytes"] != row["estimated_required_bytes"]
        ]
        assert not stale, f"{grid}: run benchmarks/trainer_memory.py --recompute ({stale[:3]})"
        committed = json.loads(table_path(grid).read_text())["summary"]
        assert committed == errors(rows)


def test_the_estimate_is_the_cli_s(capsys):
    """The benchmark's estimate is what `ftui estimate` prints for the same config."""
    from ftui.cli import main

    row = measured_rows("heldout")[0]
    args = [
        "estimate", "--device", "cpu", "--json",
        "--set", f"method.name={row['method']}",
        "--set", f"train.batch_size={row['batch_size']}",
        "--set", f"data.max_length={row['tokens']}",
        "--set", f"train.gradient_checkpointing={str(row['gradient_checkpointing']).lower()}",
    ]  # fmt: skip
    assert main(args) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["required_memory_bytes"] == reestimate(row)["estimated_required_bytes"]
