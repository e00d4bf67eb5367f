"""Team mode's login in a real headless Chromium: the app redirects to /login, a wrong password
is refused, the right one opens the app with the user named in the header, and logging out
(a POST from the header's button) closes it again. Drives a real `ftui serve` subprocess with
a users file in its workspace."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import CHROMIUM, CHROMIUM_FLAGS, REPO_ROOT, free_port, wait_for_http

from ftui.server.auth import UserFile

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def team_url(tmp_path):
    workspace = tmp_path / "workspace"
    UserFile(workspace / "users.json").add("alice", "alice-password")
    port = free_port()
    with (tmp_path / "server.log").open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "ftui", "serve", "--port", str(port),
             "--workspace", str(workspace)],
            cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ),
        )  # fmt: skip
        try:
            url = f"http://127.0.0.1:{port}"
            wait_for_http(f"{url}/login", timeout=120, process=process)
            yield url
        finally:
            process.terminate()
            process.wait(timeout=30)


def test_log_in_see_who_and_log_out(team_url, tmp_path):
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (make test does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        page = browser.new_page()
        page.set_default_timeout(60_000)
        page.goto(team_url + "/")
        assert page.url == team_url + "/login"

        page.fill("#username", "alice")
        page.fill("#password", "wrong-password")
        page.click("#login-button")
        assert "Wrong user name or password" in page.inner_text("#login-note")

        page.fill("#username", "alice")
        page.fill("#password", "alice-password")
        page.click("#login-button")
        page.wait_for_url(team_url + "/")
        who = page.locator("#whoami")
        who.get_by_text("Logged in as alice").wait_for()
        page.screenshot(path=str(tmp_path / "logged-in.png"))

        who.get_by_role("button", name="Log out").click()
        page.wait_for_url("**/login?out=1")
        assert "You are logged out" in page.inner_text("#login-note")
        page.goto(team_url + "/")
        assert page.url == team_url + "/login"
        browser.close()
