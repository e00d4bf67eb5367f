"""What the Train tab shows about runs, from hand-made metrics and real run folders.

Pure functions of ftui.ui.runs_view (plot frames with train and eval series, ETA also after a
resume, progress text) and ftui.ui.runs_history (history rows, config diffs, comparisons);
and one run folder read end to end.
"""

from __future__ import annotations

import time

import pytest
from conftest import REPO_ROOT

from ftui.config import load_config
from ftui.runs.jobs import Jobs
from ftui.runs.rundir import create_run_dir
from ftui.ui import runs_view
from ftui.ui.runs_history import compare_frame, compare_runs, config_diff, flatten, history_frame
from ftui.ui.runs_view import (
    EVAL_SERIES,
    TRAIN_SERIES,
    current_step,
    default_run,
    eta_seconds,
    folder_signature,
    loss_frame,
    metric_frame,
    progress_html,
    read_run_view,
    state_text,
)
from ftui.units import format_duration
from ftui.workspace import Workspace


def train_line(step, loss, elapsed, max_steps=10, **extra):
    return {
        "step": step,
        "max_steps": max_steps,
        "loss": loss,
        "learning_rate": 1e-4 * step,
        "grad_norm": 2.0 / step,
        "tokens_per_second": 100.0 + step,
        "memory_bytes": 2_500_000_000,
        "elapsed": elapsed,
        **extra,
    }


def eval_line(step, eval_loss, elapsed, max_steps=10):
    return {"step": step, "max_steps": max_steps, "eval_loss": eval_loss, "elapsed": elapsed}


# Four steps at 10 s each, an eval at step 4 (5 s), then the trainer's summary line.
METRICS = [
    train_line(1, 2.0, 10.0),
    train_line(2, 1.5, 20.0),
    train_line(3, 1.2, 30.0),
    train_line(4, 1.0, 40.0),
    eval_line(4, 1.1, 45.0),
]


def test_loss_frame_has_a_train_and_an_eval_series():
    frame = loss_frame([*METRICS, {"step": 4, "train_loss": 1.4, "elapsed": 46.0}])
    train = frame[frame["series"] == TRAIN_SERIES]
    evals = frame[frame["series"] == EVAL_SERIES]
    assert list(train["step"]) == [1, 2, 3, 4] and list(train["loss"]) == [2.0, 1.5, 1.2, 1.0]
    assert list(evals["step"]) == [4] and list(evals["loss"]) == [1.1]
    assert len(frame) == 5, "the summary line (train_loss) is not a point"


def test_a_series_without_points_has_a_placeholder_for_the_legend():
    frame = loss_frame(METRICS[:2])
    evals = frame[frame["series"] == EVAL_SERIES]
    assert list(evals["step"]) == [1] and evals["loss"].isna().all()
    assert frame[frame["series"] == TRAIN_SERIES]["loss"].notna().all()
    assert set(loss_frame([])["series"]) == {TRAIN_SERIES, EVAL_SERIES}


def test_a_single_eval_loss_reaches_the_chart_as_a_point_of_its_own_colour():
    """What the live chart draws: the frame through the Train tab's loss plot. A run that
    evaluated once has one eval point, drawn as a point mark (a line of one point is not)."""
    import gradio as gr

    from ftui.ui.train_layout import LOSS_COLORS, live_view

    with gr.Blocks():
        live = live_view()
    drawn = live.loss.postprocess(loss_frame(METRICS))
    assert drawn.mark == "point"
    assert [row for row in drawn.data if row[2] == EVAL_SERIES] == [[4, 1.1, EVAL_SERIES]]
    assert sum(row[2] == TRAIN_SERIES for row in drawn.data) == 4
    assert live.loss.color == "series" and set(LOSS_COLORS) == {TRAIN_SERIES, EVAL_SERIES}
    assert live.loss.color_map == LOSS_COLORS and len(set(LOSS_COLORS.values())) == 2


def test_metric_frames_scale_memory_and_skip_eval_lines():
    memory = metric_frame(METRICS, "memory_bytes", scale=1e-9)
    assert list(memory["step"]) == [1, 2, 3, 4]
    assert memory["value"].tolist() == pytest.approx([2.5] * 4)
    rates = metric_frame(METRICS, "learning_rate")
    assert rates["value"].tolist() == pytest.approx([1e-4, 2e-4, 3e-4, 4e-4])
    empty = metric_frame(METRICS, "no_such_key")
    assert empty.empty and empty["value"].dtype.kind == "f" and empty["step"].dtype.kind == "i"
    assert loss_frame([])["loss"].dtype.kind == "f", "numeric from the first draw"


def test_eta_is_time_per_step_times_steps_left():
    # 45 s for 4 steps (the eval included) -> 11.25 s a step, 6 steps left
    assert eta_seconds(METRICS, 10) == pytest.approx(6 * 45.0 / 4)
    assert eta_seconds(METRICS[:2], 10) == pytest.approx(8 * 10.0)
    assert eta_seconds(METRICS, 4) == 0.0


def test_eta_after_a_resume_counts_only_the_last_attempt():
    # resumed from step 4: elapsed restarts; 30 s of loading, then 5 s a step
    resumed = [*METRICS, train_line(5, 0.9, 30.0), train_line(6, 0.8, 35.0)]
    resumed.append(train_line(7, 0.7, 40.0))
    assert eta_seconds(resumed, 10) == pytest.approx(3 * 5.0)
    assert eta_seconds([*METRICS, train_line(5, 0.9, 30.0)], 10) is None, "one point: no rate"


def test_eta_is_unknown_without_steps_or_total():
    assert eta_seconds([], 10) is None
    assert eta_seconds(METRICS, None) is None


def test_current_step_prefers_status_total():
    assert current_step(METRICS, {"max_steps": 38}) == (4, 38)
    assert current_step(METRICS, {}) == (4, 10)
    assert current_step([], {}) == (0, None)


def test_progress_shows_step_percent_and_eta_while_running():
    text = progress_html("running", 4, 10, 75.0)
    assert "step 4 / 10" in text and "40%" in text and "ETA 1 min 15 s" in text
    assert 'value="4" max="10"' in text
    finished = progress_html("completed", 10, 10, 0.0)
    assert "step 10 / 10" in finished and "100%" in finished and "ETA" not in finished
    assert "waiting to start" in progress_html("queued", 0, None, None)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(None, "-"), (42.4, "42 s"), (185, "3 min 05 s"), (3720, "1 h 02 min"), (0.42, "0.42 s")],
)
def test_durations_read_the_same_in_the_history_and_the_eta(seconds, text):
    """ftui.units.format_duration, the one the history column and the ETA use."""
    assert format_duration(seconds) == text


def test_state_text_gives_the_queue_position():
    assert state_text({"state": "queued", "position": 2, "device": "cpu"}) == (
        "queued (#2 in line for cpu)"
    )
    assert state_text({"state": "running"}) == "running"


def _row(run_id, state, **extra):
    row = {
        "id": run_id, "name": run_id, "owner": "ana", "state": state, "device": "cpu",
        "model": "default", "method": "lora", "dataset": "d.jsonl", "created": 0.0,
        "started": None, "finished": None, "steps": None, "train_loss": None,
        "eval_loss": None, "tokens": None, "error": None,
    }  # fmt: skip
    return {**row, **extra}


def test_history_frame_has_losses_duration_tokens_and_queue():
    rows = [
        _row("c", "queued", position=1),
        _row("b", "running", started=100.0),
        _row("a", "completed", started=100.0, finished=400.0, steps=38, train_loss=0.123456,
             eval_loss=0.5, tokens=12345.0),
    ]  # fmt: skip
    frame = history_frame(rows, now=130.0)
    assert list(frame["run"]) == ["c", "b", "a"]
    done = frame.iloc[2]
    assert done["train loss"] == 0.1235 and done["eval loss"] == 0.5
    assert done["duration"] == "5 min 00 s" and done["tokens"] == 12345 and done["steps"] == 38
    assert frame.iloc[1]["duration"] == "30 s", "a running run counts up to now"
    assert frame.iloc[0]["queue"] == 1 and frame.iloc[0]["duration"] == "-"


def test_default_run_is_the_newest_running_then_queued_then_newest():
    rows = [_row("d", "completed"), _row("c", "queued"), _row("b", "running")]
    assert default_run(rows) == "b"
    assert default_run([_row("d", "failed"), _row("c", "queued")]) == "c"
    assert default_run([_row("d", "failed"), _row("c", "completed")]) == "d"
    assert default_run([]) is None


def test_config_diff_keeps_only_differing_keys():
    first = {"name": "a", "train": {"learning_rate": 2e-4, "epochs": 1}, "data": {"columns": {}}}
    second = {"name": "b", "train": {"learning_rate": 1e-3, "epochs": 1}, "data": {"columns": {}}}
    diff = config_diff({"run-a": first, "run-b": second})
    assert list(diff.columns) == ["setting", "run-a", "run-b"]
    assert list(diff["setting"]) == ["name", "train.learning_rate"]
    assert diff.set_index("setting").loc["train.learning_rate"].tolist() == ["0.0002", "0.001"]
    whole = config_diff({"run-a": first})
    assert set(whole["setting"]) == {"name", "train.learning_rate", "train.epochs", "data.columns"}
    assert config_diff({"run-a": first, "run-c": dict(first)}).empty


def test_flatten_and_compare_frame():
    assert flatten({"a": {"b": 1, "c": {"d": 2}}, "e": {}}) == {"a.b": 1, "a.c.d": 2, "e": {}}
    frame = compare_frame({"one": METRICS, "two": METRICS[:2]})
    assert set(frame["curve"]) == {
        f"one · {TRAIN_SERIES}",
        f"one · {EVAL_SERIES}",
        f"two · {TRAIN_SERIES}",
    }
    assert len(frame) == 5 + 2


def test_a_failed_run_folder_reads_back_with_curves_log_and_error(tmp_path):
    workspace = Workspace.open(tmp_path / "workspace")
    config = load_config(REPO_ROOT / "presets" / "triage-lora.yaml")
    run = create_run_dir(config, workspace)
    before = folder_signature(run)
    fresh = read_run_view(_row(run.run_id, "queued", position=1), run)
    assert fresh.loss is None and fresh.memory_gb is None, "nothing to draw before step 1"
    assert "waiting to start" in fresh.progress and fresh.can_cancel and not fresh.can_delete
    for record in METRICS:
        run.append_metrics(record)
    run.log_path.write_text("loading\n" + "step 4\r" + "Killed\n", encoding="utf-8")
    run.write_status("failed", started=time.time() - 60, max_steps=10, error="Out of memory.")
    assert folder_signature(run) != before

    row = _row(run.run_id, "failed", name=config.name, started=time.time() - 60)
    view = read_run_view(row, run)
    assert view.state == "failed" and view.error == "Out of memory."
    assert view.can_resume and view.can_delete and not view.can_cancel
    assert len(view.loss.dropna()) == 5 and len(view.memory_gb) == 4
    assert view.log.splitlines() == ["loading", "Killed"]  # as a terminal: \r rewrote step 4
    assert "step 4 / 10" in view.progress and "ETA" not in view.progress
    assert "triage-lora — failed" in view.header and "started by ana" in view.header


@pytest.fixture
def launched(monkeypatch) -> list[str]:
    """Runs the queue would start; no process is launched (the queue itself is real)."""
    started: list[str] = []
    monkeypatch.setattr("ftui.runs.jobs.launch", lambda run, **_: started.append(run.run_id))
    return started


def test_snapshot_and_comparison_of_queued_runs(tmp_path, launched):
    jobs = Jobs(Workspace.open(tmp_path / "workspace"))
    config = load_config(REPO_ROOT / "presets" / "triage-lora.yaml")
    first = jobs.submit(config, owner="ana", cwd=REPO_ROOT)
    config.train.learning_rate = 1e-3
    second = jobs.submit(config, owner="ben", cwd=REPO_ROOT)
    assert launched == [first.run_id], "one run per device"

    now = runs_view.snapshot(jobs, None)
    assert now.chosen == first.run_id and now.active
    assert [row["id"] for row in now.rows] == [second.run_id, first.run_id]
    assert runs_view.snapshot(jobs, second.run_id).chosen == second.run_id
    assert runs_view.snapshot(jobs, "gone").chosen == first.run_id
    first.append_metrics(METRICS[0])
    assert runs_view.snapshot(jobs, first.run_id).folder != now.folder

    found = compare_runs(jobs, [first.run_id, second.run_id, "gone"])
    assert found.note == "1 setting differs between these runs."
    assert list(found.diff["setting"]) == ["train.learning_rate"]
    assert list(found.diff.columns) == ["setting", first.run_id, second.run_id]
    assert found.names == [f"{first.run_id} · {TRAIN_SERIES}"]
    assert compare_runs(jobs, ["gone"]) is None


def test_actions_check_the_owner_and_explain_refusals(tmp_path, launched):
    jobs = Jobs(Workspace.open(tmp_path / "workspace"))
    config = load_config(REPO_ROOT / "presets" / "triage-lora.yaml")
    run = jobs.submit(config, owner="ana", cwd=REPO_ROOT)
    assert launched == [run.run_id]

    refused = runs_view.act_on_run(jobs, "cancel", run.run_id, "ben")
    assert "belongs to ana" in refused and not run.cancel_requested()
    assert "cancel it before deleting" in runs_view.act_on_run(jobs, "delete", run.run_id, "ana")
    assert "it needs no resume" in runs_view.act_on_run(jobs, "resume", run.run_id, None)
    assert "no run with id" in runs_view.act_on_run(jobs, "cancel", "nope", None)
    assert "Asked" in runs_view.act_on_run(jobs, "cancel", run.run_id, "ana")
    assert run.cancel_requested()
