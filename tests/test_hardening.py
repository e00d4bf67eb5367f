"""Hardening: secrets stay secret, paths stay in the workspace, no remote code, no pickles.

A fake Hub token is planted in $HF_TOKEN of a real training run, an export with a push, an
evaluation report and a real app server (and pasted into the push form); afterwards no file in
the workspace, no CLI output, no served page and no API answer contains it. Paths that leave
the workspace (dataset, export folder, run ids like `../x`) are refused and touch nothing
outside. Model loading keeps `trust_remote_code` off unless a run switches it on (which warns
in train.log) and reads safetensors only.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from conftest import REPO_ROOT, free_port, tiny_triage_config, wait_for_http

from ftui.config import FtuiConfig, ModelConfig, load_config
from ftui.models import ModelLoadError, load_model
from ftui.runs.jobs import JobError, Jobs
from ftui.runs.runner import wait_for
from ftui.translate import model_load_kwargs
from ftui.workspace import PathOutsideWorkspace, Workspace

TOKEN = "hf_FAKEplantedTOKENdoNotLeak0123456789"
TIMEOUT = 240


def cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ftui", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env={**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})},
    )


def files_holding(folder: Path, secret: str) -> list[Path]:
    needle = secret.encode()
    return [p for p in folder.rglob("*") if p.is_file() and needle in p.read_bytes()]


# ------------------------------------------------------------------ remote code, pickles


def test_remote_code_is_off_and_weights_are_safetensors_by_default():
    assert ModelConfig().trust_remote_code is False
    for preset in (REPO_ROOT / "presets").glob("*.yaml"):
        assert load_config(preset).model.trust_remote_code is False, preset.name
    kwargs = model_load_kwargs(FtuiConfig(), "cpu")
    assert kwargs["trust_remote_code"] is False and kwargs["use_safetensors"] is True


@pytest.mark.slow
def test_a_model_with_its_own_code_is_refused_without_the_switch(tmp_path, tiny_model_dir):
    folder = tmp_path / "custom-code"
    shutil.copytree(tiny_model_dir, folder)
    config = json.loads((folder / "config.json").read_text())
    config["auto_map"] = {"AutoModelForCausalLM": "modeling_evil.EvilForCausalLM"}
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "modeling_evil.py").write_text("raise SystemExit('remote code ran')\n")
    with pytest.raises(ModelLoadError, match="ships its own Python code") as refused:
        load_model(ModelConfig(name_or_path=str(folder)))
    assert "trust_remote_code is switched on" in str(refused.value)


@pytest.mark.slow
def test_a_model_with_only_pickle_weights_is_refused(tmp_path, tiny_model_dir):
    import torch
    from safetensors.torch import load_file

    folder = tmp_path / "pickled"  # the pre-safetensors layout: config + a pickled state dict
    folder.mkdir()
    weights = load_file(tiny_model_dir / "model.safetensors")
    torch.save(weights, folder / "pytorch_model.bin")
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json"):
        shutil.copy(tiny_model_dir / name, folder)
    assert (folder / "pytorch_model.bin").is_file() and not list(folder.glob("*.safetensors"))
    with pytest.raises(ModelLoadError, match="loads safetensors only") as refused:
        load_model(ModelConfig(name_or_path=str(folder)))
    assert "pytorch_model.bin" in str(refused.value)


# ------------------------------------------------------------------ paths


def test_workspace_paths_refuse_traversal_absolute_paths_and_links_out(tmp_path):
    workspace = Workspace.open(tmp_path / "workspace")
    (tmp_path / "outside").mkdir()
    (workspace.root / "exports").mkdir()
    (workspace.root / "exports" / "link").symlink_to(tmp_path / "outside")
    for path in ("../outside", "exports/../../outside", "/etc", str(tmp_path), "exports/link/x"):
        with pytest.raises(PathOutsideWorkspace, match="outside the workspace"):
            workspace.resolve(path)
    assert workspace.resolve("exports/model") == workspace.root / "exports" / "model"


@pytest.mark.slow
def test_run_ids_that_climb_out_are_refused_and_touch_nothing(tmp_path):
    workspace = Workspace.open(tmp_path / "workspace")
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "status.json").write_text('{"state": "failed"}')
    jobs = Jobs(workspace)
    for run_id in ("../../victim", str(victim), "../runs"):
        for action in (jobs.cancel, jobs.resume, jobs.delete):
            with pytest.raises(JobError, match="no run with id"):
                action(run_id)
        result = cli("delete", run_id, "--workspace", str(workspace.root))
        # the CLI also takes a run folder, so a path is refused as "not a run folder"
        refusals = ("no run with id", "is not a run folder")
        assert result.returncode == 2, result.stderr
        assert any(refusal in result.stderr for refusal in refusals), result.stderr
    (victim / "config.yaml").write_text("name: victim\n")  # a folder that looks like a run
    result = cli("delete", str(victim), "--workspace", str(workspace.root))
    assert result.returncode == 2 and "not inside a workspace's runs/ folder" in result.stderr
    assert (victim / "status.json").is_file() and workspace.runs.is_dir()


# ------------------------------------------------------------------ the planted token


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_model_dir):
    """A run trained with the token in its environment and trust_remote_code switched on."""
    folder = tmp_path_factory.mktemp("secret")
    workspace = Workspace.open(folder / "workspace")
    config = tiny_triage_config(folder, model=tiny_model_dir)
    config.model.trust_remote_code = True
    config.description = "token check"
    os.environ["HF_TOKEN"] = TOKEN  # the supervisor and trainer inherit it
    try:
        run = Jobs(workspace).submit(config, cwd=REPO_ROOT)
        status = wait_for(run, TIMEOUT)
    finally:
        del os.environ["HF_TOKEN"]
    assert status["state"] == "completed", status
    return workspace, run


@pytest.mark.slow
def test_switching_remote_code_on_warns_in_the_run_log(trained):
    _, run = trained
    log = run.log_path.read_text()
    assert "WARNING: model.trust_remote_code is on" in log
    assert yaml.safe_load((run.path / "config.yaml").read_text())["model"]["trust_remote_code"]


@pytest.mark.slow
def test_export_outside_the_workspace_is_refused(trained, tmp_path):
    workspace, run = trained
    target = tmp_path / "stolen"
    for out in (str(target), "../../stolen", "exports/../../x"):
        result = cli(
            "export", run.run_id, "--merge", "--out", out, "--workspace", str(workspace.root)
        )
        assert result.returncode == 2, result.stdout + result.stderr
        assert "outside the workspace" in result.stderr
    assert not target.exists()


@pytest.mark.slow
def test_the_planted_token_appears_nowhere(trained):
    workspace, run = trained
    env = {"HF_TOKEN": TOKEN}
    export = cli(
        "export", run.run_id, "--merge", "--out", "exports/merged", "--push", "me/model",
        "--workspace", str(workspace.root), env=env,
    )  # fmt: skip
    assert (workspace.root / "exports" / "merged" / "README.md").is_file(), export.stderr
    assert export.returncode == 2 and "push to me/model failed" in export.stderr  # offline
    report = workspace.root / "report.html"
    evaluated = cli(
        "eval", run.run_id, "--limit", "2", "--report", str(report),
        "--workspace", str(workspace.root), env=env,
    )  # fmt: skip
    assert evaluated.returncode == 0 and report.is_file(), evaluated.stderr
    for result in (export, evaluated):
        assert TOKEN not in result.stdout + result.stderr

    port = free_port()
    log = workspace.root.parent / "server.log"
    with log.open("w") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "ftui", "serve", "--port", str(port),
             "--workspace", str(workspace.root)],
            cwd=REPO_ROOT, stdout=out, stderr=subprocess.STDOUT,
            env={**os.environ, **env},
        )  # fmt: skip
        try:
            url = f"http://127.0.0.1:{port}/"
            wait_for_http(url, timeout=120, process=server)
            served = [urllib.request.urlopen(url + page).read().decode() for page in ("", "config")]
            from gradio_client import Client

            client = Client(url, verbose=False)
            answers = [client.predict(api_name="/list_runs"), client.view_api(print_info=False)]
            client.predict(api_name="/finished_runs")  # the run menu lists the run
            # An empty token box: refused, the server's $HF_TOKEN is not used; pasted: tried.
            for secret, refusal in (("", "Paste a Hugging Face token"), (TOKEN, "push to me")):
                with pytest.raises(Exception, match=refusal) as failed:
                    client.predict(
                        run.run_id, "exports/merged", "me/model", secret, api_name="/push_click"
                    )
                answers.append(str(failed.value))
            for victim in ("../../victim", "../runs"):
                for action in ("cancel", "resume", "delete"):
                    answer = client.predict(victim, api_name=f"/{action}_run")
                    assert "no run with id" in answer
                    answers.append(answer)
        finally:
            server.terminate()
            server.wait(timeout=30)
    assert served[0].startswith("<!") and '"components"' in served[1]
    for text in (*served, *map(str, answers)):
        assert TOKEN not in text
    assert workspace.runs.is_dir() and (run.path / "status.json").is_file()
    assert not files_holding(workspace.root.parent, TOKEN)  # logs, config, metrics, exports...
    for name in ("train.log", "config.yaml", "metrics.jsonl", "status.json"):
        assert (run.path / name).is_file()


# ------------------------------------------------------------------ exports and pushes


@pytest.fixture
def alices_run(tmp_path, monkeypatch):
    """A run owned by alice, queued without starting a process (the SQLite queue is real)."""
    monkeypatch.setattr("ftui.runs.jobs.launch", lambda run, **where: None)
    monkeypatch.delenv("FTUI_DEMO", raising=False)
    workspace = Workspace.open(tmp_path / "workspace")
    jobs = Jobs(workspace)
    config = load_config(REPO_ROOT / "presets" / "triage-lora.yaml")
    return jobs, workspace, jobs.submit(config, owner="alice", cwd=REPO_ROOT).run_id


def test_exports_go_under_the_callers_own_folder_in_team_mode(alices_run):
    import gradio as gr

    from ftui.server.auth import Access, UserFile
    from ftui.server.demo import DemoLimits
    from ftui.server.settings import ServerSettings
    from ftui.ui.playground_actions import default_export_folder, require_owner

    jobs, workspace, run_id = alices_run
    team = Access("users", users=UserFile(workspace.root / "users.json"))
    for name, role in (("alice", "user"), ("bob", "user"), ("root", "admin")):
        team.users.add(name, f"{name}-password", role)
    settings = ServerSettings(workspace, access=team, demo=DemoLimits())
    alice, bob, root = (SimpleNamespace(username=n) for n in ("alice", "bob", "root"))
    exports = workspace.root / "exports"
    assert default_export_folder(settings, alice) == "exports/alice/"
    assert require_owner(jobs, settings, alice, run_id, "exports/alice/", "merge") == (
        exports / "alice" / run_id
    )
    assert require_owner(jobs, settings, root, run_id, "exports/x", "push") == exports / "x"
    for request, out, message in [
        (alice, "exports/bob/m", "exports go inside exports/alice/"),
        (alice, "exports/alice/../bob/m", "exports go inside exports/alice/"),
        (alice, "exports/m", "exports go inside exports/alice/"),
        (alice, "exports/alice", "exports go inside exports/alice/"),
        (bob, "exports/bob/m", "belongs to alice"),
        (None, "exports/alice/m", "Log in first"),
        (root, "uploads/m", "exports go inside exports/"),
        (alice, "../../m", "outside the workspace"),
    ]:
        with pytest.raises(gr.Error, match=message):
            require_owner(jobs, settings, request, run_id, out, "merge")


def test_demo_mode_never_merges_or_pushes(alices_run):
    import gradio as gr

    from ftui.server.auth import Access
    from ftui.server.demo import DemoLimits
    from ftui.server.settings import ServerSettings
    from ftui.ui.playground_actions import require_owner

    jobs, workspace, run_id = alices_run
    visitor = SimpleNamespace(username="visitor-abc")
    demo_logins = ServerSettings(workspace, access=Access("demo"), demo=DemoLimits())
    demo_limits = ServerSettings(workspace, access=Access("hf"), demo=DemoLimits(enabled=True))
    for settings in (demo_logins, demo_limits):
        for action in ("merge", "push"):
            with pytest.raises(gr.Error, match="merging and pushing to the Hub are switched off"):
                require_owner(jobs, settings, visitor, run_id, "exports/m", action)
    local_settings = ServerSettings(workspace, demo=DemoLimits())
    local = require_owner(jobs, local_settings, None, run_id, "models/m", "merge")
    assert local == workspace.root / "models" / "m"  # local mode: anywhere in the workspace


def test_a_push_without_a_token_of_the_callers_own_is_refused(monkeypatch):
    import gradio as gr

    from ftui.server.auth import Access
    from ftui.ui.playground_actions import caller_push_token

    monkeypatch.setenv("HF_TOKEN", TOKEN)
    monkeypatch.delenv("FTUI_WEB_USES_SERVER_TOKEN", raising=False)
    oauth = SimpleNamespace(token="hf_oauth_of_the_caller")
    for access in (Access(), Access("users"), Access("hf")):
        with pytest.raises(gr.Error, match="token with write access") as refused:
            caller_push_token(access, " ", None)
        assert TOKEN not in str(refused.value)
        assert caller_push_token(access, "hf_typed", oauth) == "hf_typed"
    assert caller_push_token(Access("hf"), "", oauth) == "hf_oauth_of_the_caller"
    with pytest.raises(gr.Error):  # an OAuth token counts only in hf mode
        caller_push_token(Access("users"), "", oauth)
    monkeypatch.setenv("FTUI_WEB_USES_SERVER_TOKEN", "1")  # the admin's opt-in
    assert caller_push_token(Access("users"), "", None) == TOKEN


# ------------------------------------------------------------------ the model card


def test_a_run_name_cannot_inject_front_matter_or_markup_into_the_model_card(tmp_path):
    from markdown_it import MarkdownIt

    from ftui.export import model_card
    from ftui.runs.rundir import create_run_dir

    config = FtuiConfig(
        name="x\n---\nlicense: evil\n# Owned <script>alert(1)</script>",
        description="![](/logout) [click](javascript:alert(1)) <img src=x onerror=alert(1)>\n"
        "---\nlicense: evil\n\n# heading\n* item\n> quote\n`code` **bold** <!-- c -->",
    )
    card = model_card(create_run_dir(config, Workspace.open(tmp_path / "workspace")))
    assert card.startswith("---\n")
    front_text, body = card[len("---\n") :].split("\n---\n", 1)
    assert yaml.safe_load(front_text) == {
        "base_model": "HuggingFaceTB/SmolLM2-135M-Instruct",
        "library_name": "transformers",
        "tags": ["ftui", "lora"],
    }
    html = MarkdownIt("commonmark").render(body)
    assert html.count("<h1>") == 1 and "<h2>" not in html  # only the card's own title
    for markup in ("<img", "<a ", "<script", "<hr", "<ul", "<blockquote", "<code>code", "<strong"):
        assert markup not in html, markup
    assert "<!--" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "license: evil" in html  # still there, as plain text
    assert "![](/logout)" in html.replace("\\", "")


def test_a_local_or_odd_base_model_name_stays_off_the_card(tmp_path):
    from ftui.export import model_card
    from ftui.runs.rundir import create_run_dir

    workspace = Workspace.open(tmp_path / "workspace")
    for base in ("/srv/models/secret-base", "org/model\nlicense: evil"):
        card = model_card(
            create_run_dir(FtuiConfig(model=ModelConfig(name_or_path=base)), workspace)
        )
        assert base not in card and "base_model" not in card and "license" not in card


# ------------------------------------------------------------------ uploads


@pytest.mark.slow
def test_uploads_over_the_cap_or_of_the_wrong_type_are_refused(app_server, tmp_path):
    import httpx
    from gradio_client import Client, handle_file

    url, workspace = app_server  # started with FTUI_MAX_UPLOAD_MB=2
    big = b'{"text": "' + b"a" * (3 * 1024 * 1024) + b'"}\n'
    answer = httpx.post(url + "gradio_api/upload", files={"files": ("big.jsonl", big)})
    assert answer.status_code == 413 and "exceeded maximum allowed size" in answer.text
    program = tmp_path / "setup.exe"
    program.write_bytes(b"MZ" + bytes(64))
    with pytest.raises(Exception, match="Invalid file type"):
        Client(url, verbose=False).predict(handle_file(str(program)), api_name="/from_upload")
    assert not list((workspace / "uploads").glob("*.exe"))
    assert not list((workspace / "uploads").glob("big*"))
