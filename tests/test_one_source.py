"""Issue 10's acceptance: the bad values the UI tests list are refused with a message that
names the key through all three doors — a YAML file (`load_config`), the command line
(`ftui train --set`, `ftui estimate --set`) and the UI (the Train tab's `start_run` with the
Method tab's settings) — because all three go through the config's one set of rules.

Fast tier: the CLI runs in this process (`ftui.cli.main`) and nothing is launched.
"""

from __future__ import annotations

import pytest
import yaml
from conftest import REPO_ROOT, SAMPLES

from ftui.cli import main
from ftui.cli.exits import EXIT_INVALID
from ftui.config import ConfigError, FtuiConfig, config_to_dict, load_config
from ftui.runs.jobs import Jobs
from ftui.server.demo import DemoLimits
from ftui.ui.run_config import CURRENT_SELECTION, TRAIN_KEYS, start_run, start_values
from ftui.workspace import Workspace

PRESETS = REPO_ROOT / "presets"
PRESET = "triage-lora"
# The values tests/test_run_config.py lists for the Train and Method tabs.
BAD_VALUES = [
    ("train.epochs", 0),
    ("train.epochs", -1),
    ("train.epochs", 1000),
    ("train.max_steps", 0),
    ("train.learning_rate", -1.0),
    ("train.eval_every", 0),
    ("train.save_every", 0),
    ("train.early_stopping_patience", -2),
    ("train.num_processes", 0),
    ("train.num_processes", 500),
    ("method.lora_r", 0),
    ("method.lora_dropout", 1.0),
    ("data.max_length", 4),
]
DATASET = {
    "source": str(SAMPLES / "triage" / "train.jsonl"),
    "format": "alpaca",
    "columns": {"instruction": "instruction", "input": "input", "output": "output"},
    "rows": 300,
    "ok": True,
}


def names_the_key(message: str, key: str) -> bool:
    return f"{key}:" in message and "out of range" in message


@pytest.fixture
def launches(monkeypatch) -> list[str]:
    """Runs are queued for real; no trainer starts. Collects the ids that would have."""
    started: list[str] = []
    monkeypatch.setattr("ftui.runs.jobs.launch", lambda run, **_: started.append(run.run_id))
    return started


@pytest.mark.parametrize(("key", "value"), BAD_VALUES)
def test_yaml_refuses_it_naming_the_key(tmp_path, key, value):
    tree = config_to_dict(load_config(PRESETS / f"{PRESET}.yaml"))
    section, name = key.split(".")
    tree[section][name] = value
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(tree), encoding="utf-8")
    with pytest.raises(ConfigError) as refused:
        load_config(path)
    assert names_the_key(str(refused.value), key), refused.value


@pytest.mark.parametrize(("key", "value"), BAD_VALUES)
def test_the_cli_refuses_it_naming_the_key_and_queues_nothing(
    tmp_path, capsys, launches, key, value
):
    workspace = tmp_path / "workspace"
    preset = str(PRESETS / f"{PRESET}.yaml")
    for argv in (
        ["train", preset, "--workspace", str(workspace), "--set", f"{key}={value}"],
        ["estimate", preset, "--set", f"{key}={value}"],
    ):
        assert main(argv) == EXIT_INVALID, argv
        error = capsys.readouterr().err
        assert names_the_key(error, key), (argv, error)
    runs = workspace / "runs"
    assert launches == [] and not (runs.is_dir() and any(runs.iterdir()))


@pytest.mark.parametrize(("key", "value"), BAD_VALUES)
def test_the_ui_refuses_it_naming_the_key_and_queues_nothing(tmp_path, launches, key, value):
    """The Train tab's Start with the form's values, and the Method tab's settings when the
    key is one of theirs (the run starts from the current selection then)."""
    jobs = Jobs(Workspace.open(tmp_path / "workspace"))
    form = {"name": "bad", **start_values(PRESET, PRESETS)}
    method: dict = {"model.name_or_path": "default", "method.name": "lora"}
    if key in TRAIN_KEYS:
        form[key], start_from, dataset = value, PRESET, None
    else:
        method[key], start_from, dataset = value, CURRENT_SELECTION, DATASET
    message, run_id = start_run(
        jobs, start_from, form, dataset, method, PRESETS, "local", demo=DemoLimits()
    )
    assert message.startswith("**Cannot start:**") and run_id is None, message
    assert names_the_key(message.replace("\\", ""), key), message
    assert jobs.list() == [] and launches == []


def test_every_door_accepts_the_good_values_it_refuses_the_bad_ones_of(tmp_path, launches):
    """The refusals above are for the values, not for the door: the same preset and settings
    with good values pass YAML, the CLI and the UI."""
    assert isinstance(load_config(PRESETS / f"{PRESET}.yaml"), FtuiConfig)
    workspace = tmp_path / "workspace"
    preset = str(PRESETS / f"{PRESET}.yaml")
    assert main(["train", preset, "--workspace", str(workspace), "--set", "train.epochs=2"]) == 0
    jobs = Jobs(Workspace.open(tmp_path / "ui"))
    form = {"name": "good", **start_values(PRESET, PRESETS)}
    message, run_id = start_run(jobs, PRESET, form, None, {}, PRESETS, "local", demo=DemoLimits())
    assert run_id is not None, message
    assert len(launches) == 2
