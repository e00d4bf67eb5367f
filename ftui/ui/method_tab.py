"""Method tab: what has been chosen so far and the method catalog to come.

Shows the dataset and model carried over from the Data tab, so a user sees the state follows
them. The method catalog, parameter counts, estimator and recommender arrive with their issue.
"""

from __future__ import annotations

import gradio as gr

from ftui.config import MethodConfig, field_choices, field_help


def build_method_tab(dataset: gr.State, model_box: gr.Textbox) -> gr.Markdown:
    summary = gr.Markdown(selection_summary({}, "default"), elem_id="method-selection")
    gr.Dropdown(
        field_choices(MethodConfig, "objective"),
        value=MethodConfig.objective,
        label="Objective",
        info=field_help(MethodConfig, "objective"),
    )
    gr.Markdown(
        "**Coming next:** full fine-tuning, freeze, LoRA / DoRA / rsLoRA, QLoRA 4-bit, 8-bit "
        "LoRA, IA3, prefix and prompt tuning, LLaMA-Adapter and bottleneck adapters, with "
        "exact trainable-parameter counts, a memory/time/cost estimator per GPU and a "
        "recommender."
    )
    dataset.change(selection_summary, [dataset, model_box], summary)
    model_box.change(selection_summary, [dataset, model_box], summary)
    return summary


def selection_summary(dataset: dict, model: str) -> str:
    """One line per choice carried over from earlier tabs."""
    model_line = f"**Model:** {model or 'default'}"
    if not dataset:
        return f"{model_line}\n\n**Dataset:** none yet — choose one in the Data tab."
    verdict = "ready" if dataset.get("ok") else "has errors, fix them in the Data tab"
    return (
        f"{model_line}\n\n**Dataset:** {dataset['source']} — {dataset.get('format')}, "
        f"{dataset.get('rows')} rows ({verdict})"
    )
