"""The web side of every mode but local: the gradio app mounted on FastAPI behind a gate.

Users mode: a small /login form sets a signed, HttpOnly, SameSite=Lax cookie (ftui.server.sessions);
`RequireSession` in front of *every* route refuses requests without a valid one — pages are
redirected to /login, everything else (API, queue, files, config) gets 401 — so no gradio route
is left open by accident. Logout is a POST that revokes the session's id.

HF mode: gradio's OAuth routes (present because the header holds a gr.LoginButton) log people in;
`HfGate` reads gradio's session cookie itself, sends strangers to /login/huggingface and refuses
accounts outside the allow-list (403, naming the account).

Demo mode: `VisitorCookie` (ftui.server.web_guards) gives every browser a signed owner id, no login.

In all three (ftui.server.web_guards): `OriginGuard` refuses state-changing requests from another
site (CSRF), and `SecurityHeaders` forbids framing by other sites and MIME sniffing. gradio's
`auth_dependency` gives handlers the caller's name as `request.username`. Pages: web_pages.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from collections import OrderedDict
from typing import Any

import anyio
import gradio as gr
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from itsdangerous import BadData, TimestampSigner
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.requests import HTTPConnection

from ftui.server import auth
from ftui.server.auth import SESSION_COOKIE, Access
from ftui.server.sessions import RevokedSessions, Sessions, Visitors
from ftui.server.web_guards import VISITOR_COOKIE, OriginGuard, SecurityHeaders, VisitorCookie
from ftui.server.web_pages import login_page, logout_page, not_allowed_page, not_allowed_text

PUBLIC_PATHS = ("/login", "/logout", "/favicon.ico")
HF_PUBLIC_PATHS = ("/login/huggingface", "/login/callback", "/logout", "/favicon.ico")
HF_SESSION_COOKIE, HF_SESSION_SECONDS = "session", 14 * 24 * 3600  # starlette's defaults
MAX_FAILURES, MAX_CLIENT_FAILURES, FAILURE_WINDOW = 5, 30, 300.0
MAX_THROTTLE_KEYS = 10_000


def team_app(
    blocks: gr.Blocks, access: Access, workspace_root, trust_forwarded_host: bool = False,
    **options: Any,
) -> FastAPI:  # fmt: skip
    """A FastAPI app with the gradio Blocks mounted at / behind the gate of `access.mode`."""
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    private = auth.private_dir(workspace_root)
    secret = auth.load_secret(private / auth.SECRET_FILE)
    if access.mode == "users":
        revoked = RevokedSessions(private / auth.REVOKED_DB)
        sessions = Sessions(access.users, secret, revoked=revoked)
        _add_login_routes(app, sessions)
        app.add_middleware(RequireSession, sessions=sessions)

        def dependency(request: Request) -> str | None:
            user = sessions.user(request.cookies.get(SESSION_COOKIE))
            return user.name if user else None
    elif access.mode == "hf":
        hf = HfSessions(access, RevokedSessions(private / auth.REVOKED_DB))
        _add_hf_logout_routes(app, hf)
        app.add_middleware(HfGate, hf=hf)

        def dependency(request: Request) -> str | None:
            return hf.username(request.cookies.get(HF_SESSION_COOKIE))
    else:
        visitors = Visitors(secret)
        app.add_middleware(VisitorCookie, visitors=visitors)

        def dependency(request: Request) -> str | None:
            return visitors.name(request.cookies.get(VISITOR_COOKIE))

    app.add_middleware(OriginGuard, trust_forwarded_host=trust_forwarded_host)
    app.add_middleware(SecurityHeaders)
    options.setdefault("blocked_paths", [str(private)])
    return gr.mount_gradio_app(app, blocks, path="/", auth_dependency=dependency, **options)


def _wants_page(scope: dict) -> bool:
    headers = Headers(scope=scope)
    return scope["method"] == "GET" and "text/html" in headers.get("accept", "")


async def _refuse(scope, receive, send, page_url: str, detail: str, status: int = 401) -> None:
    """Pages go to `page_url`; API calls get JSON `detail`; websockets are closed."""
    if scope["type"] == "websocket":
        return await send({"type": "websocket.close", "code": 1008})
    if _wants_page(scope):
        response: Response = RedirectResponse(page_url, 303)
    else:
        response = JSONResponse({"detail": detail}, status_code=status)
    await response(scope, receive, send)


# ------------------------------------------------------------------------- users mode
class RequireSession:
    """ASGI middleware: nothing but the login pages without a valid session cookie."""

    def __init__(self, app, sessions: Sessions) -> None:
        self.app, self.sessions = app, sessions

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] not in ("http", "websocket") or scope["path"] in PUBLIC_PATHS:
            return await self.app(scope, receive, send)
        cookie = HTTPConnection(scope).cookies.get(SESSION_COOKIE)
        if self.sessions.user(cookie) is not None:
            return await self.app(scope, receive, send)
        detail = "Not logged in: log in at /login (your session may have ended)."
        await _refuse(scope, receive, send, "/login?expired=1" if cookie else "/login", detail)


class LoginThrottle:
    """Failed logins counted per (client address, name) — MAX_FAILURES in FAILURE_WINDOW
    block that pair — and per client across names (MAX_CLIENT_FAILURES). Never per name alone,
    so nobody can lock a user out from elsewhere; at most MAX_THROTTLE_KEYS keys, oldest
    dropped first."""

    def __init__(self) -> None:
        self.failures: OrderedDict[tuple, list[float]] = OrderedDict()

    def _recent(self, key: tuple) -> int:
        now = time.monotonic()
        recent = [t for t in self.failures.get(key, []) if now - t < FAILURE_WINDOW]
        if recent:
            self.failures[key] = recent
        else:
            self.failures.pop(key, None)
        return len(recent)

    def blocked(self, client: str, name: str | None) -> bool:
        if self._recent(("client", client)) >= MAX_CLIENT_FAILURES:
            return True
        return name is not None and self._recent(("pair", client, name)) >= MAX_FAILURES

    def failed(self, client: str, name: str | None) -> None:
        keys = [("client", client)] + ([("pair", client, name)] if name is not None else [])
        for key in keys:
            self.failures.setdefault(key, []).append(time.monotonic())
            self.failures.move_to_end(key)
        while len(self.failures) > MAX_THROTTLE_KEYS:
            self.failures.popitem(last=False)


def _add_login_routes(app: FastAPI, sessions: Sessions) -> None:
    throttle = LoginThrottle()
    hashing = anyio.Semaphore(2)  # a flood of logins cannot take every worker thread

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
        client = request.client.host if request.client else "unknown"
        known_form = auth.NAME_PATTERN.fullmatch(name) is not None and len(password) <= 1024
        if throttle.blocked(client, name if known_form else None):
            text = "Too many failed attempts from here; wait a few minutes and try again."
            return HTMLResponse(login_page(text, error=True), status_code=429)
        user = None
        if known_form:  # a malformed name is never looked up, hashed or kept
            async with hashing:
                user = await run_in_threadpool(sessions.users.check, name, password)
        if user is None:
            throttle.failed(client, name if known_form else None)
            page = login_page("Wrong user name or password.", error=True)
            return HTMLResponse(page, status_code=401)
        response = RedirectResponse("/", status_code=303)
        response.set_cookie(
            SESSION_COOKIE, sessions.issue(user), max_age=sessions.lifetime, httponly=True,
            samesite="lax", secure=request.url.scheme == "https", path="/",
        )  # fmt: skip
        return response

    @app.get("/logout")
    def logout_form() -> HTMLResponse:
        return HTMLResponse(logout_page())

    @app.post("/logout")
    def logout(request: Request) -> RedirectResponse:
        sessions.end(request.cookies.get(SESSION_COOKIE))
        response = RedirectResponse("/login?out=1", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response


# ------------------------------------------------------------------------- hf mode
class HfSessions:
    """Reads the session cookie gradio's OAuth sets (starlette's SessionMiddleware format, signed
    with the secret gradio derives from OAUTH_CLIENT_SECRET) and decides who it admits."""

    def __init__(self, access: Access, revoked: RevokedSessions, env=None) -> None:
        env = os.environ if env is None else env
        secret = hashlib.sha256((env.get("OAUTH_CLIENT_SECRET", "") + "-v4").encode())
        self.signer = TimestampSigner(secret.hexdigest())
        self.access, self.revoked = access, revoked

    def info(self, cookie: str | None) -> dict | None:
        """The unexpired, unrevoked oauth_info of a session cookie, else None."""
        if not cookie or not cookie.isascii():
            return None
        try:
            data = self.signer.unsign(cookie.encode(), max_age=HF_SESSION_SECONDS)
            info = json.loads(base64.b64decode(data)).get("oauth_info")
            expired = float(info.get("expires_at") or time.time() + 1) < time.time()
        except (BadData, ValueError, TypeError, AttributeError):
            return None
        if expired or session_id(info) in self.revoked:
            return None
        return info

    def username(self, cookie: str | None) -> str | None:
        """The caller's HF name if they are logged in and on the allow-list."""
        info = self.info(cookie)
        userinfo = (info or {}).get("userinfo") or {}
        return userinfo.get("preferred_username") if self.access.allowed.admits(userinfo) else None

    def end(self, cookie: str | None) -> None:
        if info := self.info(cookie):
            until = float(info.get("expires_at") or time.time() + HF_SESSION_SECONDS)
            self.revoked.revoke(session_id(info), until)


def session_id(oauth_info: dict) -> str:
    """One id per HF login: a hash of its access token (new at every login)."""
    token = oauth_info.get("access_token") or json.dumps(oauth_info, sort_keys=True)
    return "hf-" + hashlib.sha256(str(token).encode()).hexdigest()[:32]


class HfGate:
    """ASGI middleware: strangers go to the HF login; accounts off the allow-list get 403."""

    def __init__(self, app, hf: HfSessions) -> None:
        self.app, self.hf = app, hf

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] not in ("http", "websocket") or scope["path"] in HF_PUBLIC_PATHS:
            return await self.app(scope, receive, send)
        info = self.hf.info(HTTPConnection(scope).cookies.get(HF_SESSION_COOKIE))
        if info is None:
            detail = "Not logged in: log in with Hugging Face at /login/huggingface."
            return await _refuse(scope, receive, send, "/login/huggingface", detail)
        userinfo = info.get("userinfo") or {}
        if self.hf.access.allowed.admits(userinfo):
            return await self.app(scope, receive, send)
        account = str(userinfo.get("preferred_username") or "(no name)")
        if scope["type"] == "websocket":
            return await send({"type": "websocket.close", "code": 1008})
        page, detail = not_allowed_page(account, self.hf.access), not_allowed_text(account)
        response: Response = (
            HTMLResponse(page, 403) if _wants_page(scope) else JSONResponse({"detail": detail}, 403)
        )
        await response(scope, receive, send)


def _add_hf_logout_routes(app: FastAPI, hf: HfSessions) -> None:
    @app.get("/logout")
    def logout_form(out: str = "") -> HTMLResponse:
        return HTMLResponse(logout_page(done=bool(out), login_url="/login/huggingface"))

    @app.post("/logout")
    def logout(request: Request) -> RedirectResponse:
        hf.end(request.cookies.get(HF_SESSION_COOKIE))
        response = RedirectResponse("/logout?out=1", status_code=303)
        response.delete_cookie(
            HF_SESSION_COOKIE, path="/", secure=True, httponly=True, samesite="none"
        )
        return response
