"""Train tab: start a run, watch it live, stop, resume or delete it, compare runs from history.

Wiring only: the components come from `ftui.ui.train_layout`, new runs' configs from
`ftui.ui.run_config`, everything shown about a run from `ftui.ui.runs_view` and
`ftui.ui.runs_history` (read from its folder, so a reload shows all of it), and every action
goes through `ftui.runs.jobs.Jobs` on the server; the browser only names a run id. Scripts
start a run from a whole config with /start_config and poll it with /run_status (the rules in
`ftui.ui.api_config`; the Start button's own checks in `run_config.queue_web_run`).

A gr.Timer polls every ACTIVE_SECONDS while any run is queued or running and every
IDLE_SECONDS otherwise. Each tick also refreshes the queue (dead runs are marked failed,
queued ones start) and sends nothing when neither the watched run's folder nor the job list
changed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, get_type_hints

import gradio as gr
from gradio.events import Dependency

from ftui.presets import PRESETS_DIR
from ftui.runs.jobs import JobError, Jobs
from ftui.server.auth import Access
from ftui.server.settings import ServerSettings
from ftui.ui import train_layout as layout
from ftui.ui.api_config import refusal, start_from_config, without_tokens
from ftui.ui.api_config import run_status as status_of_run
from ftui.ui.run_config import (
    CURRENT_SELECTION,
    START_ERRORS,
    preset_names,
    preview_run,
    selection_summary,
    start_run,
    start_values,
)
from ftui.ui.runs_history import compare_runs, history_frame
from ftui.ui.runs_view import act_on_run, read_run_view, run_choices, snapshot
from ftui.ui.train_layout import PLOTS, History, LiveView, StartForm

ACTIVE_SECONDS = 2.0
IDLE_SECONDS = 10.0
DEFAULT_PRESET = "triage-lora"
QUIET = {"show_progress": "hidden", "api_visibility": "private"}  # redraws, not API endpoints


@dataclass
class TrainTab:
    form: StartForm
    live: LiveView
    history: History
    timer: gr.Timer


def build_train_tab(
    settings: ServerSettings,
    jobs: Jobs,
    dataset: gr.State,
    method_settings: dict[str, gr.components.Component],
) -> TrainTab:
    presets = preset_names(PRESETS_DIR)
    first = DEFAULT_PRESET if DEFAULT_PRESET in presets else CURRENT_SELECTION
    values = start_values(first, PRESETS_DIR)
    form = layout.start_form([*presets, CURRENT_SELECTION], first, values)
    tab = TrainTab(form, layout.live_view(), layout.history(), gr.Timer(ACTIVE_SECONDS))
    started = _wire_start(tab.form, tab.live.run, settings, jobs, dataset, method_settings)
    _wire_watching(tab, jobs, started, settings.access)
    _wire_comparison(tab.history, jobs)
    _wire_script_api(settings, jobs)
    return tab


# ---------------------------------------------------------------- wiring


def _wire_start(
    form: StartForm,
    run_menu: gr.Dropdown,
    settings: ServerSettings,
    jobs: Jobs,
    dataset: gr.State,
    method_settings: dict[str, gr.components.Component],
) -> Dependency:
    """Fill the form from its starting point; preview and start runs. Returns the start."""
    train_keys, method_keys = list(form.settings), list(method_settings)
    inputs = [form.start_from, form.name, *form.settings.values(), dataset]
    inputs += list(method_settings.values())

    def split(values) -> tuple:
        """Form values -> (start_from, name and train settings, dataset, method settings)."""
        start_from, name, *rest = values
        train, rest = rest[: len(train_keys)], rest[len(train_keys) :]
        data, method = rest[0], rest[1:]
        named = {"name": name, **dict(zip(train_keys, train, strict=True))}
        return start_from, named, data, dict(zip(method_keys, method, strict=True))

    def start(request: gr.Request, *values):
        start_from, train, data, method = split(values)
        user = settings.access.user(request)
        if user is None:
            return "Log in first: this server runs in team mode.", gr.skip()
        message, run_id = start_run(
            jobs, start_from, train, data, method, PRESETS_DIR, user.name, demo=settings.demo
        )
        return message, gr.update(value=run_id) if run_id else gr.skip()

    def preview(*values):
        start_from, train, data, method = split(values)
        message, text, command = preview_run(
            settings.workspace, start_from, train, data, method, PRESETS_DIR
        )
        return message, command, text, gr.Accordion(open=bool(text))

    def fill(start_from: str, data: dict | None) -> list:
        """The selection summary's visibility, the run name and the train settings."""
        values = start_values(start_from, PRESETS_DIR, data)
        selection = gr.update(visible=start_from == CURRENT_SELECTION)
        return [selection, values["name"], *(values[key] for key in train_keys)]

    form.start_from.input(
        fill,
        [form.start_from, dataset],
        [form.selection, form.name, *form.settings.values()],
        api_visibility="private",
    )
    model_box = method_settings["model.name_or_path"]
    for trigger in (dataset.change, model_box.change):
        trigger(selection_summary, [dataset, model_box], form.selection, **QUIET)
    outputs = [form.status, form.command, form.yaml, form.accordion]
    form.preview.click(preview, inputs, outputs, api_name="preview_run")
    return form.start.click(start, inputs, [form.status, run_menu], api_name="start_run")


def _wire_watching(tab: TrainTab, jobs: Jobs, started: Dependency, access: Access) -> None:
    """The timer, the page load, the run menu, the buttons and history clicks all redraw."""
    live, history = tab.live, tab.history
    seen = gr.State(None)  # the marks of what this page shows; see _watch
    outputs = [
        seen, tab.timer, live.run, live.header, live.progress, live.error, live.loss,
        *live.plots.values(), live.log, *live.buttons.values(), history.table, history.compare,
    ]  # fmt: skip

    def tick(run_id, shown):
        updates = _watch(jobs, run_id, shown, select=False)
        return updates if updates is not None else [gr.skip()] * len(outputs)

    def show(run_id):
        return _watch(jobs, run_id, None, select=True)

    redraw = {"fn": show, "inputs": live.run, "outputs": outputs, **QUIET}
    tab.timer.tick(tick, [live.run, seen], outputs, **QUIET)
    gr.on(None, lambda: show(None), None, outputs, **QUIET)  # page load: the newest active run
    live.run.input(**redraw)
    started.success(**redraw)
    for action, button in live.buttons.items():
        act = _action_handler(jobs, action, access)
        button.click(act, live.run, live.action_status, api_name=f"{action}_run").success(**redraw)
    history.table.select(_chosen_row, None, live.run, api_visibility="private").success(**redraw)
    history.refresh.click(lambda: _history_table(jobs), None, history.table, api_name="list_runs")


def _wire_comparison(history: History, jobs: Jobs) -> None:
    # Gradio fixes a plot's colours and legend when it first draws it: new curves come
    # first, then the legend names them, which redraws the plot with the data it now has.
    names = gr.State([])
    history.compare.change(
        lambda ids: _compare(jobs, ids),
        history.compare,
        [history.note, history.compared, history.plot, history.diff, names],
        api_name="compare_runs",
    ).then(lambda curves: gr.LinePlot(colors_in_legend=curves), names, history.plot, **QUIET)


def _wire_script_api(settings: ServerSettings, jobs: Jobs) -> None:
    """/start_config and /run_status: API-only endpoints for scripts (ftui.ui.api_config)."""

    def start_config(config: str | dict, request: gr.Request) -> tuple[str, str]:
        """Start a training run from a config in ftui's YAML (or JSON) tree: the same checks
        as the Start button. Returns (a message, the run id); a refusal is an error that says
        what is wrong. Put the path /from_upload answered with in data.path."""
        try:
            return start_from_config(jobs, settings, config, settings.access.user(request))
        except START_ERRORS as exc:
            raise gr.Error(refusal(exc), print_exception=False) from None

    def run_status(run_id: str, request: gr.Request) -> dict[str, Any]:
        """A run's state, step, max_steps, loss, eval_loss, queue position and error."""
        if settings.access.user(request) is None:
            raise gr.Error("Log in first: this server runs in team mode.", print_exception=False)
        try:
            return status_of_run(jobs, run_id)
        except (JobError, OSError) as exc:
            raise gr.Error(without_tokens(str(exc)), print_exception=False) from None

    for endpoint in (start_config, run_status):
        # gr.api reads the parameter and return types: give it types, not the strings
        # `from __future__ import annotations` leaves
        endpoint.__annotations__ = get_type_hints(endpoint)
        gr.api(endpoint, api_name=endpoint.__name__)


# ---------------------------------------------------------------- callbacks


def _watch(jobs: Jobs, run_id: str | None, shown: Any, select: bool) -> list | None:
    """Updates for the live view and history; None when nothing changed since `shown`.

    `shown` holds the marks of the last update (run, folder, job list, timer interval);
    `select` also sets the run menu's value (page load, start, actions, history clicks).
    """
    now = snapshot(jobs, run_id)
    interval = ACTIVE_SECONDS if now.active else IDLE_SECONDS
    marks = (now.chosen, now.folder, now.listing, interval)
    select = select or now.chosen != run_id
    if marks == shown and not select:
        return None
    listed = shown is None or shown[2] != now.listing
    menu = gr.update(choices=run_choices(now.rows))
    if select:
        menu = gr.update(choices=run_choices(now.rows), value=now.chosen)
    return [
        marks,
        gr.Timer(interval) if shown is None or shown[3] != interval else gr.skip(),
        menu if listed or select else gr.skip(),
        *_run_updates(jobs, next((r for r in now.rows if r["id"] == now.chosen), None)),
        history_frame(now.rows) if listed or select else gr.skip(),
        gr.update(choices=[row["id"] for row in now.rows]) if listed else gr.skip(),
    ]


def _run_updates(jobs: Jobs, row: dict | None) -> list:
    """header, progress, error, loss, the small plots, log, cancel, resume, delete."""
    if row is None:
        nothing = [None] * (1 + len(PLOTS))
        idle = [gr.update(interactive=False)] * 3
        return ["No runs yet: start one above.", "", gr.update(visible=False), *nothing, "", *idle]
    view = read_run_view(row, jobs.run_dir(row["id"]))
    return [
        view.header,
        view.progress,
        gr.update(value=view.error, visible=bool(view.error)),
        view.loss,
        *(getattr(view, key) for key in PLOTS),
        view.log,
        gr.update(interactive=view.can_cancel),
        gr.update(interactive=view.can_resume),
        gr.update(interactive=view.can_delete),
    ]


def _action_handler(jobs: Jobs, action: str, access: Access):
    def act(run_id: str, request: gr.Request) -> str:
        return act_on_run(jobs, action, run_id, access.user(request), team=access.team)

    act.__name__ = f"{action}_run"
    return act


def _history_table(jobs: Jobs):
    jobs.refresh()
    return history_frame(jobs.list())


def _chosen_row(event: gr.SelectData):
    """The run id of the clicked history row (the first column)."""
    row = event.row_value or []
    return row[0] if row else gr.skip()


def _compare(jobs: Jobs, run_ids: list[str] | None) -> tuple:
    """A note, the comparison's visibility, the curves, the config diff, the curves' names."""
    found = compare_runs(jobs, run_ids)
    if found is None:
        return "", gr.Column(visible=False), None, None, []
    diff = found.diff if not found.diff.empty else None
    return found.note, gr.Column(visible=True), found.curves, diff, found.names
