"""One builder for every settings widget, from what its config field declares.

A field's label, help (`info=`), choices, range, slider and step live on the field
(ftui.config.schema); this module only turns them into a Gradio component, so no tab types a
label or a range. Number boxes take the field's full range; a field that declares a slider
gets a slider over its (narrower, practical) range.

    epochs = config_widget("train.epochs", value=3)
    widgets = tab_widgets("train")        # every field with tab="train", dotted key -> widget
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from ftui.config import FieldSpec, FtuiConfig, field_spec, schema_fields


def config_widget(
    key: str | FieldSpec, value: Any = None, root: type = FtuiConfig, **options: Any
) -> gr.components.Component:
    """The widget for one field (its default value unless `value` is given); `options`
    go to the component (elem_id, visible, scale, ...) and may override label or info."""
    spec = key if isinstance(key, FieldSpec) else field_spec(key, root)
    value = spec.default if value is None else value
    options = {"label": spec.label, "info": spec.help, **options}
    if spec.kind == "bool":
        return gr.Checkbox(value=value, **options)
    if spec.kind == "choice":
        return gr.Dropdown(**{"choices": spec.choices, "value": value, **options})
    if spec.kind in ("int", "float"):
        return _number(spec, value, options)
    return gr.Textbox(value="" if value is None else str(value), **options)


def tab_widgets(
    tab: str, values: dict[str, Any] | None = None, root: type = FtuiConfig, **options: Any
) -> dict[str, gr.components.Component]:
    """One widget per field declared with `tab=...`, keyed by dotted key, in schema order;
    each gets elem_id '<tab>-<key>' (dots and underscores as dashes)."""
    values = values or {}
    return {
        spec.key: config_widget(
            spec, values.get(spec.key), root, elem_id=element_id(tab, spec.key), **options
        )
        for spec in schema_fields(root)
        if spec.tab == tab
    }


def element_id(tab: str, key: str) -> str:
    """'train', 'train.eval_every' -> 'train-eval-every' (the section is dropped when it
    names the tab, so existing ids stay stable)."""
    section, _, name = key.rpartition(".")
    words = name if section == tab else key
    return f"{tab}-{words.replace('.', '-').replace('_', '-')}"


def _number(spec: FieldSpec, value: Any, options: dict[str, Any]) -> gr.components.Component:
    whole = spec.kind == "int"
    if spec.slider is not None:
        low, high, step = spec.slider
        return gr.Slider(low, high, value=value, step=step, **options)
    # No minimum/maximum on the box: the config checks the range on the server and says
    # which key is wrong and what to type, the same words as for YAML and the CLI.
    limits: dict[str, Any] = {}
    step = spec.step or (1 if whole else None)
    if step is not None:
        limits["step"] = step
    return gr.Number(value, precision=0 if whole else None, **limits, **options)
