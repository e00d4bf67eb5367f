"""The guided first run: the flagship preset, sized for this server, and where it stands.

The first page offers one button that loads the bundled triage sample, shows the preset's
method and estimate, starts the run through the Train tab's own start path (owners, demo caps,
queue) and opens the Playground when it completes (`ftui.ui.guided_run` wires it). This module
holds the plain decisions behind it, testable without a browser:

    plan = guided_plan(PRESETS_DIR, demo=settings.demo)   # preset, train values, a note
    plan.train_values["train.max_steps"]                  # -1: the whole epoch
    progress = guided_progress(jobs, run_id)              # state, sentence, playground?

FTUI_GUIDED_MAX_STEPS=N (read on the server) shortens the guided run to N optimizer steps, for
quick checks and slow machines; a public demo (FTUI_DEMO) shortens it to its step cap when the
preset would take more, and the note says so.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ftui.config import ConfigError, FtuiConfig
from ftui.markup import markdown_literal
from ftui.runs.jobs import JobError, Jobs
from ftui.server.demo import DemoLimits, planned_steps
from ftui.ui.run_config import dotted_value, load_preset, start_values

GUIDED_PRESET = "triage-lora"
GUIDED_SAMPLE = Path("triage") / "train.jsonl"  # under presets/data, as the Data tab lists it
MAX_STEPS_VARIABLE = "FTUI_GUIDED_MAX_STEPS"
INTRO = (
    "**ftui fine-tunes an open LLM on your own data, right here in the browser.** "
    "Pick a dataset and a method, see what it will cost, train it, then ask the base, few-shot "
    "and fine-tuned models the same question side by side."
)
BUTTON = (
    "Try it: teach the bundled model to triage support tickets (about 5 minutes on a laptop CPU)"
)
ENDED = {"completed", "failed", "cancelled"}


@dataclass(frozen=True)
class GuidedPlan:
    """What the guided button starts: a preset, the Train tab's values for it, and why."""

    preset: str
    config: FtuiConfig  # the preset as written (the Method tab shows its settings)
    train_values: dict[str, Any]  # run name + the Train tab's settings (TRAIN_KEYS)
    planned_steps: int  # what the preset would take
    steps: int  # what the guided run takes
    note: str  # a sentence when the run is shorter than the preset's, else ""


@dataclass(frozen=True)
class GuidedProgress:
    state: str  # queued, running, completed, failed, cancelled, or "missing"
    message: str  # Markdown for the guided panel
    open_playground: bool  # completed with a saved adapter: show it in the Playground
    done: bool  # nothing more to watch


def guided_max_steps(environ: Mapping[str, str] | None = None) -> int | None:
    """$FTUI_GUIDED_MAX_STEPS as a positive whole number; None when unset or empty."""
    env = os.environ if environ is None else environ
    value = (env.get(MAX_STEPS_VARIABLE) or "").strip()
    if not value:
        return None
    if not value.isdigit() or int(value) < 1:
        raise ConfigError(f"${MAX_STEPS_VARIABLE} must be a whole number of steps (1 or more)")
    return int(value)


def guided_plan(
    presets_dir: Path, demo: DemoLimits, environ: Mapping[str, str] | None = None
) -> GuidedPlan:
    """The flagship preset, shortened by $FTUI_GUIDED_MAX_STEPS or a public demo's step cap."""
    config = load_preset(presets_dir, GUIDED_PRESET)
    full = planned_steps(config, presets_dir.parent)  # presets' paths start above presets/
    values = start_values(GUIDED_PRESET, presets_dir)
    caps = {"FTUI_GUIDED_MAX_STEPS": guided_max_steps(environ)}
    if demo.enabled:
        caps["demo"] = demo.max_steps
    steps, reason = full, ""
    for name, cap in caps.items():
        if cap is not None and cap < steps:
            steps, reason = cap, name
    note = ""
    if reason:
        # eval_every and save_every stay the preset's: the trainer evaluates and saves at its
        # last step anyway, and each 60-row eval pass costs more than a few training steps
        values["train.max_steps"] = steps
        why = (
            f"this public demo caps runs at {steps} steps"
            if reason == "demo"
            else f"${MAX_STEPS_VARIABLE} is {steps} on this server"
        )
        note = (
            f"The guided run trains {steps} of the preset's {full} steps: {why}. "
            "A shorter run learns the answer format first and fewer of the labels."
        )
    return GuidedPlan(GUIDED_PRESET, config, values, full, steps, note)


def method_values(config: FtuiConfig, keys: list[str]) -> dict[str, Any]:
    """The preset's value for each Method tab setting (dotted keys), for the tab to show."""
    values = {}
    for key in keys:
        try:
            values[key] = dotted_value(config, key)
        except AttributeError:  # a widget that is not a config field: leave it as it is
            continue
    return values


def guided_progress(jobs: Jobs, run_id: str | None) -> GuidedProgress:
    """Where the guided run stands, in a sentence; open the Playground once it completed."""
    if not run_id:
        return GuidedProgress("missing", "", False, True)
    jobs.refresh()  # a run whose trainer died is marked failed, a queued one may start
    try:
        row = jobs.get(run_id)
    except JobError:
        return GuidedProgress("missing", f"Run `{run_id}` is gone (deleted?).", False, True)
    state = row["state"]
    if state == "completed" and jobs.run_dir(run_id).output is not None:
        message = (
            f"Run `{run_id}` completed. The **Playground** shows it with a held-out ticket: "
            "press **Compare** to ask the base, few-shot and fine-tuned models."
        )
        return GuidedProgress(state, message, True, True)
    if state in ENDED:
        error = f": {markdown_literal(row['error'])}" if row.get("error") else "."
        message = f"Run `{run_id}` {state}{error} The Train tab shows its log."
        return GuidedProgress(state, message, False, True)
    where = f"#{row['position']} in the queue" if state == "queued" else "training"
    message = (
        f"Run `{run_id}` is {where}: its curves are in the **Train** tab. The Playground "
        "opens when it completes."
    )
    return GuidedProgress(state, message, False, False)
