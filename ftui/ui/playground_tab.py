"""Playground tab: base, few-shot and fine-tuned side by side; batch scores; forgetting; export.

Wiring only: the components come from `ftui.ui.playground_layout`, the work from
`ftui.ui.playground_actions`, which calls ftui.evaluate (one shared Comparison holds one copy
of the base weights for all three columns), ftui.export (merge, Hub push), ftui.gguf_export
(GGUF + Ollama Modelfile) and
ftui.evaluate.report (the downloadable HTML). Everything a user names — run ids, export
folders — is checked on the server against the job index and the workspace. A push goes out
with the caller's own Hub token (typed, or their HF login in hf mode), never the server's
unless an admin opted in (ftui.server.hub_auth); a public demo neither merges nor pushes.

The tab is ready when it opens: the newest completed run is chosen and a validation ticket
fills the prompt; Compare stays off until there are both. Every button says what went wrong
in words beside it; the same actions' API endpoints still raise, for scripts.
"""

from __future__ import annotations

import functools
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr
from gradio.context import Context

from ftui.evaluate.cache import ComparisonCache
from ftui.gguf_export import gguf_formats
from ftui.runs.jobs import Jobs
from ftui.server.settings import ServerSettings
from ftui.ui import playground_actions as actions
from ftui.ui import playground_layout as layout
from ftui.ui.playground_layout import BatchPanel, ComparePanel, ExportPanel, ForgettingPanel

QUIET = {"show_progress": "hidden", "api_visibility": "private"}  # redraws, not API endpoints


@dataclass
class PlaygroundTab:
    compare: ComparePanel


def build_playground_tab(settings: ServerSettings, jobs: Jobs) -> PlaygroundTab:
    parent = Context.block  # the gr.Tab that app.py opened for this tab, if any
    cache = ComparisonCache()
    compare = layout.compare_panel()
    batch = layout.batch_panel()
    forgetting = layout.forgetting_panel()
    demo = actions.is_demo(settings)  # the server refuses anyway; say so up front
    export = layout.export_panel(actions.DEMO_NO_EXPORT if demo else "", gguf_formats())
    _wire_readiness(compare, batch, jobs, parent)
    _wire_compare(compare, jobs, cache)
    _wire_batch(batch, compare.run, jobs)
    _wire_forgetting(forgetting, compare.run, jobs, cache)
    _wire_export(export, compare.run, jobs, settings)
    return PlaygroundTab(compare)


def show_run(jobs: Jobs, run_id: str | None) -> Any:
    """The run menu's update that lists the finished runs and selects `run_id` (its change
    event then fills a validation prompt); the newest completed run when `run_id` is None."""
    choices = actions.finished_runs(jobs)
    if run_id not in [value for _, value in choices]:
        run_id = actions.newest_finished_run(jobs)
    return gr.Dropdown(choices=choices, value=run_id)


def _wire_readiness(panel: ComparePanel, batch: BatchPanel, jobs: Jobs, parent: Any) -> None:
    """Opening the page or the tab selects a run (the chosen one if still there, else the
    newest completed); a chosen run fills the prompt; Compare is on only with both."""
    panel.refresh.click(
        lambda: gr.Dropdown(choices=actions.finished_runs(jobs)),
        None,
        panel.run,
        api_name="finished_runs",
    )
    ready = {"fn": lambda current: show_run(jobs, current), "inputs": panel.run}
    gr.on(None, outputs=panel.run, **ready, **QUIET)  # page load
    if isinstance(parent, gr.Tab):
        parent.select(outputs=panel.run, **ready, **QUIET)

    def load_run(run_id):
        return actions.run_defaults(jobs, run_id)

    outputs = [panel.prompt, panel.shots, panel.max_new, batch.limit]
    panel.run.change(load_run, panel.run, outputs)

    def readiness(run_id, text):
        ok, why = actions.compare_readiness(run_id, text)
        return gr.Button(interactive=ok), why

    triggers = [panel.run.change, panel.prompt.change]
    gr.on(triggers, readiness, [panel.run, panel.prompt], [panel.ask, panel.note], **QUIET)


def _wire_compare(panel: ComparePanel, jobs: Jobs, cache: ComparisonCache) -> None:
    """Compare streams three answers; what stops it is said beside the button."""
    outputs = [*panel.answers, *panel.stats]

    def compare(run_id, text, shot_rows, tokens, temp, p):
        yield from actions.stream_three(jobs, cache, run_id, text, shot_rows, tokens, temp, p)

    def compare_on_page(run_id, text, shot_rows, tokens, temp, p):
        ok, why = actions.compare_readiness(run_id, text)
        try:
            if not ok:
                raise gr.Error(why)
            for values in compare(run_id, text, shot_rows, tokens, temp, p):
                yield (*values, "")
        except gr.Error as exc:
            yield (*[gr.skip()] * len(outputs), str(exc.message))

    inputs = [panel.run, panel.prompt, panel.shots, panel.max_new, panel.temperature, panel.top_p]
    _click(panel.ask, compare_on_page, compare, inputs, outputs, panel.note, "compare")


def _wire_batch(panel: BatchPanel, run: gr.Dropdown, jobs: Jobs) -> None:
    def evaluate(run_id, count, progress=gr.Progress()):  # noqa: B008 - gradio's API
        report = actions.evaluate(jobs, run_id, count, progress)
        page = _write_report(jobs, run_id, report)
        return (*actions.report_views(report), page, gr.Column(visible=True))

    outputs = [panel.scores, panel.chart, panel.cases, panel.examples, panel.download]
    outputs.append(panel.results)  # shown once there are scores
    on_page = _errors_as_text(evaluate, len(outputs))
    _click(panel.evaluate, on_page, evaluate, [run, panel.limit], outputs, panel.note, "evaluate")


def _wire_forgetting(
    panel: ForgettingPanel, run: gr.Dropdown, jobs: Jobs, cache: ComparisonCache
) -> None:
    def forgetting(run_id):
        return actions.forgetting_markdown(jobs, cache, run_id)

    on_page = _errors_as_text(forgetting, 0)
    _click(panel.check, on_page, forgetting, [run], [], panel.result, "forgetting")


def _wire_export(panel: ExportPanel, run: gr.Dropdown, jobs: Jobs, settings: ServerSettings):
    """Merge, push and GGUF, each checked on the server: who may, and into which folder."""

    def merge(run_id, out, request: gr.Request):
        actions.require_owner(jobs, settings, request, run_id, out, "merge")
        return actions.merge(jobs, settings.workspace, run_id, out)

    def push(run_id, out, repo_id, secret, request: gr.Request, oauth: gr.OAuthToken | None):
        actions.require_owner(jobs, settings, request, run_id, out, "push")
        hub_token = actions.caller_push_token(settings.access, secret, oauth)
        return actions.push(jobs, settings.workspace, run_id, out, repo_id, hub_token)

    def own_folder(request: gr.Request):
        return actions.default_export_folder(settings, request)

    def gguf(run_id, out, format, request: gr.Request, progress=gr.Progress()):  # noqa: B008
        return actions.export_gguf(jobs, settings, request, run_id, out, format, progress)

    clicks = (
        (panel.merge, merge, [run, panel.folder], "export"),
        (panel.gguf, gguf, [run, panel.folder, panel.gguf_format], "export_gguf"),
        (panel.push, push, [run, panel.folder, panel.repo, panel.token], "push_click"),
    )
    for button, fn, inputs, api_name in clicks:
        _click(button, _errors_as_text(fn, 0), fn, inputs, [], panel.result, api_name)
    gr.on(None, own_folder, None, panel.folder, **QUIET)


# ---------------------------------------------------------------- errors as text


def _click(
    button: gr.Button, on_page: Callable, api: Callable, inputs: list, outputs: list,
    note: gr.Markdown, api_name: str,
) -> None:  # fmt: skip
    """The button runs `on_page`, which says what went wrong in `note` beside it (no red
    "Error" badges); the public endpoint `api_name` runs `api` on a hidden twin, so API
    callers still get errors as errors (gradio_client raises them)."""
    twin = gr.Button(visible=False, elem_id=f"pg-api-{api_name.replace('_', '-')}")
    twin.click(api, inputs, outputs or note, api_name=api_name)  # first: it keeps the name
    button.click(on_page, inputs, [*outputs, note], api_visibility="private")


def _errors_as_text(fn: Callable, others: int) -> Callable:
    """`fn` for the page: its `others` outputs, then a note ("" when it worked, the gr.Error's
    text when not, the other outputs left as they were). With others=0 the note is fn's
    only output: its answer, or the error's text."""

    @functools.wraps(fn)  # gradio reads fn's signature: gr.Request, gr.Progress, OAuth
    def on_page(*args, **kwargs):
        try:
            value = fn(*args, **kwargs)
        except gr.Error as exc:
            return (*[gr.skip()] * others, str(exc.message)) if others else str(exc.message)
        return (*value, "") if others else value

    return on_page


def _write_report(jobs: Jobs, run_id: str, report: dict) -> str:
    """The report as an .html file in gradio's upload cache (inside the workspace)."""
    html = actions.report_page(jobs, run_id, report)
    folder = Path(tempfile.mkdtemp(dir=os.environ.get("GRADIO_TEMP_DIR")))
    path = folder / f"{run_id}-report.html"
    path.write_text(html, encoding="utf-8")
    return str(path)
