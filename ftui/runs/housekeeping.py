"""Workspace clean-up, so a long-lived server does not fill its disk with leftovers.

    removed = clean_workspace(workspace, max_age_seconds=24 * 3600)
    start_cleaning(workspace)   # once now, then every hour, in a daemon thread

What goes, once older than FTUI_TEMP_MAX_AGE_HOURS (default 24):

- gradio's upload cache, WORKSPACE/.gradio/ (the server sets GRADIO_TEMP_DIR there): copies
  of every uploaded file and the Playground's evaluation reports (`_write_report` writes them
  there for download);
- the configs the Train tab's "Preview command" saves, WORKSPACE/configs/*.yaml;
- uploaded datasets in WORKSPACE/uploads/ that no run's config.yaml names.

What never goes: anything under WORKSPACE/runs/ (checkpoints are pruned by the trainer's
`train.save_total_limit`), an upload any run refers to, and anything outside the workspace
(links are removed as links, never followed). When a run's config cannot be read, no upload is
removed at all, since it might be the one that run needs.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterable
from pathlib import Path

import yaml

from ftui.workspace import Workspace

MAX_AGE_VARIABLE = "FTUI_TEMP_MAX_AGE_HOURS"
DEFAULT_MAX_AGE_HOURS = 24.0
CLEAN_EVERY_SECONDS = 3600.0
GRADIO_CACHE = ".gradio"
PREVIEW_CONFIGS = "configs"


def max_age_seconds(env: dict[str, str] | None = None) -> float:
    """FTUI_TEMP_MAX_AGE_HOURS in seconds (default 24 h); raises ValueError for a bad value."""
    raw = (os.environ if env is None else env).get(MAX_AGE_VARIABLE, "").strip()
    if not raw:
        return DEFAULT_MAX_AGE_HOURS * 3600
    try:
        hours = float(raw)
    except ValueError:
        hours = -1.0
    if not 0 < hours < 24 * 365:
        raise ValueError(
            f"{MAX_AGE_VARIABLE}={raw!r}: give the age in hours after which temporary files "
            f"are deleted, a number above 0 (default {DEFAULT_MAX_AGE_HOURS:g})"
        )
    return hours * 3600


def clean_workspace(
    workspace: Workspace, max_age_seconds: float, now: float | None = None
) -> list[Path]:
    """Delete the leftovers older than `max_age_seconds`; return what was deleted."""
    cutoff = (time.time() if now is None else now) - max_age_seconds
    root = workspace.root
    old_folders = _old_folders(root / GRADIO_CACHE, cutoff)  # before removals touch them
    removed = _remove_old(_files_under(root / GRADIO_CACHE), cutoff)
    removed += _remove_old((root / PREVIEW_CONFIGS).glob("*.yaml"), cutoff)
    referenced = referenced_uploads(workspace)
    if referenced is not None:
        unused = (p for p in _files_under(workspace.uploads) if p.name not in referenced)
        removed += _remove_old(unused, cutoff)
    _remove_empty(old_folders)
    return removed


def referenced_uploads(workspace: Workspace) -> set[str] | None:
    """File names of the data every run's config names; None when a config is unreadable."""
    names: set[str] = set()
    for config in workspace.runs.glob("*/config.yaml"):
        try:
            data = yaml.safe_load(config.read_text(encoding="utf-8")).get("data") or {}
        except (OSError, ValueError, AttributeError, yaml.YAMLError):
            return None
        for key in ("path", "validation_path"):
            if data.get(key):
                names.add(Path(str(data[key])).name)
    return names


def start_cleaning(
    workspace: Workspace, every_seconds: float = CLEAN_EVERY_SECONDS
) -> threading.Thread:
    """Clean now and then every `every_seconds` in a daemon thread (for `ftui serve`)."""
    age = max_age_seconds()  # a bad setting fails at start, not an hour later

    def loop() -> None:
        while True:
            try:
                clean_workspace(workspace, age)
            except OSError as exc:  # a clean-up problem must never stop the server
                print(f"[ftui] workspace clean-up: {exc}", flush=True)
            time.sleep(every_seconds)

    thread = threading.Thread(target=loop, name="ftui-housekeeping", daemon=True)
    thread.start()
    return thread


def _files_under(folder: Path) -> Iterable[Path]:
    """Files and links under a folder, without following links into other folders."""
    for parent, _, files in os.walk(folder):
        for name in files:
            yield Path(parent) / name


def _remove_old(paths: Iterable[Path], cutoff: float) -> list[Path]:
    removed = []
    for path in paths:
        try:
            if (path.is_symlink() or path.is_file()) and path.lstat().st_mtime < cutoff:
                path.unlink()
                removed.append(path)
        except FileNotFoundError:
            continue  # removed by someone else meanwhile
    return removed


def _old_folders(folder: Path, cutoff: float) -> list[Path]:
    """Folders under `folder` (not itself) unchanged since `cutoff`, deepest first: a folder
    made a moment ago may be about to receive its file."""
    found = []
    for parent, _, _ in os.walk(folder):
        path = Path(parent)
        try:
            if path != folder and path.stat().st_mtime < cutoff:
                found.append(path)
        except OSError:
            continue
    return sorted(found, key=lambda path: -len(path.parts))


def _remove_empty(folders: list[Path]) -> None:
    for path in folders:
        try:
            path.rmdir()
        except OSError:
            continue  # not empty, or gone
