"""Middleware every non-local mode puts in front of gradio (see ftui.server.web_login.team_app).

- `SecurityHeaders`: nosniff, framing only by the app itself (and the Space page that frames
  it on huggingface.co), and no full URLs in Referer to other sites — on every response.
- `OriginGuard`: a state-changing request (POST/PUT/PATCH/DELETE, a websocket) whose Origin or
  Referer names another site, or `null`, gets 403 — the CSRF check.
- `VisitorCookie` (demo mode): every browser gets a signed per-browser owner id.
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit

from fastapi.responses import JSONResponse
from starlette.datastructures import Headers
from starlette.requests import HTTPConnection

from ftui.server.sessions import Visitors

VISITOR_COOKIE = "ftui-visitor"
VISITOR_SECONDS = 30 * 24 * 3600
UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


def frame_ancestors(env=None) -> str:
    """Who may frame the app: itself, and huggingface.co on a Space (its page frames the app)."""
    env = os.environ if env is None else env
    return "'self' https://huggingface.co" if env.get("SPACE_ID") else "'self'"


class SecurityHeaders:
    """ASGI middleware: nosniff, framing only by ourselves (and the Space page), and no full
    URLs in Referer to other sites — on every response."""

    def __init__(self, app, ancestors: str | None = None) -> None:
        self.app = app
        self.headers = [
            (b"x-content-type-options", b"nosniff"),
            (
                b"content-security-policy",
                f"frame-ancestors {ancestors or frame_ancestors()}".encode(),
            ),
            (b"referrer-policy", b"same-origin"),
        ]

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_with_headers(message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *self.headers]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _site(url: str) -> str | None:
    """host[:port] of an http(s) URL, lower-case, default ports dropped; None for `null` etc."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme not in ("http", "https", "ws", "wss") or not parts.netloc:
        return None
    return _host(parts.netloc)


def _host(netloc: str) -> str:
    netloc = netloc.strip().lower().rsplit("@", 1)[-1]
    for default in (":80", ":443"):
        netloc = netloc.removesuffix(default)
    return netloc


class OriginGuard:
    """ASGI middleware against CSRF: a POST/PUT/PATCH/DELETE or websocket whose Origin (or,
    lacking one, Referer) is another site gets 403. Requests with neither (gradio_client,
    curl) pass here and still need a session. X-Forwarded-Host counts only where proxy headers
    are trusted (a Space, reachable only through its proxy)."""

    def __init__(self, app, trust_forwarded_host: bool = False) -> None:
        self.app, self.trust_forwarded_host = app, trust_forwarded_host

    async def __call__(self, scope, receive, send) -> None:
        unsafe = scope["type"] == "websocket" or (
            scope["type"] == "http" and scope["method"] in UNSAFE_METHODS
        )
        if not unsafe or self.same_site(Headers(scope=scope)):
            return await self.app(scope, receive, send)
        if scope["type"] == "websocket":
            return await send({"type": "websocket.close", "code": 1008})
        detail = "Refused: this request came from another site (its Origin is not this server)."
        await JSONResponse({"detail": detail}, status_code=403)(scope, receive, send)

    def same_site(self, headers: Headers) -> bool:
        source = headers.get("origin")
        if source is None:
            source = headers.get("referer") or None
        if source is None:
            return True  # not a browser request made by another page
        own = {_host(headers.get("host", ""))}
        if self.trust_forwarded_host and headers.get("x-forwarded-host"):
            own.add(_host(headers["x-forwarded-host"].split(",")[0]))
        return _site(source) in own


class VisitorCookie:
    """ASGI middleware: every browser gets a signed per-browser owner id, made on its first
    request and put into that same request, so its first API call already has an owner."""

    def __init__(self, app, visitors: Visitors) -> None:
        self.app, self.visitors = app, visitors

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        if self.visitors.name(HTTPConnection(scope).cookies.get(VISITOR_COOKIE)):
            return await self.app(scope, receive, send)
        _, value = self.visitors.issue()
        others = [
            part.strip()
            for name, header in scope["headers"] if name == b"cookie"
            for part in header.decode("latin-1").split(";")
            if part.strip() and not part.strip().startswith(VISITOR_COOKIE + "=")
        ]  # fmt: skip
        cookie = "; ".join([*others, f"{VISITOR_COOKIE}={value}"]).encode("latin-1")
        headers = [(n, v) for n, v in scope["headers"] if n != b"cookie"] + [(b"cookie", cookie)]
        secure = "; Secure" if scope.get("scheme") in ("https", "wss") else ""
        set_cookie = (
            f"{VISITOR_COOKIE}={value}; Max-Age={VISITOR_SECONDS}; Path=/; HttpOnly; "
            f"SameSite=Lax{secure}"
        ).encode()

        async def send_with_cookie(message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message["headers"], (b"set-cookie", set_cookie)]}
            await send(message)

        await self.app({**scope, "headers": headers}, receive, send_with_cookie)
