"""The playground's engine on a real short triage run of the bundled model.

A module fixture trains LoRA for a few dozen steps through the real job queue; the tests then
compare base, few-shot and fine-tuned answers, check the direction of the scores (no expected
outputs are written down: only which variant should do better), the forgetting check, the
HTML report, and that the merged export answers exactly like base + adapter.
"""

from __future__ import annotations

import pytest
from conftest import REPO_ROOT

from ftui.config import load_config
from ftui.runs.jobs import Jobs
from ftui.runs.runner import wait_for
from ftui.workspace import Workspace

pytestmark = pytest.mark.slow
EXAMPLES = 12


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from ftui.models import prepare_bundled_model

    prepare_bundled_model()
    workspace = Workspace.open(tmp_path_factory.mktemp("playground") / "workspace")
    config = load_config(REPO_ROOT / "presets" / "triage-lora.yaml")
    config.train.max_steps = 24
    config.train.eval_every = config.train.save_every = 1000
    config.data.max_length = 192
    run = Jobs(workspace).submit(config, cwd=REPO_ROOT)
    status = wait_for(run, timeout=900)
    assert status["state"] == "completed", run.log_path.read_text()[-3000:]
    return workspace, run


@pytest.fixture(scope="module")
def comparison(trained):
    from ftui.evaluate.compare import Comparison

    return Comparison.load(trained[1])


@pytest.fixture(scope="module")
def report(trained):
    from ftui.evaluate.batch import evaluate_run

    return evaluate_run(trained[1], limit=EXAMPLES)


def test_fine_tuned_beats_base_and_few_shot_helps_the_base(report):
    summary = report["summary"]
    base, few_shot, tuned = summary["base"], summary["few_shot"], summary["fine_tuned"]
    assert report["kind"] == "json" and report["examples_scored"] == EXAMPLES
    assert tuned["exact_match"] > base["exact_match"]
    assert tuned["field_accuracy"] > base["field_accuracy"]
    assert tuned["json_valid"] > base["json_valid"]
    assert few_shot["json_valid"] > base["json_valid"]  # the examples teach the shape
    assert tuned["perplexity"] < base["perplexity"] and few_shot["perplexity"] < base["perplexity"]
    example = report["examples"][report["best"][0]]
    assert {"prompt", "reference", "base", "few_shot", "fine_tuned"} <= example.keys()


def test_few_shot_chat_puts_training_examples_before_the_question(comparison):
    question = [{"role": "user", "content": "My camera is offline."}]
    chat = comparison.chat(question, "few_shot")
    k = comparison.config.eval.few_shot_k
    assert len(chat) == 2 * k + 1 and chat[-1] == question[0]
    assert [m["role"] for m in chat[:2]] == ["user", "assistant"]
    assert comparison.chat(question, "base") == question


def test_one_copy_of_the_base_weights_serves_all_three(comparison):
    assert comparison.base is comparison.tuned  # adapter toggled, not a second model


def test_forgetting_check_compares_base_and_fine_tuned(comparison):
    from ftui.evaluate.forgetting import GENERAL_QUESTIONS, forgetting_check

    check = forgetting_check(comparison)
    assert check["total"] == len(GENERAL_QUESTIONS) == len(check["questions"])
    assert check["perplexity"]["base"] > 1 and check["perplexity"]["fine_tuned"] > 1
    assert check["perplexity"]["base"] != check["perplexity"]["fine_tuned"]
    assert check["correct"]["base"] >= 3  # the bundled model knows Paris, blue, Earth...


def test_html_report_is_self_contained_and_holds_the_scores(trained, report, tmp_path):
    from ftui.evaluate.report import report_html

    page = report_html(trained[1], report)
    assert page.startswith("<!doctype html>")
    for fetch in ("<script", "<link", "<img", 'src="http', 'href="http', "url(http"):
        assert fetch not in page  # nothing to fetch: it opens offline, as one file
    assert page.count("<svg") == 2
    exact = report["summary"]["fine_tuned"]["exact_match"]
    assert f"{exact:.3f}" in page and "Fine-tuned" in page and "Few-shot" in page


def test_merged_export_matches_base_plus_adapter(trained, comparison):
    import torch
    from transformers import AutoModelForCausalLM

    from ftui.export import merge_run

    workspace, run = trained
    folder = merge_run(run, workspace.resolve("exports/triage"))
    merged = AutoModelForCausalLM.from_pretrained(folder)  # plain transformers
    assert (folder / "model.safetensors").is_file() and (folder / "README.md").is_file()
    chat = [{"role": "user", "content": "Customer: I was charged twice this month."}]
    inputs = comparison.tokenizer.apply_chat_template(
        chat, add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    pad = comparison.tokenizer.eos_token_id
    settings = dict(max_new_tokens=24, do_sample=False, pad_token_id=pad)
    with torch.inference_mode():
        expected = comparison.tuned.generate(**inputs, **settings)
        got = merged.generate(**inputs, **settings)
    assert torch.equal(expected, got)


def test_cli_eval_prints_json_scores_for_the_run(trained):
    import json
    import subprocess
    import sys

    workspace, run = trained
    command = [sys.executable, "-m", "ftui", "eval", run.run_id, "--limit", "2", "--json"]
    result = subprocess.run(
        [*command, "--workspace", str(workspace.root)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads(result.stdout)
    assert summary["examples_scored"] == 2 and summary["primary"] == "exact_match"
    assert set(summary["summary"]) == {"base", "few_shot", "fine_tuned"}
    assert (run.path / "eval.json").is_file()


def test_the_playgrounds_eval_settings_are_checked_by_the_config(trained):
    import gradio as gr

    from ftui.evaluate.cache import ComparisonCache
    from ftui.ui import playground_actions as actions

    workspace, run = trained
    jobs = Jobs(workspace)
    with pytest.raises(gr.Error, match=r"eval\.limit: 0 is out of range; use a whole number"):
        actions.evaluate(jobs, run.run_id, 0, progress=None)
    answers = actions.stream_three(jobs, ComparisonCache(), run.run_id, "Hi", None, 10**6, 0, 1)
    with pytest.raises(gr.Error, match=r"eval\.max_new_tokens: 1000000 is out of range"):
        next(answers)  # refused before any model is loaded


def test_hub_push_errors_never_show_the_token(tmp_path):
    from ftui.export import push_to_hub

    token = "hf_planted_secret_token_123"
    with pytest.raises(ValueError, match="needs a Hugging Face token"):
        push_to_hub(tmp_path, "me/model", "")
    with pytest.raises(RuntimeError) as failure:
        push_to_hub(tmp_path, "me/model", token)  # offline here: the Hub call fails
    assert "push to me/model failed" in str(failure.value)
    assert token not in str(failure.value) and token not in repr(failure.value)
