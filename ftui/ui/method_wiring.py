"""The Method tab's wiring: what each change re-estimates, shows or carries over.

The numbers come from `ftui.ui.method_view` and `ftui.ui.catalog_view` (meta-device
parameter counts, memory by component, time, cost, fits per GPU, all methods side by side)
and the recommendation from `ftui.recommend`; no weights are loaded. The estimator reads the
tab's settings as a dict keyed by dotted config key, the same keys the recommender sets.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr
import pandas as pd
from gradio.events import Dependency

from ftui.methods import objective_for_format
from ftui.ui.catalog_view import compare_for_ui, method_markdown, recommend_for_ui
from ftui.ui.method_layout import CostInputs, MethodChoice, MethodLayout, uses_setting
from ftui.ui.method_view import CPU_ONLY, catalog_price, estimate_for_ui
from ftui.ui.run_config import selection_summary

Settings = dict[str, gr.components.Component]  # dotted config key -> its widget
LATEST = {"show_progress": "minimal", "trigger_mode": "always_last"}


@dataclass
class Refresh:
    """The two events that redraw the cost panes: this method's estimate, then all methods."""

    estimate: dict[str, Any]
    compare: dict[str, Any]

    def after(self, event: Dependency) -> None:
        event.then(**self.estimate).then(**self.compare)


def wire_method_tab(
    view: MethodLayout,
    settings: Settings,
    dataset: gr.State,
    model_box: gr.Textbox,
    parent: gr.blocks.Block | None,
) -> None:
    refresh = _wire_estimate(view, settings, parent)
    _wire_method_choice(view.choice, refresh)
    _wire_where(view, refresh)
    _wire_dataset(view, settings, dataset, model_box, refresh)
    _wire_recommender(view, settings, dataset, model_box, refresh)


def _wire_estimate(
    view: MethodLayout, settings: Settings, parent: gr.blocks.Block | None
) -> Refresh:
    """Any setting or input re-estimates; the first estimate runs when the tab opens."""
    keys, where = list(settings), _where_widgets(view.where)
    inputs = [*settings.values(), *where]

    def split(values) -> tuple[dict, tuple]:
        """Widget values -> (dotted config settings, (device, gpu, price, rows))."""
        return dict(zip(keys, values[: len(keys)], strict=True)), tuple(values[len(keys) :])

    def estimate(*values):
        return _estimate_view(*split(values))

    def comparison(*values):
        return _comparison_view(*split(values))

    cost = view.cost
    panes = [cost.counts, cost.time, cost.chart, cost.memory, cost.fits, cost.suggestions]
    tables = [cost.compare, cost.compare_note]
    refresh = Refresh(
        estimate={"fn": estimate, "inputs": inputs, "outputs": panes, **LATEST},
        compare={"fn": comparison, "inputs": inputs, "outputs": tables, **LATEST},
    )
    triggers = _setting_triggers(settings, view.choice.method)
    triggers += [view.where.price.input, view.where.rows.input]
    gr.on(triggers, api_name="method_estimate", **refresh.estimate).then(**refresh.compare)
    # The first estimate runs when the tab is opened, not when the page loads: it imports
    # torch and transformers, and two threads importing transformers for the first time at
    # once fail (the Data tab's first tokenizer load is the usual other one).
    if isinstance(parent, gr.Tab):
        parent.select(**refresh.estimate).then(**refresh.compare)
    else:  # no triggers and no inputs: runs once when the page loads
        refresh.after(gr.on(None, lambda: None))
    return refresh


def _setting_triggers(settings: Settings, method: gr.Dropdown) -> list:
    """Text boxes count when submitted or left; the method menu first shows its settings."""
    triggers = []
    for widget in settings.values():
        if isinstance(widget, gr.Textbox):
            triggers += [widget.submit, widget.blur]
        elif widget is not method:
            triggers.append(widget.input)
    return triggers


def _wire_method_choice(choice: MethodChoice, refresh: Refresh) -> None:
    """The explanation and the relevant settings first, then the estimate."""
    keys = list(choice.per_method)

    def show(name: str) -> list:
        return _method_view(name, keys)

    outputs = [choice.info, *_shown_widgets(choice)]
    refresh.after(choice.method.input(show, choice.method, outputs, show_progress="hidden"))


def _wire_where(view: MethodLayout, refresh: Refresh) -> None:
    """Price and the recommender's resources follow the GPU and the device."""
    where = view.where
    follow = [where.price, view.recommender.resources]
    refresh.after(where.gpu.input(_gpu_choice, where.gpu, follow))
    refresh.after(where.device.input(_device_choice, [where.device, where.gpu], follow))


def _wire_dataset(
    view: MethodLayout,
    settings: Settings,
    dataset: gr.State,
    model_box: gr.Textbox,
    refresh: Refresh,
) -> None:
    """The Data tab's choice carries over: summary, row counts, max length, objective."""
    rows = [view.where.rows, view.recommender.rows]
    carried = [view.summary, *rows, settings["data.max_length"], view.choice.objective]
    refresh.after(dataset.change(_from_dataset, [dataset, model_box], carried))
    model_box.change(selection_summary, [dataset, model_box], view.summary)


def _wire_recommender(
    view: MethodLayout,
    settings: Settings,
    dataset: gr.State,
    model_box: gr.Textbox,
    refresh: Refresh,
) -> None:
    """Recommend from the inputs above; Apply sets the recommended settings."""
    rec, choice = view.recommender, view.choice
    keys, widgets = list(settings), list(settings.values())
    shown = _shown_widgets(choice)

    def apply(chosen):
        """Set the recommended settings and show the method's explanation and settings."""
        if not chosen:
            return [gr.skip()] * (len(widgets) + 1 + len(shown))
        updates = [gr.update(value=chosen[key]) if key in chosen else gr.skip() for key in keys]
        return [*updates, *_method_view(chosen["method.name"], list(choice.per_method))]

    rec.button.click(
        _recommend,
        [model_box, rec.resources, rec.rows, rec.specificity, rec.performance, dataset],
        [rec.text, rec.state, rec.apply],
        api_name="recommend",
    )
    refresh.after(rec.apply.click(apply, rec.state, [*widgets, choice.info, *shown]))


def _where_widgets(where: CostInputs) -> list[gr.components.Component]:
    return [where.device, where.gpu, where.price, where.rows]


def _shown_widgets(choice: MethodChoice) -> list[gr.components.Component]:
    """What `_method_view` shows or hides, in its order."""
    return [*choice.per_method.values(), choice.no_settings]


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
        shown_table(view["fits"]),
        view["suggestions"],
    )


def _comparison_view(settings: dict, where: tuple) -> tuple:
    device, gpu_name, price, rows = where
    frame, note = compare_for_ui(
        settings, device=device, gpu_name=gpu_name, price=price, dataset_rows=int(rows or 0)
    )
    return shown_table(frame), note


def shown_table(frame: pd.DataFrame | None) -> dict[str, Any]:
    """A table update that shows the table only with rows in it (the message beside it says
    why there are none): Gradio heads an empty table "1 2 3" or shows a bare header row."""
    has_rows = frame is not None and not frame.empty
    return gr.update(value=frame if has_rows else None, visible=has_rows)


def _method_view(name: str, keys: list[str]) -> list:
    """The method's explanation, only the settings it uses, or the note that it has none."""
    used = [uses_setting(name, key) for key in keys]
    shown = [gr.update(visible=flag) for flag in used]
    return [method_markdown(name), *shown, gr.update(visible=not any(used))]


def _gpu_choice(gpu_name: str) -> tuple[float, str]:
    """The GPU's typical price, and the same GPU for the recommender."""
    return catalog_price(gpu_name), gpu_name


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
