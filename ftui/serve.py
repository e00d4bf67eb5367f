"""Start the web app: set up the environment, open the workspace, build and launch the UI.

Environment is set before gradio is imported so its upload cache lives inside the workspace
(nothing is written elsewhere) and no telemetry leaves the machine.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from ftui.auth import Access, access_from_env
from ftui.demo import DemoLimits
from ftui.workspace import DEFAULT_MAX_UPLOAD_BYTES, Workspace


@dataclass(frozen=True)
class ServerSettings:
    workspace: Workspace
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES
    access: Access = Access()  # local single-user mode unless a users file or HF OAuth is on


def server_settings(
    workspace_dir: str | None = None, auth_file: str | None = None
) -> ServerSettings:
    """Settings from arguments and environment ($FTUI_WORKSPACE, $FTUI_MAX_UPLOAD_MB,
    $FTUI_AUTH, $FTUI_ADMINS)."""
    workspace = Workspace.open(workspace_dir)
    access = access_from_env(workspace.root, auth_file)
    megabytes = os.environ.get("FTUI_MAX_UPLOAD_MB")
    limit = int(float(megabytes) * 1024 * 1024) if megabytes else DEFAULT_MAX_UPLOAD_BYTES
    limit = DemoLimits.from_env().upload_limit(limit)  # FTUI_DEMO caps uploads lower
    os.environ.setdefault("GRADIO_TEMP_DIR", str(workspace.root / ".gradio"))
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    return ServerSettings(workspace=workspace, max_upload_bytes=limit, access=access)


def serve(
    host: str = "127.0.0.1",
    port: int = 7860,
    workspace_dir: str | None = None,
    auth_file: str | None = None,
) -> None:
    settings = server_settings(workspace_dir, auth_file)
    from ftui.ui.app import build_app  # gradio is imported only now, after the env is set

    app = build_app(settings)
    print(f"ftui: workspace {settings.workspace.root}", flush=True)
    options = dict(max_file_size=settings.max_upload_bytes, show_error=False, footer_links=["api"])
    app.queue(default_concurrency_limit=4)
    if not settings.access.team:
        app.launch(server_name=host, server_port=port, **options)
        return
    import uvicorn

    from ftui.web_login import team_app

    print(f"ftui: team mode ({settings.access.mode}) on http://{host}:{port}/", flush=True)
    server = team_app(app, settings.access, settings.workspace.root, **options)
    uvicorn.run(server, host=host, port=port, log_level="warning")
