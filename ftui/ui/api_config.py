"""The API for scripts: start a run from a whole config, and poll it (gradio_client).

    POST /start_config  config (YAML or JSON text, or a mapping) -> (message, run id)
    POST /run_status    run id -> {"id", "state", "step", "max_steps", "loss", ...}

The config is ftui's own tree (ftui.config: model, data, method, train, eval), read strictly:
an unknown key, a wrong type or a number out of range is refused with a sentence naming the
dotted key, a YAML or JSON syntax error with its line and column. The text is bounded before
it is read (MAX_CONFIG_BYTES, MAX_NODES, MAX_DEPTH) and anchors and aliases are refused, so a
"billion laughs" document cannot blow up. What a web caller names stays where the Start button
keeps it:

- `data.path` / `data.validation_path`: a file in the workspace (an upload through the Data
  tab's /from_upload endpoint answers with its path, `uploads/<name>`) or a bundled sample;
  hidden folders (the workspace's `.private`) and anything outside are refused. Relative
  paths resolve from the workspace. A Hub dataset id is kept (a public demo refuses it).
- `model.trust_remote_code`, `train.accelerate_config` and loggers other than tensorboard
  (`train.report_to`) are refused: the Start button cannot set them either (an admin's
  preset or `ftui train` on the server can), and a logger would use the server's credentials.

Then the config takes the Start button's own path, `ftui.ui.run_config.queue_web_run`: the
caller's identity as owner, the model path confined, the public demo's caps, the server's Hub
token withheld, the queue. Messages never carry a Hub token (`hf_...` is masked).
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any

import yaml

from ftui.config import ConfigError, FtuiConfig, config_from_dict
from ftui.presets import SAMPLES_DIR
from ftui.runs.jobs import Jobs
from ftui.runs.rundir import FINISHED
from ftui.server.auth import User
from ftui.server.demo import looks_like_hub_id
from ftui.server.settings import ServerSettings
from ftui.ui.run_config import queue_place, queue_web_run
from ftui.ui.runs_view import current_step

MAX_CONFIG_BYTES = 64 * 1024  # a full config with every field and its comments is ~12 KB
MAX_NODES = 2000  # keys and values; a full config has ~150
MAX_DEPTH = 6  # a config nests 3 deep (data.columns.<role>)
WEB_LOGGERS = {"none", "tensorboard"}  # loggers that write into the run folder only
_HUB_TOKEN = re.compile(r"hf_[A-Za-z0-9]{6,}")


def start_from_config(
    jobs: Jobs, settings: ServerSettings, payload: Any, user: User | None
) -> tuple[str, str]:
    """(a plain sentence, the run id) for a started run; raises one of run_config's
    START_ERRORS with the reason when the config is refused, and then nothing is started."""
    if user is None:
        raise ConfigError("Log in first: this server runs in team mode.")
    config = check_web_config(config_from_payload(payload), settings)
    cwd = settings.workspace.root  # relative paths of an API config resolve from here
    run = queue_web_run(jobs, config, cwd, user.name, demo=settings.demo)
    place = queue_place(jobs, run.run_id)
    return f"Started {config.name} as {run.run_id} ({place}).", run.run_id


def refusal(exc: Exception) -> str:
    """The sentence an API caller gets for a refused start."""
    return without_tokens(f"Cannot start: {exc}")


def without_tokens(text: str) -> str:
    return _HUB_TOKEN.sub("hf_***", text)


# ---------------------------------------------------------------- reading the text


def config_from_payload(payload: Any) -> FtuiConfig:
    """The config in `payload` (YAML or JSON text, or an already parsed mapping), bounded and
    checked by the config tree; ConfigError says what is wrong and what to do."""
    data = parse_payload(payload)
    if not isinstance(data, dict):
        raise ConfigError(
            "the config must be a mapping of sections (name, model, data, method, train, "
            "eval), e.g. 'data: {path: uploads/train.jsonl}'"
        )
    try:
        return config_from_dict(data)
    except ConfigError as exc:
        raise ConfigError(f"config: {exc}") from None


def parse_payload(payload: Any) -> Any:
    if isinstance(payload, dict):
        _check_size(json.dumps(payload, default=str))
        _check_depth(payload)
        return payload
    if not isinstance(payload, str):
        raise ConfigError(f"send the config as YAML or JSON text, not {type(payload).__name__}")
    _check_size(payload)
    if not payload.strip():
        raise ConfigError("the config is empty: send YAML such as 'data: {path: uploads/x.jsonl}'")
    if payload.lstrip().startswith("{"):
        return _parse_json(payload)
    return _parse_yaml(payload)


def _check_size(text: str) -> None:
    size = len(text.encode("utf-8", errors="replace"))
    if size > MAX_CONFIG_BYTES:
        raise ConfigError(
            f"the config is {size:,} bytes, over the {MAX_CONFIG_BYTES:,} bytes accepted; a "
            "whole config is a few KB: send only the keys you change"
        )


def _parse_json(text: str) -> Any:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"the config is not valid JSON: line {exc.lineno}, column {exc.colno}: {exc.msg}"
        ) from None
    except RecursionError:
        raise ConfigError(f"the config nests deeper than {MAX_DEPTH} levels") from None
    _check_depth(data)
    return data


def _parse_yaml(text: str) -> Any:
    """safe_load, after a pass over the events: no anchors or aliases, bounded nodes and
    depth (the events are read lazily, so a bomb is refused before anything is built)."""
    try:
        _check_events(yaml.parse(text, Loader=yaml.SafeLoader))
        return yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = exc.problem or exc.context or "unreadable"
        hint = "check the indentation, and quote values holding ': ' or ' #'"
        if isinstance(exc, yaml.constructor.ConstructorError):
            hint = "tags such as !!python/... are not accepted: write plain values"
        raise ConfigError(f"the config is not valid YAML{where}: {problem}; {hint}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"the config is not valid YAML: {exc}") from None


def _check_events(events) -> None:
    depth = nodes = 0
    for event in events:
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
            raise ConfigError(
                "the config uses YAML anchors or aliases (& and *); they are not accepted "
                "here: write each value out"
            )
        if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            depth += 1
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            depth -= 1
        nodes += isinstance(event, (yaml.ScalarEvent, yaml.CollectionStartEvent))
        if depth > MAX_DEPTH or nodes > MAX_NODES:
            raise ConfigError(
                f"the config is too large or too deep (over {MAX_NODES} values or "
                f"{MAX_DEPTH} levels); a config nests at most 3 levels"
            )


def _check_depth(data: Any, level: int = 1) -> None:
    if level > MAX_DEPTH:
        raise ConfigError(f"the config nests deeper than {MAX_DEPTH} levels")
    children = data.values() if isinstance(data, dict) else data if isinstance(data, list) else []
    for child in children:
        _check_depth(child, level + 1)


# ---------------------------------------------------------------- what a web caller may name


def check_web_config(config: FtuiConfig, settings: ServerSettings) -> FtuiConfig:
    """Refuse what only the server's admin may set; confine the data paths (absolute now)."""
    if config.model.trust_remote_code:
        raise ConfigError(
            "model.trust_remote_code: a web caller may not run code shipped with a model "
            "repository (the Start button cannot either). Set it to false; to run such a "
            "model, run `ftui train CONFIG.yaml` on the server or ask the admin for a preset."
        )
    if config.train.accelerate_config.strip():
        raise ConfigError(
            "train.accelerate_config names a file on the server, which a web caller may not "
            "choose: leave it empty (train.num_processes alone gives DDP) or ask the admin "
            "for a preset"
        )
    loggers = {name.strip() for name in config.train.report_to.split(",") if name.strip()}
    if loggers - WEB_LOGGERS:
        raise ConfigError(
            f"train.report_to: {', '.join(sorted(loggers - WEB_LOGGERS))} would send the run "
            "elsewhere with the server's credentials; use none or tensorboard"
        )
    roots = [settings.workspace.root, SAMPLES_DIR]
    data = dataclasses.replace(
        config.data,
        path=confine_data_path("data.path", config.data.path, roots),
        validation_path=confine_data_path(
            "data.validation_path", config.data.validation_path, roots
        ),
    )
    return dataclasses.replace(config, data=data)


def confine_data_path(key: str, source: str, roots: list[Path]) -> str:
    """A data file inside one of `roots` (the workspace first; relative paths resolve from
    it), links followed, no hidden folder on the way; a Hub id as it is. Raises ConfigError."""
    source = (source or "").strip()
    if not source:
        if key == "data.path":
            raise ConfigError(
                "data.path is empty: upload the dataset first (the /from_upload endpoint "
                "answers with its path, uploads/<name>) and put that path here"
            )
        return source
    if _is_hub_id(source):
        return source
    root = roots[0].resolve()
    path = Path(source).expanduser()
    resolved = (path if path.is_absolute() else root / path).resolve()
    for allowed in (r.resolve() for r in roots):
        inside = resolved.relative_to(allowed) if resolved.is_relative_to(allowed) else None
        if inside is not None and not any(part.startswith(".") for part in inside.parts):
            if not resolved.is_file():
                raise ConfigError(
                    f"{key}: no file {source!r} in the workspace; upload it first (the "
                    "/from_upload endpoint answers with the path to put here)"
                )
            return str(resolved)
    raise ConfigError(
        f"{key}: {source!r} is outside the workspace (or in a hidden folder of it); upload "
        "the file (the /from_upload endpoint answers with its path, uploads/<name>) and give "
        "that path"
    )


def _is_hub_id(source: str) -> bool:
    """owner/name[:split], never a path: no '..', no leading '.', '/' or '~'."""
    parts = re.split(r"[/:]", source)
    if source.startswith((".", "/", "~")) or any(part in ("", ".", "..") for part in parts):
        return False
    return looks_like_hub_id(source)


# ---------------------------------------------------------------- polling


def run_status(jobs: Jobs, run_id: str) -> dict[str, Any]:
    """What a script polls: state, step of max_steps, the last losses, queue place, error."""
    jobs.refresh()  # dead runs are marked failed, queued ones start: as the UI's timer does
    row = jobs.get(run_id)  # JobError when there is no such run
    run = jobs.run_dir(run_id)
    metrics, status = run.read_metrics(), run.read_status()
    step, total = current_step(metrics, status)
    return {
        "id": run_id,
        "name": row["name"],
        "owner": row["owner"],
        "state": row["state"],
        "position": next((r.get("position") for r in jobs.list() if r["id"] == run_id), None),
        "step": step,
        "max_steps": total,
        "loss": _last(metrics, "loss"),
        "eval_loss": _last(metrics, "eval_loss"),
        "error": without_tokens(status.get("error") or row.get("error") or ""),
        "done": row["state"] in FINISHED,
    }


def _last(metrics: list[dict[str, Any]], key: str) -> float | None:
    return next((m[key] for m in reversed(metrics) if m.get(key) is not None), None)
