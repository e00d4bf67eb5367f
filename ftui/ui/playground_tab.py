"""Playground tab: base, few-shot and fine-tuned side by side; batch scores; forgetting; export.

Lays out and wires only. The work happens in ftui.evaluate (one shared Comparison holds one
copy of the base weights for all three columns), ftui.export (merge, Hub push) and
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

from ftui.config import EvalConfig, field_help
from ftui.evaluate.cache import ComparisonCache
from ftui.evaluate.compare import TITLES, VARIANTS
from ftui.runs.jobs import Jobs
from ftui.server.settings import ServerSettings
from ftui.ui import playground_actions as actions


def build_playground_tab(settings: ServerSettings, jobs: Jobs) -> None:
    cache = ComparisonCache()

    gr.Markdown(
        "Ask the same question to the **base** model, the base with **few-shot** examples "
        "from the training data, and the **fine-tuned** run, with the same decoding settings."
    )
    with gr.Row(equal_height=True):
        run = gr.Dropdown([], label="Fine-tuned run", scale=4, elem_id="pg-run")
        refresh = gr.Button("Refresh runs", scale=1)
    prompt = gr.Textbox(label="Prompt", lines=4, elem_id="pg-prompt")
    with gr.Accordion("Decoding and few-shot examples", open=False):
        with gr.Row():
            max_new = gr.Slider(
                8, 512, EvalConfig.max_new_tokens, step=8, label="Max new tokens",
                info=field_help(EvalConfig, "max_new_tokens"),
            )  # fmt: skip
            temperature = gr.Slider(
                0.0, 1.5, 0.0, step=0.05, label="Temperature", info="0 = greedy (repeatable)"
            )
            top_p = gr.Slider(0.1, 1.0, 1.0, step=0.05, label="Top-p")
        shots = gr.Dataframe(
            headers=["question", "answer"],
            label="Few-shot examples (edit, add or delete rows)",
            interactive=True,
            wrap=True,
            elem_id="pg-shots",
        )
    ask = gr.Button("Compare", variant="primary", elem_id="pg-compare")
    answers, stats = [], []
    with gr.Row(equal_height=True):
        for variant in VARIANTS:
            with gr.Column(min_width=260):
                gr.Markdown(f"### {TITLES[variant]}")
                answers.append(gr.Textbox(label="Answer", lines=6, elem_id=f"pg-{variant}"))
                stats.append(gr.Markdown("", elem_id=f"pg-{variant}-stats"))

    gr.Markdown("## Batch evaluation on the validation split")
    with gr.Row(equal_height=True):
        limit = gr.Slider(1, 500, EvalConfig.limit, step=1, label="Examples", scale=3)
        evaluate = gr.Button("Evaluate", variant="primary", scale=1, elem_id="pg-evaluate")
    scores = gr.Dataframe(label="Scores", interactive=False, elem_id="pg-scores")
    chart = gr.BarPlot(
        x="bar", y="score", color="variant", title="Task scores (higher is better)",
        x_title="metric · variant", y_lim=[0, 1], height=320, elem_id="pg-chart",
    )  # fmt: skip
    cases = gr.Markdown("", elem_id="pg-cases")
    examples = gr.Dataframe(
        label="Every example", interactive=False, wrap=True, max_height=500, elem_id="pg-examples"
    )
    download = gr.File(
        label="HTML report (scores, examples, curves, config; opens offline)",
        interactive=False,
        elem_id="pg-report",
    )

    gr.Markdown("## Forgetting check")
    forget = gr.Button("Run the forgetting check", elem_id="pg-forget")
    forgetting = gr.Markdown("", elem_id="pg-forgetting")

    gr.Markdown("## Export")
    demo = actions.is_demo(settings.access)  # the server refuses anyway; say so up front
    if demo:
        gr.Markdown(actions.DEMO_NO_EXPORT, elem_id="pg-export-off")
    with gr.Row(equal_height=True):
        folder = gr.Textbox(
            label="Folder in the workspace", value="exports/", scale=3, elem_id="pg-folder"
        )
        merge = gr.Button(
            "Merge and save (safetensors)", scale=1, elem_id="pg-merge", interactive=not demo
        )
    with gr.Row(equal_height=True):
        repo = gr.Textbox(label="Hub repo id", placeholder="you/model-name", scale=2)
        token = gr.Textbox(
            label="Hub token", type="password", scale=2, elem_id="pg-token",
            info="Your own token with write access (huggingface.co/settings/tokens). Used for "
            "this push only: never stored or logged. The server's token is not used.",
        )  # fmt: skip
        push = gr.Button("Push to the Hub", scale=1, elem_id="pg-push", interactive=not demo)
    exported = gr.Markdown("", elem_id="pg-export")

    # ---------------------------------------------------------------- wiring
    def load_run(run_id):
        return actions.run_defaults(jobs, run_id)

    refresh.click(
        lambda: gr.Dropdown(choices=actions.finished_runs(jobs)),
        None,
        run,
        api_name="finished_runs",
    )
    gr.on(None, lambda: gr.Dropdown(choices=actions.finished_runs(jobs)), None, run)
    run.change(load_run, run, [prompt, shots, max_new, limit])

    def compare(run_id, text, shot_rows, tokens, temp, p):
        yield from actions.stream_three(jobs, cache, run_id, text, shot_rows, tokens, temp, p)

    ask.click(
        compare, [run, prompt, shots, max_new, temperature, top_p], [*answers, *stats],
        api_name="compare",
    )  # fmt: skip

    def evaluate_click(run_id, count, progress=gr.Progress()):  # noqa: B008 - gradio's API
        report = actions.evaluate(jobs, run_id, int(count), progress)
        page = _write_report(jobs, run_id, report)
        return (*actions.report_views(report), page)

    evaluate.click(
        evaluate_click, [run, limit], [scores, chart, cases, examples, download],
        api_name="evaluate",
    )  # fmt: skip
    forget.click(
        lambda run_id: actions.forgetting_markdown(jobs, cache, run_id), run, forgetting,
        api_name="forgetting",
    )  # fmt: skip
    workspace, access = settings.workspace, settings.access

    def merge_click(run_id, out, request: gr.Request):
        actions.require_owner(jobs, workspace, access, request, run_id, out, "merge")
        return actions.merge(jobs, workspace, run_id, out)

    def push_click(run_id, out, repo_id, secret, request: gr.Request, oauth: gr.OAuthToken | None):
        actions.require_owner(jobs, workspace, access, request, run_id, out, "push")
        hub_token = actions.caller_push_token(access, secret, oauth)
        return actions.push(jobs, workspace, run_id, out, repo_id, hub_token)

    def own_folder(request: gr.Request):
        return actions.default_export_folder(access, request)

    merge.click(merge_click, [run, folder], exported, api_name="export")
    push.click(push_click, [run, folder, repo, token], exported)
    gr.on(None, own_folder, None, folder, api_visibility="private", show_progress="hidden")


def _write_report(jobs: Jobs, run_id: str, report: dict) -> str:
    """The report as an .html file in gradio's upload cache (inside the workspace)."""
    html = actions.report_page(jobs, run_id, report)
    folder = Path(tempfile.mkdtemp(dir=os.environ.get("GRADIO_TEMP_DIR")))
    path = folder / f"{run_id}-report.html"
    path.write_text(html, encoding="utf-8")
    return str(path)
