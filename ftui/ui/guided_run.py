"""The guided first run on the first page: two sentences and one button that walks the tabs.

One click, in order, each step through the tabs' own events (so nothing here duplicates them):

1. the Data tab loads the bundled triage sample (its `analyse` event: preview, statistics);
2. the Method tab shows the flagship preset's settings, the method's explanation and its
   `method_estimate` (memory, time, fits);
3. the run starts through the Train tab's start path (`ftui.ui.run_config.start_run`: the
   caller's login, a public demo's caps, the queue) and the Train tab shows its live curves;
4. a timer watches the run; when it completes the Playground opens on it, with a held-out
   (validation) ticket as the prompt.

The plan (preset, steps, the note when it is shortened) comes from `ftui.guided`. The tabs'
events are found in the app by their API names or triggers, not copied.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr

from ftui.config import ConfigError
from ftui.guided import BUTTON, GUIDED_SAMPLE, INTRO, guided_plan, guided_progress, method_values
from ftui.markup import markdown_literal
from ftui.presets import PRESETS_DIR, SAMPLES_DIR
from ftui.runs.jobs import Jobs
from ftui.server.settings import ServerSettings
from ftui.ui.playground_tab import PlaygroundTab, show_run
from ftui.ui.run_config import start_run
from ftui.ui.train_tab import TrainTab

WATCH_SECONDS = 3.0
QUIET = {"show_progress": "hidden", "api_visibility": "private"}


@dataclass
class GuidedPanel:
    button: gr.Button
    status: gr.Markdown  # what each step did: sample, estimate, the start (or why not)
    progress: gr.Markdown  # where the guided run stands, while it is watched
    run: gr.State  # the guided run's id in this browser session
    timer: gr.Timer  # on while the guided run is queued or running


@dataclass
class GuidedTargets:
    """What the guided run drives: the tab bar and the tabs' components."""

    tabs: gr.Tabs
    method_settings: dict[str, gr.components.Component]  # dotted key -> Method tab widget
    train: TrainTab
    playground: PlaygroundTab


def guided_panel() -> GuidedPanel:
    """What ftui does, and the button that shows it (placed above the tabs)."""
    with gr.Group(elem_id="guided"):
        gr.Markdown(INTRO, elem_id="guided-intro", padding=True)
        button = gr.Button(BUTTON, variant="primary", elem_id="guided-start")
        status = gr.Markdown("", elem_id="guided-status", padding=False)
        progress = gr.Markdown("", elem_id="guided-progress", padding=False)
    timer = gr.Timer(WATCH_SECONDS, active=False)
    return GuidedPanel(button, status, progress, gr.State(None), timer)


def wire_guided_run(
    app: gr.Blocks,
    panel: GuidedPanel,
    targets: GuidedTargets,
    settings: ServerSettings,
    jobs: Jobs,
) -> None:
    """Chain the four steps on the button, and watch the run with the panel's timer."""
    analyse = existing_event(app, api_name="analyse")
    estimate = existing_event(app, api_name="method_estimate")
    method_view = existing_event(app, trigger=(targets.method_settings["method.name"], "input"))
    live_run = targets.train.live.run
    redraw = existing_event(app, trigger=(live_run, "input"))
    sample = [
        _by_id(analyse["inputs"], "data-source"),
        _by_id(analyse["inputs"], "data-max-length"),
    ]
    method_widgets = list(targets.method_settings.values())

    def load_sample():
        plan = guided_plan(PRESETS_DIR, settings.demo)
        source = str(SAMPLES_DIR / GUIDED_SAMPLE)
        max_length = plan.config.data.max_length  # the preset's, so the estimate is its
        return gr.Tabs(selected="data"), source, max_length, "Loading the sample..."

    def show_method():
        plan = guided_plan(PRESETS_DIR, settings.demo)
        values = method_values(plan.config, list(targets.method_settings))
        widgets = [values.get(key, gr.skip()) for key in targets.method_settings]
        return gr.Tabs(selected="method"), *widgets, "Estimating what the run costs..."

    def start(request: gr.Request):
        return _start(jobs, settings, request)

    form_status = targets.train.form.status
    started = [panel.status, targets.tabs, live_run, form_status, panel.run, panel.timer]
    started.append(panel.button)  # off while the guided run is on: one click, one run
    step = panel.button.click(
        load_sample, None, [targets.tabs, *sample, panel.status], **QUIET
    ).then(**analyse, **QUIET)
    step = step.then(show_method, None, [targets.tabs, *method_widgets, panel.status], **QUIET)
    step = step.then(**method_view, **QUIET).then(**estimate, **QUIET)
    step.then(start, None, started, api_name="guided_start").then(**redraw, **QUIET)
    _wire_watch(panel, targets, jobs)


def _start(jobs: Jobs, settings: ServerSettings, request: gr.Request) -> tuple:
    """Start the plan through the Train tab's start path; go to its live view if it started."""
    nothing = (gr.skip(),) * 4
    stopped = (gr.Timer(active=False), gr.skip())
    try:
        plan = guided_plan(PRESETS_DIR, settings.demo)
    except ConfigError as exc:
        return f"**Cannot start:** {markdown_literal(exc)}", *nothing, *stopped
    user = settings.access.user(request)
    if user is None:
        return "Log in first: this server runs in team mode.", *nothing, *stopped
    message, run_id = start_run(
        jobs, plan.preset, plan.train_values, None, {}, PRESETS_DIR, user.name, demo=settings.demo
    )
    text = "\n\n".join(filter(None, [message, plan.note]))
    if run_id is None:
        return text, *nothing, *stopped
    watching = (gr.Timer(active=True), gr.Button(interactive=False))
    return text, gr.Tabs(selected="train"), run_id, message, run_id, *watching


def _wire_watch(panel: GuidedPanel, targets: GuidedTargets, jobs: Jobs) -> None:
    """While the guided run is on: its state beside the button; once it completed, the
    Playground with that run and a validation ticket."""
    playground = targets.playground.compare.run
    outputs = [panel.progress, targets.tabs, playground, panel.timer, panel.button]

    def watch(run_id: str | None):
        progress = guided_progress(jobs, run_id)
        ended = (gr.Timer(active=False), gr.Button(interactive=True))
        if progress.open_playground:
            opened = show_run(jobs, run_id)
            return progress.message, gr.Tabs(selected="playground"), opened, *ended
        if progress.done:
            return progress.message or gr.skip(), gr.skip(), gr.skip(), *ended
        return progress.message, gr.skip(), gr.skip(), gr.skip(), gr.skip()

    panel.timer.tick(watch, panel.run, outputs, **QUIET)


# ---------------------------------------------------------------- the tabs' own events


def existing_event(
    app: gr.Blocks, api_name: str | None = None, trigger: tuple[Any, str] | None = None
) -> dict[str, Any]:
    """fn, inputs and outputs of an event already wired in `app`, found by its API name or
    by its trigger (component, event name), to chain it after another step."""
    for block_fn in app.fns.values():
        named = api_name is not None and block_fn.api_name == api_name
        triggered = trigger is not None and (trigger[0]._id, trigger[1]) in block_fn.targets
        if named or triggered:
            return {"fn": block_fn.fn, "inputs": block_fn.inputs, "outputs": block_fn.outputs}
    raise LookupError(f"no event {api_name or trigger} in the app: was the tab built first?")


def _by_id(components: list, elem_id: str) -> Any:
    found = [
        component for component in components if getattr(component, "elem_id", None) == elem_id
    ]
    if not found:
        raise LookupError(f"no component #{elem_id} among the event's inputs")
    return found[0]
