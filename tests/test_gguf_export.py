"""GGUF export (issue 14): the flagship preset's run written as f16 and q8_0 GGUF answers like
the merged safetensors model when transformers loads it back; tiny models of every supported
architecture survive the round trip; what cannot be converted is refused before any work; a
team-mode export stays inside the caller's exports/ folder; the Modelfile and the HTML report.

The slow module fixture trains the triage LoRA preset for a few steps through the real queue
(run owned by alice). The f16 file comes through the Playground's action in team mode, the
q8_0 file through `ftui export RUN --gguf q8_0` in a subprocess.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import gguf
import pytest
from conftest import REPO_ROOT, SAMPLES, TINY_LLAMA

from ftui.config import load_config
from ftui.gguf_convert import GgufUnsupported, plan_gguf, tensor_type, write_gguf
from ftui.runs.jobs import Jobs
from ftui.runs.rundir import create_run_dir
from ftui.workspace import Workspace

PROMPTS = 5  # validation rows compared


def _head(source: Path, target: Path, count: int) -> str:
    lines = source.read_text(encoding="utf-8").splitlines()[:count]
    target.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(target)


def _team_settings(workspace: Workspace):
    from ftui.server.auth import Access, UserFile
    from ftui.server.demo import DemoLimits
    from ftui.server.settings import ServerSettings

    team = Access("users", users=UserFile(workspace.root / ".private" / "users.json"))
    for name in ("alice", "bob"):
        if team.users.get(name) is None:
            team.users.add(name, f"{name}-password")
    return ServerSettings(workspace, access=team, demo=DemoLimits())


def _log_in(url: str, name: str) -> str:
    """The session cookie the login form sets (its redirect is not followed)."""
    import urllib.parse
    import urllib.request

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    form = urllib.parse.urlencode({"username": name, "password": f"{name}-password"}).encode()
    request = urllib.request.Request(f"{url}/login", form, method="POST")
    with pytest.raises(urllib.error.HTTPError) as redirect:
        urllib.request.build_opener(NoRedirect).open(request, timeout=30)
    assert redirect.value.code == 303
    return redirect.value.headers["Set-Cookie"].split(";")[0]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """The triage LoRA preset on the bundled model, 6 steps on 24 rows, owned by alice."""
    from ftui.models import prepare_bundled_model
    from ftui.runs.runner import wait_for

    prepare_bundled_model()
    root = tmp_path_factory.mktemp("gguf")
    workspace = Workspace.open(root / "workspace")
    config = load_config(REPO_ROOT / "presets" / "triage-lora.yaml")
    config.data.path = _head(SAMPLES / "triage" / "train.jsonl", root / "train.jsonl", 24)
    validation = SAMPLES / "triage" / "validation.jsonl"
    config.data.validation_path = _head(validation, root / "val.jsonl", PROMPTS)
    config.data.max_length = 192
    config.train.max_steps = 6
    config.train.learning_rate = 1e-3
    config.train.eval_every = config.train.save_every = 1000
    run = Jobs(workspace).submit(config, owner="alice", cwd=REPO_ROOT)
    status = wait_for(run, timeout=900)
    assert status["state"] == "completed", run.log_path.read_text()[-3000:]
    return workspace, run


@pytest.fixture(scope="module")
def exported(trained):
    """f16 through the Playground's action (team mode, alice), q8_0 through the CLI."""
    from ftui.export import merge_run
    from ftui.ui.playground_actions import export_gguf

    workspace, run = trained
    calls = []
    alice = SimpleNamespace(username="alice")
    jobs, settings = Jobs(workspace), _team_settings(workspace)
    text = export_gguf(
        jobs, settings, alice, run.run_id, "exports/alice/", "f16",
        lambda fraction, desc: calls.append((fraction, desc)),
    )  # fmt: skip
    command = [sys.executable, "-m", "ftui", "export", run.run_id, "--gguf", "q8_0"]
    cli = subprocess.run(
        [*command, "--out", "exports/cli", "--workspace", str(workspace.root)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert cli.returncode == 0, cli.stderr[-3000:]
    merged = merge_run(run, workspace.resolve("exports/merged"))
    files = {
        "f16": workspace.root / "exports" / "alice" / run.run_id / "triage-lora-f16.gguf",
        "q8_0": workspace.root / "exports" / "cli" / "triage-lora-q8_0.gguf",
    }
    return SimpleNamespace(files=files, merged=merged, progress=calls, ui=text, cli=cli)


def _greedy_answers(model, tokenizer, prompts, tokens: int) -> list[str]:
    import torch

    answers = []
    for messages in prompts:
        inputs = tokenizer.apply_chat_template(
            messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
        )
        with torch.inference_mode():
            output = model.generate(
                **inputs, max_new_tokens=tokens, do_sample=False,
                pad_token_id=tokenizer.eos_token_id,
            )  # fmt: skip
        new = output[0][inputs["input_ids"].shape[1] :]
        answers.append(tokenizer.decode(new, skip_special_tokens=True))
    return answers


@pytest.mark.slow
def test_gguf_files_answer_like_the_merged_model(trained, exported):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from ftui.data.training_data import load_training_rows
    from ftui.models import bundled_model_dir

    _, run = trained
    config = run.read_config()
    _, validation = load_training_rows(config.data, config.method.objective)
    prompts = [row["prompt"] for row in validation[:PROMPTS]]
    assert len(prompts) == PROMPTS
    tokenizer = AutoTokenizer.from_pretrained(exported.merged)
    tokens = config.eval.max_new_tokens

    def answers(folder: Path, **where) -> list[str]:
        model = AutoModelForCausalLM.from_pretrained(folder, **where).eval()
        return _greedy_answers(model, tokenizer, prompts, tokens)

    merged = answers(exported.merged)
    base = answers(bundled_model_dir())
    assert merged != base  # the adapter changes answers: the comparison below means something
    for format, least in (("f16", PROMPTS), ("q8_0", PROMPTS - 1)):
        path = exported.files[format]
        got = answers(path.parent, gguf_file=path.name)
        same = sum(a == b for a, b in zip(got, merged, strict=True))
        print(f"{format}: {path.stat().st_size / 1e6:.1f} MB, {same}/{PROMPTS} answers as merged")
        assert same >= least, (format, got, merged)
        from_gguf = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
        chat = prompts[0]
        assert from_gguf.apply_chat_template(chat) == tokenizer.apply_chat_template(chat)


@pytest.mark.slow
def test_export_reports_file_size_time_and_progress(trained, exported):
    from ftui.export import read_exports

    workspace, run = trained
    f16, q8 = exported.files["f16"], exported.files["q8_0"]
    assert f16.is_file() and q8.is_file()
    assert q8.stat().st_size < 0.6 * f16.stat().st_size  # 8.5 bits per weight against 16
    assert f"exports/alice/{run.run_id}/triage-lora-f16.gguf" in exported.ui
    assert "MB) in" in exported.ui and "ollama create triage-lora" in exported.ui
    assert "exports/cli/triage-lora-q8_0.gguf" in exported.cli.stdout
    assert "[ftui] GGUF q8_0: 50%" in exported.cli.stderr  # progress, every tenth
    fractions = [fraction for fraction, _ in exported.progress]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0 and len(fractions) > 10
    kinds = {record["kind"]: record for record in read_exports(run)}
    assert set(kinds) == {"gguf f16", "gguf q8_0", "safetensors"}
    assert kinds["gguf f16"]["bytes"] == f16.stat().st_size and kinds["gguf f16"]["seconds"] > 0
    leftovers = [
        p.name for p in f16.parent.iterdir() if p.name.startswith(".") or "partial" in p.name
    ]
    assert not leftovers  # the temporary merge and the .partial file are gone


@pytest.mark.slow
def test_modelfile_has_the_chat_template_and_system_prompt(trained, exported):
    path = exported.files["q8_0"].with_suffix(".Modelfile")
    text = path.read_text(encoding="utf-8")
    assert "FROM ./triage-lora-q8_0.gguf" in text
    assert "<|im_start|>{{ .Role }}" in text and 'PARAMETER stop "<|im_end|>"' in text
    # the run has no system prompt: the one SmolLM2's template adds by default, as in training
    assert 'SYSTEM """You are a helpful AI assistant named SmolLM' in text
    reader = gguf.GGUFReader(exported.files["q8_0"])
    template = reader.fields["tokenizer.chat_template"].contents()
    assert "<|im_start|>" in template  # the file carries its own template too
    assert reader.fields["tokenizer.ggml.pre"].contents() == "smollm"
    assert reader.fields["tokenizer.ggml.add_bos_token"].contents() is False


@pytest.mark.slow
def test_html_report_lists_the_exported_files(trained, exported):
    from ftui.evaluate.batch import evaluate_run
    from ftui.evaluate.report import report_html

    workspace, run = trained
    page = report_html(run, evaluate_run(run, limit=1))
    assert "<h2>Exported files</h2>" in page
    assert "exports/cli/triage-lora-q8_0.gguf" in page and "gguf f16" in page
    assert str(workspace.root / "exports") not in page  # workspace-relative: no server path


@pytest.mark.slow
def test_team_mode_refuses_exports_outside_the_callers_folder(trained):
    import gradio as gr

    from ftui.ui.playground_actions import export_gguf

    workspace, run = trained
    jobs, settings = Jobs(workspace), _team_settings(workspace)
    alice, bob = SimpleNamespace(username="alice"), SimpleNamespace(username="bob")
    before = sorted(workspace.root.rglob("*.gguf"))
    for request, out, message in [
        (alice, "models/triage", "exports go inside exports/alice/"),
        (alice, "exports/bob/triage", "exports go inside exports/alice/"),
        (alice, "../../elsewhere", "outside the workspace"),
        (bob, "exports/bob/triage", "belongs to alice"),
        (None, "exports/alice/triage", "Log in first"),
    ]:
        with pytest.raises(gr.Error, match=message):
            export_gguf(jobs, settings, request, run.run_id, out, "q8_0", lambda f, desc: None)
    assert sorted(workspace.root.rglob("*.gguf")) == before
    assert not (workspace.root / "models").exists()


@pytest.mark.slow
def test_the_playground_endpoint_exports_on_a_real_team_server(trained, tmp_path):
    from conftest import ftui_server
    from gradio_client import Client

    workspace, run = trained
    _team_settings(workspace)  # the users file: `ftui serve` starts in team mode
    log = tmp_path / "server.log"
    with ftui_server(workspace.root, dict(os.environ), log, ready_path="/login") as url:
        cookie = _log_in(url, "alice")
        client = Client(url + "/", verbose=False, headers={"Cookie": cookie})
        client.predict(api_name="/finished_runs")  # the run menu lists the run, as a page load
        with pytest.raises(Exception, match="exports go inside exports/alice/"):
            client.predict(run.run_id, "models/web", "q8_0", api_name="/export_gguf")
        answer = client.predict(run.run_id, "exports/alice/web", "q8_0", api_name="/export_gguf")
    assert "exports/alice/web/triage-lora-q8_0.gguf" in answer and "MB) in" in answer
    assert (workspace.root / "exports" / "alice" / "web" / "triage-lora-q8_0.Modelfile").is_file()
    assert not (workspace.root / "models").exists()


# ---------------------------------------------------------------- the converter, no training


def _tiny(kind: str, tokenizer, folder: Path, **extra) -> Path:
    """A random 2-layer model of `kind` with the bundled tokenizer, saved as safetensors."""
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig, Qwen2Config, Qwen3Config

    configs = {"llama": LlamaConfig, "qwen2": Qwen2Config, "qwen3": Qwen3Config}
    settings = {**TINY_LLAMA, "num_hidden_layers": 2, "vocab_size": len(tokenizer), **extra}
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(configs[kind](**settings))
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.mark.slow
@pytest.mark.parametrize(
    "kind,extra",
    [
        ("llama", {"tie_word_embeddings": True}),  # grouped-query attention: 4 heads, 2 kv
        ("llama", {"tie_word_embeddings": False, "attention_bias": True}),
        ("qwen2", {"tie_word_embeddings": True}),  # q/k/v biases, no rotary permutation
        ("qwen3", {"tie_word_embeddings": False, "head_dim": 128}),  # q/k norms; as real Qwen3
    ],
)
def test_each_supported_architecture_survives_the_round_trip(tokenizer, tmp_path, kind, extra):
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    folder = _tiny(kind, tokenizer, tmp_path / kind, **extra)
    plan = plan_gguf(AutoConfig.from_pretrained(folder), tokenizer, "f16")
    path = write_gguf(plan, folder, tmp_path / "model.gguf", "tiny", lambda f, text: None)
    original = AutoModelForCausalLM.from_pretrained(folder).eval()
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path, gguf_file=path.name).eval()
    ids = torch.tensor([tokenizer.encode("The help desk answers tickets about billing.")])
    with torch.inference_mode():
        expected, got = original(ids).logits, loaded(ids).logits
    # f16 weights: close, not equal; a wrong q/k order or a missing bias is off by far more
    assert torch.allclose(expected, got, atol=2e-3), (expected - got).abs().max()


def test_norms_and_biases_stay_f32_and_odd_rows_fall_back_to_f16():
    f32, f16, q8 = (gguf.GGMLQuantizationType[name] for name in ("F32", "F16", "Q8_0"))
    assert tensor_type("blk.0.attn_norm.weight", (576,), "q8_0") == f32
    assert tensor_type("blk.0.attn_q.bias", (576,), "q8_0") == f32
    assert tensor_type("blk.0.attn_q.weight", (576, 576), "q8_0") == q8
    assert tensor_type("blk.0.attn_q.weight", (576, 576), "f16") == f16
    assert tensor_type("blk.0.ffn_down.weight", (64, 100), "q8_0") == f16  # 100 % 32 != 0


@pytest.mark.slow
def test_llama3_rope_scaling_is_written_as_frequency_factors(tokenizer, tmp_path):
    from transformers import AutoConfig

    rope = {
        "rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0, "low_freq_factor": 1.0,
        "high_freq_factor": 4.0, "original_max_position_embeddings": 64,
    }  # fmt: skip
    folder = _tiny("llama", tokenizer, tmp_path / "llama3", rope_parameters=rope)
    plan = plan_gguf(AutoConfig.from_pretrained(folder), tokenizer, "q8_0")
    path = write_gguf(plan, folder, tmp_path / "model.gguf", "tiny", lambda f, text: None)
    tensors = {t.name: t for t in gguf.GGUFReader(path).tensors}
    factors = tensors["rope_freqs.weight"].data
    assert list(factors) == pytest.approx(_llama_cpp_rope_factors(rope), rel=1e-5)
    assert factors[0] == pytest.approx(1.0) and factors[-1] == pytest.approx(8.0)


def _llama_cpp_rope_factors(rope: dict) -> list[float]:
    """llama.cpp's LlamaModel.generate_extra_tensors, written out as the reference."""
    dim = TINY_LLAMA["hidden_size"] // TINY_LLAMA["num_attention_heads"]
    old, low, high = rope["original_max_position_embeddings"], 1.0, 4.0
    factors = []
    for index in range(0, dim, 2):
        wavelength = 2 * math.pi * rope["rope_theta"] ** (index / dim)
        if wavelength < old / high:
            factors.append(1.0)
        elif wavelength > old / low:
            factors.append(rope["factor"])
        else:
            smooth = (old / wavelength - low) / (high - low)
            factors.append(1 / ((1 - smooth) / rope["factor"] + smooth))
    return factors


def test_an_unknown_architecture_is_refused_before_any_work(tmp_path):
    from transformers import GPT2Config

    from ftui.gguf_export import export_gguf

    folder = tmp_path / "gpt2"
    folder.mkdir()
    config = GPT2Config(n_layer=1, n_embd=32, n_head=2, architectures=["GPT2LMHeadModel"])
    config.save_pretrained(folder)  # the config is enough: no weights, no tokenizer read
    workspace = Workspace.open(tmp_path / "workspace")
    config = load_config(REPO_ROOT / "presets" / "triage-lora.yaml")
    config.model.name_or_path = str(folder)
    run = create_run_dir(config, workspace)
    run.adapter.mkdir()
    (run.adapter / "adapter_config.json").write_text("{}", encoding="utf-8")
    out = workspace.root / "exports" / "gpt2"
    with pytest.raises(GgufUnsupported) as refused:
        export_gguf(run, out, "q8_0")
    message = str(refused.value)
    assert "GPT2LMHeadModel cannot be exported to GGUF" in message
    for supported in ("LlamaForCausalLM", "Qwen2ForCausalLM", "Qwen3ForCausalLM", "f16, q8_0"):
        assert supported in message
    assert not out.exists()  # nothing merged, nothing written


def test_sentencepiece_style_tokenizers_and_unknown_formats_are_refused(tokenizer):
    from tokenizers import Tokenizer, models
    from transformers import LlamaConfig, PreTrainedTokenizerFast

    config = LlamaConfig(**TINY_LLAMA, architectures=["LlamaForCausalLM"])
    vocab = {"<unk>": 0, "<0x41>": 1, "a": 2, "b": 3, "ab": 4}
    bpe = models.BPE(vocab, [("a", "b")], unk_token="<unk>", byte_fallback=True)
    spm_style = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(bpe))
    with pytest.raises(GgufUnsupported, match="SentencePiece-style"):
        plan_gguf(config, spm_style, "f16")
    with pytest.raises(GgufUnsupported, match="'q2_k' is not offered here"):
        plan_gguf(config, tokenizer, "q2_k")
    assert plan_gguf(config, tokenizer, "q8_0").pre_tokenizer == "smollm"


@pytest.mark.slow
def test_cli_refuses_q4_k_m_without_llama_quantize(tmp_path, monkeypatch):
    monkeypatch.setattr("ftui.runs.jobs.launch", lambda run, **where: None)  # queued only
    workspace = Workspace.open(tmp_path / "workspace")
    config = load_config(REPO_ROOT / "presets" / "triage-lora.yaml")
    run = Jobs(workspace).submit(config, cwd=REPO_ROOT)
    run.adapter.mkdir()
    (run.adapter / "adapter_config.json").write_text(json.dumps({}), encoding="utf-8")
    env = {**os.environ, "PATH": os.path.dirname(sys.executable)}
    env.pop("FTUI_LLAMA_QUANTIZE", None)
    result = subprocess.run(
        [sys.executable, "-m", "ftui", "export", run.run_id, "--gguf", "q4_k_m", "--out",
         "exports/q4", "--workspace", str(workspace.root)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip
    assert result.returncode == 2, result.stdout + result.stderr
    assert "q4_k_m needs llama.cpp's quantizer" in result.stderr and "f16, q8_0" in result.stderr
    assert not (workspace.root / "exports" / "q4").exists()
