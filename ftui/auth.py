"""Team mode: who may log in, and who may do what — decided on the server.

Three modes, chosen once at start (`access_from_env`):
- `local`  — no users file: one person on their own machine, no login (the default);
- `users`  — a users file (`ftui users add NAME`): salted scrypt hashes, roles `user`/`admin`,
             sessions in HMAC-signed cookies whose key lives in the workspace, so a restart
             keeps everyone logged in (see ftui/web_login.py for the pages);
- `hf`     — on a Hugging Face Space with `hf_oauth: true` (or FTUI_AUTH=hf): gradio's HF
             login; admins are the HF user names in $FTUI_ADMINS.

Rules (`Access.can_act`): anyone logged in may look at every run; only a run's owner or an
admin may cancel, resume, delete, merge or push it.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import os
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

ROLES = ("user", "admin")
USERS_FILE = "users.json"
SECRET_FILE = ".session-key"
SESSION_COOKIE = "ftui-session"
SESSION_SECONDS = 7 * 24 * 3600
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
LOCAL_USER = "local"
# scrypt at n=2**14, r=8 costs ~16 MiB and tens of ms per guess: slow for a guesser, quick
# enough for a login form.
SCRYPT = {"n": 2**14, "r": 8, "p": 1}

Mode = Literal["local", "users", "hf", "demo"]
VISITOR_PREFIX = "visitor-"  # demo mode: anonymous owners are visitor-<id from a signed cookie>


class AuthError(ValueError):
    """A users-file problem, said so that the person at the terminal can fix it."""


class PermissionDenied(Exception):
    """The caller may not do this; the message says why."""


# ------------------------------------------------------------------------- passwords
def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    key = hashlib.scrypt(password.encode(), salt=salt, dklen=32, **SCRYPT)
    return f"scrypt${SCRYPT['n']}${SCRYPT['r']}${SCRYPT['p']}${salt.hex()}${key.hex()}"


def verify_password(password: str, stored: str) -> bool:
    """Constant-time check of a password against `hash_password`'s output."""
    try:
        scheme, n, r, p, salt, expected = stored.split("$")
        if scheme != "scrypt":
            return False
        key = hashlib.scrypt(
            password.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p), dklen=32
        )
    except ValueError:
        return False
    return hmac.compare_digest(key.hex(), expected)


# ------------------------------------------------------------------------- users file
@dataclass(frozen=True)
class User:
    name: str
    role: str = "user"

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def _write_private(path: Path, text: str) -> None:
    """Write atomically, readable by the owner only (mode 0600)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    descriptor = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(temp, path)


class UserFile:
    """The users file: {"users": {name: {"role": ..., "password": scrypt hash}}}.

    Read on every check, so `ftui users add/remove` takes effect on a running server."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def _load(self) -> dict[str, dict[str, str]]:
        if not self.path.exists():
            return {}
        try:
            return json.loads(self.path.read_text(encoding="utf-8"))["users"]
        except (ValueError, KeyError, TypeError) as exc:
            raise AuthError(f"{self.path}: not a users file ({exc})") from exc

    def _save(self, users: dict[str, dict[str, str]]) -> None:
        _write_private(self.path, json.dumps({"users": users}, indent=2, sort_keys=True) + "\n")

    def add(self, name: str, password: str, role: str = "user") -> None:
        """Add a user, or set a known user's password and role."""
        if not NAME_PATTERN.match(name):
            raise AuthError(f"{name!r}: use letters, digits, '.', '_' or '-' (at most 64)")
        if role not in ROLES:
            raise AuthError(f"role {role!r}: choose one of {', '.join(ROLES)}")
        if len(password) < 8:
            raise AuthError("the password needs at least 8 characters")
        users = self._load()
        users[name] = {"role": role, "password": hash_password(password)}
        self._save(users)

    def remove(self, name: str) -> None:
        users = self._load()
        if name not in users:
            raise AuthError(f"no user {name!r} in {self.path}")
        del users[name]
        self._save(users)

    def users(self) -> list[User]:
        return [User(name, entry["role"]) for name, entry in sorted(self._load().items())]

    def get(self, name: str) -> User | None:
        entry = self._load().get(name)
        return User(name, entry["role"]) if entry else None

    def check(self, name: str, password: str) -> User | None:
        """The user if the password is right; None otherwise (same work either way)."""
        entry = self._load().get(name)
        stored = entry["password"] if entry else _dummy_hash()
        ok = verify_password(password, stored)
        return User(name, entry["role"]) if ok and entry else None

    def stamp(self, name: str) -> str:
        """Changes when the user's password changes: ends their old sessions."""
        entry = self._load().get(name)
        return hashlib.sha256(entry["password"].encode()).hexdigest()[:16] if entry else ""


@functools.cache
def _dummy_hash() -> str:
    """Checked against for unknown names, so they take as long as known ones."""
    return hash_password(secrets.token_hex(8))


# ------------------------------------------------------------------------- sessions
def load_secret(path: Path) -> bytes:
    """The session-signing key, created once (mode 0600) and kept across restarts."""
    if not path.exists():
        _write_private(path, secrets.token_hex(32) + "\n")
    return bytes.fromhex(path.read_text(encoding="utf-8").strip())


class Sessions:
    """Stateless signed cookies: `base64(json{u, exp, s}).hmac`. Valid while the signature,
    the expiry, the user and their password (the stamp `s`) all still hold."""

    def __init__(self, users: UserFile, secret: bytes, lifetime: int = SESSION_SECONDS) -> None:
        self.users, self.secret, self.lifetime = users, secret, lifetime

    def _sign(self, payload: bytes) -> str:
        return hmac.new(self.secret, payload, hashlib.sha256).hexdigest()

    def issue(self, user: User, now: float | None = None) -> str:
        body = {"u": user.name, "exp": int((now or time.time()) + self.lifetime)}
        body["s"] = self.users.stamp(user.name)
        payload = base64.urlsafe_b64encode(json.dumps(body, sort_keys=True).encode()).rstrip(b"=")
        return f"{payload.decode()}.{self._sign(payload)}"

    def user(self, cookie: str | None, now: float | None = None) -> User | None:
        if not cookie or "." not in cookie:
            return None
        payload, signature = cookie.rsplit(".", 1)
        if not hmac.compare_digest(self._sign(payload.encode()), signature):
            return None
        try:
            body = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
            name, expires, stamp = str(body["u"]), float(body["exp"]), str(body["s"])
        except (ValueError, KeyError, TypeError):
            return None
        if expires < (now or time.time()) or not hmac.compare_digest(stamp, self.users.stamp(name)):
            return None
        return self.users.get(name)


# ------------------------------------------------------------------------- access rules
@dataclass(frozen=True)
class Access:
    """Who is calling and what they may do; one per server."""

    mode: Mode = "local"
    users: UserFile | None = None
    admins: frozenset[str] = frozenset()

    @property
    def team(self) -> bool:
        """Logins: a users file or HF OAuth."""
        return self.mode in ("users", "hf")

    @property
    def checks_owners(self) -> bool:
        """Whether runs belong to someone other than the one local user (team and demo)."""
        return self.mode != "local"

    def user(self, request: Any) -> User | None:
        """The caller of a gradio handler (gr.Request); None if nobody is logged in."""
        if self.mode == "local":
            return User(LOCAL_USER, "admin")  # one person on their own machine
        name = getattr(request, "username", None) if request is not None else None
        if not name:
            return None
        if self.mode == "demo":  # an anonymous visitor, known by a signed per-browser cookie
            return User(name, "user") if name.startswith(VISITOR_PREFIX) else None
        if self.mode == "users":
            return self.users.get(name) if self.users else None
        return User(name, "admin" if name in self.admins else "user")

    def require_user(self, request: Any) -> User:
        user = self.user(request)
        if user is None:
            raise PermissionDenied("Log in first: this server runs in team mode.")
        return user

    def require_owner(self, request: Any, owner: str, action: str, run_id: str) -> User:
        user = self.require_user(request)
        if not can_act(user, owner):
            raise PermissionDenied(
                f"Run {run_id} belongs to {owner}; only they or an admin can {action} it."
            )
        return user


def can_act(user: User | None, owner: str) -> bool:
    """A run's owner and admins may change it; nobody else, and never an anonymous caller."""
    return user is not None and (user.is_admin or user.name == owner)


def users_file_path(workspace_root: Path, auth_file: str | Path | None = None) -> Path:
    return Path(auth_file).expanduser().resolve() if auth_file else workspace_root / USERS_FILE


def access_from_env(
    workspace_root: Path, auth_file: str | Path | None = None, env: dict | None = None
) -> Access:
    """Pick the mode: FTUI_AUTH=hf (or a Space with OAuth on) → hf; a users file → users;
    otherwise local. An --auth-file that does not exist is an error, not a silent open door."""
    env = os.environ if env is None else env
    choice = env.get("FTUI_AUTH", "").strip().lower()
    on_oauth_space = bool(env.get("SPACE_ID") and env.get("OAUTH_CLIENT_ID"))
    if choice == "hf" or (choice == "" and on_oauth_space):
        admins = {name.strip() for name in env.get("FTUI_ADMINS", "").split(",") if name.strip()}
        return Access("hf", admins=frozenset(admins))
    if choice not in ("", "users", "hf"):
        raise AuthError(f"FTUI_AUTH={choice!r}: use 'hf' or 'users', or leave it unset")
    path = users_file_path(workspace_root, auth_file)
    if path.exists() or auth_file or choice == "users":
        users = UserFile(path)
        if not users.users():
            raise AuthError(f"{path}: no users yet; add one with `ftui users add NAME`")
        return Access("users", users=users)
    return Access("local")
