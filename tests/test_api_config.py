"""The scripting API: /start_config, /run_status, the README's gradio_client script, and
`ftui export` given a run folder.

The README's script is taken from README.md as it stands and run with python against a real
`ftui serve` (the tiny random Llama, 2 steps, so it takes seconds). Then a caller with bad
intent, through gradio_client and raw HTTP: paths out of the workspace, a huge config, a YAML
bomb, trust_remote_code, a token in a value, anonymous calls in team mode — each refused with
a message, and no run started. Parsing and the public demo's caps are checked in-process too.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from conftest import REPO_ROOT, SAMPLES, ftui_server, wait_until

from ftui.config import ConfigError
from ftui.runs.jobs import Jobs
from ftui.server.auth import SESSION_COOKIE, User, UserFile
from ftui.server.demo import DemoLimits
from ftui.server.settings import ServerSettings
from ftui.ui.api_config import (
    MAX_CONFIG_BYTES,
    check_web_config,
    config_from_payload,
    start_from_config,
)
from ftui.workspace import Workspace

README_HEADING = "## Drive it from a script: the API"
TOKEN = "hf_plantedTokenAbcdef123456"
BOMB = "\n".join(
    ["a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    + [f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]" for i in range(8)]
)  # nine levels of nine aliases: 9**9 strings once expanded
GOOD_DATA = "data: {path: uploads/tiny.jsonl, format: alpaca}"


def readme_script() -> str:
    """The first python block under the API heading of README.md."""
    text = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split(README_HEADING, 1)[1]
    return section.split("```python\n", 1)[1].split("```", 1)[0]


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FTUI_", "SPACE_"))}
    return {**env, **extra}


def started_runs(workspace: Path) -> list[str]:
    """Every run the index or the runs folder knows."""
    indexed = [row["id"] for row in Jobs(Workspace(workspace)).list()]
    return sorted(set(indexed) | {p.name for p in (workspace / "runs").iterdir()})


# ---------------------------------------------------------------- a local-mode server


@pytest.fixture(scope="module")
def server(tmp_path_factory, tiny_model_dir):
    """(URL, workspace) of a local-mode server that may load the tiny model."""
    workspace = tmp_path_factory.mktemp("api-workspace")
    env = clean_env(FTUI_MODEL_DIRS=str(tiny_model_dir), FTUI_MAX_UPLOAD_MB="2")
    with ftui_server(workspace, env, workspace.parent / "api-server.log") as url:
        lines = (SAMPLES / "triage" / "train.jsonl").read_text().splitlines()[:16]
        (workspace / "uploads" / "tiny.jsonl").write_text("\n".join(lines) + "\n")
        yield url + "/", workspace


@pytest.fixture(scope="module")
def scripted_run(server, tiny_model_dir, tmp_path_factory):
    """Run the README's script; (its stdout, the run id)."""
    url, _ = server
    script = tmp_path_factory.mktemp("script") / "api_script.py"
    script.write_text(readme_script(), encoding="utf-8")
    env = clean_env(FTUI_URL=url, FTUI_MODEL=str(tiny_model_dir), FTUI_MAX_STEPS="2")
    result = subprocess.run(
        [sys.executable, str(script)], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
        timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    run_id = re.search(r"Started triage-from-a-script as (\S+) \(", result.stdout).group(1)
    return result.stdout, run_id


@pytest.mark.slow
def test_the_readme_script_uploads_trains_polls_and_scores(server, scripted_run, tiny_model_dir):
    output, run_id = scripted_run
    _, workspace = server
    lines = output.splitlines()
    header = lines.index("variant\texact_match\tjson_valid\tfield_accuracy\tperplexity")
    variants = [line.split("\t")[0] for line in lines[header + 1 :]]
    assert variants == ["Base", "Few-shot", "Fine-tuned"], output
    assert re.search(r"running: step \d/2", output) or "step" in output
    jobs = Jobs(Workspace(workspace))
    row = jobs.get(run_id)
    assert (row["owner"], row["state"], row["steps"]) == ("local", "completed", 2)
    config = jobs.run_dir(run_id).read_config()
    uploaded = Path(config.data.path)
    assert uploaded.parent == (workspace / "uploads").resolve() and uploaded.is_file()
    assert uploaded.read_bytes() == (SAMPLES / "triage" / "train.jsonl").read_bytes()
    assert config.model.name_or_path == str(tiny_model_dir.resolve())
    assert config.train.max_steps == 2 and config.eval.max_new_tokens == 32


@pytest.mark.slow
def test_run_status_reports_the_finished_run_and_refuses_unknown_ids(server, scripted_run):
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    client = Client(server[0], verbose=False)
    status = client.predict(scripted_run[1], api_name="/run_status")
    assert status["state"] == "completed" and status["done"] and status["step"] == 2
    assert status["max_steps"] == 2 and status["loss"] > 0 and status["error"] == ""
    for run_id in ("no-such-run", "../../etc", "/etc/passwd"):
        with pytest.raises(AppError, match="no run with id"):
            client.predict(run_id, api_name="/run_status")


@pytest.mark.slow
def test_export_takes_a_run_folder(server, scripted_run, tmp_path):
    _, workspace = server
    folder = workspace / "runs" / scripted_run[1]

    def ftui(*args: str) -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", "ftui", "export", *args]
        return subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=tmp_path)

    merged = ftui(str(folder) + "/", "--merge", "--out", "exports/merged")  # no --workspace
    assert merged.returncode == 0, merged.stderr[-3000:]
    assert (workspace / "exports" / "merged" / "config.json").is_file()
    assert "merged model saved to" in merged.stdout
    elsewhere = ftui(str(folder), "--merge", "--out", "x", "--workspace", str(tmp_path / "other"))
    assert elsewhere.returncode == 2 and "belongs to the workspace" in elsewhere.stderr
    not_a_run = ftui(str(tmp_path), "--merge", "--out", "x")
    assert not_a_run.returncode == 2 and "is not a run folder" in not_a_run.stderr
    by_id = ftui(scripted_run[1], "--merge", "--out", "../../stolen", "--workspace", str(workspace))
    assert by_id.returncode == 2 and "outside the workspace" in by_id.stderr


# ---------------------------------------------------------------- hostile configs

HOSTILE = {
    "absolute path": ("data: {path: /etc/passwd}", "outside the workspace"),
    "climbing path": ("data: {path: ../../../etc/passwd}", "outside the workspace"),
    "climbing validation path": (
        f"{GOOD_DATA[:-1]}, validation_path: uploads/../../x.jsonl}}",
        "outside the workspace",
    ),
    "private folder": ("data: {path: .private/users.json}", "outside the workspace"),
    "link out of uploads": ("data: {path: uploads/link.jsonl}", "outside the workspace"),
    "missing file": ("data: {path: uploads/none.jsonl}", "upload it first"),
    "no data": ("name: x", "data.path is empty"),
    "trust_remote_code": (f"{GOOD_DATA}\nmodel: {{trust_remote_code: true}}", "trust_remote_code"),
    "accelerate config": (
        f"{GOOD_DATA}\ntrain: {{accelerate_config: /etc/passwd}}",
        "accelerate_config",
    ),
    "logger": (f"{GOOD_DATA}\ntrain: {{report_to: wandb}}", "report_to"),
    "model outside": (f"{GOOD_DATA}\nmodel: {{name_or_path: /etc}}", "outside the folders"),
    "yaml bomb": (BOMB, "anchors or aliases"),
    "huge": ("name: x\n" + "# padding\n" * 50_000, "bytes accepted"),
    "deep": ("a: " + "[" * 200 + "]" * 200, "too large or too deep"),
    "python tag": ("name: !!python/object/apply:os.system [id]", "tags such as"),
    "syntax error": (f"{GOOD_DATA}\ntrain:\n  epochs: 1\n bad: [", "line 4"),
    "unknown key": (f"{GOOD_DATA}\nmodel: {{nme: x}}", "model.nme: unknown key"),
    "out of range": (f"{GOOD_DATA}\ntrain: {{epochs: -1}}", "train.epochs: -1 is out of range"),
    "no training": (f"{GOOD_DATA}\nmethod: {{name: few_shot}}", "trains nothing"),
    "not a mapping": ("- a\n- b", "must be a mapping"),
    "json syntax": ('{"data": {"path": }}', "not valid JSON: line 1, column 19"),
}


@pytest.fixture(scope="module")
def hostile_workspace(server):
    _, workspace = server
    (workspace / ".private").mkdir(exist_ok=True)
    (workspace / ".private" / "users.json").write_text('{"instruction": "a", "output": "b"}\n')
    link = workspace / "uploads" / "link.jsonl"
    if not link.exists():
        link.symlink_to("/etc/passwd")
    return workspace


@pytest.mark.slow
@pytest.mark.parametrize("case", HOSTILE)
def test_hostile_configs_are_refused_through_gradio_client(server, hostile_workspace, case):
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    config, expected = HOSTILE[case]
    before = started_runs(hostile_workspace)
    with pytest.raises(AppError) as refused:
        Client(server[0], verbose=False).predict(config, api_name="/start_config")
    assert str(refused.value).startswith("Cannot start: ") and expected in str(refused.value)
    assert started_runs(hostile_workspace) == before


@pytest.mark.slow
def test_a_token_in_a_refused_value_is_not_echoed(server):
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    client = Client(server[0], verbose=False)
    for config in (f"{GOOD_DATA}\ntrain: {{epochs: {TOKEN}}}", {"model": {"revision": [TOKEN]}}):
        with pytest.raises(AppError) as refused:
            client.predict(config, api_name="/start_config")
        assert TOKEN not in str(refused.value) and "hf_***" in str(refused.value)


def raw_call(url: str, endpoint: str, data: list, cookies: dict | None = None) -> tuple[int, str]:
    """POST /gradio_api/call/<endpoint>, then read its event stream: (status, stream text)."""
    with httpx.Client(base_url=url, timeout=120, cookies=cookies) as client:
        posted = client.post(f"gradio_api/call/{endpoint}", json={"data": data})
        if posted.status_code != 200:
            return posted.status_code, posted.text
        event = posted.json()["event_id"]
        return 200, client.get(f"gradio_api/call/{endpoint}/{event}").text


@pytest.mark.slow
@pytest.mark.parametrize("case", ["yaml bomb", "huge", "climbing path", "trust_remote_code"])
def test_hostile_configs_are_refused_over_raw_http(server, hostile_workspace, case):
    config, expected = HOSTILE[case]
    before = started_runs(hostile_workspace)
    status, stream = raw_call(server[0], "start_config", [config])
    assert status == 200 and "event: error" in stream, stream[:500]
    message = json.loads(stream.split("event: error\ndata:", 1)[1].strip().splitlines()[0])
    assert expected in message["error"], message
    assert started_runs(hostile_workspace) == before


@pytest.mark.slow
def test_a_megabyte_json_config_is_refused_over_raw_http(server, hostile_workspace):
    before = started_runs(hostile_workspace)
    huge = {"name": "x" * (1 << 20)}
    status, stream = raw_call(server[0], "start_config", [huge])
    assert status in (200, 413), stream[:300]
    assert "event: complete" not in stream
    assert status == 413 or "bytes accepted" in stream
    assert started_runs(hostile_workspace) == before


# ---------------------------------------------------------------- team mode

PASSWORDS = {"alice": "alice-password"}


@pytest.fixture(scope="module")
def team_server(tmp_path_factory, tiny_model_dir):
    workspace = tmp_path_factory.mktemp("api-team")
    UserFile(workspace / ".private" / "users.json").add("alice", PASSWORDS["alice"])
    env = clean_env(FTUI_MODEL_DIRS=str(tiny_model_dir))
    with ftui_server(workspace, env, workspace.parent / "api-team.log", ready_path="/login") as url:
        (workspace / "uploads" / "tiny.jsonl").write_text(
            "\n".join((SAMPLES / "triage" / "train.jsonl").read_text().splitlines()[:8]) + "\n"
        )
        yield url + "/", workspace


@pytest.mark.slow
def test_team_mode_refuses_anonymous_callers_and_records_the_owner(team_server, tiny_model_dir):
    from gradio_client import Client

    url, workspace = team_server
    config = f"{GOOD_DATA}\nmodel: {{name_or_path: {tiny_model_dir}}}\ntrain: {{max_steps: 1}}"
    for endpoint, data in (("start_config", [config]), ("run_status", ["x"])):
        status, text = raw_call(url, endpoint, data)
        assert status == 401, (endpoint, status, text[:300])
    with pytest.raises(Exception):  # noqa: B017 - the client fails in its own way on 401
        Client(url, verbose=False)
    assert started_runs(workspace) == []

    with httpx.Client(base_url=url, follow_redirects=False) as http:
        login = http.post("/login", data={"username": "alice", "password": PASSWORDS["alice"]})
    assert login.status_code == 303, login.text
    cookie = f"{SESSION_COOKIE}={login.cookies[SESSION_COOKIE]}"
    client = Client(url, verbose=False, headers={"Cookie": cookie})
    message, run_id = client.predict(config, api_name="/start_config")
    assert message.startswith("Started ") and run_id in message
    assert Jobs(Workspace(workspace)).get(run_id)["owner"] == "alice"
    done = wait_until(
        lambda: client.predict(run_id, api_name="/run_status")["done"], timeout=300, every=1
    )
    assert done and client.predict(run_id, api_name="/run_status")["state"] == "completed"


# ---------------------------------------------------------------- in-process


def test_yaml_json_and_mappings_read_the_same_config():
    yaml_text = "name: x\ntrain:\n  max_steps: 7\ndata: {columns: {prompt: ask}}"
    as_json = json.dumps(
        {"name": "x", "train": {"max_steps": 7}, "data": {"columns": {"prompt": "ask"}}}
    )
    for payload in (yaml_text, as_json, json.loads(as_json)):
        config = config_from_payload(payload)
        assert (config.name, config.train.max_steps, config.data.columns) == (
            "x",
            7,
            {"prompt": "ask"},
        )


@pytest.mark.parametrize(
    "payload, expected",
    [
        ("train:\n  epochs: 1\n  max_steps: [\n", "line 4"),
        ({"train": {"max_steps": "many"}}, "train.max_steps: expected a whole number"),
        ({"a": {"b": {"c": {"d": {"e": {"f": {"g": 1}}}}}}}, "deeper than"),
        ("x" * (MAX_CONFIG_BYTES + 1), "bytes accepted"),
        (42, "YAML or JSON text"),
        ("   ", "the config is empty"),
    ],
)
def test_bad_payloads_say_what_is_wrong(payload, expected):
    with pytest.raises(ConfigError, match=re.escape(expected)):
        config_from_payload(payload)


def test_a_data_path_resolves_from_the_workspace_and_a_hub_id_stays(tmp_path):
    workspace = Workspace.open(tmp_path / "workspace")
    (workspace.uploads / "a.jsonl").write_text('{"instruction": "a", "output": "b"}\n')
    settings = ServerSettings(workspace, demo=DemoLimits())
    config = check_web_config(config_from_payload("data: {path: uploads/a.jsonl}"), settings)
    assert config.data.path == str(workspace.uploads / "a.jsonl")
    hub = check_web_config(config_from_payload("data: {path: someone/tickets}"), settings)
    assert hub.data.path == "someone/tickets"
    with pytest.raises(ConfigError, match="outside the workspace"):
        check_web_config(config_from_payload("data: {path: ../x/y}"), settings)


@pytest.mark.slow
def test_the_public_demo_caps_hold_for_api_configs(tmp_path, tiny_model_dir):
    workspace = Workspace.open(tmp_path / "workspace")
    (workspace.uploads / "a.jsonl").write_text('{"instruction": "a", "output": "b"}\n' * 4)
    jobs = Jobs(workspace)
    demo = ServerSettings(workspace, demo=DemoLimits(enabled=True, max_steps=5))
    visitor = User("visitor-abc")
    model = f"model: {{name_or_path: {tiny_model_dir}}}"
    refusals = {
        f"data: {{path: uploads/a.jsonl}}\n{model}\ntrain: {{max_steps: 50}}": "caps training at 5",
        f"data: {{path: someone/tickets}}\n{model}": "does not download datasets",
    }
    for payload, expected in refusals.items():
        with pytest.raises(ConfigError, match=expected):
            start_from_config(jobs, demo, payload, visitor)
    with pytest.raises(ConfigError, match="Log in first"):
        start_from_config(jobs, demo, "data: {path: uploads/a.jsonl}", None)
    assert jobs.list() == [] and not any(workspace.runs.iterdir())
