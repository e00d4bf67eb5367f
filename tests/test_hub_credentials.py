"""The server's Hugging Face token never acts for a web caller (issue 16, findings 1 and 4).

A fake Hub on loopback records every request's path and headers and answers 401 or 404, so
clients fail fast. Real `ftui serve` subprocesses point at it (HF_ENDPOINT) with a planted
server token in $HF_TOKEN and the Hub switched on (HF_HUB_OFFLINE=0) for them only. Anonymous
in local and demo mode, logged in as a non-admin in users mode, through gradio_client and raw
HTTP:

(a) a push with an empty token box is refused and the fake Hub never sees the server's token
    (in demo mode the push is refused before any Hub call);
(b) a push with a typed token goes out with that token, not the server's (local, users);
(c) a Data-tab preview of a Hub dataset id and a Hub model id in the model box (tokenizer and
    architecture loads) reach the fake Hub, and none of those requests carries the token.

Plus unit tests of `hub_auth.trainer_environment`, `push_token` and `server_token`.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from conftest import REPO_ROOT, SAMPLES, ftui_server, tiny_triage_config

from ftui.runs.jobs import Jobs
from ftui.runs.runner import wait_for
from ftui.server import hub_auth
from ftui.workspace import Workspace

SERVER_TOKEN = "hf_plantedSERVERtoken0123456789abcdef"
TYPED_TOKEN = "hf_typedByTheCallerToken9876543210"
BOB_PASSWORD = "bob-password-123"
FOLDER = "exports/bob/pushed"  # bob's own export folder: any mode lets him push from it
HUB_DATASET = "someorg/private-dataset"
HUB_MODEL = "someorg/private-model"


# ------------------------------------------------------------------ unit tests


def test_a_trainer_started_from_the_web_gets_none_of_the_servers_token():
    env = {"HF_TOKEN": SERVER_TOKEN, "HUGGING_FACE_HUB_TOKEN": SERVER_TOKEN, "PATH": "/bin"}
    web = hub_auth.trainer_environment(False, env)
    assert "HF_TOKEN" not in web and "HUGGING_FACE_HUB_TOKEN" not in web
    assert web["HF_HUB_DISABLE_IMPLICIT_TOKEN"] == "1" and web["PATH"] == "/bin"
    assert SERVER_TOKEN not in json.dumps(web)
    cli = hub_auth.trainer_environment(True, {**env, "HF_HUB_DISABLE_IMPLICIT_TOKEN": "1"})
    assert cli["HF_TOKEN"] == SERVER_TOKEN and "HF_HUB_DISABLE_IMPLICIT_TOKEN" not in cli
    assert env["HF_TOKEN"] == SERVER_TOKEN  # the server's own environment is left alone


def test_a_web_push_uses_the_callers_token_and_the_servers_only_by_opt_in(monkeypatch):
    monkeypatch.setenv("HF_TOKEN", SERVER_TOKEN)
    monkeypatch.delenv(hub_auth.OPT_IN, raising=False)
    assert hub_auth.push_token("", None) == ""
    assert hub_auth.push_token(f"  {TYPED_TOKEN} ", None) == TYPED_TOKEN
    assert hub_auth.push_token("", "hf_oauth") == "hf_oauth"
    monkeypatch.setenv(hub_auth.OPT_IN, "1")
    assert hub_auth.push_token("", None) == SERVER_TOKEN
    assert hub_auth.server_token() == SERVER_TOKEN


def test_ftui_reads_hf_token_only_in_hub_auth():
    """No other module names a token variable as a string (as reading it would need)."""
    variable = re.compile(r"""["'](HF_TOKEN|HUGGING_FACE_HUB_TOKEN)["']""")
    readers = {
        str(path.relative_to(REPO_ROOT))
        for path in (REPO_ROOT / "ftui").rglob("*.py")
        if variable.search(path.read_text(encoding="utf-8"))
    }
    assert readers == {"ftui/server/hub_auth.py"}, readers
    assert "ftui/server/hub_auth.py" in readers  # the check finds what it looks for


# ------------------------------------------------------------------ the fake Hub


class FakeHub:
    """A threaded HTTP server that records (method, path, headers) of every request and
    answers 401 to repo creation and 404 'repository not found' to everything else."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # quiet
                pass

            def answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                hub.requests.append(
                    {
                        "method": self.command,
                        "path": self.path,
                        "headers": {k.lower(): v for k, v in self.headers.items()},
                    }
                )
                refused = self.path.startswith("/api/repos/create")
                status = 401 if refused else 404
                body = json.dumps({"error": "Invalid credentials" if refused else "Not found"})
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("X-Error-Code", "" if refused else "RepositoryNotFound")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body.encode())

            do_GET = do_HEAD = do_POST = do_PUT = answer

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def carrying(self, token: str) -> list[dict]:
        return [r for r in self.requests if token in json.dumps(r)]

    def pushes(self) -> list[dict]:
        return [r for r in self.requests if r["path"].startswith("/api/repos/create")]

    def clear(self) -> None:
        self.requests.clear()


@pytest.fixture(scope="module")
def hub():
    fake = FakeHub()
    yield fake
    fake.server.shutdown()


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, tiny_model_dir) -> Workspace:
    """A workspace with bob's finished tiny run and a folder to push from."""
    folder = tmp_path_factory.mktemp("credentials")
    workspace = Workspace.open(folder / "workspace")
    config = tiny_triage_config(folder, model=tiny_model_dir)
    run = Jobs(workspace).submit(config, owner="bob", cwd=REPO_ROOT, server_token=False)
    assert wait_for(run, 240)["state"] == "completed", run.log_path.read_text()[-2000:]
    pushed = workspace.root / FOLDER
    pushed.mkdir(parents=True)
    (pushed / "config.json").write_text("{}", encoding="utf-8")  # a merged model's marker
    return workspace


@contextmanager
def hub_server(workspace: Workspace, hub: FakeHub, log: Path, page: str = "/", **extra: str):
    """`ftui serve` with the Hub on (at the fake) and the server's token planted; yields its
    URL once `page` answers (users mode answers only /login to a stranger)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("HF_HUB_OFFLINE", "HF_HUB_DISABLE_IMPLICIT_TOKEN", "FTUI_DEMO")
    }
    env.update(
        HF_ENDPOINT=hub.url, HF_TOKEN=SERVER_TOKEN, HF_HUB_OFFLINE="0",
        HF_HOME=str(log.parent / "hf-home"), HF_HUB_ETAG_TIMEOUT="5", **extra,
    )  # fmt: skip
    with ftui_server(workspace.root, env, log, ready_path=page) as url:
        yield url


def push_with_typed_token(client, hub: FakeHub, run_id: str) -> str:
    """Push with a typed token: the fake Hub sees that token and no other; then forget it."""
    typed = push(client, run_id, TYPED_TOKEN)
    assert "push to bob/model failed" in typed
    authorizations = [r["headers"].get("authorization") for r in hub.pushes()]
    assert authorizations == [f"Bearer {TYPED_TOKEN}"]
    hub.clear()
    return typed


def client_for(url: str, cookie: str | None = None):
    """A gradio_client session whose run menu lists the finished runs (as a page load does)."""
    from gradio_client import Client

    client = Client(url + "/", verbose=False, headers={"Cookie": cookie} if cookie else None)
    client.predict(api_name="/finished_runs")
    return client


def run_id_of(workspace: Workspace) -> str:
    return Jobs(workspace).list()[0]["id"]


def push(client, run_id: str, token: str) -> str:
    """The push's error message (every push here fails: the fake Hub refuses it)."""
    with pytest.raises(Exception) as failed:
        client.predict(run_id, FOLDER, "bob/model", token, api_name="/push_click")
    return str(failed.value)


def raw_push(url: str, run_id: str, token: str, cookie: str | None = None) -> str:
    """The same push over raw HTTP, in a session whose run menu was refreshed first."""
    session = secrets.token_hex(8)
    raw_call(url, "finished_runs", [], session, cookie)
    return raw_call(url, "push_click", [run_id, FOLDER, "bob/model", token], session, cookie)


def raw_call(url: str, api: str, data: list, session: str, cookie: str | None) -> str:
    """POST /gradio_api/call/<api>, then read its event stream; return the stream's text."""
    headers = {"Content-Type": "application/json", **({"Cookie": cookie} if cookie else {})}
    body = json.dumps({"data": data, "session_hash": session}).encode()
    request = urllib.request.Request(f"{url}/gradio_api/call/{api}", body, headers)
    with urllib.request.urlopen(request, timeout=30) as answer:
        event = json.loads(answer.read())["event_id"]
    stream = urllib.request.Request(f"{url}/gradio_api/call/{api}/{event}", headers=headers)
    with urllib.request.urlopen(stream, timeout=120) as answer:
        return answer.read().decode()


def hub_reads(client) -> list[str]:
    """A Hub dataset preview and a Hub model id in the model box: the messages shown."""
    data = client.predict(HUB_DATASET, "default", api_name="/analyse")[0]
    tokenizer = client.predict(
        str(SAMPLES / "triage" / "train.jsonl"), HUB_MODEL, api_name="/analyse"
    )
    architecture = client.predict(param_0=HUB_MODEL, api_name="/method_estimate")[0]
    return [data, tokenizer[0], architecture]


def assert_no_server_token(hub: FakeHub, *answers: str) -> None:
    assert hub.carrying(SERVER_TOKEN) == [], hub.carrying(SERVER_TOKEN)[:3]
    for answer in answers:
        assert SERVER_TOKEN not in answer and TYPED_TOKEN not in answer


# ------------------------------------------------------------------ through real servers


@pytest.mark.slow
def test_local_mode_pushes_and_reads_without_the_servers_token(workspace, hub, tmp_path):
    run_id = run_id_of(workspace)
    with hub_server(workspace, hub, tmp_path / "server.log") as url:
        client = client_for(url)
        hub.clear()
        refused = [push(client, run_id, ""), raw_push(url, run_id, "")]
        assert "Paste a Hugging Face token" in refused[0] and "Paste a" in refused[1]
        assert hub.pushes() == []  # refused before any Hub call
        typed = push_with_typed_token(client, hub, run_id)
        reads = hub_reads(client)
        assert hub.requests, "the Hub reads reached the fake Hub"
        assert any(HUB_DATASET in r["path"] for r in hub.requests)
        assert any(HUB_MODEL in r["path"] for r in hub.requests)
    assert "could not load Hub dataset" in reads[0] and "No estimate" in reads[2]
    assert_no_server_token(hub, *refused, typed, *reads)


@pytest.mark.slow
def test_demo_mode_refuses_every_push_before_the_hub(workspace, hub, tmp_path):
    run_id = run_id_of(workspace)
    with hub_server(workspace, hub, tmp_path / "server.log", FTUI_DEMO="1") as url:
        client = client_for(url)
        hub.clear()
        refused = [push(client, run_id, token) for token in ("", TYPED_TOKEN)]
        refused.append(raw_push(url, run_id, TYPED_TOKEN))
        merge = push_or_merge_refusal(client, run_id)
        assert hub.requests == []  # nothing reached the Hub
        reads = hub_reads(client)
    for answer in (*refused, merge):
        assert "merging and pushing to the Hub are switched off" in answer, answer
    assert "does not download" in reads[0]  # the demo previews no Hub datasets
    assert_no_server_token(hub, *refused, *reads)


def push_or_merge_refusal(client, run_id: str) -> str:
    with pytest.raises(Exception) as failed:
        client.predict(run_id, FOLDER, api_name="/export")
    return str(failed.value)


@pytest.mark.slow
def test_users_mode_pushes_with_the_callers_token_only(workspace, hub, tmp_path):
    run_id = run_id_of(workspace)
    add_user(workspace, "bob", BOB_PASSWORD)
    add_user(workspace, "root", "root-password-123", admin=True)
    with hub_server(workspace, hub, tmp_path / "server.log", page="/login") as url:
        cookie = log_in(url, "bob", BOB_PASSWORD)
        client = client_for(url, cookie)
        hub.clear()
        refused = [push(client, run_id, ""), raw_push(url, run_id, "", cookie)]
        assert "Paste a Hugging Face token" in refused[0] and "Paste a" in refused[1]
        assert hub.pushes() == []
        typed = push_with_typed_token(client, hub, run_id)
        reads = hub_reads(client)
        assert any(HUB_DATASET in r["path"] for r in hub.requests)
        assert any(HUB_MODEL in r["path"] for r in hub.requests)
    assert_no_server_token(hub, *refused, typed, *reads)


def add_user(workspace: Workspace, name: str, password: str, admin: bool = False) -> None:
    command = [sys.executable, "-m", "ftui", "users", "add", name, "--password-stdin"]
    command += ["--workspace", str(workspace.root)] + (["--admin"] if admin else [])
    added = subprocess.run(
        command, input=password + "\n", cwd=REPO_ROOT, capture_output=True, text=True, timeout=60
    )
    assert added.returncode == 0, added.stderr


def log_in(url: str, name: str, password: str) -> str:
    """The session cookie from the login form (the redirect is not followed)."""

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    form = urllib.parse.urlencode({"username": name, "password": password}).encode()
    request = urllib.request.Request(f"{url}/login", form, method="POST")
    try:
        urllib.request.build_opener(NoRedirect).open(request, timeout=30)
    except urllib.error.HTTPError as redirect:
        assert redirect.code == 303, redirect.code
        return redirect.headers["Set-Cookie"].split(";")[0]
    raise AssertionError("the login form did not redirect")
