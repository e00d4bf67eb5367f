"""Team mode's web side: the gradio app mounted behind a login, served by uvicorn.

Users mode: a small /login form sets a signed, HttpOnly, SameSite=Lax cookie (ftui.auth.Sessions);
a middleware in front of *every* route refuses requests without a valid one — pages are
redirected to /login, everything else (API, queue, files, config) gets 401 — so no gradio route
is left open by accident. gradio's own `auth_dependency` reads the same cookie, which is how
handlers see `request.username`.

HF mode: gradio's OAuth routes (present because the header holds a gr.LoginButton) log people in;
the first page redirects to /login/huggingface instead of answering 401.
"""

from __future__ import annotations

import html
import time
from typing import Any

import gradio as gr
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from ftui.auth import SECRET_FILE, SESSION_COOKIE, Access, Sessions, load_secret

PUBLIC_PATHS = ("/login", "/logout", "/favicon.ico")
MAX_FAILURES, FAILURE_WINDOW = 5, 300.0  # per user name: then wait out the window


def team_app(blocks: gr.Blocks, access: Access, workspace_root, **options: Any) -> FastAPI:
    """A FastAPI app with the gradio Blocks mounted at / behind the login of `access.mode`."""
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    if access.mode == "users":
        sessions = Sessions(access.users, load_secret(workspace_root / SECRET_FILE))
        _add_login_routes(app, sessions)
        app.add_middleware(RequireSession, sessions=sessions)

        def dependency(request: Request) -> str | None:
            user = sessions.user(request.cookies.get(SESSION_COOKIE))
            return user.name if user else None
    else:
        app.add_middleware(RedirectToHfLogin)
        dependency = hf_username
    return gr.mount_gradio_app(app, blocks, path="/", auth_dependency=dependency, **options)


def hf_username(request: Request) -> str | None:
    """The HF user name stored by gradio's OAuth callback in the session cookie."""
    if "session" not in request.scope:
        return None
    info = request.session.get("oauth_info") or {}
    expires = info.get("expires_at")
    if expires is not None and expires < time.time():
        return None
    return (info.get("userinfo") or {}).get("preferred_username")


def _wants_page(scope: dict, headers: dict[bytes, bytes]) -> bool:
    return scope["method"] == "GET" and b"text/html" in headers.get(b"accept", b"")


class RequireSession:
    """ASGI middleware: nothing but the login pages without a valid session cookie."""

    def __init__(self, app, sessions: Sessions) -> None:
        self.app, self.sessions = app, sessions

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] not in ("http", "websocket") or scope["path"] in PUBLIC_PATHS:
            return await self.app(scope, receive, send)
        request = Request(scope)
        cookie = request.cookies.get(SESSION_COOKIE)
        if self.sessions.user(cookie) is not None:
            return await self.app(scope, receive, send)
        if scope["type"] == "websocket":
            return await send({"type": "websocket.close", "code": 1008})
        headers = dict(scope["headers"])
        if _wants_page(scope, headers):
            response = RedirectResponse("/login?expired=1" if cookie else "/login", 303)
        else:
            detail = "Not logged in: log in at /login (your session may have ended)."
            response = JSONResponse({"detail": detail}, status_code=401)
        await response(scope, receive, send)


class RedirectToHfLogin:
    """ASGI middleware: a 401 for the app's page becomes a redirect to the HF login."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["path"] != "/" or scope["method"] != "GET":
            return await self.app(scope, receive, send)
        refused = False

        async def redirect_401(message) -> None:
            nonlocal refused
            if message["type"] == "http.response.start" and message["status"] == 401:
                refused = True
                await RedirectResponse("/login/huggingface", 303)(scope, receive, send)
            elif not refused:
                await send(message)

        await self.app(scope, receive, redirect_401)


class _Throttle:
    """Counts failed logins per name; refuses more after MAX_FAILURES in FAILURE_WINDOW."""

    def __init__(self) -> None:
        self.failures: dict[str, list[float]] = {}

    def blocked(self, name: str) -> bool:
        now = time.monotonic()
        recent = [t for t in self.failures.pop(name, []) if now - t < FAILURE_WINDOW]
        if recent:
            self.failures[name] = recent
        return len(recent) >= MAX_FAILURES

    def failed(self, name: str) -> None:
        if len(self.failures) > 10_000:  # many made-up names: forget the stale ones
            stale = time.monotonic() - FAILURE_WINDOW
            self.failures = {key: t for key, t in self.failures.items() if t[-1] > stale}
        self.failures.setdefault(name, []).append(time.monotonic())


def _add_login_routes(app: FastAPI, sessions: Sessions) -> None:
    throttle = _Throttle()

    @app.get("/login")
    def login_form(expired: str = "", out: str = "") -> HTMLResponse:
        note = ""
        if expired:
            note = "Your session has ended (it expired, or your password or account changed). "
            note += "Please log in again."
        elif out:
            note = "You are logged out."
        return HTMLResponse(login_page(note))

    @app.post("/login")
    async def login(request: Request) -> Response:
        form = await request.form()
        name, password = str(form.get("username", "")), str(form.get("password", ""))
        if throttle.blocked(name):
            text = "Too many failed attempts for this name; wait a few minutes."
            return HTMLResponse(login_page(text, error=True), status_code=429)
        user = sessions.users.check(name, password)
        if user is None:
            throttle.failed(name)
            page = login_page("Wrong user name or password.", error=True)
            return HTMLResponse(page, status_code=401)
        response = RedirectResponse("/", status_code=303)
        response.set_cookie(
            SESSION_COOKIE, sessions.issue(user), max_age=sessions.lifetime, httponly=True,
            samesite="lax", secure=request.url.scheme == "https", path="/",
        )  # fmt: skip
        return response

    @app.get("/logout")
    def logout() -> RedirectResponse:
        response = RedirectResponse("/login?out=1", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response


def login_page(note: str = "", error: bool = False) -> str:
    colour = "#b00020" if error else "#444"
    message = f'<p id="login-note" style="color:{colour}">{html.escape(note)}</p>' if note else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>ftui — log in</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body {{ font-family: system-ui, sans-serif; display: grid; place-items: center;
       min-height: 90vh; background: #fafafa; }}
form {{ background: white; padding: 2em; border: 1px solid #ddd; border-radius: 8px;
       width: 18em; }}
label {{ display: block; margin-top: 1em; }}
input {{ width: 100%; padding: .5em; box-sizing: border-box; }}
button {{ margin-top: 1.5em; width: 100%; padding: .6em; }}
</style></head><body>
<form method="post" action="/login">
<h1>ftui</h1><p>This server is shared by a team: log in to continue.</p>{message}
<label>User name <input name="username" id="username" autocomplete="username" required></label>
<label>Password <input name="password" id="password" type="password"
  autocomplete="current-password" required></label>
<button type="submit" id="login-button">Log in</button>
</form></body></html>"""
