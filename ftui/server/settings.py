"""What a running server knows about itself, made once by `ftui.server.serve.server_settings` and
passed down to every tab: the workspace, the upload cap, who may log in (`Access`), the public
demo's caps, and the warning a server exposed without logins shows.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ftui.server.auth import Access
from ftui.server.demo import DemoLimits
from ftui.workspace import DEFAULT_MAX_UPLOAD_BYTES, Workspace


@dataclass(frozen=True)
class ServerSettings:
    workspace: Workspace
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES
    access: Access = Access()  # local single-user mode unless a users file or HF OAuth is on
    exposed_warning: str = ""  # local mode on a network address: said at start and on the page
    demo: DemoLimits = field(default_factory=DemoLimits.from_env)  # FTUI_DEMO's caps, read once
