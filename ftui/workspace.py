"""The workspace: one folder that holds everything ftui writes.

Layout: `uploads/` (datasets users uploaded), `runs/` (one folder per training run, later),
`models/` (converted model caches when no other cache is set). Every path a user names is
resolved through `Workspace.resolve`, which refuses anything that leaves the workspace.
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

DEFAULT_WORKSPACE = "workspace"
DEFAULT_MAX_UPLOAD_BYTES = 200 * 1024 * 1024


class PathOutsideWorkspace(ValueError):
    """A path points outside the workspace (or through a link out of it)."""


@dataclass(frozen=True)
class Workspace:
    root: Path

    @classmethod
    def open(cls, root: str | Path | None = None) -> Workspace:
        """Open (creating if needed) the workspace; default from $FTUI_WORKSPACE or ./workspace."""
        chosen = Path(root or os.environ.get("FTUI_WORKSPACE") or DEFAULT_WORKSPACE)
        workspace = cls(chosen.expanduser().resolve())
        for sub in ("uploads", "runs"):
            (workspace.root / sub).mkdir(parents=True, exist_ok=True)
        return workspace

    @property
    def uploads(self) -> Path:
        return self.root / "uploads"

    @property
    def runs(self) -> Path:
        return self.root / "runs"

    def resolve(self, path: str | Path) -> Path:
        """Resolve a path relative to the workspace; refuse one that leaves it."""
        candidate = Path(path)
        if not candidate.is_absolute():
            candidate = self.root / candidate
        resolved = candidate.resolve()
        if resolved != self.root and self.root not in resolved.parents:
            raise PathOutsideWorkspace(
                f"{path}: outside the workspace {self.root}; put the file in the workspace "
                "or upload it"
            )
        return resolved

    def store_upload(self, source: str | Path) -> Path:
        """Copy an uploaded temp file into uploads/ under a safe, unique name."""
        source = Path(source)
        stem = re.sub(r"[^A-Za-z0-9._-]+", "_", source.stem)[:60] or "upload"
        suffix = re.sub(r"[^A-Za-z0-9.]+", "", source.suffix)[:10]
        target = self.uploads / f"{stem}-{uuid.uuid4().hex[:8]}{suffix}"
        shutil.copyfile(source, target)
        return target
