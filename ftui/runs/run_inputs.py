"""What a run was trained on, pinned so that a resume continues on the same inputs.

    pinned = fingerprint_inputs(config, cwd)   # when the run is created
    write_inputs(run, pinned)                  # runs/<id>/inputs.json
    problems = changed_inputs(run, config, cwd)  # before a resume: [] when nothing changed

The base model's identity: for a Hub id the commit (the configured revision when it is a
commit hash, else the commit of the cached snapshot; the trainer fills it in after it
downloads the model when it was not cached yet); for a local folder a hash of its config.json
plus the names, sizes and modification times of its weight files; for the bundled model the
same of its GGUF file. The data: a SHA-256 of each local file (training and validation).
Hub datasets are recorded by id only.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

from ftui.config import DEFAULT_MODEL, FtuiConfig, ModelConfig
from ftui.runs.rundir import RunDir

INPUTS_FILE = "inputs.json"
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".gguf", ".pt", ".pth", ".index.json")
COMMIT = re.compile(r"^[0-9a-f]{40}$")
CHUNK = 1 << 20


def fingerprint_inputs(config: FtuiConfig, cwd: str | Path) -> dict[str, Any]:
    """The model's identity and each data file's hash, as plain JSON-ready data."""
    base = Path(cwd)
    data = {"train": _data_fingerprint(config.data.path, base)}
    if config.data.validation_path:
        data["validation"] = _data_fingerprint(config.data.validation_path, base)
    return {"model": model_identity(config.model, base), "data": data}


def write_inputs(run: RunDir, pinned: dict[str, Any]) -> None:
    (run.path / INPUTS_FILE).write_text(json.dumps(pinned, indent=2), encoding="utf-8")


def read_inputs(run: RunDir) -> dict[str, Any] | None:
    """The pinned inputs, or None for a run created before pinning existed."""
    try:
        return json.loads((run.path / INPUTS_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None


def changed_inputs(run: RunDir, config: FtuiConfig, cwd: str | Path) -> list[str]:
    """One sentence per input that differs from what the run was started on."""
    pinned = read_inputs(run)
    if pinned is None:
        return []
    now = fingerprint_inputs(config, cwd)
    problems = []
    for role, then in pinned.get("data", {}).items():
        problem = _data_change(role, then, now["data"].get(role))
        if problem:
            problems.append(problem)
    model_problem = _model_change(pinned.get("model", {}), now["model"])
    if model_problem:
        problems.append(model_problem)
    return problems


def fill_in_hub_commit(run: RunDir, model: ModelConfig) -> None:
    """Record the Hub commit the trainer downloaded, when the run was created without one."""
    pinned = read_inputs(run)
    if not pinned or pinned.get("model", {}).get("kind") != "hub":
        return
    if pinned["model"].get("commit") is None:
        pinned["model"]["commit"] = cached_commit(model.name_or_path, model.revision)
        write_inputs(run, pinned)


# ---------------------------------------------------------------- model


def model_identity(model: ModelConfig, cwd: Path) -> dict[str, Any]:
    name = model.name_or_path
    if name in ("", DEFAULT_MODEL):
        return {"kind": "bundled", "fingerprint": _bundled_fingerprint()}
    local = cwd / Path(name).expanduser()
    if local.is_dir():
        return {"kind": "folder", "path": str(local.resolve()), "fingerprint": _folder(local)}
    commit = cached_commit(name, model.revision)
    return {"kind": "hub", "id": name, "revision": model.revision, "commit": commit}


def cached_commit(repo_id: str, revision: str | None) -> str | None:
    """The commit of a Hub model: the revision itself when it is a commit hash, else the
    commit of the snapshot in the local HF cache; None when it is not cached."""
    if revision and COMMIT.match(revision):
        return revision
    try:
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(repo_id, "config.json", revision=revision or None)
    except Exception:  # an id the hub library refuses is simply not cached
        return None
    if not isinstance(found, str):
        return None
    commit = Path(found).parent.name
    return commit if COMMIT.match(commit) else None


def _folder(folder: Path) -> str:
    """sha256 of config.json plus each weight file's name, size and modification time."""
    digest = hashlib.sha256()
    config = folder / "config.json"
    digest.update(config.read_bytes() if config.is_file() else b"(no config.json)")
    for path in sorted(folder.iterdir()):
        if path.is_file() and path.name.endswith(WEIGHT_SUFFIXES):
            stat = path.stat()
            digest.update(f"\n{path.name} {stat.st_size} {stat.st_mtime_ns}".encode())
    return digest.hexdigest()


def _bundled_fingerprint() -> str | None:
    from ftui.models import ModelLoadError, bundled_gguf_path

    try:
        stat = bundled_gguf_path().stat()
    except (ModelLoadError, OSError):
        return None
    return f"{stat.st_size} {stat.st_mtime_ns}"


def _model_change(then: dict[str, Any], now: dict[str, Any]) -> str | None:
    if then.get("kind") != now.get("kind"):
        return f"the base model is no longer the {then.get('kind')} model the run started on"
    if then.get("kind") == "hub":
        if then.get("commit") and now.get("commit") and then["commit"] != now["commit"]:
            return (
                f"the base model {now['id']} is now at commit {now['commit'][:12]}, not "
                f"{then['commit'][:12]} as when the run started"
            )
        return None
    if then.get("fingerprint") != now.get("fingerprint"):
        where = now.get("path") or "the bundled model"
        return f"the base model {where} changed since the run started (config or weights differ)"
    return None


# ---------------------------------------------------------------- data


def _data_fingerprint(name: str, cwd: Path) -> dict[str, Any]:
    path = cwd / Path(name).expanduser()
    if not name.strip() or not path.is_file():
        return {"path": name, "sha256": None}  # none given, a Hub dataset id, or not there yet
    return {"path": str(path.resolve()), "sha256": _sha256(path)}


def _sha256(path: Path) -> str:
    """SHA-256 of a file's contents, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _data_change(role: str, then: dict[str, Any], now: dict[str, Any] | None) -> str | None:
    if not then.get("sha256"):
        return None  # nothing was pinned (a Hub dataset)
    label = "training data" if role == "train" else "validation data"
    if now is None or now.get("sha256") is None:
        return f"the {label} file {then['path']} is gone"
    if now["sha256"] != then["sha256"] or now["path"] != then["path"]:
        return f"the {label} file {then['path']} changed since the run started (SHA-256 differs)"
    return None
