"""Configs for new runs from the Train tab: presets, the current selection, checks, the CLI file.

Pure functions of ftui.ui.run_config on the real presets; no training.
"""

from __future__ import annotations

import pytest
from conftest import REPO_ROOT, SAMPLES

from ftui.config import ConfigError, load_config
from ftui.ui.run_config import (
    CURRENT_SELECTION,
    TRAIN_FIELDS,
    config_for_start,
    preset_names,
    save_for_cli,
    start_values,
)
from ftui.workspace import Workspace

PRESETS = REPO_ROOT / "presets"
GOOD_VALUES = {
    "name": "quick",
    "epochs": 1.0,
    "max_steps": 8,
    "learning_rate": 1e-3,
    "eval_every": 4,
    "save_every": 4,
    "early_stopping_patience": 0,
    "num_processes": 1,
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
        assert values["name"] and set(TRAIN_FIELDS) <= set(values)
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
    ],
)
def test_bad_train_settings_name_the_setting(key, value):
    with pytest.raises(ConfigError, match=f"train.{key}"):
        config_for_start("triage-lora", {**GOOD_VALUES, key: value}, None, {}, PRESETS)


@pytest.mark.parametrize(
    ("key", "value"), [("epochs", -1), ("eval_every", 0), ("num_processes", 500)]
)
def test_the_config_itself_refuses_out_of_range_train_values(key, value):
    """The Train tab goes through the config's own bounds, not rules of its own."""
    with pytest.raises(ConfigError, match=rf"train\.{key}: {value} is out of range; use .*e\.g\."):
        config_for_start("triage-lora", {**GOOD_VALUES, key: value}, None, {}, PRESETS)


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
