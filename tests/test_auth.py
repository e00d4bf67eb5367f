"""Team mode's rules without a server: password hashes, the users file and its CLI, signed
sessions, who may act on whose run, and which login mode a server picks."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from types import SimpleNamespace

import pytest
from conftest import REPO_ROOT

from ftui.config import load_config
from ftui.runs.jobs import Jobs
from ftui.server import auth
from ftui.server.auth import Access, AuthError, User, UserFile, access_from_env, can_act
from ftui.server.sessions import RevokedSessions, Sessions, Visitors
from ftui.workspace import Workspace


def test_password_hashes_are_salted_and_checked():
    first, second = auth.hash_password("correct horse"), auth.hash_password("correct horse")
    assert first != second and first.startswith("scrypt$16384$8$1$")
    assert "correct horse" not in first
    assert auth.verify_password("correct horse", first)
    assert not auth.verify_password("correct hors", first)
    assert not auth.verify_password("correct horse", "md5$abc")
    assert not auth.verify_password("correct horse", "garbage")


def test_users_file_is_private_and_checks_passwords(tmp_path):
    users = UserFile(tmp_path / "users.json")
    users.add("alice", "alice-password")
    users.add("root", "root-password", role="admin")
    assert stat.S_IMODE(os.stat(users.path).st_mode) == 0o600
    assert "alice-password" not in users.path.read_text()
    assert users.users() == [User("alice", "user"), User("root", "admin")]
    assert users.check("alice", "alice-password") == User("alice")
    assert users.check("alice", "root-password") is None
    assert users.check("nobody", "alice-password") is None
    for name, password, role in [("../x", "long-enough", "user"), ("ok", "short", "user"),
                                 ("ok", "long-enough", "owner")]:  # fmt: skip
        with pytest.raises(AuthError):
            users.add(name, password, role)
    users.remove("alice")
    assert users.get("alice") is None
    with pytest.raises(AuthError, match="no user"):
        users.remove("alice")


def test_sessions_are_signed_expire_and_end_with_the_password(tmp_path):
    users = UserFile(tmp_path / "users.json")
    users.add("alice", "alice-password")
    users.add("bob", "bob-password")
    secret = auth.load_secret(tmp_path / ".session-key")
    assert stat.S_IMODE(os.stat(tmp_path / ".session-key").st_mode) == 0o600
    assert auth.load_secret(tmp_path / ".session-key") == secret  # kept: survives a restart
    sessions = Sessions(users, secret, lifetime=60)
    cookie = sessions.issue(User("alice"), now=1000.0)
    assert sessions.user(cookie, now=1010.0) == User("alice")
    assert Sessions(users, secret).user(cookie, now=1010.0) == User("alice")  # a new server
    assert sessions.user(cookie, now=1061.0) is None  # expired
    assert Sessions(users, b"another key").user(cookie, now=1010.0) is None
    payload, signature = cookie.rsplit(".", 1)
    assert sessions.user(f"{payload}.{signature[::-1]}", now=1010.0) is None
    bob_payload = sessions.issue(User("bob"), now=1000.0).split(".")[0]
    assert sessions.user(f"{bob_payload}.{signature}", now=1010.0) is None  # swapped body
    for junk in ("", "x", "a.b.c", "!!!.???"):
        assert sessions.user(junk) is None
    users.add("alice", "a-new-password")  # password changed: old sessions end
    assert sessions.user(cookie, now=1010.0) is None
    bob = sessions.issue(User("bob"))
    users.remove("bob")  # removed: sessions end
    assert sessions.user(bob) is None
    assert sessions.user("ftui-s\u00e9ssion.\u00ff\u00fe") is None  # non-ASCII: refused, no error


def test_a_logged_out_session_stays_ended_across_restarts(tmp_path):
    users = UserFile(tmp_path / "users.json")
    users.add("alice", "alice-password")
    secret, revoked_path = auth.load_secret(tmp_path / ".session-key"), tmp_path / "sessions.db"
    sessions = Sessions(users, secret, revoked=RevokedSessions(revoked_path))
    first, second = sessions.issue(User("alice")), sessions.issue(User("alice"))
    assert first != second and sessions.user(first) == User("alice")
    sessions.end(first)
    assert sessions.user(first) is None  # replaying the old cookie does not work
    assert sessions.user(second) == User("alice")  # another browser's session goes on
    restarted = Sessions(users, secret, revoked=RevokedSessions(revoked_path))
    assert restarted.user(first) is None and restarted.user(second) == User("alice")


def test_visitor_ids_are_signed_and_forgeries_worth_nothing(tmp_path):
    visitors = Visitors(auth.load_secret(tmp_path / ".session-key"))
    name, cookie = visitors.issue()
    assert name.startswith(auth.VISITOR_PREFIX) and visitors.name(cookie) == name
    assert visitors.issue()[0] != name
    other = Visitors(b"another key")
    assert other.name(cookie) is None
    forged = other.serializer.dumps(name.removeprefix(auth.VISITOR_PREFIX))
    assert visitors.name(forged) is None
    for junk in (None, "", "abc", "abc.def", "\u00e9.x", cookie + "x"):
        assert visitors.name(junk) is None


def test_private_files_move_out_of_the_workspace_root(tmp_path):
    (tmp_path / "users.json").write_text('{"users": {}}')
    (tmp_path / ".session-key").write_text("ab" * 32 + "\n")
    folder = auth.private_dir(tmp_path)
    assert folder == tmp_path / ".private"
    assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700
    assert (folder / "users.json").exists() and (folder / ".session-key").exists()
    assert not (tmp_path / "users.json").exists() and not (tmp_path / ".session-key").exists()
    assert auth.users_file_path(tmp_path) == folder / "users.json"


def test_owner_or_admin_may_act_and_anonymous_never():
    assert can_act(User("alice"), "alice")
    assert not can_act(User("bob"), "alice")
    assert can_act(User("root", "admin"), "alice")
    assert not can_act(None, "alice")


def test_access_knows_the_caller_in_each_mode(tmp_path):
    users = UserFile(tmp_path / "users.json")
    users.add("alice", "alice-password")
    team = Access("users", users=users)
    assert team.user(SimpleNamespace(username="alice")) == User("alice")
    assert team.user(SimpleNamespace(username="mallory")) is None  # not in the file
    assert team.user(SimpleNamespace(username=None)) is None
    with pytest.raises(auth.PermissionDenied, match="Log in first"):
        team.require_user(SimpleNamespace(username=None))
    with pytest.raises(auth.PermissionDenied, match="belongs to bob"):
        team.require_owner(SimpleNamespace(username="alice"), "bob", "merge", "r1")
    assert Access().user(None) == User("local", "admin")  # single-user: no login
    hf = Access("hf", admins=frozenset({"boss"}))
    assert hf.user(SimpleNamespace(username="boss")).is_admin
    assert not hf.user(SimpleNamespace(username="someone")).is_admin


SPACE = {"SYSTEM": "spaces", "SPACE_ID": "me/ftui", "OAUTH_CLIENT_ID": "abc",
         "OAUTH_CLIENT_SECRET": "s", "OAUTH_SCOPES": "openid profile",
         "OPENID_PROVIDER_URL": "https://huggingface.co", "SPACE_AUTHOR_NAME": "me"}  # fmt: skip


def test_the_login_mode_follows_the_users_file_and_the_space(tmp_path):
    assert access_from_env(tmp_path, env={}).mode == "local"
    assert access_from_env(tmp_path, env={"FTUI_DEMO": "1"}).mode == "demo"
    hf = access_from_env(tmp_path, env={**SPACE, "FTUI_ADMINS": "me, you"})
    assert hf.mode == "hf" and hf.admins == {"me", "you"}
    assert access_from_env(tmp_path, env={"SPACE_ID": "me/ftui"}).mode == "local"  # no OAuth
    assert access_from_env(tmp_path, env={**SPACE, "FTUI_DEMO": "1"}).mode == "hf"


@pytest.mark.parametrize(
    ("env", "missing"),
    [
        ({"FTUI_AUTH": "hf"}, ["SYSTEM=spaces", "SPACE_ID", "OAUTH_CLIENT_ID",
                               "OAUTH_CLIENT_SECRET", "OAUTH_SCOPES", "OPENID_PROVIDER_URL"]),
        ({**SPACE, "SYSTEM": ""}, ["SYSTEM=spaces"]),  # gradio would mock the login
        ({**SPACE, "OAUTH_CLIENT_SECRET": ""}, ["OAUTH_CLIENT_SECRET"]),  # a public secret
    ],
)  # fmt: skip
def test_hf_mode_only_on_a_real_space(tmp_path, env, missing):
    with pytest.raises(AuthError) as refused:
        access_from_env(tmp_path, env=env)
    assert f"missing here: {', '.join(missing)}." in str(refused.value)


def _userinfo(name, *orgs):
    return {"preferred_username": name, "orgs": [{"preferred_username": o, "name": o.title()}
                                                 for o in orgs]}  # fmt: skip


def test_hf_allow_list_defaults_to_the_space_owner_and_admins(tmp_path):
    owner_only = access_from_env(tmp_path, env={**SPACE, "FTUI_ADMINS": "boss"}).allowed
    assert owner_only.admits(_userinfo("me")) and owner_only.admits(_userinfo("Boss"))
    assert owner_only.admits(_userinfo("colleague", "me"))  # the owner may be an org
    assert not owner_only.admits(_userinfo("stranger", "other-org"))
    assert not owner_only.admits({}) and not owner_only.admits(_userinfo(""))
    listed = {**SPACE, "FTUI_ALLOWED_USERS": "ann, bo", "FTUI_ALLOWED_ORGS": "acme"}
    allowed = access_from_env(tmp_path, env=listed).allowed
    assert allowed.admits(_userinfo("ann")) and allowed.admits(_userinfo("zed", "ACME"))
    assert allowed.admits(_userinfo("me"))  # the Space's owner stays admitted
    assert not allowed.admits(_userinfo("zed", "other-org"))
    by_org_name = {"preferred_username": "x", "orgs": [{"name": "acme"}]}
    assert allowed.admits(by_org_name)
    anyone = access_from_env(tmp_path, env={**SPACE, "FTUI_ALLOWED_USERS": "*"}).allowed
    assert anyone.admits(_userinfo("stranger")) and anyone.describe() == "any Hugging Face account"
    with pytest.raises(AuthError, match="no users yet"):
        access_from_env(tmp_path, auth_file=tmp_path / "missing.json", env={})
    with pytest.raises(AuthError, match="FTUI_AUTH"):
        access_from_env(tmp_path, env={"FTUI_AUTH": "none"})
    UserFile(tmp_path / "users.json").add("alice", "alice-password")
    assert access_from_env(tmp_path, env={}).mode == "users"


def _users_cli(*args: str, password: str | None = None) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "ftui", "users", *args]
    if password is not None:
        command.append("--password-stdin")
    return subprocess.run(
        command, input=f"{password}\n" if password else None, capture_output=True, text=True,
        cwd=REPO_ROOT, timeout=60,
    )  # fmt: skip


@pytest.mark.slow
def test_users_cli_adds_lists_and_removes(tmp_path):
    workspace = str(tmp_path / "ws")
    added = _users_cli("add", "alice", "--workspace", workspace, password="alice-password")
    assert added.returncode == 0, added.stderr
    admin = _users_cli("add", "root", "--admin", "--workspace", workspace, password="root-pass1")
    assert admin.returncode == 0, admin.stderr
    path = tmp_path / "ws" / ".private" / "users.json"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert UserFile(path).check("root", "root-pass1") == User("root", "admin")
    listed = _users_cli("list", "--workspace", workspace)
    assert listed.stdout.split() == ["alice", "user", "root", "admin"]
    short = _users_cli("add", "eve", "--workspace", workspace, password="short")
    assert short.returncode == 2 and "8 characters" in short.stderr
    assert _users_cli("remove", "alice", "--workspace", workspace).returncode == 0
    assert _users_cli("remove", "alice", "--workspace", workspace).returncode == 2
    other = tmp_path / "elsewhere.json"
    moved = _users_cli("add", "bob", "--auth-file", str(other), password="bob-password")
    assert moved.returncode == 0 and UserFile(other).get("bob") == User("bob")


@pytest.fixture
def queued(tmp_path, monkeypatch):
    """A run owned by alice, queued without starting a process (the SQLite queue is real)."""
    monkeypatch.setattr("ftui.runs.jobs.launch", lambda run, **where: None)
    jobs = Jobs(Workspace.open(tmp_path / "workspace"))
    config = load_config(REPO_ROOT / "presets" / "triage-lora.yaml")
    return jobs, jobs.submit(config, owner="alice", cwd=REPO_ROOT).run_id


def test_run_actions_check_owner_admin_and_team_mode(queued):
    from ftui.ui.runs_view import act_on_run

    jobs, run_id = queued
    assert "Log in first" in act_on_run(jobs, "cancel", run_id, None, team=True)
    assert "only they or an admin" in act_on_run(jobs, "delete", run_id, User("bob"), team=True)
    assert "only they or an admin" in act_on_run(jobs, "cancel", run_id, "bob", team=True)
    run = jobs.run_dir(run_id)
    assert run.path.exists() and not run.cancel_requested()
    assert "Asked" in act_on_run(jobs, "cancel", run_id, User("root", "admin"), team=True)
    assert run.cancel_requested()


def test_merge_and_push_need_the_owner_and_stay_in_exports(queued):
    import gradio as gr

    from ftui.server.demo import DemoLimits
    from ftui.server.settings import ServerSettings
    from ftui.ui.playground_actions import require_owner

    jobs, run_id = queued
    workspace = Workspace.open(jobs.run_dir(run_id).path.parents[1])
    team = Access("users", users=UserFile(workspace.root / ".private" / "users.json"))
    team.users.add("alice", "alice-password")
    team.users.add("bob", "bob-password")
    settings = ServerSettings(workspace, access=team, demo=DemoLimits())
    local = ServerSettings(workspace, demo=DemoLimits())
    alice, bob = SimpleNamespace(username="alice"), SimpleNamespace(username="bob")
    require_owner(jobs, settings, alice, run_id, "exports/alice/m", "merge")
    require_owner(jobs, local, None, run_id, "anywhere/", "merge")  # local mode
    for request, out, message in [
        (None, "exports/", "Log in first"),
        (bob, "exports/", "belongs to alice"),
        (alice, f"runs/{run_id}", "inside exports/"),
        (alice, "uploads/x", "inside exports/"),
    ]:
        with pytest.raises(gr.Error, match=message):
            require_owner(jobs, settings, request, run_id, out, "push")


HF_SCRIPT = """
import base64, hashlib, json, sys, time
from fastapi.testclient import TestClient
from itsdangerous import TimestampSigner
from ftui.server.auth import access_from_env
from ftui.server.settings import ServerSettings
from ftui.ui.app import build_app
from ftui.server.web_login import team_app
from ftui.workspace import Workspace

workspace = Workspace.open(sys.argv[1])
access = access_from_env(workspace.root)
blocks = build_app(ServerSettings(workspace=workspace, access=access))
app = team_app(blocks, access, workspace.root, show_error=False)
# the cookie gradio's OAuth callback would set (starlette's SessionMiddleware format)
info = {"userinfo": {"preferred_username": "boss"}, "expires_at": time.time() + 600}
data = base64.b64encode(json.dumps({"oauth_info": info}).encode())
secret = hashlib.sha256(b"space-secret-v4").hexdigest()
out = {}
with TestClient(app, base_url="https://testserver") as client:
    page = client.get("/", headers={"Accept": "text/html"}, follow_redirects=False)
    out["page"] = [page.status_code, page.headers.get("location")]
    out["anonymous"] = [client.get("/config").status_code,
                        client.post("/gradio_api/call/cancel_run", json={"data": []}).status_code]
    client.cookies.set("session", TimestampSigner(secret).sign(data).decode())
    out["logged_in"] = [client.get("/config").status_code, client.get("/gradio_api/user").json()]
    info["userinfo"] = {"preferred_username": "stranger", "orgs": [{"preferred_username": "x"}]}
    data = base64.b64encode(json.dumps({"oauth_info": info}).encode())
    client.cookies.set("session", TimestampSigner(secret).sign(data).decode())
    page = client.get("/", headers={"Accept": "text/html"})
    out["stranger"] = [page.status_code, "stranger is not allowed" in page.text,
                       client.get("/config").status_code]
print(json.dumps(out))
"""


@pytest.mark.slow
def test_hf_mode_redirects_to_the_hf_login_and_reads_the_oauth_session(tmp_path):
    """What a Space with `hf_oauth: true` sets; no call reaches huggingface.co."""
    env = {**os.environ, "SYSTEM": "spaces", "SPACE_ID": "me/ftui", "OAUTH_CLIENT_ID": "id",
           "OAUTH_CLIENT_SECRET": "space-secret", "OPENID_PROVIDER_URL": "https://huggingface.co",
           "OAUTH_SCOPES": "openid profile", "SPACE_HOST": "me-ftui.hf.space",
           "FTUI_ADMINS": "boss", "SPACE_AUTHOR_NAME": "me"}  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-c", HF_SCRIPT, str(tmp_path / "ws")], env=env, cwd=REPO_ROOT,
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["page"] == [303, "/login/huggingface"]
    assert out["anonymous"] == [401, 401]
    assert out["logged_in"] == [200, "boss"]
    assert out["stranger"] == [403, True, 403]


def test_login_throttle_is_per_client_and_name_and_bounded(monkeypatch):
    from ftui.server import web_login

    clock = [1000.0]
    monkeypatch.setattr(web_login.time, "monotonic", lambda: clock[0])
    throttle = web_login.LoginThrottle()
    for _ in range(web_login.MAX_FAILURES):
        assert not throttle.blocked("10.0.0.2", "alice")
        throttle.failed("10.0.0.2", "alice")
    assert throttle.blocked("10.0.0.2", "alice")
    assert not throttle.blocked("10.0.0.1", "alice")  # the owner, from elsewhere, is not locked
    assert not throttle.blocked("10.0.0.2", "bob")
    for number in range(web_login.MAX_CLIENT_FAILURES):  # many names from one client
        throttle.failed("10.0.0.3", None if number % 2 else f"name{number}")
    assert throttle.blocked("10.0.0.3", "fresh-name") and throttle.blocked("10.0.0.3", None)
    for number in range(web_login.MAX_THROTTLE_KEYS + 50):  # a flood: the state stays bounded
        throttle.failed(f"10.1.{number // 250}.{number % 250}", "x")
    assert len(throttle.failures) == web_login.MAX_THROTTLE_KEYS
    clock[0] += web_login.FAILURE_WINDOW + 1
    assert not throttle.blocked("10.0.0.2", "alice")
