"""The small HTML pages of the login gates: log in, log out, and "not allowed" (hf mode).

Every text a user or the environment supplies is HTML-escaped here.
"""

from __future__ import annotations

import html
import os

from ftui.server.auth import Access


def _page(title: str, body: str) -> str:
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>ftui — {title}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body {{ font-family: system-ui, sans-serif; display: grid; place-items: center;
       min-height: 90vh; background: #fafafa; }}
form, .box {{ background: white; padding: 2em; border: 1px solid #ddd; border-radius: 8px;
       width: 18em; }}
label {{ display: block; margin-top: 1em; }}
input {{ width: 100%; padding: .5em; box-sizing: border-box; }}
button {{ margin-top: 1.5em; width: 100%; padding: .6em; }}
</style></head><body>
{body}
</body></html>"""


def _note(note: str, error: bool = False) -> str:
    colour = "#b00020" if error else "#444"
    return f'<p id="login-note" style="color:{colour}">{html.escape(note)}</p>' if note else ""


def login_page(note: str = "", error: bool = False) -> str:
    return _page("log in", f"""<form method="post" action="/login">
<h1>ftui</h1><p>This server is shared by a team: log in to continue.</p>{_note(note, error)}
<label>User name <input name="username" id="username" autocomplete="username" required></label>
<label>Password <input name="password" id="password" type="password"
  autocomplete="current-password" required></label>
<button type="submit" id="login-button">Log in</button>
</form>""")  # fmt: skip


def logout_page(done: bool = False, login_url: str = "/login") -> str:
    if done:
        return _page(
            "logged out",
            f"""<div class="box"><h1>ftui</h1>
<p id="login-note">You are logged out.</p><p><a href="{login_url}">Log in again</a></p></div>""",
        )
    return _page("log out", """<form method="post" action="/logout">
<h1>ftui</h1><p>Log out of ftui on this browser?</p>
<button type="submit" id="logout-button">Log out</button>
<p><a href="/">Back to ftui</a></p></form>""")  # fmt: skip


def not_allowed_page(account: str, access: Access) -> str:
    text = html.escape(not_allowed_text(account))
    admits = html.escape(access.allowed.describe())
    return _page(
        "not allowed",
        f"""<form method="post" action="/logout">
<h1>ftui</h1><p id="login-note" style="color:#b00020">{text}</p>
<p>This server admits {admits}.</p>
<button type="submit" id="logout-button">Log out, to use another account</button></form>""",
    )


def not_allowed_text(account: str) -> str:
    owner = os.environ.get("SPACE_AUTHOR_NAME") or "the Space's owner"
    return (
        f"The Hugging Face account {account} is not allowed on this server. Ask {owner} to add "
        "it to FTUI_ALLOWED_USERS (or one of its organisations to FTUI_ALLOWED_ORGS) in the "
        "Space's settings."
    )
