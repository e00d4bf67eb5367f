"""Preference data in the layouts people have: ShareGPT-style and OpenAI's preference rows, and
unpaired good/bad answers (KTO), which are never trained as instruction data.

The KTO rows are the sample preference pairs unpaired (each chosen reply labelled true, each
rejected one false); a real training subprocess runs two KTO steps on the bundled model and
saves a PEFT adapter that plain peft loads.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import REPO_ROOT, SAMPLES

from ftui.config import ConfigError, DataConfig, config_from_dict, load_config
from ftui.data.check import check_dataframe, check_file
from ftui.data.errors import DataError
from ftui.data.examples import to_example
from ftui.data.training_data import load_training_data, load_training_rows

PAIRS = [json.loads(line) for line in (SAMPLES / "preferences" / "pairs.jsonl").open()]
KTO_COLUMNS = {"prompt": "prompt", "completion": "completion", "label": "label"}


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def unpaired(pairs: list[dict]) -> list[dict]:
    """TRL's unpaired preference layout: one row per reply, labelled good or bad."""
    rows = []
    for pair in pairs:
        rows.append({"prompt": pair["prompt"], "completion": pair["chosen"], "label": True})
        rows.append({"prompt": pair["prompt"], "completion": pair["rejected"], "label": False})
    return rows


def test_sharegpt_style_preference_rows(tmp_path):
    row = {
        "conversations": [{"from": "human", "value": "My order is late."}],
        "chosen": {"from": "gpt", "value": "Sorry! It ships tomorrow."},
        "rejected": {"from": "gpt", "value": "Not my problem."},
    }
    report = check_file(write_jsonl(tmp_path / "pref.jsonl", [row] * 3))
    assert report.ok and report.confident, report.summary_text()
    assert report.format == "preference" and report.columns["prompt"] == "conversations"
    example = to_example(row, "preference", report.columns)
    assert example == {
        "prompt": [{"role": "user", "content": "My order is late."}],
        "chosen": [{"role": "assistant", "content": "Sorry! It ships tomorrow."}],
        "rejected": [{"role": "assistant", "content": "Not my problem."}],
    }


def test_openai_preference_rows(tmp_path):
    row = {
        "input": {"messages": [{"role": "user", "content": "Hi"}], "tools": []},
        "preferred_output": [{"role": "assistant", "content": "Hello! How can I help?"}],
        "non_preferred_output": [{"role": "assistant", "content": "What."}],
    }
    report = check_file(write_jsonl(tmp_path / "openai.jsonl", [row] * 3))
    assert report.ok and report.confident and report.format == "preference", report.summary_text()
    example = to_example(row, "preference", report.columns)
    assert example["prompt"] == [{"role": "user", "content": "Hi"}]
    assert example["chosen"][0]["content"] == "Hello! How can I help?"


def test_prompt_completion_with_false_labels_is_kto_not_instruction_data(tmp_path):
    report = check_file(write_jsonl(tmp_path / "kto.jsonl", unpaired(PAIRS[:3])))
    assert report.ok and report.confident, report.summary_text()
    assert report.format == "kto" and report.columns == KTO_COLUMNS
    assert report.to_dict()["layout"] == "kto"
    forced = check_file(tmp_path / "kto.jsonl", format="prompt_completion")
    text = forced.summary_text()
    assert not forced.ok and "column 'label' marks 3 rows as bad answers (false)" in text
    assert "Use format kto (objective kto)" in text


def test_a_conversation_with_a_kto_tag(tmp_path):
    rows = [
        {
            "messages": [
                {"role": "user", "content": pair["prompt"]},
                {"role": "assistant", "content": pair[side]},
            ],
            "kto_tag": side == "chosen",
        }
        for pair in PAIRS[:2]
        for side in ("chosen", "rejected")
    ]
    report = check_file(write_jsonl(tmp_path / "tagged.jsonl", rows))
    assert report.ok and report.format == "kto", report.summary_text()
    assert report.columns == {"prompt": "messages", "label": "kto_tag"}
    example = to_example(rows[1], "kto", report.columns)
    assert example["label"] is False and example["completion"][0]["content"] == PAIRS[0]["rejected"]
    assert example["prompt"] == [{"role": "user", "content": PAIRS[0]["prompt"]}]


def test_a_label_column_of_class_names_is_not_kto():
    import pandas as pd

    frame = pd.DataFrame({"prompt": ["a", "b"], "completion": ["x", "y"], "label": ["spam", "ham"]})
    assert check_dataframe(frame).format == "prompt_completion"


def test_kto_rows_go_with_the_kto_objective_only(tmp_path):
    data = DataConfig(path=str(write_jsonl(tmp_path / "kto.jsonl", unpaired(PAIRS[:10]))))
    with pytest.raises(DataError, match="KTO rows .* train with KTO"):
        load_training_data(data, "instruction")
    train, validation = load_training_data(data, "kto")
    assert set(train.column_names) == {"prompt", "completion", "label", "tools"}
    assert len(train) == 18 and len(validation) == 2 and set(train["label"]) == {True, False}
    assert train["label"] != [True, False] * 9  # shuffled: KTO reads its rows in order
    references, _ = load_training_rows(data, "kto")  # the Playground's references: good ones
    assert len(references) == sum(train["label"]) and set(references[0]) == {"prompt", "completion"}
    triage = DataConfig(path=str(SAMPLES / "triage" / "train.jsonl"))
    with pytest.raises(DataError, match="KTO needs KTO rows"):
        load_training_data(triage, "kto")


def test_kto_needs_two_rows_a_batch():
    with pytest.raises(ConfigError, match="kto needs train.batch_size of at least 2"):
        config_from_dict({"method": {"objective": "kto"}, "train": {"batch_size": 1}})


@pytest.mark.slow
def test_two_kto_steps_on_the_bundled_model_save_a_peft_adapter(tmp_path):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from ftui.models import bundled_model_dir, prepare_bundled_model
    from ftui.runs.jobs import Jobs
    from ftui.runs.runner import wait_for
    from ftui.workspace import Workspace

    prepare_bundled_model()
    config = load_config(REPO_ROOT / "presets" / "dpo-preferences.yaml")
    short = [  # short rows: two steps of a 135M model and its reference pass on 2 CPU cores
        {
            "prompt": f"Is order {n} shipped?",
            "chosen": f"Yes, order {n} ships today.",
            "rejected": "Go away.",
        }
        for n in range(6)
    ]
    config.data.path = str(write_jsonl(tmp_path / "kto.jsonl", unpaired(short)))
    config.data.format, config.data.max_length = "auto", 64
    config.data.validation_fraction = 0.0
    config.method.objective = "kto"
    config.train.max_steps, config.train.batch_size = 2, 2
    config.train.save_every = 2
    config.check()
    run = Jobs(Workspace.open(tmp_path / "workspace")).submit(config, cwd=REPO_ROOT)
    status = wait_for(run, timeout=400)
    log = run.log_path.read_text()
    assert status["state"] == "completed", log[-3000:]
    assert "KTO: 6 good and 6 bad answers; desirable_weight 1.00" in log
    metrics = run.read_metrics()
    assert [m["step"] for m in metrics if "loss" in m] == [1, 2]
    assert any("kl" in m for m in metrics), metrics  # KTOTrainer's own metric
    assert (run.adapter / "adapter_config.json").is_file()
    tuned = PeftModel.from_pretrained(
        AutoModelForCausalLM.from_pretrained(bundled_model_dir()), run.adapter
    )
    lora_b = [p for name, p in tuned.named_parameters() if "lora_B" in name]
    assert lora_b and all(torch.count_nonzero(p) > 0 for p in lora_b)  # every adapter trained


def test_the_recommender_and_the_catalog_offer_kto_for_labelled_answers():
    from ftui.config import config_from_dotted, field_spec
    from ftui.methods import compatible_formats, objective_for_format
    from ftui.recommend import recommend

    rec = recommend(
        gpu_memory_gb=80,
        dataset_rows=3_000,
        task_specificity="narrow",
        performance="good",
        model_params=134_515_008,
        data_format="kto",
    )
    assert rec.settings["method.objective"] == "kto" and "objective is KTO" in rec.reason
    config_from_dotted(rec.settings)  # a valid config with the default batch size
    assert "kto" in field_spec("method.objective").choices  # the Method tab's menu
    assert objective_for_format("kto") == "kto" and compatible_formats("kto") == ["kto"]
