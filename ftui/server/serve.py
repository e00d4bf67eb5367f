"""Start the web app: set up the environment, open the workspace, build and launch the UI.

Environment is set before gradio is imported so its upload cache lives inside the workspace
(nothing is written elsewhere), no telemetry leaves the machine, and no Hub call made for a
web caller carries the server's own HF token (ftui.server.hub_auth).

Local mode is gradio's own launch (one person, loopback by default; a network address gets a
loud warning). Users, hf and demo modes run gradio mounted on FastAPI behind ftui.server.web_login's
gate, served by uvicorn with proxy headers trusted from FTUI_FORWARDED_ALLOW_IPS (default
127.0.0.1), or from anywhere on a Space, which is reachable only through its proxy.
"""

from __future__ import annotations

import ipaddress
import os
import sys

from ftui.config import ConfigError
from ftui.server import hub_auth
from ftui.server.auth import access_from_env, private_dir
from ftui.server.demo import DemoLimits
from ftui.server.settings import ServerSettings
from ftui.server.warmup import start_warmup
from ftui.workspace import DEFAULT_MAX_UPLOAD_BYTES, Workspace

EXPOSED_WARNING = (
    "This server is reachable from the network at {host} without logins: anyone who can "
    "reach it acts as its owner (runs, files, the server's settings). Add users "
    "(`ftui users add NAME`), use hf mode on a Space with OAuth, or demo mode (FTUI_DEMO=1) "
    "for a public demo; or bind to 127.0.0.1."
)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def server_settings(
    workspace_dir: str | None = None, auth_file: str | None = None, host: str = "127.0.0.1"
) -> ServerSettings:
    """Settings from arguments and environment ($FTUI_WORKSPACE, $FTUI_MAX_UPLOAD_MB,
    $FTUI_AUTH, $FTUI_ADMINS, $FTUI_DEMO...)."""
    hub_auth.keep_server_token_from_web()  # before gradio or huggingface_hub read the env
    workspace = Workspace.open(workspace_dir)
    access = access_from_env(workspace.root, auth_file)
    private_dir(workspace.root)  # moves an older ftui's users.json and key out of the root
    megabytes = os.environ.get("FTUI_MAX_UPLOAD_MB")
    limit = int(float(megabytes) * 1024 * 1024) if megabytes else DEFAULT_MAX_UPLOAD_BYTES
    demo = DemoLimits.from_env()  # read once here; the tabs get it through the settings
    limit = demo.upload_limit(limit)  # FTUI_DEMO caps uploads lower
    os.environ.setdefault("GRADIO_TEMP_DIR", str(workspace.root / ".gradio"))
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    exposed = access.mode == "local" and not is_loopback(host)
    warning = EXPOSED_WARNING.format(host=host) if exposed else ""
    return ServerSettings(workspace, limit, access, warning, demo)


def forwarded_allow_ips() -> str:
    """Which peers may set X-Forwarded-For/Proto: anyone on a Space (only its proxy reaches
    the container), else $FTUI_FORWARDED_ALLOW_IPS (default 127.0.0.1)."""
    if os.environ.get("SPACE_ID"):
        return "*"
    return os.environ.get("FTUI_FORWARDED_ALLOW_IPS", "127.0.0.1")


def _confine_and_clean(workspace: Workspace) -> None:
    """This process serves web callers: model paths confined, old temporary files removed."""
    from ftui.models import allow_model_roots, web_model_roots
    from ftui.runs.housekeeping import start_cleaning

    allow_model_roots(web_model_roots(workspace.root))
    try:
        start_cleaning(workspace)  # now, then hourly in a daemon thread
    except ValueError as exc:  # a malformed FTUI_TEMP_MAX_AGE_HOURS
        raise ConfigError(str(exc)) from exc


def serve(
    host: str = "127.0.0.1",
    port: int = 7860,
    workspace_dir: str | None = None,
    auth_file: str | None = None,
) -> None:
    settings = server_settings(workspace_dir, auth_file, host)
    _confine_and_clean(settings.workspace)
    from ftui.server.web_guards import SecurityHeaders
    from ftui.server.web_login import team_app
    from ftui.ui.app import build_app  # gradio is imported only now, after the env is set

    app = build_app(settings)
    print(f"ftui: workspace {settings.workspace.root}", flush=True)
    private = str(private_dir(settings.workspace.root))
    options = dict(
        max_file_size=settings.max_upload_bytes, show_error=False, footer_links=["api"],
        blocked_paths=[private],
    )  # fmt: skip
    app.queue(default_concurrency_limit=4)
    start_warmup(host, port)  # the estimator's imports, once the server answers
    if settings.access.mode == "local":
        if settings.exposed_warning:
            print(f"\nftui: WARNING: {settings.exposed_warning}\n", file=sys.stderr, flush=True)
        from starlette.middleware import Middleware

        headers = {"middleware": [Middleware(SecurityHeaders)]}
        app.launch(server_name=host, server_port=port, app_kwargs=headers, **options)
        return
    import uvicorn

    print(f"ftui: {settings.access.mode} mode on http://{host}:{port}/", flush=True)
    trusted = forwarded_allow_ips()
    server = team_app(
        app, settings.access, settings.workspace.root, trust_forwarded_host=trusted == "*",
        **options,
    )  # fmt: skip
    uvicorn.run(
        server, host=host, port=port, log_level="warning", proxy_headers=True,
        forwarded_allow_ips=trusted,
    )  # fmt: skip
