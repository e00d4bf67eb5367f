"""Method tab: choose a method and its settings, and see what it costs before spending it.

Layout and wiring only. The numbers come from `ftui.estimate.view` (exact parameter counts
on the meta device, memory by component, time, cost, fits per GPU, fixes, all methods side
by side) and the recommendation from `ftui.recommend`; no weights are loaded. Every widget
that changes the estimate is bound to one config key, so the recommender's settings and the
estimator's input are the same dotted keys (`method.lora_r`), with no hand-written mapping.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr
from gradio.context import Context

from ftui.config import (
    DataConfig,
    MethodConfig,
    ModelConfig,
    TrainConfig,
    field_choices,
    field_help,
)
from ftui.estimate.catalog_view import (
    compare_for_ui,
    method_markdown,
    recommend_for_ui,
    tradeoff_frame,
)
from ftui.estimate.view import (
    COMPONENTS,
    CPU_ONLY,
    GPU_NAMES,
    METHOD_FIELDS,
    catalog_price,
    estimate_for_ui,
    objective_for_format,
)
from ftui.methods import METHODS
from ftui.recommend import PERFORMANCE_HELP, PERFORMANCES, SPECIFICITIES, SPECIFICITY_HELP
from ftui.ui.run_config import selection_summary

DEFAULT_GPU = next(name for name in GPU_NAMES if name.startswith("H100"))
EXAMPLE_ROWS = 1000  # until the Data tab gives the real number
CHART_ORDER = [label for label, _ in COMPONENTS.values()]
CHART_TITLE = "Memory by component (GB)"


@dataclass
class MethodTab:
    summary: gr.Markdown
    method: gr.Dropdown
    counts: gr.Markdown
    settings: dict[str, gr.components.Component]  # dotted config key -> its widget


def build_method_tab(dataset: gr.State, model_box: gr.Textbox) -> MethodTab:
    parent = Context.block  # the gr.Tab that app.py opened for this tab, if any
    summary = gr.Markdown(selection_summary({}, "default"), elem_id="method-selection")
    rec = _recommender_section()

    gr.Markdown("## Method")
    with gr.Row():
        with gr.Column(scale=2, min_width=320):
            method = gr.Dropdown(
                [(METHODS[name].title, name) for name in field_choices(MethodConfig, "name")],
                value=MethodConfig.name,
                label="Method",
                info=field_help(MethodConfig, "name"),
                elem_id="method-name",
            )
            objective = _dropdown(MethodConfig, "objective", "Objective")
            method_settings = _method_settings()
            no_settings = gr.Markdown("This method has no settings of its own.", visible=False)
        with gr.Column(scale=3):
            info = gr.Markdown(method_markdown(MethodConfig.name), elem_id="method-info")
    with gr.Row(equal_height=True):
        batch = _slider(TrainConfig, "batch_size", "Batch size", 1, 64, 1)
        max_length = _slider(DataConfig, "max_length", "Max length (tokens)", 16, 8192, 16)
        optimizer = _dropdown(TrainConfig, "optimizer", "Optimizer")
        checkpointing = _checkbox(TrainConfig, "gradient_checkpointing", "Gradient checkpointing")

    gr.Markdown("## What it costs\nEstimated from the architecture alone: no weights loaded.")
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
    fits = gr.Dataframe(label="Fits per GPU", elem_id="method-fits", interactive=False)
    with gr.Tabs():
        with gr.Tab("All methods on this model"):
            compare_note = gr.Markdown("")
            compare = gr.Dataframe(elem_id="method-compare", interactive=False, wrap=True)
        with gr.Tab("Trade-offs of each method"):
            gr.Dataframe(
                tradeoff_frame(),
                elem_id="method-tradeoffs",
                interactive=False,
                wrap=True,
                max_height=900,
                column_widths=["12%", "17%", "19%", "17%", "17%", "18%"],
            )

    # ---------------------------------------------------------------- wiring
    settings = {
        "model.name_or_path": model_box,
        "method.name": method,
        "method.objective": objective,
        **{f"method.{name}": widget for name, widget in method_settings.items()},
        "train.batch_size": batch,
        "data.max_length": max_length,
        "train.optimizer": optimizer,
        "train.gradient_checkpointing": checkpointing,
    }
    keys, widgets = list(settings), list(settings.values())
    inputs = [*widgets, device, gpu, price, rows]
    shown = [*method_settings.values(), no_settings]
    fields = list(method_settings)
    estimate_outputs = [counts, time, chart, memory, fits, suggestions]

    def split(values) -> tuple[dict, tuple]:
        """Widget values -> (dotted config settings, (device, gpu, price, rows))."""
        return dict(zip(keys, values[: len(keys)], strict=True)), tuple(values[len(keys) :])

    def estimate(*values):
        return _estimate_view(*split(values))

    def comparison(*values):
        return _comparison_view(*split(values))

    def apply(chosen):
        """Set the recommended settings and show the method's explanation and settings."""
        if not chosen:
            return [gr.skip()] * (len(widgets) + 1 + len(shown))
        updates = [gr.update(value=chosen[key]) if key in chosen else gr.skip() for key in keys]
        return [*updates, *_method_view(chosen["method.name"], fields)]

    refresh = {
        "fn": estimate,
        "inputs": inputs,
        "outputs": estimate_outputs,
        "show_progress": "minimal",
        "trigger_mode": "always_last",
    }
    compare_all = {
        "fn": comparison,
        "inputs": inputs,
        "outputs": [compare, compare_note],
        "show_progress": "minimal",
        "trigger_mode": "always_last",
    }
    text_boxes = [w for w in widgets if isinstance(w, gr.Textbox)]
    triggers = [w.input for w in widgets if not isinstance(w, gr.Textbox) and w is not method]
    triggers += [e for box in text_boxes for e in (box.submit, box.blur)]
    triggers += [price.input, rows.input]
    gr.on(triggers, api_name="method_estimate", **refresh).then(**compare_all)
    # The first estimate runs when the tab is opened, not when the page loads: it imports
    # torch and transformers, and two threads importing transformers for the first time at
    # once fail (the Data tab's first tokenizer load is the usual other one).
    if isinstance(parent, gr.Tab):
        parent.select(**refresh).then(**compare_all)
    else:  # no triggers and no inputs: runs once when the page loads
        gr.on(None, lambda: None).then(**refresh).then(**compare_all)

    # The explanation and the relevant settings first, then the estimate.
    method.input(
        lambda name: _method_view(name, fields), method, [info, *shown], show_progress="hidden"
    ).then(**refresh).then(**compare_all)
    gpu.input(lambda name: (catalog_price(name), name), gpu, [price, rec.resources]).then(
        **refresh
    ).then(**compare_all)
    device.input(_device_choice, [device, gpu], [price, rec.resources]).then(**refresh).then(
        **compare_all
    )
    dataset.change(
        _from_dataset, [dataset, model_box], [summary, rows, rec.rows, max_length, objective]
    ).then(**refresh).then(**compare_all)
    model_box.change(selection_summary, [dataset, model_box], summary)

    rec.button.click(
        _recommend,
        [model_box, rec.resources, rec.rows, rec.specificity, rec.performance, dataset],
        [rec.text, rec.state, rec.apply],
        api_name="recommend",
    )
    rec.apply.click(apply, rec.state, [*widgets, info, *shown]).then(**refresh).then(**compare_all)
    return MethodTab(summary=summary, method=method, counts=counts, settings=settings)


# ---------------------------------------------------------------- layout pieces


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


def _recommender_section() -> Recommender:
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


def _method_settings() -> dict[str, Any]:
    """One widget per method-specific field, shown only for the methods that use it."""
    with gr.Row():
        lora_r = _slider(MethodConfig, "lora_r", "LoRA rank r", 1, 256, 1)
        lora_alpha = _slider(MethodConfig, "lora_alpha", "LoRA alpha", 1, 512, 1)
        lora_dropout = _slider(MethodConfig, "lora_dropout", "LoRA dropout", 0.0, 0.5, 0.01)
    with gr.Row():
        target_modules = gr.Textbox(
            value=MethodConfig.target_modules,
            label="Target modules",
            info=field_help(MethodConfig, "target_modules") + " Press Enter to apply.",
        )
        use_dora = _checkbox(MethodConfig, "use_dora", "DoRA")
        use_rslora = _checkbox(MethodConfig, "use_rslora", "rsLoRA")
    with gr.Row():
        quant_type = _dropdown(MethodConfig, "quant_type", "4-bit type")
        double_quant = _checkbox(MethodConfig, "double_quant", "Double quantization")
    with gr.Row():
        freeze_layers = _slider(
            MethodConfig, "freeze_trainable_layers", "Trained top blocks", 0, 128, 1
        )
        virtual_tokens = _slider(MethodConfig, "num_virtual_tokens", "Virtual tokens", 1, 256, 1)
        adapter_len = _slider(MethodConfig, "adapter_len", "Adapter length", 1, 128, 1)
        adapter_layers = _slider(MethodConfig, "adapter_layers", "Adapted layers", 1, 128, 1)
        bottleneck = _slider(MethodConfig, "bottleneck_size", "Bottleneck width", 8, 1024, 8)
    widgets = {
        "lora_r": lora_r,
        "lora_alpha": lora_alpha,
        "lora_dropout": lora_dropout,
        "target_modules": target_modules,
        "use_dora": use_dora,
        "use_rslora": use_rslora,
        "quant_type": quant_type,
        "double_quant": double_quant,
        "freeze_trainable_layers": freeze_layers,
        "num_virtual_tokens": virtual_tokens,
        "adapter_len": adapter_len,
        "adapter_layers": adapter_layers,
        "bottleneck_size": bottleneck,
    }
    relevant = METHOD_FIELDS.get(MethodConfig.name, ())
    for name, widget in widgets.items():
        widget.visible = name in relevant
    return widgets


def _slider(section: type, name: str, label: str, low: float, high: float, step: float):
    return gr.Slider(
        low,
        high,
        value=getattr(section, name),
        step=step,
        label=label,
        info=field_help(section, name),
    )


def _checkbox(section: type, name: str, label: str) -> gr.Checkbox:
    return gr.Checkbox(value=getattr(section, name), label=label, info=field_help(section, name))


def _dropdown(section: type, name: str, label: str) -> gr.Dropdown:
    return gr.Dropdown(
        field_choices(section, name),
        value=getattr(section, name),
        label=label,
        info=field_help(section, name),
    )


# ---------------------------------------------------------------- callbacks


def _estimate_view(settings: dict, where: tuple) -> tuple:
    device, gpu_name, price, rows = where
    view = estimate_for_ui(
        settings, device=device, gpu_name=gpu_name, price=price, dataset_rows=int(rows or 0)
    )
    return (
        view["counts"],
        view["time"],
        # data only: a new title or sort would make Gradio redraw the plot from scratch, which
        # races with its data update and can leave the previous bars on screen
        view["components"],
        view["memory"],
        view["fits"],
        view["suggestions"],
    )


def _comparison_view(settings: dict, where: tuple) -> tuple:
    device, gpu_name, price, rows = where
    return compare_for_ui(
        settings, device=device, gpu_name=gpu_name, price=price, dataset_rows=int(rows or 0)
    )


def _method_view(name: str, fields: list[str]) -> list:
    """The method's explanation, and only the settings it uses."""
    relevant = METHOD_FIELDS.get(name, ())
    shown = [gr.update(visible=field in relevant) for field in fields]
    return [method_markdown(name), *shown, gr.update(visible=not relevant)]


def _device_choice(device: str, gpu_name: str) -> tuple[float, str]:
    """Price and recommender resources follow the device: CPU is your own machine."""
    if device == "cpu":
        return 0.0, CPU_ONLY
    return catalog_price(gpu_name), gpu_name


def _from_dataset(dataset: dict, model: str):
    """Carry the Data tab's choice over: summary, row counts, max length, objective."""
    if not dataset:
        return selection_summary(dataset, model), gr.skip(), gr.skip(), gr.skip(), gr.skip()
    rows = dataset.get("rows") or gr.skip()
    length = dataset.get("max_length") or gr.skip()
    objective = objective_for_format(dataset.get("format")) or gr.skip()
    return selection_summary(dataset, model), rows, rows, length, objective


def _recommend(model, resources, rows, specificity, performance, dataset):
    rec, text = recommend_for_ui(
        model, resources, rows, specificity, performance, (dataset or {}).get("format")
    )
    settings = rec.settings if rec else None
    return text, settings, gr.update(interactive=rec is not None)
