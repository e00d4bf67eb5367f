"""The command line: `--set KEY=VALUE` on train and estimate, the estimate's short flags, and
--help built from the config's fields.

Most tests call `ftui.cli.main([...])` in this process: parsing, the config's checks and
queueing a run (with the trainer's launch replaced) need no subprocess. The `python -m ftui`
tests at the end are slow: they start the console command for real.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
import sys

import pytest
from conftest import REPO_ROOT, tiny_triage_config

from ftui.cli import EXIT_INVALID, EXIT_OK, build_parser, main
from ftui.cli.estimate import config_from_args
from ftui.cli.settings import config_with_settings, settings_help
from ftui.config import (
    ConfigError,
    FtuiConfig,
    TrainConfig,
    load_config,
    schema_fields,
    setting,
    write_config,
)


def _estimate_config(*argv: str) -> FtuiConfig:
    return config_from_args(build_parser().parse_args(["estimate", *argv]))


def _refusal(capsys, *argv: str) -> str:
    """Run the CLI, expect exit 2, return what it printed on stderr."""
    assert main(list(argv)) == EXIT_INVALID
    captured = capsys.readouterr()
    assert captured.out == "" and "Traceback" not in captured.err
    return captured.err


# ---------------------------------------------------------------- --set on the estimate


def test_estimate_set_reaches_the_config_with_values_read_as_yaml():
    config = _estimate_config(
        "--set", "train.epochs=3", "--set", "train.learning_rate=2e-5",
        "--set", "train.gradient_checkpointing=true", "--set", "method.target_modules=q_proj",
        "--set", "data.columns={instruction: question, output: answer}",
    )  # fmt: skip
    assert config.train.epochs == 3.0 and config.train.learning_rate == 2e-5
    assert config.train.gradient_checkpointing is True
    assert config.method.target_modules == "q_proj"
    assert config.data.columns == {"instruction": "question", "output": "answer"}


def test_estimate_without_settings_is_the_yaml_or_the_defaults(tmp_path):
    assert _estimate_config() == FtuiConfig()
    assert build_parser().parse_args(["train", "x.yaml"]).settings == []
    path = tmp_path / "config.yaml"
    path.write_text("method:\n  lora_r: 4\n", encoding="utf-8")
    assert _estimate_config(str(path)).method.lora_r == 4


def test_estimate_set_goes_on_top_of_the_yaml_config(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("method:\n  lora_r: 4\n  lora_alpha: 8\n", encoding="utf-8")
    config = _estimate_config(str(path), "--set", "method.lora_r=64")
    assert (config.method.lora_r, config.method.lora_alpha) == (64, 8)


def test_short_flags_are_settings_and_the_last_one_wins():
    config = _estimate_config(
        "--model", "some/model", "--method", "full", "--seq-len", "512", "--batch-size", "2",
        "--lora-r", "8", "--lora-targets", "q_proj,v_proj", "--optimizer", "sgd",
        "--gradient-checkpointing",
    )  # fmt: skip
    assert config.model.name_or_path == "some/model" and config.method.name == "full"
    assert (config.data.max_length, config.train.batch_size, config.method.lora_r) == (512, 2, 8)
    assert config.method.target_modules == "q_proj,v_proj" and config.train.optimizer == "sgd"
    assert config.train.gradient_checkpointing is True
    assert _estimate_config("--method", "full", "--quant", "4bit").method.name == "qlora"
    assert _estimate_config("--quant", "8bit").method.name == "lora_8bit"
    assert _estimate_config("--quant", "8bit", "--method", "lora").method.name == "lora"
    assert _estimate_config("--lora-r", "8", "--set", "method.lora_r=32").method.lora_r == 32
    assert _estimate_config("--set", "method.lora_r=32", "--lora-r", "8").method.lora_r == 8


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--set", "train.epochs=-1"],
         "error: train.epochs: -1 is out of range; use a number from 0.01 to 100, e.g. 3"),
        (["--lora-r", "0"], "error: method.lora_r: 0 is out of range"),
        (["--set", "method.lora_r=0"], "error: method.lora_r: 0 is out of range"),
        (["--seq-len", "many"], "error: data.max_length: expected a whole number, got 'many'"),
        (["--method", "lorra"], "error: method.name: 'lorra' is not one of"),
        (["--set", "train.epoch=3"], "error: train.epoch: unknown setting; see `ftui train --"),
        (["--set", "train.epochs"], "write KEY=VALUE with a dotted key"),
        (["--method", "prefix", "--gradient-checkpointing"],
         "error: method.name prefix does not work with train.gradient_checkpointing"),
    ],
)  # fmt: skip
def test_estimate_refuses_a_bad_setting_naming_the_key(capsys, argv, message):
    assert message in _refusal(capsys, "estimate", *argv)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--price", "-1"], "argument --price: -1 must be a number of 0 or more"),
        (["--price", "nan"], "argument --price: nan must be a number of 0 or more"),
        (["--price", "cheap"], "argument --price: 'cheap' is not a number"),
        (["--dataset-tokens", "-5"], "argument --dataset-tokens: -5 must be a number of 0 or"),
        (["--dataset-tokens", "1.5"], "argument --dataset-tokens: '1.5' is not a whole number"),
    ],
)
def test_estimate_inputs_refuse_negative_values(capsys, argv, message):
    with pytest.raises(SystemExit) as exit:
        main(["estimate", *argv])
    assert exit.value.code == EXIT_INVALID
    assert message in capsys.readouterr().err


def test_estimate_inputs_accept_zero():
    args = build_parser().parse_args(["estimate", "--price", "0", "--dataset-tokens", "0"])
    assert (args.price, args.dataset_tokens) == (0.0, 0)


# ---------------------------------------------------------- the config's own dataset and device


def _estimate_json(capsys, *argv: str) -> dict:
    assert main(["estimate", *argv, "--json"]) == EXIT_OK, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


def test_estimate_counts_the_configs_own_dataset(capsys, monkeypatch):
    """Steps and time per epoch come from the dataset the config trains on: the preset's
    300 training rows through the bundled tokenizer, each capped at the max length."""
    from ftui.estimate.steps import optimizer_steps

    monkeypatch.chdir(REPO_ROOT)  # the preset's data path is relative to the repository
    preset = load_config(REPO_ROOT / "presets" / "triage-lora.yaml")
    result = _estimate_json(capsys, "presets/triage-lora.yaml")
    dataset = result["dataset"]
    assert dataset["rows"] == 300 and dataset["source"] == preset.data.path
    assert 20 < dataset["mean_tokens"] <= preset.data.max_length
    assert dataset["tokens"] == pytest.approx(300 * dataset["mean_tokens"], rel=1e-3)
    train = preset.train
    expected = optimizer_steps(300, train.batch_size, 1, train.gradient_accumulation, 1)
    assert result["steps_per_epoch"] == expected > 0 and result["seconds_per_epoch"] > 0
    given = _estimate_json(capsys, "presets/triage-lora.yaml", "--dataset-tokens", "0")
    assert given["dataset"] is None and given["steps_per_epoch"] == 0
    # the longest batch is the dataset's longest rows, not the max length, when they are shorter
    longest = dataset["longest_tokens"]
    assert dataset["mean_tokens"] <= longest < preset.data.max_length
    batch = f"the longest batch is {train.batch_size} x {longest:,} tokens"
    assert result["assumptions"][0].startswith(batch)
    assert given["assumptions"][0].startswith(
        f"the longest batch is {train.batch_size} x {preset.data.max_length:,} tokens"
    )
    assert result["peak_memory_bytes"] < given["peak_memory_bytes"]


def test_a_dataset_it_cannot_read_leaves_the_epoch_out_with_a_note(capsys, tmp_path):
    """The memory estimate does not need the data: a broken or missing file is named, the
    epoch left out, and the rest estimated."""
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"instruction": "hi"\n', encoding="utf-8")
    for path in (broken, tmp_path / "missing.jsonl"):
        result = _estimate_json(capsys, "--set", f"data.path={path}")
        assert result["dataset"] is None and result["steps_per_epoch"] == 0
        assert f"data.path {path}:" in result["dataset_note"]
        assert result["dataset_note"].startswith("dataset not counted")
        assert result["peak_memory_bytes"] > 0
    assert main(["estimate", "--set", f"data.path={broken}"]) == EXIT_OK
    assert capsys.readouterr().out.startswith(f"dataset not counted (data.path {broken}:")


def test_estimate_runs_where_the_config_would_train(capsys, monkeypatch):
    """auto means this machine's device (no GPU here: cpu); --gpu, the config or --device
    say otherwise."""
    assert _estimate_json(capsys)["device"] == "cpu"
    assert _estimate_json(capsys, "--gpu", "L4")["device"] == "cuda"  # a GPU was named
    monkeypatch.setattr("ftui.cli.estimate.count_cuda_devices", lambda: 2)
    assert _estimate_json(capsys)["device"] == "cuda"
    assert _estimate_json(capsys, "--set", "model.device=cpu")["device"] == "cpu"
    assert _estimate_json(capsys, "--device", "cpu")["device"] == "cpu"


# ---------------------------------------------------------------- --set on train


@pytest.fixture
def launches(monkeypatch) -> list[str]:
    """Queue runs for real but start no trainer: the ids that would have started."""
    started: list[str] = []
    monkeypatch.setattr("ftui.runs.jobs.launch", lambda run, **_: started.append(run.run_id))
    return started


@pytest.fixture
def config_file(tmp_path):
    path = tmp_path / "tiny.yaml"
    write_config(tiny_triage_config(tmp_path), path, header="a tiny run for the CLI tests")
    return path


def test_train_set_queues_a_run_whose_config_yaml_has_the_values(
    capsys, tmp_path, config_file, launches
):
    workspace = tmp_path / "workspace"
    code = main([
        "train", str(config_file), "--workspace", str(workspace),
        "--set", "train.epochs=3", "--set", "method.lora_r=8", "--set", "name=from-the-cli",
    ])  # fmt: skip
    assert code == EXIT_OK, capsys.readouterr().err
    run_id = capsys.readouterr().out.strip()
    assert launches == [run_id]
    saved = workspace / "runs" / run_id / "config.yaml"
    config = load_config(saved)
    assert (config.train.epochs, config.method.lora_r, config.name) == (3.0, 8, "from-the-cli")
    assert config.train.max_steps == load_config(config_file).train.max_steps  # the rest kept
    text = saved.read_text(encoding="utf-8")
    assert "lora_r: 8" in text and "epochs: 3" in text
    assert "# LoRA rank: size of the low-rank update." in text  # the one YAML writer's comments


def test_train_refuses_a_bad_set_and_queues_nothing(capsys, tmp_path, config_file, launches):
    workspace = tmp_path / "workspace"
    args = ["train", str(config_file), "--workspace", str(workspace)]
    error = _refusal(capsys, *args, "--set", "train.epochs=-1")
    assert error.startswith("error: train.epochs: -1 is out of range; use a number from 0.01")
    error = _refusal(capsys, *args, "--set", "train.epoch=3")
    assert "train.epoch: unknown setting" in error and "--help" in error
    error = _refusal(capsys, *args, "--set", "train.num_processes=500")
    assert "train.num_processes: 500 is out of range" in error
    assert launches == []
    assert not (workspace / "runs").exists() or not any((workspace / "runs").iterdir())


def test_train_resume_with_set_is_refused_a_resumed_run_keeps_its_config(capsys, tmp_path):
    workspace = tmp_path / "workspace"
    error = _refusal(
        capsys, "train", "--resume", "some-run", "--workspace", str(workspace),
        "--set", "train.epochs=3",
    )  # fmt: skip
    assert "--set does not apply to --resume" in error
    assert "ftui train WORKSPACE/runs/some-run/config.yaml --set KEY=VALUE" in error
    assert not workspace.exists()  # refused before anything was opened


def test_train_of_a_run_folder_refuses_set(capsys, tmp_path):
    run_folder = tmp_path / "run"
    run_folder.mkdir()
    write_config(FtuiConfig(), run_folder / "config.yaml", header="a run's config")
    error = _refusal(capsys, "train", str(run_folder), "--set", "train.epochs=3")
    assert "--set does not apply to a run folder" in error


def test_train_without_a_config_says_what_to_give(capsys, tmp_path):
    error = _refusal(capsys, "train", "--workspace", str(tmp_path / "workspace"))
    assert error == "error: give a config file, or --resume RUN\n"


# ---------------------------------------------------------------- --help from the fields


@pytest.mark.parametrize("command", ["train", "estimate"])
def test_help_lists_every_setting_with_its_default_and_values(capsys, command):
    with pytest.raises(SystemExit) as exit:
        main([command, "--help"])
    assert exit.value.code == 0
    text = capsys.readouterr().out
    assert text.index("--set KEY=VALUE") < text.index("\nsettings: change any with --set")
    for spec in schema_fields(FtuiConfig):
        assert f"\n    {spec.key} = " in text, spec.key
    flat = " ".join(text.split())  # the same words, unwrapped
    for spec in schema_fields(FtuiConfig):
        assert spec.describe() in flat, spec.key
    assert "train.epochs = 1.0 Passes over the training data. (a number from 0.01 to 100)" in flat
    assert "method.name = lora Fine-tuning method; few_shot is the no-training baseline." in flat
    assert "(one of: full, freeze, lora, qlora, lora_8bit," in flat
    assert "    data.path = (empty)\n" in text and "    data.columns = {}\n" in text
    for section in ("top level", "model", "data", "method", "train", "eval"):
        assert f"\n  {section}:\n" in text
    assert max(len(line) for line in text.split("\nsettings:")[1].splitlines()) <= 79


def test_a_field_added_to_a_copy_of_the_schema_appears_in_the_help_and_can_be_set():
    extra = setting(
        0, "Warm up for this many steps.", label="Warmup steps", min=0, max=1000, example=10
    )
    train_copy = dataclasses.make_dataclass(
        "TrainCopy", [("warmup_steps", int, extra)], bases=(TrainConfig,)
    )
    root = dataclasses.make_dataclass(
        "RootCopy",
        [("train", train_copy, dataclasses.field(default_factory=train_copy))],
        bases=(FtuiConfig,),
    )
    text = settings_help(root)
    assert (
        "    train.warmup_steps = 0\n        Warm up for this many steps. (a whole number" in text
    )
    assert "train.warmup_steps" not in settings_help(FtuiConfig)
    assert config_with_settings(["train.warmup_steps=20"], root=root).train.warmup_steps == 20
    with pytest.raises(ConfigError, match=r"train\.warmup_steps: 2000 is out of range"):
        config_with_settings(["train.warmup_steps=2000"], root=root)


def _arguments(parser: argparse.ArgumentParser, path: str = "ftui"):
    """(command path, action) for every argument of every command, subcommands included."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, subparser in action.choices.items():
                yield from _arguments(subparser, f"{path} {name}")
        elif not isinstance(action, argparse._HelpAction):
            yield path, action


def test_every_argument_of_every_command_has_a_help_text():
    missing = [f"{path} {action.dest}" for path, action in _arguments(build_parser())
               if not action.help]  # fmt: skip
    assert missing == []
    assert len(list(_arguments(build_parser()))) > 40  # the walk reaches the subcommands


# ---------------------------------------------------------------- the console command


def _ftui(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ftui", *args],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


@pytest.mark.slow
def test_python_m_ftui_estimate_with_set_changes_the_estimate(tmp_path):
    from transformers import LlamaConfig

    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text(LlamaConfig(num_hidden_layers=4).to_json_string())
    common = ["--model", str(model), "--set", "method.target_modules=q_proj", "--json"]
    small = _ftui("estimate", *common, "--set", "method.lora_r=8")
    large = _ftui("estimate", *common, "--lora-r", "8", "--set", "method.lora_r=16")
    assert small.returncode == 0 and large.returncode == 0, small.stderr + large.stderr
    small_params = json.loads(small.stdout)["trainable_params"]
    assert small_params == 4 * 8 * (4096 + 4096)  # r x (in + out) on q_proj of 4 layers
    assert json.loads(large.stdout)["trainable_params"] == 2 * small_params


@pytest.mark.slow
def test_python_m_ftui_train_refuses_a_bad_set_with_exit_2(tmp_path, config_file):
    result = _ftui(
        "train", str(config_file), "--workspace", str(tmp_path / "ws"), "--set", "eval.limit=0"
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.startswith("error: eval.limit: 0 is out of range; use a whole number")
