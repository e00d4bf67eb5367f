"""Signed cookies that say who a web caller is: logged-in sessions (users mode), the revoked
session ids that logout leaves behind, and demo mode's anonymous visitors.

Cookies are signed with itsdangerous and the workspace's key (`auth.load_secret`), so they
survive restarts. A value that does not verify is worth nothing: no session, or a fresh visitor.

    sessions = Sessions(UserFile(path), secret, revoked=RevokedSessions(db_path))
    cookie = sessions.issue(user); sessions.user(cookie); sessions.end(cookie)  # logout
"""

from __future__ import annotations

import hmac
import re
import secrets
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from itsdangerous import BadData, URLSafeSerializer

from ftui.server.auth import SESSION_SECONDS, VISITOR_PREFIX, User, UserFile


class RevokedSessions:
    """Session ids ended by a logout, in SQLite; an entry is forgotten once its session would
    have expired anyway, so the table stays small."""

    def __init__(self, path: Path) -> None:
        self.path = path
        with self._connect() as db:
            db.execute("CREATE TABLE IF NOT EXISTS revoked (sid TEXT PRIMARY KEY, until REAL)")

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=10, isolation_level=None)

    def revoke(self, session_id: str, until: float) -> None:
        with self._connect() as db:
            db.execute("DELETE FROM revoked WHERE until < ?", (time.time(),))
            db.execute("INSERT OR REPLACE INTO revoked VALUES (?, ?)", (session_id, until))

    def __contains__(self, session_id: str) -> bool:
        with self._connect() as db:
            row = db.execute("SELECT 1 FROM revoked WHERE sid = ?", (session_id,)).fetchone()
        return row is not None


@dataclass(frozen=True)
class Session:
    """What a valid session cookie says: who, until when, and its id (for revocation)."""

    user: User
    session_id: str
    expires: float


class Sessions:
    """Signed cookies (itsdangerous) holding {u: name, s: password stamp, sid, exp}. Valid
    while the signature, the expiry, the user and their password (the stamp) all still hold
    and the session id was not revoked by a logout."""

    def __init__(
        self,
        users: UserFile,
        secret: bytes,
        lifetime: int = SESSION_SECONDS,
        revoked: RevokedSessions | None = None,
    ) -> None:
        self.users, self.lifetime, self.revoked = users, lifetime, revoked
        self.serializer = URLSafeSerializer(secret, salt="ftui-session")

    def issue(self, user: User, now: float | None = None) -> str:
        body = {"u": user.name, "s": self.users.stamp(user.name), "sid": secrets.token_hex(16)}
        body["exp"] = int((now or time.time()) + self.lifetime)
        return self.serializer.dumps(body)

    def session(self, cookie: str | None, now: float | None = None) -> Session | None:
        """The session a cookie proves, or None (any malformed or non-ASCII value too)."""
        if not cookie or not cookie.isascii():
            return None
        try:
            body = self.serializer.loads(cookie)
            name, stamp, sid = str(body["u"]), str(body["s"]), str(body["sid"])
            expires = float(body["exp"])
        except (BadData, ValueError, KeyError, TypeError):
            return None
        if expires < (now or time.time()) or not hmac.compare_digest(stamp, self.users.stamp(name)):
            return None
        if self.revoked is not None and sid in self.revoked:
            return None
        user = self.users.get(name)
        return Session(user, sid, expires) if user else None

    def user(self, cookie: str | None, now: float | None = None) -> User | None:
        session = self.session(cookie, now)
        return session.user if session else None

    def end(self, cookie: str | None) -> None:
        """Logout: the cookie's session stops working, even if the cookie is replayed."""
        session = self.session(cookie)
        if session is not None and self.revoked is not None:
            self.revoked.revoke(session.session_id, session.expires)


class Visitors:
    """Demo mode: a per-browser owner id in a signed cookie. A value that does not verify is
    worth nothing: its holder gets a fresh id, never someone else's."""

    def __init__(self, secret: bytes) -> None:
        self.serializer = URLSafeSerializer(secret, salt="ftui-visitor")

    def issue(self) -> tuple[str, str]:
        """A new visitor: (owner name, cookie value)."""
        visitor_id = secrets.token_hex(8)
        return VISITOR_PREFIX + visitor_id, self.serializer.dumps(visitor_id)

    def name(self, cookie: str | None) -> str | None:
        if not cookie or not cookie.isascii():
            return None
        try:
            visitor_id = self.serializer.loads(cookie)
        except BadData:
            return None
        valid = isinstance(visitor_id, str) and re.fullmatch(r"[0-9a-f]{16}", visitor_id)
        return VISITOR_PREFIX + visitor_id if valid else None
