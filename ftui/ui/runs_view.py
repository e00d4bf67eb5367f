"""What the Train tab shows about runs, as plain values: plot frames, progress, actions.

Everything is read from the run folder (status.json, metrics.jsonl, train.log) and the job
index rows (`Jobs.list()`), so a reloaded page or a restarted server shows a run exactly as
far as it got. No gradio here: the tab module turns these values into components. The
history table and the comparison of runs live in `ftui.ui.runs_history`.

    now = snapshot(jobs, run_id)            # the job list, the run to watch, change marks
    view = read_run_view(row, run)          # one run: curves, progress, log, error, actions
    act_on_run(jobs, "cancel", id, user)    # cancel / resume / delete, said in a sentence

Run names, owners, model ids, dataset paths, ids typed into the run box and error messages are
other users' text: what goes into Markdown passes through `markdown_literal` (a run named
`![x](/logout)` must not log out every teammate who opens the Train tab); tables, dropdown
labels, the error box and the log are plain-text components already.
"""

from __future__ import annotations

import html
import time
from dataclasses import dataclass
from typing import Any

import pandas as pd

from ftui.markup import markdown_literal
from ftui.runs.jobs import JobError, Jobs
from ftui.runs.rundir import FINISHED, RunDir
from ftui.server.auth import User, can_act
from ftui.server.hub_auth import web_may_use_server_token
from ftui.units import format_duration

ACTIVE = ("queued", "running")
LOG_LINES = 20
TRAIN_SERIES = "train loss"
EVAL_SERIES = "eval loss"


# ---------------------------------------------------------------- curves


def loss_frame(metrics: list[dict[str, Any]]) -> pd.DataFrame:
    """Training and eval loss against step, long format: step, loss, series.

    A series with no point yet gets one row with a NaN loss (drawn as nothing): Gradio fixes
    a plot's colours and legend when it first draws it, so both series must be there from
    the start for the eval curve to show up later with its own colour.
    """
    rows = [(m["step"], m["loss"], TRAIN_SERIES) for m in metrics if _has(m, "loss")]
    rows += [(m["step"], m["eval_loss"], EVAL_SERIES) for m in metrics if _has(m, "eval_loss")]
    first = min((row[0] for row in rows), default=0)
    for series in (TRAIN_SERIES, EVAL_SERIES):
        if all(row[2] != series for row in rows):
            rows.append((first, float("nan"), series))
    return pd.DataFrame(rows, columns=["step", "loss", "series"])


def metric_frame(metrics: list[dict[str, Any]], key: str, scale: float = 1.0) -> pd.DataFrame:
    """One logged value against step (training log lines only): step, value."""
    rows = [(m["step"], m[key] * scale) for m in metrics if _has(m, key) and _has(m, "loss")]
    # numeric even when empty: Gradio picks the axis types from the first data it draws
    return pd.DataFrame(rows, columns=["step", "value"]).astype({"step": int, "value": float})


def _has(record: dict[str, Any], key: str) -> bool:
    return isinstance(record.get(key), (int, float)) and "step" in record


# ---------------------------------------------------------------- progress


def eta_seconds(metrics: list[dict[str, Any]], max_steps: int | None) -> float | None:
    """Seconds left, from the time per step since this (possibly resumed) attempt started.

    `elapsed` restarts at 0 when a run is resumed, so only the last attempt's records count;
    the first attempt starts at step 0, a resumed one at its first logged record.
    """
    timed = [m for m in metrics if _has(m, "elapsed")]
    if not timed or not max_steps:
        return None
    start = 0
    for index in range(1, len(timed)):
        if timed[index]["elapsed"] < timed[index - 1]["elapsed"]:
            start = index
    attempt, last = timed[start:], timed[-1]
    origin = (0, 0.0) if start == 0 else (attempt[0]["step"], attempt[0]["elapsed"])
    steps_done = last["step"] - origin[0]
    if steps_done <= 0:
        return None
    per_step = (last["elapsed"] - origin[1]) / steps_done
    return max(0.0, per_step * (max_steps - last["step"]))


def current_step(metrics: list[dict[str, Any]], status: dict[str, Any]) -> tuple[int, int | None]:
    """(last logged step, total steps) — total from status.json, else from the metrics."""
    step = max((m["step"] for m in metrics if "step" in m), default=0)
    total = status.get("max_steps") or next(
        (m["max_steps"] for m in reversed(metrics) if m.get("max_steps")), None
    )
    return step, total


def state_text(row: dict[str, Any]) -> str:
    """The run's state, with its place in the queue when it waits and its GPUs while it runs."""
    if row.get("state") == "queued" and row.get("position"):
        device = "the GPUs" if row.get("device") == "cuda" else row.get("device", "the device")
        return f"queued (#{row['position']} in line for {device})"
    if row.get("state") == "running" and row.get("gpus"):
        gpus = row["gpus"]
        if gpus.startswith("ray:"):  # placed on a Ray cluster: "ray: 2 GPUs"
            return f"running on {gpus}"
        return f"running on GPU{'s' if ',' in gpus else ''} {gpus}"
    return str(row.get("state", "unknown"))


def progress_html(state: str, step: int, total: int | None, eta: float | None) -> str:
    """A progress bar with `step x / y`, percent and ETA (HTML for a gr.HTML)."""
    if not total:
        text = "waiting to start" if state == "queued" else f"step {step}"
        return f'<div class="ftui-progress"><progress></progress> {html.escape(text)}</div>'
    percent = 100 * min(step, total) / total
    eta_text = f" · ETA {format_duration(eta)}" if state == "running" and eta is not None else ""
    return (
        f'<div class="ftui-progress"><progress value="{min(step, total)}" max="{total}"></progress>'
        f" step {step} / {total} · {percent:.0f}%{eta_text}</div>"
    )


def duration_of(row: dict[str, Any], now: float | None = None) -> float | None:
    """Seconds from start to finish (to now while it runs); None before it starts."""
    started = row.get("started")
    if not started:
        return None
    end = row.get("finished") or (now or time.time())
    return max(0.0, end - started)


# ---------------------------------------------------------------- one run


@dataclass
class RunView:
    """Everything the live view shows about one run."""

    run_id: str
    state: str
    header: str
    progress: str
    # curves are None until the run logs its first step (a plot then draws nothing)
    loss: pd.DataFrame | None
    learning_rate: pd.DataFrame | None
    grad_norm: pd.DataFrame | None
    tokens_per_second: pd.DataFrame | None
    memory_gb: pd.DataFrame | None
    log: str
    error: str
    can_cancel: bool = False
    can_resume: bool = False
    can_delete: bool = False


def read_run_view(row: dict[str, Any], run: RunDir) -> RunView:
    """Read one run's folder into a RunView; `row` is its job index row."""
    status = run.read_status()
    metrics = run.read_metrics()
    state = row["state"]
    step, total = current_step(metrics, status)
    eta = eta_seconds(metrics, total)
    error = status.get("error") or row.get("error") or ""
    logged = any(_has(m, "loss") for m in metrics)
    return RunView(
        run_id=row["id"],
        state=state,
        header=run_header(row, step, total),
        progress=progress_html(state, step, total, eta),
        loss=loss_frame(metrics) if logged else None,
        learning_rate=metric_frame(metrics, "learning_rate") if logged else None,
        grad_norm=metric_frame(metrics, "grad_norm") if logged else None,
        tokens_per_second=metric_frame(metrics, "tokens_per_second") if logged else None,
        memory_gb=metric_frame(metrics, "memory_bytes", scale=1e-9) if logged else None,
        log=run.log_tail(LOG_LINES),
        error=error if state in ("failed", "cancelled") else "",
        can_cancel=state in ACTIVE,
        can_resume=state in ("failed", "cancelled"),
        can_delete=state in FINISHED,
    )


def run_header(row: dict[str, Any], step: int, total: int | None) -> str:
    """Markdown: name and state, then what it trains and who started it (all user text
    escaped, none in code spans, where a backtick could close the span)."""
    text = {key: markdown_literal(row[key]) for key in ("name", "id", "method", "model", "owner")}
    dataset = markdown_literal(row["dataset"])
    duration = format_duration(duration_of(row))
    return (
        f"### {text['name']} — {markdown_literal(state_text(row))}\n"
        f"{text['id']} · {text['method']} on **{text['model']}** · data {dataset} · "
        f"started by {text['owner']} · {duration}"
    )


def folder_signature(run: RunDir) -> tuple:
    """Changes whenever the run's status, metrics or log change (cheap: three stat calls)."""
    marks = []
    for path in (run.status_path, run.metrics_path, run.log_path):
        try:
            info = path.stat()
            marks.append((info.st_mtime_ns, info.st_size))
        except FileNotFoundError:
            marks.append(None)
    return tuple(marks)


# ---------------------------------------------------------------- many runs


def default_run(rows: list[dict[str, Any]]) -> str | None:
    """The run to watch first: the newest running, else the newest queued, else the newest."""
    for state in ("running", "queued"):
        for row in rows:  # newest first
            if row["state"] == state:
                return row["id"]
    return rows[0]["id"] if rows else None


def run_choices(rows: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(label, run id) pairs for a dropdown, newest first."""
    return [(f"{row['id']} ({state_text(row)})", row["id"]) for row in rows]


# ---------------------------------------------------------------- polling


@dataclass(frozen=True)
class Snapshot:
    """The job list and the run to watch at one moment, with cheap change marks."""

    rows: list[dict[str, Any]]
    chosen: str | None  # the run asked for if it exists, else default_run(rows)
    listing: tuple  # changes when a run comes, goes, or changes state, place or steps
    folder: tuple | None  # folder_signature of the chosen run
    active: bool  # some run is queued or running


def snapshot(jobs: Jobs, run_id: str | None) -> Snapshot:
    """Refresh the queue (fail dead runs, start queued ones) and look at it."""
    jobs.refresh()
    rows = jobs.list()
    chosen = run_id if any(row["id"] == run_id for row in rows) else default_run(rows)
    listing = tuple((r["id"], r["state"], r.get("position"), r["steps"]) for r in rows)
    folder = folder_signature(jobs.run_dir(chosen)) if chosen else None
    active = any(row["state"] in ACTIVE for row in rows)
    return Snapshot(rows, chosen, listing, folder, active)


# ---------------------------------------------------------------- actions

ACTIONS = ("cancel", "resume", "delete")


def act_on_run(
    jobs: Jobs, action: str, run_id: str | None, user: User | str | None, team: bool = False
) -> str:
    """Cancel, resume or delete a run through the job queue; return a sentence saying what
    happened (or why not), Markdown-safe: the run box takes any text. A named user may act on
    their own runs, an admin on any; with no user, anything goes in local single-user mode and
    nothing in team mode."""
    if action not in ACTIONS:
        return f"Unknown action {markdown_literal(repr(action))}."
    if not run_id:
        return "Choose a run first."
    return markdown_literal(_act(jobs, action, run_id, user, team))


def _act(jobs: Jobs, action: str, run_id: str, user: User | str | None, team: bool) -> str:
    if isinstance(user, str):
        user = User(user)
    if user is None and team:
        return "Log in first: this server runs in team mode."
    try:
        row = jobs.get(run_id)
        if user is not None and not can_act(user, row["owner"]):
            return f"Run {run_id} belongs to {row['owner']}; only they or an admin can {action} it."
        if action == "cancel":
            outcome = jobs.cancel(run_id)
            if outcome == "cancelled":
                return f"Cancelled {run_id} before it started."
            return f"Asked {run_id} to stop: it saves what it has at the next step."
        if action == "resume":
            jobs.resume(run_id, server_token=web_may_use_server_token())  # web: no HF_TOKEN
            return f"Resumed {run_id} from its last checkpoint ({state_text(jobs.get(run_id))})."
        jobs.delete(run_id)
        return f"Deleted {run_id} and its files."
    except JobError as exc:
        return f"Cannot {action}: {exc}"
