"""The guided first run's plain decisions (ftui.guided) and the Playground's readiness rules.

The plan is checked against the same demo caps the Train tab's start path applies
(ftui.server.demo.check_run), on the real preset and its real data; progress and the
Playground's first run come from a real job index whose trainer launches are recorded
instead of run.
"""

from __future__ import annotations

import pytest
from conftest import REPO_ROOT

from ftui.config import ConfigError, load_config
from ftui.guided import (
    GUIDED_PRESET,
    GUIDED_SAMPLE,
    guided_max_steps,
    guided_plan,
    guided_progress,
    method_values,
)
from ftui.presets import PRESETS_DIR, SAMPLES_DIR
from ftui.runs.jobs import Jobs
from ftui.server.demo import DemoLimits, DemoRefusal, check_run
from ftui.ui.playground_actions import NO_RUN, compare_readiness, newest_finished_run
from ftui.ui.run_config import config_for_start
from ftui.workspace import Workspace

OFF = DemoLimits()


def test_the_guided_sample_is_the_presets_training_file():
    preset = load_config(PRESETS_DIR / f"{GUIDED_PRESET}.yaml")
    assert (SAMPLES_DIR / GUIDED_SAMPLE).resolve() == (REPO_ROOT / preset.data.path).resolve()


@pytest.mark.parametrize("value", ["0", "-3", "many", "2.5"])
def test_a_bad_step_limit_is_refused_with_the_variable_named(value):
    with pytest.raises(ConfigError, match="FTUI_GUIDED_MAX_STEPS"):
        guided_max_steps({"FTUI_GUIDED_MAX_STEPS": value})


def test_the_step_limit_is_read_from_the_environment():
    assert guided_max_steps({}) is None and guided_max_steps({"FTUI_GUIDED_MAX_STEPS": ""}) is None
    assert guided_max_steps({"FTUI_GUIDED_MAX_STEPS": " 4 "}) == 4


def test_the_plan_is_the_flagship_preset_in_full_by_default():
    plan = guided_plan(PRESETS_DIR, OFF, environ={})
    assert plan.preset == "triage-lora" and plan.config.method.name == "lora"
    assert plan.planned_steps == plan.steps == 75  # 300 rows at batch 4, one epoch
    assert plan.train_values["train.max_steps"] <= 0 and plan.note == ""  # the whole epoch


def test_the_step_limit_shortens_the_run_and_says_so():
    plan = guided_plan(PRESETS_DIR, OFF, environ={"FTUI_GUIDED_MAX_STEPS": "3"})
    values = plan.train_values
    assert plan.steps == values["train.max_steps"] == 3
    assert values["train.eval_every"] == 38  # the preset's: one eval pass, at the last step
    assert "3 of the preset's 75 steps" in plan.note and "FTUI_GUIDED_MAX_STEPS" in plan.note
    config, _ = config_for_start(plan.preset, values, None, {}, PRESETS_DIR)
    assert config.train.max_steps == 3 and config.data.path == plan.config.data.path


def test_the_flagship_run_fits_the_default_demo_caps_as_it_is():
    demo = DemoLimits(enabled=True)
    plan = guided_plan(PRESETS_DIR, demo, environ={})
    assert plan.steps == 75 and plan.note == ""
    config, cwd = config_for_start(plan.preset, plan.train_values, None, {}, PRESETS_DIR)
    check_run(config, cwd, demo, active_runs=0)  # the start path's own check: no refusal


def test_a_lower_demo_cap_shortens_the_guided_run_to_it():
    demo = DemoLimits(enabled=True, max_steps=40)
    full, _ = config_for_start(GUIDED_PRESET, guided_plan(PRESETS_DIR, OFF, {}).train_values,
                               None, {}, PRESETS_DIR)  # fmt: skip
    with pytest.raises(DemoRefusal, match="75 optimizer steps"):
        check_run(full, PRESETS_DIR.parent, demo, active_runs=0)
    plan = guided_plan(PRESETS_DIR, demo, environ={"FTUI_GUIDED_MAX_STEPS": "60"})
    assert plan.steps == 40 and "this public demo caps runs at 40 steps" in plan.note
    config, cwd = config_for_start(plan.preset, plan.train_values, None, {}, PRESETS_DIR)
    check_run(config, cwd, demo, active_runs=0)


def test_the_method_tab_gets_the_presets_settings():
    plan = guided_plan(PRESETS_DIR, OFF, environ={})
    keys = ["method.name", "method.lora_r", "data.max_length", "train.batch_size", "no.such"]
    assert method_values(plan.config, keys) == {
        "method.name": "lora",
        "method.lora_r": 16,
        "data.max_length": 256,
        "train.batch_size": 4,
    }


@pytest.fixture
def jobs(tmp_path, monkeypatch) -> Jobs:
    """A real job index; the trainer launches are recorded, not run."""
    monkeypatch.setattr("ftui.runs.jobs.launch", lambda run, **_: None)
    return Jobs(Workspace.open(tmp_path / "workspace"))


def _finish(run, state: str, saved: bool = True) -> None:
    if saved:
        run.adapter.mkdir(parents=True)
        (run.adapter / "adapter_config.json").write_text("{}")
    run.write_status(state, error="out of memory" if state == "failed" else None)


def test_progress_follows_the_run_and_opens_the_playground_when_it_completed(jobs):
    run = jobs.submit(load_config(PRESETS_DIR / "triage-lora.yaml"), cwd=REPO_ROOT)
    running = guided_progress(jobs, run.run_id)
    assert running.state == "running" and not running.done and not running.open_playground
    assert "Train" in running.message
    _finish(run, "completed")
    done = guided_progress(jobs, run.run_id)
    assert done.open_playground and done.done and "Playground" in done.message
    assert guided_progress(jobs, None).done
    assert guided_progress(jobs, "gone").state == "missing"


def test_a_failed_guided_run_says_why_and_stops_watching(jobs):
    run = jobs.submit(load_config(PRESETS_DIR / "triage-lora.yaml"), cwd=REPO_ROOT)
    _finish(run, "failed", saved=False)
    progress = guided_progress(jobs, run.run_id)
    assert progress.done and not progress.open_playground
    assert "failed" in progress.message and "out of memory" in progress.message


def test_the_playground_opens_with_the_newest_completed_run(jobs):
    config = load_config(PRESETS_DIR / "triage-lora.yaml")
    assert newest_finished_run(jobs) is None
    older = jobs.submit(config, cwd=REPO_ROOT)
    _finish(older, "completed")
    jobs.refresh()
    newer = jobs.submit(config, cwd=REPO_ROOT)
    _finish(newer, "cancelled")  # saved what it had, but did not complete
    jobs.refresh()
    assert newest_finished_run(jobs) == older.run_id
    newest = jobs.submit(config, cwd=REPO_ROOT)
    _finish(newest, "completed")
    jobs.refresh()
    assert newest_finished_run(jobs) == newest.run_id


def test_compare_is_ready_only_with_a_run_and_a_prompt():
    assert compare_readiness(None, "a ticket") == (False, NO_RUN)
    assert compare_readiness("run-1", "  ")[0] is False
    assert compare_readiness("run-1", "My invoice is wrong") == (True, "")
