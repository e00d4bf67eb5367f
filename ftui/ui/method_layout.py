"""The Method tab's layout: the recommender, the method and its settings, the cost panes.

Layout only: each function places components and returns them in a dataclass; wiring is in
`ftui.ui.method_wiring`. Every config setting's widget comes from its field
(`ftui.ui.widgets`): the fields declared `tab="method"` are the tab's settings. The
`method.*` ones are per-method, shown only for the methods whose catalog entry
(`METHODS[name].settings`) lists them; the others (batch size, max length, ...) always.
"""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from ftui.config import ModelConfig, field_choices, field_spec
from ftui.methods import METHODS
from ftui.recommend import PERFORMANCE_HELP, PERFORMANCES, SPECIFICITIES, SPECIFICITY_HELP
from ftui.ui.catalog_view import method_markdown, tradeoff_frame
from ftui.ui.method_view import COMPONENTS, CPU_ONLY, GPU_NAMES, catalog_price
from ftui.ui.run_config import selection_summary
from ftui.ui.widgets import config_widget, element_id, tab_widgets

DEFAULT_GPU = next(name for name in GPU_NAMES if name.startswith("H100"))
EXAMPLE_ROWS = 1000  # until the Data tab gives the real number
CHART_ORDER = [label for label, _ in COMPONENTS.values()]
CHART_TITLE = "Memory by component (GB)"
PER_METHOD = "method."  # the dotted-key prefix of per-method settings


@dataclass
class Recommender:
    resources: gr.Dropdown
    rows: gr.Number
    specificity: gr.Radio
    performance: gr.Radio
    button: gr.Button
    apply: gr.Button
    text: gr.Markdown
    state: gr.State  # the recommended settings, dotted config keys


@dataclass
class MethodChoice:
    method: gr.Dropdown
    objective: gr.Dropdown
    info: gr.Markdown  # the chosen method's explanation
    per_method: dict[str, gr.components.Component]  # "method.lora_r" -> widget
    no_settings: gr.Markdown  # shown when the method uses none of them
    common: dict[str, gr.components.Component]  # "train.batch_size" -> widget, always shown


@dataclass
class CostInputs:
    """Where the estimate is for: not config settings, only the estimate's inputs."""

    device: gr.Radio
    gpu: gr.Dropdown
    price: gr.Number
    rows: gr.Number


@dataclass
class CostPanes:
    counts: gr.Markdown
    time: gr.Markdown
    chart: gr.BarPlot
    memory: gr.Markdown
    suggestions: gr.Markdown
    fits: gr.Dataframe
    compare: gr.Dataframe  # every method on this model
    compare_note: gr.Markdown


@dataclass
class MethodLayout:
    summary: gr.Markdown  # what the Data tab and the model box chose
    recommender: Recommender
    choice: MethodChoice
    where: CostInputs
    cost: CostPanes


def layout_method_tab() -> MethodLayout:
    summary = gr.Markdown(selection_summary({}, "default"), elem_id="method-selection")
    recommender = _layout_recommender()
    choice = _layout_method_choice()
    gr.Markdown("## What it costs\nEstimated from the architecture alone: no weights loaded.")
    return MethodLayout(summary, recommender, choice, _layout_cost_inputs(), _layout_cost_panes())


def uses_setting(method: str, key: str) -> bool:
    """Whether `method` uses the per-method setting `key` ("method.lora_r"), per the catalog."""
    return key.removeprefix(PER_METHOD) in METHODS[method].settings


def _layout_recommender() -> Recommender:
    with gr.Accordion("Not sure which method? Get a recommendation", open=True):
        with gr.Row(equal_height=True):
            resources = gr.Dropdown(
                [CPU_ONLY, *GPU_NAMES],
                value=DEFAULT_GPU,
                label="Available resources",
                info="The GPU you can use (its memory decides), or CPU only.",
                elem_id="method-resources",
            )
            rows = gr.Number(
                EXAMPLE_ROWS,
                label="Dataset rows",
                info="From the Data tab once chosen.",
                precision=0,
                minimum=0,
                elem_id="method-rec-rows",
            )
            specificity = gr.Radio(
                list(SPECIFICITIES),
                value="narrow",
                label="Task specificity",
                info=SPECIFICITY_HELP,
                elem_id="method-specificity",
            )
            performance = gr.Radio(
                list(PERFORMANCES),
                value="good",
                label="Performance need",
                info=PERFORMANCE_HELP,
                elem_id="method-performance",
            )
        with gr.Row():
            button = gr.Button(
                "Recommend", variant="primary", elem_id="method-recommend-button", scale=0
            )
            apply = gr.Button(
                "Apply", interactive=False, elem_id="method-apply-button", scale=0, min_width=120
            )
        text = gr.Markdown("", elem_id="method-recommendation")
    return Recommender(
        resources, rows, specificity, performance, button, apply, text, gr.State(None)
    )


def _layout_method_choice() -> MethodChoice:
    """The method menu and objective, the method's settings beside its explanation, then the
    settings every method has."""
    settings = tab_widgets("method", render=False)  # placed below, each where it belongs
    per_method = {key: w for key, w in settings.items() if key.startswith(PER_METHOD)}
    common = {key: w for key, w in settings.items() if key not in per_method}
    gr.Markdown("## Method")
    with gr.Row():
        with gr.Column(scale=2, min_width=320):
            method = _method_menu()
            objective = config_widget(
                "method.objective", elem_id=element_id("method", "method.objective")
            )
            with gr.Row():
                for key, widget in per_method.items():
                    widget.visible = uses_setting(method.value, key)
                    widget.render()
            no_settings = gr.Markdown(
                "This method has no settings of its own.",
                visible=not any(w.visible for w in per_method.values()),
            )
        with gr.Column(scale=3):
            info = gr.Markdown(method_markdown(method.value), elem_id="method-info")
    with gr.Row(equal_height=True):
        for widget in common.values():
            widget.render()
    return MethodChoice(method, objective, info, per_method, no_settings, common)


def _method_menu() -> gr.Dropdown:
    """The method.name menu, showing each method's title (the value stays the name)."""
    titled = [(METHODS[name].title, name) for name in field_spec("method.name").choices]
    return config_widget("method.name", choices=titled, elem_id=element_id("method", "method.name"))


def _layout_cost_inputs() -> CostInputs:
    with gr.Row(equal_height=True):
        device = gr.Radio(
            [c for c in field_choices(ModelConfig, "device") if c != "auto"],
            value="cuda",
            label="Estimate for",
            info="cuda = the GPU below (bf16); cpu = this kind of machine (fp32).",
        )
        gpu = gr.Dropdown(
            list(GPU_NAMES),
            value=DEFAULT_GPU,
            label="GPU for time and cost",
            elem_id="method-gpu",
        )
        price = gr.Number(
            catalog_price(DEFAULT_GPU),
            label="Price per GPU-hour (USD)",
            info="A typical cloud price; type yours. On CPU: your machine's price per hour.",
            minimum=0,
            step=0.05,
            elem_id="method-price",
        )
        rows = gr.Number(
            EXAMPLE_ROWS,
            label="Training rows",
            info="From the Data tab once a dataset is chosen; type a number to explore.",
            precision=0,
            minimum=0,
            elem_id="method-rows",
        )
    return CostInputs(device, gpu, price, rows)


def _layout_cost_panes() -> CostPanes:
    with gr.Row(equal_height=True):
        counts = gr.Markdown("Computing the estimate...", elem_id="method-counts")
        time = gr.Markdown("", elem_id="method-time")
    with gr.Row():
        with gr.Column(scale=3):
            chart = gr.BarPlot(
                x="component",
                y="GB",
                color="held",
                color_title="Held during",
                title=CHART_TITLE,
                x_title="Component",
                sort=CHART_ORDER,
                height=320,
                elem_id="method-memory-chart",
            )
        with gr.Column(scale=2):
            memory = gr.Markdown("", elem_id="method-memory")
            suggestions = gr.Markdown("", elem_id="method-suggestions")
    # the tables stay hidden until an estimate fills them: an empty one is headed "1 2 3"
    fits = gr.Dataframe(
        label="Fits per GPU", elem_id="method-fits", interactive=False, visible=False
    )
    compare, compare_note = _layout_method_tables()
    return CostPanes(counts, time, chart, memory, suggestions, fits, compare, compare_note)


def _layout_method_tables() -> tuple[gr.Dataframe, gr.Markdown]:
    """All methods on this model (filled by the wiring), and the fixed trade-off table."""
    with gr.Tabs():
        with gr.Tab("All methods on this model"):
            compare_note = gr.Markdown("")
            compare = gr.Dataframe(
                elem_id="method-compare", interactive=False, wrap=True, visible=False
            )
        with gr.Tab("Trade-offs of each method"):
            gr.Dataframe(
                tradeoff_frame(),
                elem_id="method-tradeoffs",
                interactive=False,
                wrap=True,
                max_height=900,
                column_widths=["12%", "17%", "19%", "17%", "17%", "18%"],
            )
    return compare, compare_note
