"""Start the web app: set up the environment, open the workspace, build and launch the UI.

Environment is set before gradio is imported so its upload cache lives inside the workspace
(nothing is written elsewhere) and no telemetry leaves the machine.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from ftui.workspace import DEFAULT_MAX_UPLOAD_BYTES, Workspace


@dataclass(frozen=True)
class ServerSettings:
    workspace: Workspace
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES


def server_settings(workspace_dir: str | None = None) -> ServerSettings:
    """Settings from arguments and environment ($FTUI_WORKSPACE, $FTUI_MAX_UPLOAD_MB)."""
    workspace = Workspace.open(workspace_dir)
    megabytes = os.environ.get("FTUI_MAX_UPLOAD_MB")
    limit = int(float(megabytes) * 1024 * 1024) if megabytes else DEFAULT_MAX_UPLOAD_BYTES
    os.environ.setdefault("GRADIO_TEMP_DIR", str(workspace.root / ".gradio"))
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    return ServerSettings(workspace=workspace, max_upload_bytes=limit)


def serve(host: str = "127.0.0.1", port: int = 7860, workspace_dir: str | None = None) -> None:
    settings = server_settings(workspace_dir)
    from ftui.ui.app import build_app  # gradio is imported only now, after the env is set

    app = build_app(settings)
    print(f"ftui: workspace {settings.workspace.root}", flush=True)
    app.queue(default_concurrency_limit=4).launch(
        server_name=host,
        server_port=port,
        max_file_size=settings.max_upload_bytes,
        show_error=False,
        footer_links=["api"],
    )
