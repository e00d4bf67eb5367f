"""Playground tab: a placeholder until the playground issue lands, saying what it will do."""

from __future__ import annotations

import gradio as gr


def build_playground_tab() -> None:
    gr.Markdown(
        "**Coming next:** the same prompt to the base model, the few-shot prompted base and "
        "your fine-tuned model, side by side with latency and tokens/s; batch scoring on the "
        "validation split with best and worst cases; a forgetting check; merge and export."
    )
