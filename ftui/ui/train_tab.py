"""Train tab: a placeholder until the training issue lands, saying what it will do."""

from __future__ import annotations

import gradio as gr

from ftui.ui.method_tab import selection_summary


def build_train_tab(dataset: gr.State, model_box: gr.Textbox) -> None:
    summary = gr.Markdown(selection_summary({}, "default"), elem_id="train-selection")
    gr.Markdown(
        "**Coming next:** training in its own process with live loss and eval-loss curves, "
        "learning rate, tokens/s, memory, ETA and the log tail; cancel and resume; a queue and "
        "run history that survive restarts."
    )
    dataset.change(selection_summary, [dataset, model_box], summary)
