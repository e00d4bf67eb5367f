"""The web server's defences against a real `ftui serve` on loopback (issue 16, findings 2, 3,
5, 7 and the lower ones): CSRF/Origin checks and security headers, logout as a revoking POST,
a login throttle nobody can turn against a user, scrypt off the event loop, non-ASCII cookies,
private files out of gradio's file routes, hf mode only on a real Space with an allow-list,
and the warning for a local server on a network address.

Raw HTTP with httpx; the 'other client' is 127.0.0.2 (the loopback network is a /8).
"""

from __future__ import annotations

import base64
import concurrent.futures
import hashlib
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from conftest import REPO_ROOT, ftui_server
from itsdangerous import TimestampSigner

from ftui.server.auth import SESSION_COOKIE, UserFile

pytestmark = pytest.mark.slow

PASSWORDS = {"alice": "alice-password", "root": "root-password"}
FOREIGN = "https://evil.example"


@pytest.fixture(scope="module")
def users_server(tmp_path_factory):
    """A users-mode server (alice, and root the admin): yields (URL, workspace)."""
    workspace = tmp_path_factory.mktemp("security-users")
    users = UserFile(workspace / "users.json")  # the old place: moved to .private on start
    for name, password in PASSWORDS.items():
        users.add(name, password, "admin" if name == "root" else "user")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FTUI_", "SPACE_"))}
    log = workspace.parent / "users-server.log"
    with ftui_server(workspace, env, log, ready_path="/login") as url:
        yield url, workspace


def _client(url: str, local_address: str = "127.0.0.1") -> httpx.Client:
    transport = httpx.HTTPTransport(local_address=local_address)
    return httpx.Client(base_url=url, transport=transport, timeout=60, follow_redirects=False)


def _login(url: str, name: str, password: str, local_address: str = "127.0.0.1"):
    with _client(url, local_address) as client:
        return client.post("/login", data={"username": name, "password": password})


def _session(url: str, name: str) -> str:
    response = _login(url, name, PASSWORDS[name])
    assert response.status_code == 303, response.text
    return response.cookies[SESSION_COOKIE]


def test_private_files_moved_and_not_served(users_server):
    url, workspace = users_server
    private = workspace / ".private"
    assert (private / "users.json").exists() and (private / ".session-key").exists()
    assert not (workspace / "users.json").exists() and not (workspace / ".session-key").exists()
    assert oct(private.stat().st_mode & 0o777) == "0o700"
    cookies = {SESSION_COOKIE: _session(url, "root")}
    with _client(url) as client:
        assert client.get("/config", cookies=cookies).status_code == 200
        for target in (private / "users.json", private / ".session-key"):
            relative = os.path.relpath(target, REPO_ROOT)  # the server's working directory
            for path in (str(target), relative, f".private/{target.name}"):
                response = client.get(f"/gradio_api/file={path}", cookies=cookies)
                assert response.status_code in (403, 404), (path, response.status_code)
                assert "scrypt$" not in response.text and len(response.content) < 2000


def test_state_changes_from_another_site_are_refused(users_server):
    url, _ = users_server
    cookies = {SESSION_COOKIE: _session(url, "alice")}
    body = {"data": []}
    with _client(url) as client:
        other_port = url.rsplit(":", 1)[0] + ":1"
        for headers in ({"Origin": FOREIGN}, {"Origin": "null"}, {"Referer": FOREIGN + "/x"},
                        {"Origin": other_port}):  # fmt: skip
            response = client.post("/gradio_api/call/list_runs", json=body, cookies=cookies,
                                   headers=headers)  # fmt: skip
            assert response.status_code == 403, (headers, response.text)
            assert "another site" in response.json()["detail"]
        login = client.post("/login", data={"username": "alice", "password": "alice-password"},
                            headers={"Origin": FOREIGN})  # fmt: skip
        assert login.status_code == 403 and SESSION_COOKIE not in login.cookies
        same = client.post("/gradio_api/call/list_runs", json=body, cookies=cookies,
                           headers={"Origin": url})  # fmt: skip
        assert same.status_code == 200, same.text
        no_origin = client.post("/gradio_api/call/list_runs", json=body, cookies=cookies)
        assert no_origin.status_code == 200  # gradio_client and curl send no Origin
        anonymous = client.post("/gradio_api/call/list_runs", json=body)
        assert anonymous.status_code == 401  # and still need a session
        for path in ("/", "/login", "/config", "/gradio_api/info"):
            headers = client.get(path, cookies=cookies).headers
            assert headers["x-content-type-options"] == "nosniff", path
            assert headers["content-security-policy"] == "frame-ancestors 'self'", path
            assert headers["referrer-policy"] == "same-origin", path


def test_logout_is_a_post_and_the_old_cookie_stops_working(users_server):
    url, _ = users_server
    cookie = _session(url, "alice")
    other_browser = _session(url, "alice")
    with _client(url) as client:
        page = client.get("/logout", cookies={SESSION_COOKIE: cookie})
        assert page.status_code == 200 and 'method="post" action="/logout"' in page.text
        foreign = client.post("/logout", cookies={SESSION_COOKIE: cookie},
                              headers={"Origin": FOREIGN})  # fmt: skip
        assert foreign.status_code == 403
        assert client.get("/gradio_api/user", cookies={SESSION_COOKIE: cookie}).json() == "alice"
        out = client.post("/logout", cookies={SESSION_COOKIE: cookie}, headers={"Origin": url})
        assert out.status_code == 303 and out.headers["location"] == "/login?out=1"
        assert 'ftui-session=""' in out.headers["set-cookie"]
        replay = client.get("/gradio_api/user", cookies={SESSION_COOKIE: cookie})
        assert replay.status_code == 401  # replaying the old cookie does not work
        still = client.get("/gradio_api/user", cookies={SESSION_COOKIE: other_browser})
        assert still.json() == "alice"


def test_non_ascii_cookie_bytes_get_401_not_500(users_server):
    url, _ = users_server
    host, port = url.removeprefix("http://").split(":")
    for value in (b"caf\xe9.\xff\xfe", "ä".encode() + b".x", b"\xc3\x28"):
        for path in (b"/config", b"/gradio_api/info"):
            raw = (b"GET " + path + b" HTTP/1.1\r\nHost: " + host.encode() + b"\r\n"
                   b"Cookie: " + SESSION_COOKIE.encode() + b"=" + value + b"\r\n"
                   b"Connection: close\r\n\r\n")  # fmt: skip
            with socket.create_connection((host, int(port)), timeout=30) as sock:
                sock.sendall(raw)
                status_line = sock.makefile("rb").readline()
            assert status_line.split()[1] == b"401", (value, path, status_line)


def test_twenty_wrong_passwords_from_elsewhere_do_not_lock_out_the_owner(users_server):
    url, _ = users_server
    statuses = [_login(url, "alice", f"guess-{n}", "127.0.0.2").status_code for n in range(20)]
    assert statuses[:5] == [401] * 5 and set(statuses[5:]) == {429}, statuses
    owner = _login(url, "alice", PASSWORDS["alice"], "127.0.0.1")
    assert owner.status_code == 303 and owner.cookies.get(SESSION_COOKIE)
    # a malformed, huge name is just 'wrong', never kept as a throttle key
    huge = _login(url, "x" * 100_000, "whatever", "127.0.0.3")
    assert huge.status_code == 401 and "Wrong user name or password" in huge.text


def test_the_event_loop_answers_while_logins_hash(users_server):
    """scrypt runs in worker threads: GET /login answers quickly while 20 logins are hashed."""
    url, _ = users_server
    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        started = time.perf_counter()
        logins = [pool.submit(_login, url, "root", PASSWORDS["root"]) for _ in range(20)]
        time.sleep(0.05)
        delays = []
        with _client(url) as client:
            while not all(f.done() for f in logins):
                asked = time.perf_counter()
                assert client.get("/login").status_code == 200
                delays.append(time.perf_counter() - asked)
        span = time.perf_counter() - started
        assert all(f.result().status_code == 303 for f in logins)
    print(f"\n20 logins took {span:.2f} s; /login answered {len(delays)} times meanwhile, "
          f"slowest {max(delays) * 1000:.0f} ms")  # fmt: skip
    assert len(delays) >= 3 and max(delays) < span / 3, (delays, span)


# ------------------------------------------------------------------------- hf mode
SPACE_ENV = {
    "SYSTEM": "spaces", "SPACE_ID": "owner/ftui", "SPACE_AUTHOR_NAME": "owner",
    "OAUTH_CLIENT_ID": "client-id", "OAUTH_CLIENT_SECRET": "fake-client-secret",
    "OAUTH_SCOPES": "openid profile", "OPENID_PROVIDER_URL": "https://huggingface.co",
    "SPACE_HOST": "owner-ftui.hf.space", "FTUI_ADMINS": "boss", "FTUI_ALLOWED_ORGS": "team-org",
}  # fmt: skip


def _base_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("FTUI_", "SPACE_", "OAUTH"))}


def test_hf_mode_off_a_space_refuses_to_start(tmp_path):
    env = {**_base_env(), "FTUI_AUTH": "hf"}
    done = subprocess.run(
        [sys.executable, "-m", "ftui", "serve", "--workspace", str(tmp_path / "ws"),
         "--port", "1"], env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    for name in ("SYSTEM=spaces", "SPACE_ID", "OAUTH_CLIENT_ID", "OAUTH_CLIENT_SECRET",
                 "OAUTH_SCOPES", "OPENID_PROVIDER_URL"):  # fmt: skip
        assert name in done.stderr, name
    assert "users add" in done.stderr


def _gradio_session(name: str, orgs=(), token: str = "tok") -> str:
    """The cookie gradio's OAuth callback sets: starlette's SessionMiddleware format, signed
    with the secret gradio derives from OAUTH_CLIENT_SECRET."""
    info = {"access_token": f"{token}-{name}", "expires_at": time.time() + 3600,
            "userinfo": {"preferred_username": name,
                         "orgs": [{"preferred_username": o, "name": o} for o in orgs]}}  # fmt: skip
    data = base64.b64encode(json.dumps({"oauth_info": info}).encode())
    secret = hashlib.sha256((SPACE_ENV["OAUTH_CLIENT_SECRET"] + "-v4").encode()).hexdigest()
    return TimestampSigner(secret).sign(data).decode()


@pytest.fixture(scope="module")
def hf_server(tmp_path_factory):
    workspace = tmp_path_factory.mktemp("security-hf")
    env = {**_base_env(), **SPACE_ENV}
    log = workspace.parent / "hf-server.log"
    with ftui_server(workspace, env, log, ready_path="/logout") as url:
        yield url


def test_hf_mode_admits_only_the_allow_list(hf_server):
    url = hf_server
    allowed = {"owner": (), "boss": (), "member": ("team-org",)}
    with _client(url) as client:
        page = client.get("/", headers={"Accept": "text/html"})
        assert page.status_code == 303 and page.headers["location"] == "/login/huggingface"
        assert client.get("/config").status_code == 401
        for name, orgs in allowed.items():
            cookies = {"session": _gradio_session(name, orgs)}
            assert client.get("/config", cookies=cookies).status_code == 200, name
            assert client.get("/gradio_api/user", cookies=cookies).json() == name
        stranger = {"session": _gradio_session("stranger", ("other-org",))}
        refused = client.get("/", cookies=stranger, headers={"Accept": "text/html"})
        assert refused.status_code == 403
        assert "stranger is not allowed" in refused.text and "owner" in refused.text
        api = client.post("/gradio_api/call/list_runs", json={"data": []}, cookies=stranger)
        assert api.status_code == 403 and "FTUI_ALLOWED_USERS" in api.json()["detail"]
        forged = TimestampSigner(hashlib.sha256(b"-v4").hexdigest())  # gradio's public fallback
        data = base64.b64encode(json.dumps({"oauth_info": {"userinfo": {
            "preferred_username": "boss"}}}).encode())  # fmt: skip
        assert (
            client.get("/config", cookies={"session": forged.sign(data).decode()}).status_code
            == 401
        )


def test_hf_mode_checks_origin_and_logout_revokes(hf_server):
    url = hf_server
    cookies = {"session": _gradio_session("boss", token="logout-test")}
    with _client(url) as client:
        call = client.post("/gradio_api/call/list_runs", json={"data": []}, cookies=cookies,
                           headers={"Origin": FOREIGN})  # fmt: skip
        assert call.status_code == 403
        headers = client.get("/config", cookies=cookies).headers
        assert headers["content-security-policy"] == "frame-ancestors 'self' https://huggingface.co"
        same = client.post("/gradio_api/call/list_runs", json={"data": []}, cookies=cookies,
                           headers={"Origin": url})  # fmt: skip
        assert same.status_code == 200, same.text
        assert client.get("/logout", cookies=cookies).status_code == 200  # a page, no logout
        assert client.get("/config", cookies=cookies).status_code == 200
        out = client.post("/logout", cookies=cookies, headers={"Origin": url})
        assert out.status_code == 303 and out.headers["location"] == "/logout?out=1"
        assert client.get("/config", cookies=cookies).status_code == 401  # replay refused


# ------------------------------------------------------------------------- local mode
def test_local_mode_on_a_network_address_warns(tmp_path):
    env = {**_base_env()}
    log = tmp_path / "local.log"
    exposed = ftui_server(tmp_path / "ws", env, log, extra_args=("--host", "0.0.0.0"))
    with exposed as url, httpx.Client(base_url=url, timeout=60) as client:
        config = client.get("/config").json()
        assert client.get("/").headers["x-content-type-options"] == "nosniff"
    warnings = [c["props"]["value"] for c in config["components"]
                if c.get("props", {}).get("elem_id") == "exposed-warning"]  # fmt: skip
    assert len(warnings) == 1 and "0.0.0.0" in warnings[0] and "FTUI_DEMO=1" in warnings[0]
    text = Path(log).read_text()
    assert "WARNING" in text and "ftui users add" in text
