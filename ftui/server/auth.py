"""Team mode: who may log in, and who may do what — decided on the server.

Four modes, chosen once at start (`access_from_env`):
- `local`  — no users file: one person on their own machine, no login (the default);
- `users`  — a users file (`ftui users add NAME`): salted scrypt hashes, roles `user`/`admin`,
             sessions in signed cookies (itsdangerous) whose key lives in the workspace's
             private folder, so a restart keeps everyone logged in; each session has an id
             that logout revokes (ftui.server.sessions; pages in web_login.py, web_pages.py);
- `hf`     — only on a real Hugging Face Space with `hf_oauth: true`: gradio's HF login,
             admitted by an allow-list (`HfAllowList`); admins are the names in $FTUI_ADMINS;
- `demo`   — FTUI_DEMO=1 without users or hf: anonymous visitors, each known by a signed
             per-browser cookie (`visitor-<id>`), each owning only the runs they started.

Secrets (`users.json`, `.session-key`, the revoked-sessions database) live in
`WORKSPACE/.private/` (mode 0700), never in a folder gradio's file routes may serve.

Rules (`Access.can_act`): anyone logged in may look at every run; only a run's owner or an
admin may cancel, resume, delete, merge or push it.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

ROLES = ("user", "admin")
USERS_FILE = "users.json"
SECRET_FILE = ".session-key"
PRIVATE_DIR = ".private"  # WORKSPACE/.private: users file, signing key, revoked sessions
REVOKED_DB = "sessions.db"
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


# ------------------------------------------------------------------------- private files
def private_dir(workspace_root: Path) -> Path:
    """WORKSPACE/.private (mode 0700), where the users file and keys live. Files an older ftui
    kept in the workspace root are moved in on first use."""
    folder = workspace_root / PRIVATE_DIR
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    for name in (USERS_FILE, SECRET_FILE):
        old, new = workspace_root / name, folder / name
        if old.is_file() and not new.exists():
            os.replace(old, new)
    return folder


def load_secret(path: Path) -> bytes:
    """The session-signing key, created once (mode 0600) and kept across restarts."""
    if not path.exists():
        _write_private(path, secrets.token_hex(32) + "\n")
    return bytes.fromhex(path.read_text(encoding="utf-8").strip())


# ------------------------------------------------------------------------- hf allow-list
HF_SPACE_VARIABLES = (
    "SPACE_ID", "OAUTH_CLIENT_ID", "OAUTH_CLIENT_SECRET", "OAUTH_SCOPES", "OPENID_PROVIDER_URL",
)  # fmt: skip


def _names(value: str | None) -> frozenset[str]:
    return frozenset(part.strip().lower() for part in (value or "").split(",") if part.strip())


@dataclass(frozen=True)
class HfAllowList:
    """Which HF accounts may use an hf-mode server. FTUI_ALLOWED_USERS and FTUI_ALLOWED_ORGS
    (comma lists, case-insensitive) add to who is always admitted: the Space's owner (a user,
    or an org whose members are admitted) and the admins — so with neither list set, only
    they get in. FTUI_ALLOWED_USERS=* admits any HF account."""

    users: frozenset[str] = frozenset()
    orgs: frozenset[str] = frozenset()
    anyone: bool = False

    @classmethod
    def from_env(cls, env: Mapping[str, str], admins: frozenset[str]) -> HfAllowList:
        users, orgs = _names(env.get("FTUI_ALLOWED_USERS")), _names(env.get("FTUI_ALLOWED_ORGS"))
        if "*" in users:
            return cls(anyone=True)
        owner = _names(env.get("SPACE_AUTHOR_NAME"))  # a user, or an org whose members count
        return cls(users | owner | {name.lower() for name in admins}, orgs | owner)

    def admits(self, userinfo: Mapping[str, Any]) -> bool:
        """`userinfo` as gradio stores it: HF's OpenID userinfo, orgs under `orgs`."""
        name = str(userinfo.get("preferred_username") or "").lower()
        if not name:
            return False
        if self.anyone or name in self.users:
            return True
        return bool(self.orgs & user_orgs(userinfo))

    def describe(self) -> str:
        if self.anyone:
            return "any Hugging Face account"
        parts = [", ".join(sorted(self.users)) or "", ", ".join(sorted(self.orgs))]
        users = f"users {parts[0]}" if parts[0] else ""
        orgs = f"members of {parts[1]}" if parts[1] else ""
        return " and ".join(p for p in (users, orgs) if p) or "nobody"


def user_orgs(userinfo: Mapping[str, Any]) -> frozenset[str]:
    """The org names in HF userinfo (`orgs: [{preferred_username, name, ...}]`), lower-case."""
    names = set()
    for org in userinfo.get("orgs") or []:
        if isinstance(org, Mapping):
            names.update(
                str(org[key]).lower() for key in ("preferred_username", "name") if org.get(key)
            )
    return frozenset(names)


def missing_hf_variables(env: Mapping[str, str]) -> list[str]:
    """What a real Space with `hf_oauth: true` sets and gradio needs for its real OAuth; without
    them gradio mocks the login (everyone is this machine's HF account) and signs sessions
    with a public constant."""
    missing = [name for name in HF_SPACE_VARIABLES if not env.get(name)]
    if env.get("SYSTEM") != "spaces":
        missing.insert(0, "SYSTEM=spaces")
    return missing


# ------------------------------------------------------------------------- access rules
@dataclass(frozen=True)
class Access:
    """Who is calling and what they may do; one per server."""

    mode: Mode = "local"
    users: UserFile | None = None
    admins: frozenset[str] = frozenset()
    allowed: HfAllowList = field(default_factory=HfAllowList)

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
    if auth_file:
        return Path(auth_file).expanduser().resolve()
    return private_dir(workspace_root) / USERS_FILE


def hf_access(env: Mapping[str, str]) -> Access:
    """hf mode, only where it is real; otherwise an AuthError naming what is missing."""
    missing = missing_hf_variables(env)
    if missing:
        raise AuthError(
            "hf login needs a Hugging Face Space with `hf_oauth: true` in its README metadata; "
            f"missing here: {', '.join(missing)}. Off a Space use a users file "
            "(`ftui users add NAME`) instead of FTUI_AUTH=hf."
        )
    admins = frozenset(
        name.strip() for name in env.get("FTUI_ADMINS", "").split(",") if name.strip()
    )
    return Access("hf", admins=admins, allowed=HfAllowList.from_env(env, admins))


def access_from_env(
    workspace_root: Path, auth_file: str | Path | None = None, env: Mapping | None = None
) -> Access:
    """Pick the mode: FTUI_AUTH=hf (or a Space with OAuth on) → hf; a users file → users;
    FTUI_DEMO=1 → demo; otherwise local. An --auth-file that does not exist is an error, not a
    silent open door; so is hf mode off a real Space."""
    env = os.environ if env is None else env
    choice = env.get("FTUI_AUTH", "").strip().lower()
    if choice not in ("", "users", "hf"):
        raise AuthError(f"FTUI_AUTH={choice!r}: use 'hf' or 'users', or leave it unset")
    on_oauth_space = bool(env.get("SPACE_ID") and env.get("OAUTH_CLIENT_ID"))
    if choice == "hf" or (choice == "" and on_oauth_space):
        return hf_access(env)
    path = users_file_path(workspace_root, auth_file)
    if path.exists() or auth_file or choice == "users":
        users = UserFile(path)
        if not users.users():
            raise AuthError(f"{path}: no users yet; add one with `ftui users add NAME`")
        return Access("users", users=users)
    from ftui.server.demo import DemoLimits  # demo's caps and its switch are read in one place

    return Access("demo") if DemoLimits.from_env(env).enabled else Access("local")
