"""Training end to end: a real detached subprocess trains the bundled model for a few steps.

The run directory is the contract, so the tests read only it: status.json, metrics.jsonl,
checkpoints/ and adapter/, which must load with plain peft (no ftui).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import REPO_ROOT, tiny_triage_config

from ftui.config import load_config, mask_secrets, write_config
from ftui.data.training_data import prompt_completion
from ftui.runs.jobs import Jobs
from ftui.runs.rundir import RunDir
from ftui.runs.runner import wait_for
from ftui.workspace import Workspace

RUN_TIMEOUT = 300


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> tuple[RunDir, dict]:
    from ftui.models import prepare_bundled_model

    prepare_bundled_model()  # convert once here, not inside the timed subprocess
    tmp = tmp_path_factory.mktemp("train")
    jobs = Jobs(Workspace.open(tmp / "workspace"))
    run = jobs.submit(tiny_triage_config(tmp), cwd=REPO_ROOT)
    status = wait_for(run, timeout=RUN_TIMEOUT)
    return run, status


@pytest.mark.slow
def test_run_completes_with_metrics_and_checkpoint(finished_run):
    run, status = finished_run
    assert status["state"] == "completed", run.log_path.read_text()[-3000:]
    assert isinstance(status["pid"], int) and status["heartbeat"] > 0
    assert status["max_steps"] == 3
    metrics = run.read_metrics()
    losses = [m for m in metrics if "loss" in m]
    assert [m["step"] for m in losses] == [1, 2, 3]
    assert all(m["loss"] > 0 and "learning_rate" in m and "grad_norm" in m for m in losses)
    assert all(m["memory_bytes"] > 0 and m["elapsed"] >= 0 for m in losses)
    assert any(m.get("tokens_per_second", 0) > 0 for m in losses)
    assert any(m.get("eval_loss", 0) > 0 for m in metrics)
    assert (run.checkpoints / "checkpoint-2").is_dir()
    assert run.read_config().train.max_steps == 3


@pytest.mark.slow
def test_adapter_loads_with_plain_peft_and_changes_the_model(finished_run):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from ftui.models import bundled_model_dir

    run, _ = finished_run
    assert (run.adapter / "adapter_config.json").is_file()
    base = AutoModelForCausalLM.from_pretrained(bundled_model_dir())
    tokenizer = AutoTokenizer.from_pretrained(run.adapter)
    inputs = tokenizer("Classify the support ticket: my bill is wrong", return_tensors="pt")
    with torch.inference_mode():
        base_logits = base(**inputs).logits
    tuned = PeftModel.from_pretrained(base, run.adapter)
    lora_b = {name: p for name, p in tuned.named_parameters() if "lora_B" in name}
    assert lora_b, "no LoRA parameters in the saved adapter"
    unchanged = [name for name, p in lora_b.items() if torch.count_nonzero(p) == 0]
    assert not unchanged, f"LoRA B still zero after training: {unchanged[:3]}"
    with torch.inference_mode():
        tuned_logits = tuned(**inputs).logits
    assert not torch.allclose(base_logits, tuned_logits, atol=1e-4)


@pytest.mark.slow
def test_every_trainable_parameter_changed_in_the_last_step(finished_run):
    """Step 2's checkpoint against the final (step 3) adapter: each saved tensor moved."""
    from safetensors.torch import load_file

    run, _ = finished_run
    at_step_2 = load_file(run.checkpoints / "checkpoint-2" / "adapter_model.safetensors")
    final = load_file(run.adapter / "adapter_model.safetensors")
    assert at_step_2.keys() == final.keys() and len(final) == 2 * 7 * 30  # A, B x 7 x 30 layers
    unchanged = [name for name in final if torch_equal(at_step_2[name], final[name])]
    assert not unchanged, f"not updated by the last step: {unchanged[:3]}"


def torch_equal(a, b) -> bool:
    import torch

    return bool(torch.equal(a, b))


@pytest.mark.slow
def test_cli_run_with_missing_data_fails_readably(tmp_path):
    config = load_config(REPO_ROOT / "presets" / "triage-lora.yaml")
    config.data.path = str(tmp_path / "no-such-file.jsonl")
    write_config(config, tmp_path / "config.yaml")
    workspace = tmp_path / "workspace"
    command = [sys.executable, "-m", "ftui", "train", str(tmp_path / "config.yaml")]
    result = subprocess.run(
        [*command, "--workspace", str(workspace), "--wait"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
    )
    assert result.returncode == 1, result.stderr
    run = RunDir(workspace / "runs" / result.stdout.strip())
    status = run.read_status()
    assert status["state"] == "failed"
    assert "no-such-file.jsonl" in status["error"] and "no-such-file.jsonl" in result.stderr
    assert "Traceback" in run.log_path.read_text()


def test_saved_config_masks_secrets(tmp_path):
    data = {
        "model": {"hub_token": "hf_abc", "name": "x", "num_virtual_tokens": 20},
        "keys": [{"API_KEY": "sk-1", "db-password": "p"}],
    }
    assert mask_secrets(data) == {
        "model": {"hub_token": "***", "name": "x", "num_virtual_tokens": 20},
        "keys": [{"API_KEY": "***", "db-password": "***"}],
    }
    config = load_config(REPO_ROOT / "presets" / "triage-lora.yaml")
    run = RunDir(tmp_path / "run")
    run.write_config(config)
    assert run.read_config() == config  # nothing secret in the tree today: saved unchanged


def test_status_writes_keep_earlier_fields(tmp_path):
    run = RunDir(tmp_path)
    run.write_status("queued", pid=123)
    run.write_status("running", heartbeat=1.0)
    assert run.read_status()["pid"] == 123 and run.read_status()["state"] == "running"
    with pytest.raises(ValueError, match="unknown run state"):
        run.write_status("paused")
    run.append_metrics({"step": 1, "loss": 2.0})
    run.metrics_path.open("a").write('{"step": 2, "lo')  # a line still being written
    assert run.read_metrics() == [{"step": 1, "loss": 2.0}]
    assert json.loads(run.status_path.read_text())["state"] == "running"


def test_prompt_completion_splits_at_the_last_answer():
    messages = [
        {"role": "system", "content": "s"},
        {"role": "user", "content": "q1"},
        {"role": "assistant", "content": "a1"},
        {"role": "user", "content": "q2"},
        {"role": "assistant", "content": "a2"},
    ]
    pair = prompt_completion(messages)
    assert pair["prompt"] == messages[:4]
    assert pair["completion"] == [messages[4]]


def test_preference_data_and_the_dpo_objective_go_together():
    from ftui.config import DataConfig
    from ftui.data.errors import DataError
    from ftui.data.training_data import load_training_data

    pairs = DataConfig(path=str(REPO_ROOT / "presets/data/preferences/pairs.jsonl"))
    with pytest.raises(DataError, match="preference pairs .* train with DPO"):
        load_training_data(pairs, "instruction")
    train, validation = load_training_data(pairs, "dpo")
    assert set(train.column_names) == {"prompt", "chosen", "rejected"}
    assert train[0]["chosen"][0]["role"] == "assistant" and len(validation) == 12

    triage = DataConfig(path=str(REPO_ROOT / "presets/data/triage/train.jsonl"))
    with pytest.raises(DataError, match="DPO needs preference pairs"):
        load_training_data(triage, "dpo")


def test_report_to_refuses_a_logger_that_is_not_installed():
    from ftui.translate import report_to

    assert report_to("none") == [] and report_to("") == []
    with pytest.raises(ValueError, match="not installed: pip install no_such_logger"):
        report_to("no_such_logger")
