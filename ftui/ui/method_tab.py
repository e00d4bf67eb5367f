"""Method tab: choose a method and its settings, and see what it costs before spending it.

The layout is `ftui.ui.method_layout` (every config setting's widget built from its field),
the wiring `ftui.ui.method_wiring` (estimate, comparison, recommendation; no weights loaded).
Every widget that changes the estimate is bound to one config key, so the recommender's
settings, the estimator's input and the Train tab's method settings are the same dotted keys
(`method.lora_r`), with no hand-written mapping.
"""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr
from gradio.context import Context

from ftui.ui.method_layout import layout_method_tab
from ftui.ui.method_wiring import wire_method_tab


@dataclass
class MethodTab:
    summary: gr.Markdown
    method: gr.Dropdown
    counts: gr.Markdown
    settings: dict[str, gr.components.Component]  # dotted config key -> its widget


def build_method_tab(dataset: gr.State, model_box: gr.Textbox) -> MethodTab:
    parent = Context.block  # the gr.Tab that app.py opened for this tab, if any
    view = layout_method_tab()
    choice = view.choice
    settings = {
        "model.name_or_path": model_box,  # first: the method_estimate API's first parameter
        "method.name": choice.method,
        "method.objective": choice.objective,
        **choice.per_method,
        **choice.common,
    }
    wire_method_tab(view, settings, dataset, model_box, parent)
    return MethodTab(view.summary, choice.method, view.cost.counts, settings)
