"""Configs for new runs from the Train tab: presets, the current selection, checks, the CLI file.

Pure functions of ftui.ui.run_config on the real presets, and the Train tab's start form built
from the fields declared with tab="train"; no training.
"""

from __future__ import annotations

import pytest
import yaml
from conftest import REPO_ROOT, SAMPLES

from ftui.config import ConfigError, FtuiConfig, load_config, schema_fields
from ftui.server.demo import DemoLimits
from ftui.ui.run_config import (
    CURRENT_SELECTION,
    TRAIN_KEYS,
    config_for_start,
    preset_names,
    save_for_cli,
    start_values,
)
from ftui.workspace import Workspace

PRESETS = REPO_ROOT / "presets"
GOOD_VALUES = {  # what the Train tab's form hands over: the run name and dotted keys
    "name": "quick",
    "train.epochs": 1.0,
    "train.max_steps": 8,
    "train.learning_rate": 1e-3,
    "train.gradient_accumulation": 1,
    "train.warmup_ratio": 0.0,
    "train.eval_every": 4,
    "train.save_every": 4,
    "train.save_total_limit": 2,
    "train.seed": 7,
    "train.early_stopping_patience": 0,
    "train.num_processes": 1,
}
DATASET = {
    "source": str(SAMPLES / "triage" / "train.jsonl"),
    "format": "alpaca",
    "columns": {"instruction": "instruction", "input": "input", "output": "output"},
    "rows": 300,
    "ok": True,
    "max_length": 256,
}
METHOD_SETTINGS = {  # what the Method tab's widgets hand over (sliders give floats)
    "model.name_or_path": "default",
    "method.name": "ia3",
    "method.lora_r": 8.0,
    "method.lora_dropout": 0.05,
    "train.batch_size": 2.0,
    "data.max_length": 128.0,
    "train.gradient_checkpointing": False,
}


def test_every_preset_fills_the_form():
    names = preset_names(PRESETS)
    assert "triage-lora" in names
    for name in names:
        values = start_values(name, PRESETS)
        assert values["name"] and set(values) == {"name", *TRAIN_KEYS}
    assert start_values(CURRENT_SELECTION, PRESETS, DATASET)["name"] == "lora-train"


def test_a_preset_gets_the_train_settings_and_runs_from_the_repository_root():
    config, cwd = config_for_start("triage-lora", GOOD_VALUES, None, {}, PRESETS)
    assert cwd == REPO_ROOT and (cwd / config.data.path).is_file()
    assert config.name == "quick" and config.train.max_steps == 8
    assert config.train.learning_rate == 1e-3 and config.train.eval_every == 4
    assert config.method.name == "lora", "the rest comes from the preset"


def test_the_current_selection_takes_the_dataset_and_the_method_settings():
    config, _ = config_for_start(CURRENT_SELECTION, GOOD_VALUES, DATASET, METHOD_SETTINGS, PRESETS)
    assert config.data.path == DATASET["source"] and config.data.format == "alpaca"
    assert config.data.columns["output"] == "output" and config.data.max_length == 128
    assert config.method.name == "ia3" and config.method.lora_r == 8
    assert isinstance(config.method.lora_r, int) and config.train.batch_size == 2
    assert config.train.max_steps == 8


def test_an_empty_name_keeps_the_default_one():
    values = {**GOOD_VALUES, "name": "  "}
    config, _ = config_for_start(CURRENT_SELECTION, values, DATASET, METHOD_SETTINGS, PRESETS)
    assert config.name == "ia3-train"


@pytest.mark.parametrize(
    ("dataset", "message"),
    [({}, "No dataset chosen"), ({**DATASET, "ok": False}, "has errors")],
)
def test_the_current_selection_needs_a_usable_dataset(dataset, message):
    with pytest.raises(ConfigError, match=message):
        config_for_start(CURRENT_SELECTION, GOOD_VALUES, dataset, METHOD_SETTINGS, PRESETS)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("epochs", 0),
        ("max_steps", 0),
        ("learning_rate", -1.0),
        ("eval_every", 0),
        ("save_every", 0),
        ("early_stopping_patience", -2),
        ("num_processes", 0),
        ("epochs", -1),
        ("epochs", 1000),
        ("num_processes", 500),
        ("save_every", -3),
        ("max_steps", None),
        ("max_steps", 2.5),
        ("max_steps", "many"),
    ],
)
def test_bad_train_settings_name_the_setting(key, value):
    key = f"train.{key}"
    with pytest.raises(ConfigError, match=rf"^{key}\b"):
        config_for_start("triage-lora", {**GOOD_VALUES, key: value}, None, {}, PRESETS)


@pytest.mark.parametrize(
    ("key", "value"), [("epochs", -1), ("eval_every", 0), ("num_processes", 500)]
)
def test_the_config_itself_refuses_out_of_range_train_values(key, value):
    """The Train tab goes through the config's own bounds, not rules of its own."""
    with pytest.raises(ConfigError, match=rf"train\.{key}: {value} is out of range; use .*e\.g\."):
        values = {**GOOD_VALUES, f"train.{key}": value}
        config_for_start("triage-lora", values, None, {}, PRESETS)


def test_an_empty_number_box_names_its_setting():
    with pytest.raises(ConfigError, match=r"^train\.eval_every is empty: type a number$"):
        config_for_start(
            "triage-lora", {**GOOD_VALUES, "train.eval_every": None}, None, {}, PRESETS
        )


@pytest.mark.parametrize(
    ("key", "value"),
    [("method.lora_r", 0.0), ("method.lora_dropout", 1.0), ("data.max_length", 4.0)],
)
def test_method_tab_settings_out_of_range_are_refused_with_the_key(key, value):
    settings = {**METHOD_SETTINGS, key: value}
    with pytest.raises(ConfigError, match=rf"{key.replace('.', '[.]')}: .* is out of range"):
        config_for_start(CURRENT_SELECTION, GOOD_VALUES, DATASET, settings, PRESETS)


def test_few_shot_and_unknown_presets_are_refused():
    settings = {**METHOD_SETTINGS, "method.name": "few_shot"}
    with pytest.raises(ConfigError, match="trains nothing"):
        config_for_start(CURRENT_SELECTION, GOOD_VALUES, DATASET, settings, PRESETS)
    with pytest.raises(ConfigError, match="no preset named"):
        config_for_start("../secrets", GOOD_VALUES, None, {}, PRESETS)


def test_the_cli_file_loads_back_and_the_command_names_it(tmp_path):
    workspace = Workspace.open(tmp_path / "workspace")
    config, cwd = config_for_start("triage-lora", GOOD_VALUES, None, {}, PRESETS)
    path, text, command = save_for_cli(config, workspace, cwd)
    assert path.parent == workspace.root / "configs" and path.read_text() == text
    assert load_config(path) == config
    assert command.splitlines() == [
        f"cd {cwd}",
        f"ftui train {path} --workspace {workspace.root}",
    ]
    inside = Workspace.open(tmp_path / "ws")
    _, _, short = save_for_cli(config, inside, tmp_path)
    assert short.splitlines()[1].startswith("ftui train ws/configs/quick-")
    assert short.splitlines()[1].endswith(".yaml --workspace ws")


# ---------------------------------------------------------------- the Train tab's start form

TRAIN_SPECS = [spec for spec in schema_fields(FtuiConfig) if spec.tab == "train"]


@pytest.fixture
def train_tab(tmp_path, monkeypatch):
    """The Train tab built in a Blocks (not served), on an empty workspace; nothing launches."""
    import gradio as gr

    from ftui.runs.jobs import Jobs
    from ftui.server.settings import ServerSettings
    from ftui.ui.train_tab import build_train_tab

    monkeypatch.setattr("ftui.runs.jobs.launch", lambda run, **where: None)
    settings = ServerSettings(Workspace.open(tmp_path / "workspace"), demo=DemoLimits())
    jobs = Jobs(settings.workspace)
    with gr.Blocks() as blocks:
        model_box = gr.Textbox("default")
        tab = build_train_tab(settings, jobs, gr.State(None), {"model.name_or_path": model_box})
    return blocks, tab, jobs


def call_endpoint(blocks, api_name: str, typed: dict) -> tuple:
    """Call an endpoint's handler as gradio does for a browser: every input's value as its
    component preprocesses it, with `typed` (component id -> value) in place of some."""
    handler = next(fn for fn in blocks.fns.values() if fn.api_name == api_name)
    values = [block.preprocess(typed.get(block._id, block.value)) for block in handler.inputs]
    if api_name == "start_run":
        return handler.fn(None, *values)  # the gr.Request: local mode needs none
    return handler.fn(*values)


def test_the_train_form_has_one_widget_per_train_field(train_tab):
    _, tab, _ = train_tab
    form = tab.form
    assert list(form.settings) == [spec.key for spec in TRAIN_SPECS] == list(TRAIN_KEYS)
    for spec in TRAIN_SPECS:
        widget = form.settings[spec.key]
        assert (widget.label, widget.info) == (spec.label, spec.help), spec.key
    ids = {key: widget.elem_id for key, widget in form.settings.items()}
    assert ids["train.epochs"] == "train-epochs" and ids["train.eval_every"] == "train-eval-every"
    preset = start_values("triage-lora", PRESETS)
    assert form.name.value == preset["name"]
    assert {key: widget.value for key, widget in form.settings.items()} == {
        key: preset[key] for key in TRAIN_KEYS
    }


def test_every_train_setting_of_the_form_reaches_the_preview_yaml(train_tab):
    blocks, tab, _ = train_tab
    typed = {"train.epochs": 2.5, "train.max_steps": 12, "train.learning_rate": 0.003,
             "train.gradient_accumulation": 3, "train.warmup_ratio": 0.1,
             "train.eval_every": 6, "train.save_every": 6, "train.save_total_limit": 4,
             "train.seed": 1234, "train.early_stopping_patience": 2,
             "train.num_processes": 1}  # fmt: skip
    assert set(typed) == set(TRAIN_KEYS), "a new tab='train' field needs a value here"
    widgets = {tab.form.settings[key]._id: value for key, value in typed.items()}
    message, command, text, _ = call_endpoint(blocks, "preview_run", widgets)
    assert message.startswith("Saved") and "ftui train" in command
    saved = yaml.safe_load(text)["train"]
    assert {key: saved[key.removeprefix("train.")] for key in typed} == typed


@pytest.mark.parametrize(
    ("key", "value"),
    [("train.eval_every", 0), ("train.epochs", -1), ("train.learning_rate", 0),
     ("train.max_steps", 0)],
)  # fmt: skip
def test_a_bad_value_typed_in_the_form_is_refused_naming_its_key(train_tab, key, value):
    import gradio as gr

    blocks, tab, jobs = train_tab
    typed = {tab.form.settings[key]._id: value}
    message, run_menu = call_endpoint(blocks, "start_run", typed)
    plain = message.replace("\\", "")  # Markdown escapes
    assert plain.startswith(f"**Cannot start:** {key}: {value} is out of range; use ")
    assert jobs.list() == [] and run_menu == gr.skip()  # nothing queued, the menu unchanged
    message, command, text, _ = call_endpoint(blocks, "preview_run", typed)
    assert message.replace("\\", "").startswith(f"**Cannot preview:** {key}: {value} is out")
    assert (command, text) == ("", "")
