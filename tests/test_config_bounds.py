"""Every number in the config is bounded by the config's own validation.

Bad values are refused through YAML (load_config), in-place changes through check(), the
machine-dependent process count through check_runnable(), and the CLI (a YAML file, --set
and the estimate's short flags) through the same rules; the edges of each range are
accepted. Pure config work, no model loading, except the save_total_limit run at the end
(slow: it trains a tiny model for four steps).
"""

from __future__ import annotations

import dataclasses
import os
import sys
import typing
from pathlib import Path

import pytest
from conftest import REPO_ROOT, tiny_triage_config

from ftui.cli import main
from ftui.config import (
    MAX_PROCESSES,
    Bounds,
    ConfigError,
    FtuiConfig,
    MethodConfig,
    TrainConfig,
    config_from_dict,
    count_cuda_devices,
    count_devices,
    field_bounds,
    load_config,
)

# (dotted key, values refused, values accepted at the edges of the range)
RANGES = [
    ("train.epochs", [-1, 0, 0.009, 100.5], [0.01, 100]),
    ("train.max_steps", [0, -2, 1_000_001], [-1, 1, 1_000_000]),
    ("train.learning_rate", [0, -1e-4, 1.5], [1e-9, 1]),
    ("train.batch_size", [0, 4097], [1, 4096]),
    ("train.gradient_accumulation", [0, 1025], [1, 1024]),
    ("train.warmup_ratio", [-0.1, 1, 1.5], [0, 0.99]),
    ("train.eval_every", [0, -5, 1_000_001], [1, 1_000_000]),
    ("train.save_every", [0, 1_000_001], [1, 1_000_000]),
    ("train.save_total_limit", [0, 1001], [1, 1000]),
    ("train.early_stopping_patience", [-1, 1001], [0, 1000]),
    ("train.seed", [-1, 2**32], [0, 2**32 - 1]),
    ("train.num_processes", [0, 500, MAX_PROCESSES + 1], [1, MAX_PROCESSES]),
    ("data.seed", [-1, 2**32], [0, 2**32 - 1]),
    ("data.max_length", [7, 0, 131_073], [8, 131_072]),
    ("data.validation_fraction", [-0.1, 1, 1.5], [0, 0.99]),
    ("method.lora_r", [0, 1025], [1, 1024]),
    ("method.lora_alpha", [0, 4097], [1, 4096]),
    ("method.lora_dropout", [-0.1, 1], [0, 0.99]),
    ("method.freeze_trainable_layers", [-1, 1001], [0, 1000]),
    ("method.num_virtual_tokens", [0, 1025], [1, 1024]),
    ("method.adapter_len", [0, 1025], [1, 1024]),
    ("method.adapter_layers", [0, 1025], [1, 1024]),
    ("method.bottleneck_size", [0, 65_537], [1, 65_536]),
    ("method.dpo_beta", [0, -1, 100.5], [1e-6, 100]),
    ("eval.few_shot_k", [-1, 33], [0, 32]),
    ("eval.max_new_tokens", [0, 4097], [1, 4096]),
    ("eval.limit", [0, 100_001], [1, 100_000]),
]
# Fields whose rules span other fields get a partner that satisfies them.
PARTNERS = {"train.early_stopping_patience": "  save_every: 40\n"}  # a multiple of eval_every
REFUSED = [(key, value) for key, bad, _ in RANGES for value in bad]
ACCEPTED = [(key, value) for key, _, good in RANGES for value in good]


def _yaml(tmp_path: Path, key: str, value) -> Path:
    section, name = key.split(".")
    path = tmp_path / "config.yaml"
    partner = PARTNERS.get(key, "")
    path.write_text(f"{section}:\n  {name}: {value!r}\n{partner}", encoding="utf-8")
    return path


def _number_fields() -> list[str]:
    """Every int and float field in the tree, as dotted keys."""
    keys = []
    for section, section_class in typing.get_type_hints(FtuiConfig).items():
        if dataclasses.is_dataclass(section_class):
            hints = typing.get_type_hints(section_class)
            keys += [f"{section}.{f.name}" for f in dataclasses.fields(section_class)
                     if hints[f.name] in (int, float)]  # fmt: skip
    return keys


def test_every_number_field_has_bounds_and_is_covered_here():
    assert sorted(_number_fields()) == sorted(key for key, _, _ in RANGES)


def test_bounds_are_readable_from_the_field_for_widgets():
    assert field_bounds(MethodConfig, "lora_r") == Bounds(1, 1024)
    warmup = field_bounds(TrainConfig, "warmup_ratio")
    assert warmup.high_open and warmup.allows(0) and not warmup.allows(1)
    assert field_bounds(MethodConfig, "name") is None


@pytest.mark.parametrize(("key", "value"), REFUSED, ids=lambda v: str(v))
def test_out_of_range_yaml_is_refused_with_the_key_the_range_and_an_example(tmp_path, key, value):
    with pytest.raises(ConfigError) as error:
        load_config(_yaml(tmp_path, key, value))
    message = str(error.value)
    assert f"{key}: " in message and "out of range" in message, message
    assert "use " in message and ", e.g. " in message, message
    assert "config.yaml" in message  # load_config names the file too


@pytest.mark.parametrize(("key", "value"), ACCEPTED, ids=lambda v: str(v))
def test_values_at_the_edges_are_accepted(tmp_path, key, value):
    config = load_config(_yaml(tmp_path, key, value))
    section, name = key.split(".")
    assert getattr(getattr(config, section), name) == value


def test_the_message_reads_as_the_issue_asks():
    with pytest.raises(ConfigError) as error:
        config_from_dict({"train": {"epochs": -1}})
    assert str(error.value) == (
        "train.epochs: -1 is out of range; use a number from 0.01 to 100, e.g. 3"
    )
    with pytest.raises(ConfigError, match=r"use -1 \(run all epochs\) or a whole number"):
        config_from_dict({"train": {"max_steps": 0}})


@pytest.mark.parametrize("value", [".nan", ".inf", "-.inf"])
def test_nan_and_infinity_from_yaml_are_refused(tmp_path, value):
    path = tmp_path / "config.yaml"
    path.write_text(f"train:\n  learning_rate: {value}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"train\.learning_rate: .* is out of range"):
        load_config(path)


@pytest.mark.parametrize("preset", sorted((REPO_ROOT / "presets").glob("*.yaml")), ids=str)
def test_every_preset_is_within_bounds(preset):
    load_config(preset).check_runnable()


def test_eval_every_zero_with_early_stopping_names_the_key_instead_of_dividing_by_zero():
    with pytest.raises(ConfigError, match=r"train\.eval_every: 0 is out of range"):
        config_from_dict({"train": {"eval_every": 0, "early_stopping_patience": 2}})


def test_check_catches_values_changed_in_place():
    config = FtuiConfig()
    config.method.lora_r = 0
    with pytest.raises(ConfigError, match=r"method\.lora_r: 0 is out of range"):
        config.check()
    config.method.lora_r = 8
    config.train.num_processes = 500
    with pytest.raises(ConfigError, match=r"train\.num_processes: 500"):
        config.check()
    config.train.num_processes = 1
    config.train.batch_size = 2.5
    with pytest.raises(ConfigError, match=r"train\.batch_size: expected a whole number"):
        config.check()


# ---------------------------------------------------------------- this machine's devices


def test_more_processes_than_cpu_cores_is_refused_before_a_run_but_still_readable(tmp_path):
    cores, kind = count_devices("cpu")
    assert kind == "CPU cores" and cores == len(os.sched_getaffinity(0))
    path = _yaml(tmp_path, "train.num_processes", cores + 1)
    path.write_text(path.read_text() + "model:\n  device: cpu\n")
    config = load_config(path)  # an old run's config from a bigger machine still loads
    assert config.train.num_processes == cores + 1
    with pytest.raises(ConfigError) as error:
        config.check_runnable()
    assert f"train.num_processes: {cores + 1} is more than the {cores} CPU cores" in str(
        error.value
    )
    config.train.num_processes = cores
    config.check_runnable()


@pytest.fixture
def without_torch(monkeypatch):
    """Count GPUs as a process that never imported torch does."""
    monkeypatch.delitem(sys.modules, "torch", raising=False)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    return monkeypatch


@pytest.mark.parametrize(
    ("visible", "count"), [("0,1,2", 3), ("0", 1), ("", 0), ("-1", 0), ("0,-1,1", 1)]
)
def test_cuda_visible_devices_counts_gpus_without_torch(without_torch, visible, count):
    without_torch.setenv("CUDA_VISIBLE_DEVICES", visible)
    assert count_cuda_devices() == count
    assert "torch" not in sys.modules


def test_torch_already_imported_gives_the_count(monkeypatch):
    import torch

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1,2,3,4,5,6,7,8")
    assert count_cuda_devices() == torch.cuda.device_count()


def test_nvidia_smi_lists_the_gpus_when_nothing_else_says(without_torch, tmp_path):
    fake = tmp_path / "nvidia-smi"
    lines = ["GPU 0: NVIDIA H100 (UUID: GPU-a)", "GPU 1: NVIDIA H100 (UUID: GPU-b)"]
    fake.write_text("#!/bin/sh\n" + "".join(f"echo '{line}'\n" for line in lines))
    fake.chmod(0o755)
    without_torch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    assert count_cuda_devices() == 2
    assert count_devices("auto") == (2, "CUDA GPUs")
    config = config_from_dict({"model": {"device": "cuda"}, "train": {"num_processes": 2}})
    config.check_runnable()
    config.train.num_processes = 3
    with pytest.raises(ConfigError, match="more than the 2 CUDA GPUs"):
        config.check_runnable()


def test_cuda_asked_for_on_a_machine_without_gpus_says_so(without_torch):
    without_torch.setenv("CUDA_VISIBLE_DEVICES", "")
    with pytest.raises(ConfigError, match="model.device is cuda, but this machine shows no"):
        config_from_dict({"model": {"device": "cuda"}}).check_runnable()
    config_from_dict({"model": {"device": "auto"}}).check_runnable()  # falls back to CPU


# ---------------------------------------------------------------- the command line


@pytest.mark.parametrize("setting", [["--lora-r", "0"], ["--set", "method.lora_r=0"]])
def test_estimate_refuses_a_lora_rank_of_zero(capsys, setting):
    assert main(["estimate", "--model", "default", "--method", "lora", *setting]) == 2
    assert "error: method.lora_r: 0 is out of range" in capsys.readouterr().err


@pytest.mark.parametrize("setting", [[], ["--set", "train.num_processes=500"]])
def test_train_refuses_500_processes_and_queues_nothing(capsys, tmp_path, setting):
    config = tmp_path / "big.yaml"
    config.write_text(f"train:\n  num_processes: {500 if not setting else 1}\n", encoding="utf-8")
    workspace = tmp_path / "workspace"
    assert main(["train", str(config), "--workspace", str(workspace), *setting]) == 2
    assert "train.num_processes: 500 is out of range" in capsys.readouterr().err
    assert not (workspace / "runs").exists() or not any((workspace / "runs").iterdir())


# ---------------------------------------------------------------- checkpoint pruning


@pytest.mark.slow
def test_a_run_keeps_only_the_last_save_total_limit_checkpoints(tmp_path, tiny_model_dir):
    from ftui.runs.rundir import create_run_dir
    from ftui.runs.train import train_run_dir
    from ftui.workspace import Workspace

    config = tiny_triage_config(tmp_path, model=tiny_model_dir)
    config.train.max_steps, config.train.save_every, config.train.eval_every = 4, 1, 1
    config.check()
    assert config.train.save_total_limit == 2  # the default
    run = create_run_dir(config, Workspace.open(tmp_path / "workspace"))
    assert train_run_dir(run.path) == 0, run.log_path.read_text()[-3000:]
    kept = sorted(path.name for path in run.checkpoints.glob("checkpoint-*"))
    assert kept == ["checkpoint-3", "checkpoint-4"]
    assert run.read_status()["state"] == "completed"
