"""The Playground tab's layout: the three-way comparison, batch scores, forgetting, export.

Layout only: each piece places its components and returns them in a dataclass that
`ftui.ui.playground_tab` wires. Settings that are config fields (eval.max_new_tokens,
eval.limit) come from `ftui.ui.widgets.config_widget` with the field's label and help, and are
checked against the field on the server; the decoding knobs that are not config fields
(temperature, top-p) are placed here.
"""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from ftui.evaluate.compare import TITLES, VARIANTS
from ftui.ui.playground_actions import NO_RUN
from ftui.ui.widgets import config_widget


@dataclass
class ComparePanel:
    run: gr.Dropdown
    refresh: gr.Button
    prompt: gr.Textbox
    max_new: gr.components.Component  # eval.max_new_tokens
    temperature: gr.Slider
    top_p: gr.Slider
    shots: gr.Dataframe
    ask: gr.Button
    note: gr.Markdown  # beside Compare: why it cannot answer, in words
    answers: list[gr.Textbox]  # one per VARIANTS
    stats: list[gr.Markdown]  # one per VARIANTS


@dataclass
class BatchPanel:
    limit: gr.components.Component  # eval.limit
    evaluate: gr.Button
    note: gr.Markdown  # beside Evaluate: errors in words
    results: gr.Column  # hidden until there are scores: no empty tables
    scores: gr.Dataframe
    chart: gr.BarPlot
    cases: gr.Markdown
    examples: gr.Dataframe
    download: gr.File


@dataclass
class ForgettingPanel:
    check: gr.Button
    result: gr.Markdown


@dataclass
class ExportPanel:
    folder: gr.Textbox
    merge: gr.Button
    repo: gr.Textbox
    token: gr.Textbox
    push: gr.Button
    gguf_format: gr.Dropdown
    gguf: gr.Button
    result: gr.Markdown


def compare_panel() -> ComparePanel:
    """The run, the prompt, decoding and few-shot settings, and one answer column per variant."""
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
            max_new = config_widget("eval.max_new_tokens", elem_id="pg-max-new-tokens")
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
    with gr.Row(equal_height=True):
        # off until a run and a prompt are chosen (playground_tab turns it on)
        ask = gr.Button(
            "Compare", variant="primary", interactive=False, scale=0, min_width=160,
            elem_id="pg-compare",
        )  # fmt: skip
        note = gr.Markdown(NO_RUN, elem_id="pg-compare-note")
    answers, stats = [], []
    with gr.Row(equal_height=True):
        for variant in VARIANTS:
            with gr.Column(min_width=260):
                gr.Markdown(f"### {TITLES[variant]}")
                answers.append(gr.Textbox(label="Answer", lines=6, elem_id=f"pg-{variant}"))
                stats.append(gr.Markdown("", elem_id=f"pg-{variant}-stats"))
    return ComparePanel(
        run, refresh, prompt, max_new, temperature, top_p, shots, ask, note, answers, stats
    )


def batch_panel() -> BatchPanel:
    """How many validation rows to score, the scores, best/worst cases and the report file."""
    gr.Markdown("## Batch evaluation on the validation split")
    with gr.Row(equal_height=True):
        limit = config_widget("eval.limit", elem_id="pg-limit", scale=3)
        evaluate = gr.Button("Evaluate", variant="primary", scale=1, elem_id="pg-evaluate")
    note = gr.Markdown("", elem_id="pg-evaluate-note")
    with gr.Column(visible=False) as results:
        scores, chart, cases, examples, download = _batch_results()
    return BatchPanel(limit, evaluate, note, results, scores, chart, cases, examples, download)


def _batch_results() -> tuple:
    """Scores, their chart, best/worst cases, every example and the report file."""
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
    return scores, chart, cases, examples, download


def forgetting_panel() -> ForgettingPanel:
    gr.Markdown("## Forgetting check")
    check = gr.Button("Run the forgetting check", elem_id="pg-forget")
    return ForgettingPanel(check, gr.Markdown("", elem_id="pg-forgetting"))


def export_panel(demo_note: str, gguf_formats: list[str]) -> ExportPanel:
    """Merge into a workspace folder, push to the Hub, or write one GGUF file (in one of
    `gguf_formats`) with an Ollama Modelfile; in a public demo all are off and `demo_note`
    says why (the server refuses them anyway)."""
    gr.Markdown("## Export")
    if demo_note:
        gr.Markdown(demo_note, elem_id="pg-export-off")
    allowed = not demo_note
    with gr.Row(equal_height=True):
        folder = gr.Textbox(
            label="Folder in the workspace", value="exports/", scale=3, elem_id="pg-folder"
        )
        merge = gr.Button(
            "Merge and save (safetensors)", scale=1, elem_id="pg-merge", interactive=allowed
        )
    with gr.Row(equal_height=True):
        repo = gr.Textbox(label="Hub repo id", placeholder="you/model-name", scale=2)
        token = gr.Textbox(
            label="Hub token", type="password", scale=2, elem_id="pg-token",
            info="Your own token with write access (huggingface.co/settings/tokens). Used for "
            "this push only: never stored or logged. The server's token is not used.",
        )  # fmt: skip
        push = gr.Button("Push to the Hub", scale=1, elem_id="pg-push", interactive=allowed)
    with gr.Row(equal_height=True):
        gguf_format = gr.Dropdown(
            gguf_formats, value="q8_0", label="GGUF format", scale=2, elem_id="pg-gguf-format",
            info="For llama.cpp, Ollama, LM Studio. f16: the merged weights at half precision; "
            "q8_0: about half the size of f16, answers nearly always the same.",
        )  # fmt: skip
        gguf = gr.Button(
            "Export GGUF + Ollama Modelfile", scale=1, elem_id="pg-gguf", interactive=allowed
        )
    result = gr.Markdown("", elem_id="pg-export")
    return ExportPanel(folder, merge, repo, token, push, gguf_format, gguf, result)
