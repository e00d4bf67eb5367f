"""What each config field declares (label, help, range, slider, tab) and the three places
that read it: the UI widget builder, the YAML writer and the dotted-settings loader.

The "new field" tests add a field to a copy of the schema (dataclasses.make_dataclass) and
show it reaches a widget, the saved YAML and the loader without touching another file; the
CLI's --help is covered in test_cli.py the same way.
"""

from __future__ import annotations

import dataclasses

import gradio as gr
import pytest
import yaml

from ftui.config import (
    ConfigError,
    FtuiConfig,
    TrainConfig,
    config_from_dict,
    config_from_dotted,
    config_to_yaml,
    load_config,
    parse_assignments,
    schema_fields,
    setting,
    write_config,
)
from ftui.ui.widgets import config_widget, element_id, tab_widgets

NEW_FIELD = "warmup_steps"
NEW_LABEL = "Warm-up steps (new)"
NEW_HELP = "Optimizer steps spent warming the learning rate up; 0 = use the warmup share."


def schema_with_a_new_train_field() -> type:
    """A copy of FtuiConfig whose train section has one more field, declared the usual way."""
    new_field = setting(0, NEW_HELP, label=NEW_LABEL, min=0, max=10_000, tab="train")
    train = dataclasses.make_dataclass(
        "TrainConfig", [(NEW_FIELD, int, new_field)], bases=(TrainConfig,)
    )
    return dataclasses.make_dataclass(
        "FtuiConfig",
        [("train", train, dataclasses.field(default_factory=train))],
        bases=(FtuiConfig,),
    )


def comment_above(text: str, line: str) -> str:
    """The `#` comment lines right above `line` in YAML text, joined."""
    lines = text.splitlines()
    index = lines.index(line)
    comment = []
    while index > 0 and lines[index - 1].lstrip().startswith("# "):
        index -= 1
        comment.insert(0, lines[index].lstrip()[2:])
    return " ".join(comment)


def test_every_field_has_a_label_and_a_help_sentence():
    specs = schema_fields(FtuiConfig)
    assert len(specs) > 50
    missing = [s.key for s in specs if not s.label.strip() or not s.help.strip()]
    assert not missing, missing
    labels = [s.label for s in specs if s.tab]
    assert len(labels) == len(set(labels)), "two widgets of the tabs would share a label"


def test_sliders_stay_inside_the_allowed_range():
    for spec in schema_fields(FtuiConfig):
        if spec.slider is not None:
            low, high, step = spec.slider
            assert spec.bounds is not None, spec.key
            assert spec.bounds.allows(low) and spec.bounds.allows(high), spec.key
            assert spec.bounds.allows(spec.default) and step > 0, spec.key


def test_a_new_field_appears_in_the_ui_the_yaml_and_the_loader():
    schema = schema_with_a_new_train_field()
    key = f"train.{NEW_FIELD}"
    with gr.Blocks():
        widgets = tab_widgets("train", root=schema)
    assert widgets[key].label == NEW_LABEL and widgets[key].info == NEW_HELP
    assert widgets[key].elem_id == "train-warmup-steps"

    text = config_to_yaml(schema())
    assert (
        comment_above(text, f"  {NEW_FIELD}: 0") == f"{NEW_HELP} (a whole number from 0 to 10,000)"
    )

    config = config_from_dotted({key: "25"}, root=schema)
    assert getattr(config.train, NEW_FIELD) == 25
    with pytest.raises(ConfigError, match=rf"{key}: -1 is out of range"):
        config_from_dotted({key: -1}, root=schema)


def test_the_real_schema_gives_the_train_tab_its_fields():
    with gr.Blocks():
        widgets = tab_widgets("train")
    wanted = [s.key for s in schema_fields(FtuiConfig) if s.tab == "train"]
    assert list(widgets) == wanted and "train.epochs" in widgets
    assert widgets["train.epochs"].label == "Epochs"


def test_widget_kinds_follow_the_field_type():
    with gr.Blocks():
        assert isinstance(config_widget("train.gradient_checkpointing"), gr.Checkbox)
        dropdown = config_widget("train.optimizer")
        slider = config_widget("method.lora_r", value=8)
        number = config_widget("train.max_steps")
        text = config_widget("method.target_modules")
    assert isinstance(dropdown, gr.Dropdown) and ("sgd", "sgd") in dropdown.choices
    assert isinstance(slider, gr.Slider) and (slider.minimum, slider.maximum) == (1, 256)
    assert slider.value == 8 and slider.label == "LoRA rank r"
    assert isinstance(number, gr.Number) and number.precision == 0 and number.value == -1
    assert isinstance(text, gr.Textbox) and text.value == "all-linear"
    assert element_id("method", "train.batch_size") == "method-train-batch-size"


def test_saved_yaml_explains_every_field_and_loads_back(tmp_path):
    config = config_from_dict({"name": "x", "train": {"learning_rate": 1e-4, "epochs": 3}})
    path = tmp_path / "config.yaml"
    text = write_config(config, path, header="Written by a test.\nSecond line.")
    assert text.startswith("# Written by a test.\n# Second line.\n")
    assert load_config(path) == config
    comments = sum(line.lstrip().startswith("# ") for line in text.splitlines())
    assert comments >= len(schema_fields(FtuiConfig))
    assert comment_above(text, "  learning_rate: 0.0001") == (
        "Peak learning rate. (a number above 0 and at most 1)"
    )
    assert comment_above(text, "  name: lora").startswith(
        "Fine-tuning method; few_shot is the no-training baseline. (one of: full, freeze,"
    )


def test_saved_yaml_masks_secret_named_mapping_keys_and_survives_odd_text():
    config = config_from_dict(
        {
            "description": "line one\nline two: # not a comment",
            "data": {"columns": {"hub_token": "hf_secret_value", "output": "answer"}},
        }
    )
    text = config_to_yaml(config)
    assert "hf_secret_value" not in text and "hub_token: '***'" in text
    assert yaml.safe_load(text)["description"] == "line one\nline two: # not a comment"


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"train.eval_every": 0}, r"train\.eval_every: 0 is out of range"),
        ({"train.epochs": "-1"}, r"train\.epochs: -1 is out of range"),
        ({"method.lora_r": 0.0}, r"method\.lora_r: 0 is out of range"),
        ({"train.batch_size": "eight"}, r"train\.batch_size: expected a whole number"),
        ({"train.learning_rat": 1}, r"train\.learning_rat: unknown setting"),
        ({"method.name": "lorra"}, r"method\.name: 'lorra' is not one of"),
        ({"train.epochs": "[1"}, r"train\.epochs: '\[1' is not a valid value"),
    ],
)
def test_dotted_settings_are_checked_by_the_config(settings, message):
    with pytest.raises(ConfigError, match=message):
        config_from_dotted(settings)


def test_dotted_settings_go_on_top_of_a_base_and_convert_widget_values():
    base = config_from_dict({"name": "base", "train": {"epochs": 2}})
    config = config_from_dotted(
        {"method.lora_r": 8.0, "train.learning_rate": "2e-5", "name": "new"}, base
    )
    assert (config.method.lora_r, type(config.method.lora_r)) == (8, int)
    assert config.train.learning_rate == 2e-5 and config.train.epochs == 2
    assert config.name == "new" and base.name == "base"


def test_assignments_need_a_key_and_an_equals_sign():
    assert parse_assignments(["train.epochs=3", "name=a=b"]) == {
        "train.epochs": "3",
        "name": "a=b",
    }
    for bad in ("train.epochs", "=3"):
        with pytest.raises(ConfigError, match="KEY=VALUE"):
            parse_assignments([bad])
