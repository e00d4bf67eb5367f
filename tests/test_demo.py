"""Demo mode (FTUI_DEMO=1): caps from the environment, refusals with clear sentences, and a
real server that refuses an upload over the demo's cap, shows the banner, gives every browser
its own signed visitor id and refuses state changes from other sites.

The start-path tests call `start_run`, the function behind the Train tab's Start button, with
the demo limits the server reads once at start (ServerSettings.demo).
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
from conftest import REPO_ROOT, ftui_server

from ftui.config import ConfigError, load_config
from ftui.runs.jobs import Jobs
from ftui.server.demo import (
    DemoLimits,
    DemoRefusal,
    check_dataset_source,
    check_run,
    human_count,
    planned_steps,
)
from ftui.ui.run_config import start_run, start_values
from ftui.workspace import Workspace

PRESETS = REPO_ROOT / "presets"
DEMO = DemoLimits(enabled=True)


def test_limits_default_to_off_and_parse_every_variable():
    assert DemoLimits.from_env({}) == DemoLimits()
    assert not DemoLimits.from_env({}).enabled
    limits = DemoLimits.from_env(
        {
            "FTUI_DEMO": "1",
            "FTUI_DEMO_TRAINING": "off",
            "FTUI_DEMO_MAX_MODEL_PARAMS": "1.5B",
            "FTUI_DEMO_MAX_STEPS": "40",
            "FTUI_DEMO_MAX_UPLOAD_MB": "0.5",
            "FTUI_DEMO_MAX_QUEUE": "2",
        }
    )
    assert limits == DemoLimits(
        enabled=True,
        training=False,
        max_model_params=1_500_000_000,
        max_steps=40,
        max_upload_bytes=512 * 1024,
        max_queue=2,
    )
    assert DemoLimits.from_env({"FTUI_DEMO": "true", "FTUI_DEMO_MAX_MODEL_PARAMS": "500m"}) == (
        DemoLimits(enabled=True, max_model_params=500_000_000)
    )


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("FTUI_DEMO", "maybe"),
        ("FTUI_DEMO_MAX_STEPS", "many"),
        ("FTUI_DEMO_MAX_STEPS", "0"),
        ("FTUI_DEMO_MAX_MODEL_PARAMS", "-5M"),
        ("FTUI_DEMO_MAX_UPLOAD_MB", "ten"),
    ],
)
def test_a_malformed_variable_is_named(name, value):
    with pytest.raises(ConfigError, match=f"\\${name} must be"):
        DemoLimits.from_env({"FTUI_DEMO": "1", name: value})


def test_upload_cap_and_banner_only_in_demo_mode():
    server = 200 * 1024 * 1024
    assert DemoLimits().upload_limit(server) == server
    assert DemoLimits().banner() == ""
    assert DEMO.upload_limit(server) == 10 * 1024 * 1024
    assert DEMO.upload_limit(1024) == 1024  # a lower server limit stays in force
    assert DEMO.banner() == (
        "**Public demo:** runs are capped at 100 steps on models up to 500M parameters; "
        "uploads up to 10 MB. For more, run ftui on your own machine, or duplicate this Space "
        "and turn FTUI_DEMO off."
    )
    assert "training is switched off" in DemoLimits(enabled=True, training=False).banner()
    assert (human_count(134_515_008), human_count(1_700_000_000)) == ("135M", "1.7B")


def test_planned_steps_match_the_presets_own_counts():
    """75 for the flagship (300 rows at batch 4), 27 for DPO, 21 for packed raw text."""
    steps = {
        name: planned_steps(load_config(PRESETS / f"{name}.yaml"), REPO_ROOT)
        for name in ("triage-lora", "dpo-preferences", "domain-adapt")
    }
    assert steps == {"triage-lora": 75, "dpo-preferences": 27, "domain-adapt": 21}


def test_the_flagship_preset_passes_the_default_caps():
    check_run(load_config(PRESETS / "triage-lora.yaml"), REPO_ROOT, DEMO, active_runs=0)


def test_outside_demo_mode_nothing_is_checked():
    config = load_config(PRESETS / "triage-lora.yaml")
    config.model.name_or_path = "ftui-tests/not-downloaded"
    check_run(config, REPO_ROOT, DemoLimits(), active_runs=99)


@pytest.fixture
def jobs(tmp_path) -> Jobs:
    return Jobs(Workspace.open(tmp_path / "workspace"))


def _start(jobs: Jobs, demo: DemoLimits, **changes) -> tuple[str, str | None]:
    values = {**start_values("triage-lora", PRESETS), **changes}
    return start_run(jobs, "triage-lora", values, None, {}, PRESETS, owner="visitor", demo=demo)


def test_start_refuses_a_run_over_the_step_cap(jobs, monkeypatch):
    monkeypatch.setenv("FTUI_DEMO", "0")  # the limits handed over count, not the environment
    capped = DemoLimits(enabled=True, max_steps=20)
    message, run_id = _start(jobs, capped)
    assert run_id is None
    assert message == (
        "**Cannot start:** This run would take 75 optimizer steps; this public demo caps "
        "training at 20 steps. Lower Max steps (or the epochs), raise the batch size, or run "
        "ftui on your own machine, or duplicate this Space and turn FTUI_DEMO off for more."
    )
    assert jobs.list() == []
    message, run_id = _start(jobs, capped, **{"train.max_steps": 500})
    assert "would take 500 optimizer steps" in message and run_id is None


def test_start_refuses_everything_when_training_is_off(jobs):
    message, run_id = _start(jobs, DemoLimits(enabled=True, training=False))
    assert run_id is None and jobs.list() == []
    assert message.startswith("**Cannot start:** Training is switched off in this public demo.")


def test_outside_demo_mode_the_start_path_checks_no_caps(jobs, monkeypatch):
    monkeypatch.setattr("ftui.runs.jobs.launch", lambda run, **where: None)
    monkeypatch.setenv("FTUI_DEMO", "1")  # read once by the server, not here
    message, run_id = _start(jobs, DemoLimits(), **{"train.max_steps": 500})
    assert run_id is not None and message.startswith("Started"), message


def test_the_playground_takes_demo_mode_from_the_server_settings(tmp_path, monkeypatch):
    """Read once at start (ServerSettings.demo) or from the login mode, never per call."""
    from ftui.server.auth import Access
    from ftui.server.settings import ServerSettings
    from ftui.ui.playground_actions import is_demo

    workspace = Workspace.open(tmp_path / "workspace")
    monkeypatch.setenv("FTUI_DEMO", "1")
    assert not is_demo(ServerSettings(workspace, demo=DemoLimits()))
    monkeypatch.setenv("FTUI_DEMO", "0")
    assert is_demo(ServerSettings(workspace, access=Access("hf"), demo=DEMO))
    assert is_demo(ServerSettings(workspace, access=Access("demo"), demo=DemoLimits()))


def test_models_that_need_a_download_or_are_too_big_are_refused(tmp_path):
    config = load_config(PRESETS / "triage-lora.yaml")
    config.model.name_or_path = f"ftui-tests/not-here-{uuid.uuid4().hex[:6]}"
    with pytest.raises(DemoRefusal, match="does not download models.*Use 'default'"):
        check_run(config, REPO_ROOT, DEMO, active_runs=0)

    big = tmp_path / "llama-7b"
    big.mkdir()
    architecture = {
        "model_type": "llama",
        "hidden_size": 4096,
        "intermediate_size": 11008,
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
        "num_key_value_heads": 32,
        "vocab_size": 32000,
    }
    (big / "config.json").write_text(json.dumps(architecture), encoding="utf-8")
    config.model.name_or_path = str(big)
    with pytest.raises(DemoRefusal, match=r"has 6.74B parameters; .* caps models at 500M"):
        check_run(config, REPO_ROOT, DEMO, active_runs=0)

    config.model.name_or_path = "default"
    config.model.trust_remote_code = True
    with pytest.raises(DemoRefusal, match="does not run code shipped with model repositories"):
        check_run(config, REPO_ROOT, DEMO, active_runs=0)


def test_the_queue_cap_and_hub_datasets(tmp_path):
    config = load_config(PRESETS / "triage-lora.yaml")
    with pytest.raises(DemoRefusal, match="at most 3 trainings at a time"):
        check_run(config, REPO_ROOT, DEMO, active_runs=3)
    with pytest.raises(DemoRefusal, match="does not download datasets from the Hub"):
        check_dataset_source("someone/big-dataset:train", DEMO)
    check_dataset_source("someone/big-dataset", DemoLimits())  # not in demo mode
    check_dataset_source("uploads/my-data.jsonl", DEMO)  # a file, not a Hub id
    config.data.path = "someone/big-dataset"
    with pytest.raises(DemoRefusal, match="does not download datasets"):
        check_run(config, REPO_ROOT, DEMO, active_runs=0)


@pytest.fixture(scope="module")
def demo_server(tmp_path_factory):
    """A real server in demo mode with a 64 KB upload cap: yields (base URL, workspace)."""
    workspace = tmp_path_factory.mktemp("demo-workspace")
    env = {
        **os.environ,
        "FTUI_DEMO": "1",
        "FTUI_DEMO_MAX_UPLOAD_MB": "0.0625",
        "FTUI_MAX_UPLOAD_MB": "2",
    }
    env.pop("FTUI_AUTH", None)
    with ftui_server(workspace, env, workspace.parent / "demo-server.log") as url:
        yield url, workspace


def _upload(url: str, name: str, size: int) -> tuple[int, str]:
    boundary = uuid.uuid4().hex
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="{name}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + b'{"text": "x"}\n' * (size // 14)
        + f"\r\n--{boundary}--\r\n".encode()
    )
    request = urllib.request.Request(
        url + "/gradio_api/upload",
        data=body,
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


@pytest.mark.slow
def test_a_demo_server_refuses_an_upload_over_its_cap(demo_server):
    url, _ = demo_server
    status, text = _upload(url, "small.jsonl", 16 * 1024)
    assert status == 200, text
    assert Path(json.loads(text)[0]).name == "small.jsonl"
    status, text = _upload(url, "big.jsonl", 200 * 1024)  # under FTUI_MAX_UPLOAD_MB
    assert status == 413, text


@pytest.mark.slow
def test_a_demo_server_shows_the_banner(demo_server):
    with urllib.request.urlopen(demo_server[0] + "/config", timeout=30) as response:
        config = json.loads(response.read())
    banners = [
        c["props"]["value"]
        for c in config["components"]
        if c.get("props", {}).get("elem_id") == "demo-banner"
    ]
    assert len(banners) == 1 and banners[0].startswith("**Public demo:** runs are capped at 100")


@pytest.mark.slow
def test_the_data_tab_applies_the_demo_caps(demo_server):
    """Through the app's API: the file-size check uses the demo's cap, Hub datasets are refused."""
    from gradio_client import Client

    from ftui.ui.data_tab import ALL_ROLES

    url, workspace = demo_server
    client = Client(url, verbose=False)

    def analyse(source: str) -> str:
        mapped = ["(auto)"] * len(ALL_ROLES)
        return client.predict(source, "default", "auto", 256, 0.1, *mapped, api_name="/analyse")[0]

    row = '{"instruction": "%s", "output": "ok"}\n' % ("x" * 500)
    (workspace / "uploads" / "big.jsonl").write_text(row * 200)  # ~100 KB: under the 2 MB
    status = analyse("uploads/big.jsonl")
    assert "cannot be used" in status and "MB" in status
    status = analyse("someone/a-big-dataset")
    assert status.startswith(
        "**Cannot load:** This public demo does not download datasets from the Hub"
    )


def _visitor(url: str, cookie: str | None = None) -> tuple[str, str | None]:
    """(who the server says the caller is, the visitor cookie it sets, if any)."""
    import httpx

    cookies = {"ftui-visitor": cookie} if cookie is not None else {}
    with httpx.Client(base_url=url, timeout=30, cookies=cookies) as client:
        response = client.get("/gradio_api/user")
    assert response.status_code == 200, response.text
    set_cookie = response.headers.get("set-cookie")
    if set_cookie:
        assert "HttpOnly" in set_cookie and "SameSite=Lax" in set_cookie, set_cookie
    return response.json(), response.cookies.get("ftui-visitor")


@pytest.mark.slow
def test_each_browser_gets_its_own_signed_visitor_id(demo_server):
    from itsdangerous import URLSafeSerializer

    url, _ = demo_server
    first, cookie = _visitor(url)  # the very first request already has an owner
    assert first.startswith("visitor-") and cookie
    assert _visitor(url, cookie) == (first, None)  # the same browser stays the same visitor
    second, _ = _visitor(url)
    assert second.startswith("visitor-") and second != first
    forged_id = first.removeprefix("visitor-")
    for forged in (
        URLSafeSerializer(b"guessed key", salt="ftui-visitor").dumps(forged_id),
        URLSafeSerializer(b"", salt="ftui-visitor").dumps(forged_id),
        forged_id,
        cookie[:-2] + "xx",
    ):
        name, fresh = _visitor(url, forged)
        assert name not in (first, second) and name.startswith("visitor-") and fresh


@pytest.mark.slow
def test_a_demo_server_refuses_posts_from_other_sites(demo_server):
    import httpx

    url, _ = demo_server
    with httpx.Client(base_url=url, timeout=30) as client:
        body = {"data": []}
        foreign = client.post("/gradio_api/call/list_runs", json=body,
                              headers={"Origin": "https://evil.example"})  # fmt: skip
        assert foreign.status_code == 403
        same = client.post("/gradio_api/call/list_runs", json=body, headers={"Origin": url})
        assert same.status_code == 200, same.text
        headers = client.get("/").headers
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["content-security-policy"].startswith("frame-ancestors 'self'")
