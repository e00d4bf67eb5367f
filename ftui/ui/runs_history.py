"""The run history and the comparison of runs, as plain values for the Train tab.

    history_frame(jobs.list())            # one row per run: GPUs, losses, duration, tokens, queue
    compare_runs(jobs, [id, ...])         # overlaid loss curves and the config keys that differ

Read from the job index rows and each run's folder (metrics.jsonl, config.yaml); no gradio.
Cells of the history table and the diff are plain text in the tab (no Markdown).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd
import yaml

from ftui.runs.jobs import Jobs
from ftui.runs.rundir import RunDir
from ftui.ui.runs_view import duration_of, loss_frame
from ftui.units import format_duration

HISTORY_COLUMNS = [
    "run", "state", "gpus", "owner", "model", "method", "dataset", "steps",
    "train loss", "eval loss", "duration", "tokens", "queue",
]  # fmt: skip


# ---------------------------------------------------------------- history


def history_frame(rows: list[dict[str, Any]], now: float | None = None) -> pd.DataFrame:
    """One row per run, newest first, with its GPUs ("0,1"; "-" for none: a CPU run, or not
    started yet), final losses, duration, tokens and queue place."""
    records = [
        [
            row["id"],
            row["state"],
            row.get("gpus") or "-",
            row["owner"],
            row["model"],
            row["method"],
            row["dataset"],
            row["steps"],
            _rounded(row["train_loss"]),
            _rounded(row["eval_loss"]),
            format_duration(duration_of(row, now)),
            int(row["tokens"]) if row["tokens"] is not None else None,
            row.get("position"),
        ]
        for row in rows
    ]
    return pd.DataFrame(records, columns=HISTORY_COLUMNS, dtype=object)  # ints stay ints


def _rounded(value: float | None) -> float | None:
    return round(value, 4) if value is not None else None


def read_config_dict(run: RunDir) -> dict[str, Any]:
    """The run's config.yaml as plain data ({} when missing or unreadable)."""
    try:
        data = yaml.safe_load(run.config_path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return {}
    return data if isinstance(data, dict) else {}


def flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{'train': {'epochs': 1}} -> {'train.epochs': 1}."""
    flat: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def config_diff(configs: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """Config keys as rows, runs as columns: the keys that differ (every key for one run)."""
    flat = {run_id: flatten(config) for run_id, config in configs.items()}
    keys = list(dict.fromkeys(key for values in flat.values() for key in values))
    if len(flat) > 1:
        keys = [key for key in keys if len({repr(v.get(key)) for v in flat.values()}) > 1]
    records = [[key, *(_cell(values.get(key)) for values in flat.values())] for key in keys]
    return pd.DataFrame(records, columns=["setting", *flat])


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return yaml.safe_dump(value, default_flow_style=True).strip()
    return str(value)


# ---------------------------------------------------------------- comparison


def compare_frame(metrics_by_run: dict[str, list[dict[str, Any]]]) -> pd.DataFrame:
    """Loss curves of several runs on one plot: step, loss, curve ("<run> · train loss")."""
    frames = []
    for run_id, metrics in metrics_by_run.items():
        frame = loss_frame(metrics).dropna()
        frame["curve"] = run_id + " · " + frame.pop("series")
        frames.append(frame)
    if not frames:
        return pd.DataFrame(columns=["step", "loss", "curve"])
    return pd.concat(frames, ignore_index=True)


@dataclass
class RunsComparison:
    """Several runs side by side: their loss curves on one plot and where their configs differ."""

    note: str
    curves: pd.DataFrame  # compare_frame of the runs
    diff: pd.DataFrame  # config_diff of the runs
    names: list[str]  # the curves, in drawing order


def compare_runs(jobs: Jobs, run_ids: list[str] | None) -> RunsComparison | None:
    """Loss curves and config differences of the named runs (unknown ids are skipped)."""
    known = {row["id"] for row in jobs.list()}
    chosen = [run_id for run_id in run_ids or [] if run_id in known]
    if not chosen:
        return None
    runs = {run_id: jobs.run_dir(run_id) for run_id in chosen}
    curves = compare_frame({run_id: run.read_metrics() for run_id, run in runs.items()})
    diff = config_diff({run_id: read_config_dict(run) for run_id, run in runs.items()})
    if len(chosen) == 1:
        note = "One run: its whole config. Choose another to see what differs."
    elif diff.empty:
        note = "These runs have the same config."
    else:
        count = len(diff)
        note = f"{count} setting{'s differ' if count > 1 else ' differs'} between these runs."
    return RunsComparison(note, curves, diff, list(dict.fromkeys(curves["curve"])))
