"""Playground tab: base, few-shot and fine-tuned side by side; batch scores; forgetting; export.

Wiring only: the components come from `ftui.ui.playground_layout`, the work from
`ftui.ui.playground_actions`, which calls ftui.evaluate (one shared Comparison holds one copy
of the base weights for all three columns), ftui.export (merge, Hub push), ftui.gguf_export
(GGUF + Ollama Modelfile) and
ftui.evaluate.report (the downloadable HTML). Everything a user names — run ids, export
folders — is checked on the server against the job index and the workspace. A push goes out
with the caller's own Hub token (typed, or their HF login in hf mode), never the server's
unless an admin opted in (ftui.server.hub_auth); a public demo neither merges nor pushes.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import gradio as gr

from ftui.evaluate.cache import ComparisonCache
from ftui.gguf_export import gguf_formats
from ftui.runs.jobs import Jobs
from ftui.server.settings import ServerSettings
from ftui.ui import playground_actions as actions
from ftui.ui import playground_layout as layout
from ftui.ui.playground_layout import BatchPanel, ComparePanel, ExportPanel, ForgettingPanel


def build_playground_tab(settings: ServerSettings, jobs: Jobs) -> None:
    cache = ComparisonCache()
    compare = layout.compare_panel()
    batch = layout.batch_panel()
    forgetting = layout.forgetting_panel()
    demo = actions.is_demo(settings)  # the server refuses anyway; say so up front
    export = layout.export_panel(actions.DEMO_NO_EXPORT if demo else "", gguf_formats())
    _wire_compare(compare, batch, jobs, cache)
    _wire_batch(batch, compare.run, jobs)
    _wire_forgetting(forgetting, compare.run, jobs, cache)
    _wire_export(export, compare.run, jobs, settings)


def _wire_compare(
    panel: ComparePanel, batch: BatchPanel, jobs: Jobs, cache: ComparisonCache
) -> None:
    """The run menu fills the prompt, shots and eval settings; Compare streams three answers."""

    def runs():
        return gr.Dropdown(choices=actions.finished_runs(jobs))

    def load_run(run_id):
        return actions.run_defaults(jobs, run_id)

    panel.refresh.click(runs, None, panel.run, api_name="finished_runs")
    gr.on(None, runs, None, panel.run, api_visibility="private")  # page load
    panel.run.change(load_run, panel.run, [panel.prompt, panel.shots, panel.max_new, batch.limit])

    def compare(run_id, text, shot_rows, tokens, temp, p):
        yield from actions.stream_three(jobs, cache, run_id, text, shot_rows, tokens, temp, p)

    inputs = [panel.run, panel.prompt, panel.shots, panel.max_new, panel.temperature, panel.top_p]
    panel.ask.click(compare, inputs, [*panel.answers, *panel.stats], api_name="compare")


def _wire_batch(panel: BatchPanel, run: gr.Dropdown, jobs: Jobs) -> None:
    def evaluate(run_id, count, progress=gr.Progress()):  # noqa: B008 - gradio's API
        report = actions.evaluate(jobs, run_id, count, progress)
        page = _write_report(jobs, run_id, report)
        return (*actions.report_views(report), page)

    outputs = [panel.scores, panel.chart, panel.cases, panel.examples, panel.download]
    panel.evaluate.click(evaluate, [run, panel.limit], outputs, api_name="evaluate")


def _wire_forgetting(
    panel: ForgettingPanel, run: gr.Dropdown, jobs: Jobs, cache: ComparisonCache
) -> None:
    panel.check.click(
        lambda run_id: actions.forgetting_markdown(jobs, cache, run_id),
        run,
        panel.result,
        api_name="forgetting",
    )


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

    panel.merge.click(merge, [run, panel.folder], panel.result, api_name="export")
    gguf_inputs = [run, panel.folder, panel.gguf_format]
    panel.gguf.click(gguf, gguf_inputs, panel.result, api_name="export_gguf")
    inputs = [run, panel.folder, panel.repo, panel.token]
    panel.push.click(push, inputs, panel.result, api_name="push_click")
    gr.on(None, own_folder, None, panel.folder, api_visibility="private", show_progress="hidden")


def _write_report(jobs: Jobs, run_id: str, report: dict) -> str:
    """The report as an .html file in gradio's upload cache (inside the workspace)."""
    html = actions.report_page(jobs, run_id, report)
    folder = Path(tempfile.mkdtemp(dir=os.environ.get("GRADIO_TEMP_DIR")))
    path = folder / f"{run_id}-report.html"
    path.write_text(html, encoding="utf-8")
    return str(path)
