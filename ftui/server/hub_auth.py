"""Whose Hugging Face credentials a Hub call may use.

The server's own token (`$HF_TOKEN`, `$HUGGING_FACE_HUB_TOKEN`, or a saved `hf auth login`)
belongs to whoever runs the server. It never acts for a web caller unless an admin opts in
with `FTUI_WEB_USES_SERVER_TOKEN=1` (meant for a trusted single-team server):

- `keep_server_token_from_web()` runs once when `ftui serve` starts: Hub reads made by the web
  process (dataset previews, tokenizers, architectures, Playground models) then go out with no
  token unless one is passed explicitly (huggingface_hub's `HF_HUB_DISABLE_IMPLICIT_TOKEN`).
- `trainer_environment(server_token)` is the environment of a training process: runs started
  from the web get none of the server's token variables; runs started with the CLI keep them.
- A push from the web needs a token the caller typed, or the caller's own OAuth token in hf
  mode (`push_token`).

The CLI is the server owner at a terminal: it keeps using `$HF_TOKEN` as before.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping

OPT_IN = "FTUI_WEB_USES_SERVER_TOKEN"
TOKEN_VARIABLES = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")
IMPLICIT_OFF = "HF_HUB_DISABLE_IMPLICIT_TOKEN"
_ON = {"1", "true", "yes", "on"}


def web_may_use_server_token(env: Mapping[str, str] | None = None) -> bool:
    """True only when an admin set FTUI_WEB_USES_SERVER_TOKEN=1 for this server."""
    env = os.environ if env is None else env
    return env.get(OPT_IN, "").strip().lower() in _ON


def keep_server_token_from_web() -> None:
    """Make every implicit Hub call of this (web) process go out without the server's token."""
    if web_may_use_server_token():
        return
    os.environ[IMPLICIT_OFF] = "1"
    constants = sys.modules.get("huggingface_hub.constants")
    if constants is not None:  # imported already: the flag is read into a module constant
        constants.HF_HUB_DISABLE_IMPLICIT_TOKEN = True


def trainer_environment(server_token: bool, env: Mapping[str, str] | None = None) -> dict:
    """The environment for a training process; without the server's token unless allowed."""
    child = dict(os.environ if env is None else env)
    if server_token:
        if not web_may_use_server_token(child):
            child.pop(IMPLICIT_OFF, None)  # set by keep_server_token_from_web in a web process
        return child
    for name in TOKEN_VARIABLES:
        child.pop(name, None)
    child[IMPLICIT_OFF] = "1"  # the token file of `hf auth login` is not used either
    return child


def server_token() -> str:
    """The server owner's own token: $HF_TOKEN or $HUGGING_FACE_HUB_TOKEN, else the one saved
    by `hf auth login`; empty when there is none. For the CLI, and for the web only where an
    admin opted in (`push_token`)."""
    token = next((os.environ[n] for n in TOKEN_VARIABLES if os.environ.get(n)), "")
    if token:
        return token
    from huggingface_hub import get_token

    return get_token() or ""


def push_token(typed: str | None, oauth_token: str | None = None) -> str:
    """The token a web push uses: the one the caller typed, else their own OAuth token, else
    the server's only where an admin opted in; empty when there is none (the push is refused)."""
    if typed and typed.strip():
        return typed.strip()
    if oauth_token:
        return oauth_token
    if web_may_use_server_token():
        return server_token()
    return ""
