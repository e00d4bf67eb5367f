"""User text (run names, owners, file and column names, messages) shows as plain text.

Unit tests render `markdown_literal` output with a CommonMark renderer (markdown-it; gradio's
own renderer, marked with GFM autolinks, is covered by the browser test) and check that no
tag or link comes out and the text reads as typed. The slow test opens a real server in
headless Chromium with a run whose name and owner are hostile Markdown and HTML, and a dataset
whose file and column names are: the page shows them literally, makes no request to /logout
or to what the names point at, and creates no <img> or <a> from them.
"""

from __future__ import annotations

import html
import os
import re
from pathlib import Path
from urllib.parse import urlparse

import pytest
from conftest import CHROMIUM, CHROMIUM_FLAGS, REPO_ROOT, ftui_server

from ftui.markup import markdown_literal
from ftui.ui import runs_view

HOSTILE = "![x](/logout) <img src=x onerror=alert(1)> [link](http://evil)"
HOSTILE_TEXTS = [
    HOSTILE,
    "**bold** _it_ `code` ~~gone~~ <b>b</b> &amp; &#60;",
    "www.evil.example and mail@evil.example and https://evil.example/x",
    "$$\\href{http://evil}{x}$$ and \\[not a link\\](x)",
    "# heading\n- list\n1. item\n> quote\n\n    code\n---",
    "-starts a list",
    "12) starts a list",
    "| a | b |\n|---|---|",
    "[ref]: http://evil\n[ref]",
    "<https://evil.example>",
    "a_b_c __init__ FTUI_MAX_ROWS",
]


def rendered(markdown: str) -> str:
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark").enable("table").render(markdown)


def visible_text(markup: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", markup)).strip()


@pytest.mark.parametrize("text", HOSTILE_TEXTS)
def test_escaped_text_renders_as_itself_with_no_tag(text):
    output = rendered(f"**Run:** {markdown_literal(text)}")
    assert re.findall(r"<(\w+)", output) == ["p", "strong"], output
    assert visible_text(output) == "Run: " + re.sub(r"[\r\n\t]", " ", text)


def test_the_run_header_and_action_messages_escape_user_text():
    row = {"name": HOSTILE, "id": "20260101-x", "method": "lora", "model": "<img src=m>",
           "dataset": "data/`x`.jsonl", "owner": "[o](http://evil)", "state": "failed"}  # fmt: skip
    header = runs_view.run_header(row, 0, None)
    output = rendered(header)
    assert "<img" not in output and "<a " not in output and "<code" not in output
    assert HOSTILE in visible_text(output) and "[o](http://evil)" in visible_text(output)
    message = runs_view.act_on_run(None, "cancel", HOSTILE, None, team=True)  # type: ignore
    assert message == "Log in first: this server runs in team mode."


def test_refusals_naming_a_typed_run_id_are_escaped(tmp_path):
    from ftui.runs.jobs import Jobs
    from ftui.workspace import Workspace

    jobs = Jobs(Workspace.open(tmp_path / "workspace"))
    message = runs_view.act_on_run(jobs, "delete", HOSTILE, None)
    output = rendered(message)
    assert "<img" not in output and "<a " not in output
    assert "Cannot delete" in visible_text(output) and "/logout" in visible_text(output)


SHOWING_USER_TEXT = [
    "data-status", "data-preview", "train-header", "train-history", "train-run",
    "train-action-status", "train-error",
]  # fmt: skip


@pytest.fixture
def hostile_server(tmp_path, monkeypatch):
    """A server whose workspace holds a run named HOSTILE, owned by a hostile name (no
    trainer is launched: the server finds it dead and marks it failed), and a CSV whose file
    and column names are hostile."""
    from ftui.config import load_config
    from ftui.models import prepare_bundled_model
    from ftui.runs.jobs import Jobs
    from ftui.workspace import Workspace

    prepare_bundled_model()
    workspace = tmp_path / "workspace"
    monkeypatch.setattr("ftui.runs.jobs.launch", lambda run, **_: None)
    config = load_config(REPO_ROOT / "presets" / "triage-lora.yaml")
    config.name = HOSTILE
    Jobs(Workspace.open(workspace)).submit(config, owner="![o](/logout)", cwd=REPO_ROOT)
    data = workspace / "uploads"
    data.mkdir(exist_ok=True)
    (data / "![d](logout) <img src=y onerror=alert(2)>.csv").write_text(
        "instruction,![c](/logout) <img src=z>\nhello,world\nbye,now\n"
    )
    with ftui_server(workspace, dict(os.environ), tmp_path / "server.log") as url:
        yield url


@pytest.mark.slow
@pytest.mark.browser
def test_hostile_names_show_as_text_and_make_no_requests(hostile_server, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium")
    requests: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1800})
        page.set_default_timeout(60_000)
        page.on("request", lambda request: requests.append(request.url))
        page.goto(hostile_server)
        page.locator("#data-source textarea, #data-source input").first.fill(
            "uploads/![d](logout) <img src=y onerror=alert(2)>.csv"
        )
        page.get_by_role("button", name="Load", exact=True).click()
        status = page.locator("#data-status")
        expect(status).to_contain_text(
            "![d](logout) <img src=y onerror=alert(2)>.csv", timeout=90_000
        )
        expect(page.locator("#data-preview")).to_contain_text("![c](/logout) <img src=z>")
        page.get_by_role("tab", name="Train").click()
        header = page.locator("#train-header")
        expect(header).to_contain_text(HOSTILE, timeout=60_000)
        expect(header).to_contain_text("started by ![o](/logout)")
        expect(page.locator("#train-history")).to_contain_text("![o](/logout)")
        page.wait_for_timeout(1500)  # let any image or link the page made try to load
        page.screenshot(path=tmp_path / "hostile-names.png", full_page=True)
        made = page.evaluate(
            "(s) => [...document.querySelectorAll(s)]"
            ".flatMap(e => [...e.querySelectorAll('img, a')]).map(e => e.outerHTML)",
            ", ".join(f"#{name}" for name in SHOWING_USER_TEXT),
        )
        browser.close()
    assert made == []
    planted = {"/logout", "/x", "/y", "/z", "/m"}  # what the hostile names point at
    bad = [url for url in requests if urlparse(url).path in planted or "evil" in url]
    assert bad == [], bad
    assert any(u.startswith(hostile_server) for u in requests)  # the listener did listen
