"""The Train tab's layout: the start form, the live view of one run and the history.

Layout only: each piece places its components and returns them in a dataclass that
`ftui.ui.train_tab` wires. The start form's settings are built from the fields declared with
tab="train" (`ftui.ui.widgets.tab_widgets`), so a field added there shows up here, in the
run's config and in the preview YAML without a change to this file.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr

from ftui.ui.run_config import CURRENT_SELECTION, selection_summary
from ftui.ui.runs_history import history_frame
from ftui.ui.runs_view import ACTIONS, EVAL_SERIES, LOG_LINES, TRAIN_SERIES
from ftui.ui.widgets import config_widget, tab_widgets

# Fixed colours, so the eval points stand out from the first one on: a calm blue for the
# many training points, a strong orange for the few evaluations.
LOSS_COLORS = {TRAIN_SERIES: "#4c78a8", EVAL_SERIES: "#f58518"}
PLOTS = {  # RunView attribute -> (title, y axis title)
    "learning_rate": ("Learning rate", "lr"),
    "grad_norm": ("Gradient norm", "grad norm"),
    "tokens_per_second": ("Tokens per second", "tokens/s"),
    "memory_gb": ("Peak memory in use (GB)", "GB"),
}


@dataclass
class StartForm:
    start_from: gr.Dropdown
    name: gr.Textbox
    settings: dict[str, gr.components.Component]  # dotted key (tab="train") -> widget
    preview: gr.Button
    start: gr.Button
    selection: gr.Markdown  # what "Current selection" would train
    status: gr.Markdown
    command: gr.Code
    yaml: gr.Code
    accordion: gr.Accordion


@dataclass
class LiveView:
    run: gr.Dropdown
    buttons: dict[str, gr.Button]  # ACTIONS -> button
    action_status: gr.Markdown
    header: gr.Markdown
    progress: gr.HTML
    error: gr.Textbox
    loss: gr.ScatterPlot  # points: a lone eval loss shows (a line of one point does not)
    plots: dict[str, gr.LinePlot]  # PLOTS keys
    log: gr.Code


@dataclass
class History:
    table: gr.Dataframe
    refresh: gr.Button
    compare: gr.Dropdown
    note: gr.Markdown
    compared: gr.Column  # shown once runs are chosen
    plot: gr.LinePlot
    diff: gr.Dataframe


def start_form(starts: list[str], first: str, values: dict[str, Any]) -> StartForm:
    """The starting points (presets, then the current selection), the run name, the train
    settings filled from `values` (start_values of `first`), preview and start."""
    gr.Markdown("## Start a run")
    with gr.Row(equal_height=True):
        start_from = gr.Dropdown(
            starts,
            value=first,
            label="Start from",
            info="A preset, or the current selection: the Data tab's dataset and the Method "
            "tab's settings (defaults for everything else).",
            elem_id="train-start-from",
        )
        name = config_widget("name", values["name"], elem_id="train-name")
    selection = gr.Markdown(
        selection_summary({}, "default"),
        visible=first == CURRENT_SELECTION,
        elem_id="train-selection",
    )
    with gr.Row(equal_height=True):
        settings = tab_widgets("train", values, min_width=140)
    with gr.Row():
        preview = gr.Button("Preview command", elem_id="train-preview", scale=0, min_width=190)
        start = gr.Button("Start run", variant="primary", elem_id="train-start", scale=0)
    status = gr.Markdown("", elem_id="train-status")
    with gr.Accordion("The same run from the command line", open=False) as accordion:
        command = gr.Code(language="shell", label="Command", elem_id="train-command")
        yaml_code = gr.Code(language="yaml", label="Config", elem_id="train-yaml")
    return StartForm(
        start_from, name, settings, preview, start, selection, status, command, yaml_code, accordion
    )


def live_view() -> LiveView:
    """The run menu and its actions, the header, progress, error, curves and log tail."""
    gr.Markdown("## Watch a run")
    with gr.Row(equal_height=True):
        run = gr.Dropdown(
            [],
            label="Run",
            info="The newest active run is shown first.",
            allow_custom_value=True,
            elem_id="train-run",
            scale=3,
        )
        buttons = {
            name: gr.Button(
                name.title(), interactive=False, elem_id=f"train-{name}", scale=0, min_width=100
            )
            for name in ACTIONS
        }
    action_status = gr.Markdown("", elem_id="train-action-status")
    header = gr.Markdown("", elem_id="train-header")
    progress = gr.HTML("", elem_id="train-progress")
    error = gr.Textbox(label="Error", lines=6, visible=False, elem_id="train-error")
    loss, plots = _curves()
    log = gr.Code(
        language=None,
        label="Log (last lines)",
        lines=LOG_LINES,
        max_lines=LOG_LINES,
        interactive=False,
        elem_id="train-log",
    )
    return LiveView(run, buttons, action_status, header, progress, error, loss, plots, log)


def _curves() -> tuple[gr.ScatterPlot, dict[str, gr.LinePlot]]:
    """The loss plot above one small plot per PLOTS entry.

    The loss is drawn as points, train and eval in their own colours: Gradio's LinePlot has
    no point markers, so an eval loss logged once (most runs evaluate a few times) would be
    a line of one point, drawn as nothing.
    """
    with gr.Row():
        loss = gr.ScatterPlot(
            x="step",
            y="loss",
            color="series",
            color_map=LOSS_COLORS,
            title="Loss",
            color_title="",
            height=320,
            elem_id="train-loss-plot",
        )
    plots = {}
    with gr.Row():
        for key, (title, y_title) in PLOTS.items():
            plots[key] = gr.LinePlot(
                x="step",
                y="value",
                title=title,
                y_title=y_title,
                height=220,
                elem_id=f"train-{key.replace('_', '-')}-plot",
                min_width=240,
            )
    return loss, plots


def history() -> History:
    """Every run in a table, and the runs chosen to compare: their curves and config diff."""
    gr.Markdown("## History\nEvery run in this workspace. Click a row to watch it.")
    refresh = gr.Button("Refresh", scale=0, elem_id="train-history-refresh")
    table = gr.Dataframe(  # the real headers from the start, not "1 2 3"
        history_frame([]), interactive=False, wrap=True, max_height=400, elem_id="train-history"
    )
    compare = gr.Dropdown(
        [],
        multiselect=True,
        allow_custom_value=True,  # the choices follow the job list; the server checks ids
        label="Compare runs",
        info="Overlay their loss curves and see where their configs differ.",
        elem_id="train-compare",
    )
    note = gr.Markdown("", elem_id="train-compare-note")
    with gr.Column(visible=False) as compared:
        plot = gr.LinePlot(
            x="step", y="loss", color="curve", title="Loss of the compared runs", height=320,
            elem_id="train-compare-plot",
        )  # fmt: skip
        diff = gr.Dataframe(interactive=False, wrap=True, elem_id="train-config-diff")
    return History(table, refresh, compare, note, compared, plot, diff)
