"""The config of a new run from the Train tab, and the command line that does the same.

A run starts from a preset (presets/*.yaml) or from the current selection (the Data tab's
dataset and the Method tab's settings, defaults for the rest); the Train tab's settings (the
fields declared with tab="train", TRAIN_KEYS) go on top. This module only hands values over:
`ftui.config.config_from_dotted` checks each against its field, on the server, and a bad one
raises ConfigError with a sentence that names the key.

    values = start_values("triage-lora", presets_dir)    # {"name": ..., "train.epochs": ...}
    message, run_id = start_run(jobs, start_from, values, dataset, settings, presets_dir,
                                owner, demo=server_settings.demo)
    message, yaml_text, command = preview_run(workspace, start_from, values, ...)
    run = queue_web_run(jobs, config, cwd, owner, demo=...)  # every web start, API included
"""

from __future__ import annotations

import dataclasses
import functools
import re
import shlex
import time
from pathlib import Path
from typing import Any

from ftui.config import (
    ConfigError,
    FtuiConfig,
    config_from_dotted,
    field_spec,
    load_config,
    schema_fields,
    write_config,
)
from ftui.markup import markdown_literal
from ftui.methods import METHODS
from ftui.models import ModelLoadError, confine_model_source
from ftui.runs.jobs import JobError, Jobs
from ftui.runs.rundir import RunDir
from ftui.server.demo import DemoLimits, check_run
from ftui.server.hub_auth import web_may_use_server_token
from ftui.workspace import Workspace

CURRENT_SELECTION = "Current selection"
TRAIN_KEYS = tuple(spec.key for spec in schema_fields(FtuiConfig) if spec.tab == "train")
CONFIGS_FOLDER = "configs"
START_ERRORS = (ConfigError, JobError, ModelLoadError, OSError)  # a start refused, said why


def preset_names(presets_dir: Path) -> list[str]:
    return sorted(path.stem for path in presets_dir.glob("*.yaml"))


def load_preset(presets_dir: Path, name: str) -> FtuiConfig:
    """A preset by name; only names listed in presets_dir are accepted (no paths)."""
    names = preset_names(presets_dir)
    if name not in names:
        raise ConfigError(f"no preset named {name!r}; choose one of: {', '.join(names)}")
    return load_config(presets_dir / f"{name}.yaml")


def start_values(start_from: str, presets_dir: Path, dataset: dict | None = None) -> dict[str, Any]:
    """The run name and the Train tab's settings (TRAIN_KEYS) to show for a starting point."""
    if start_from == CURRENT_SELECTION:
        method = field_spec("method.name").default
        config = FtuiConfig(name=_selection_name(method, dataset or {}))
    else:
        config = load_preset(presets_dir, start_from)
    return {"name": config.name, **{key: dotted_value(config, key) for key in TRAIN_KEYS}}


def dotted_value(config: FtuiConfig, key: str) -> Any:
    """config's value at a dotted key: dotted_value(config, "train.epochs")."""
    return functools.reduce(getattr, key.split("."), config)


def config_for_start(
    start_from: str,
    values: dict[str, Any],
    dataset: dict | None,
    settings: dict[str, Any],
    presets_dir: Path,
) -> tuple[FtuiConfig, Path]:
    """The checked config for a new run and the folder it runs in.

    Presets run from the folder above presets/ (their data paths are relative to it); the
    current selection's dataset path is absolute and runs from the server's folder.
    """
    if start_from == CURRENT_SELECTION:
        base, cwd = config_from_selection(dataset or {}, settings), Path.cwd()
    else:
        base, cwd = load_preset(presets_dir, start_from), presets_dir.parent
    config = with_train_values(base, values)
    check_trains(config)
    return config, cwd


def check_trains(config: FtuiConfig) -> None:
    """Refuse the no-training baseline (few_shot) as a run."""
    if not METHODS[config.method.name].trains:
        raise ConfigError(
            f"method.name {config.method.name} trains nothing: it is the no-training baseline. "
            "Compare it in the Playground, or choose a training method (e.g. lora)."
        )


def config_from_selection(dataset: dict, settings: dict[str, Any]) -> FtuiConfig:
    """Defaults, with the Data tab's dataset and the Method tab's settings (dotted keys)."""
    if not dataset:
        raise ConfigError(
            "No dataset chosen yet: pick or upload one in the Data tab, or start from a preset."
        )
    if not dataset.get("ok"):
        raise ConfigError(
            f"The dataset {dataset.get('source')} has errors: fix them in the Data tab first."
        )
    fmt = dataset.get("format")
    chosen: dict[str, Any] = {
        "data.path": str(dataset["source"]),
        "data.format": fmt if fmt in field_spec("data.format").choices else "auto",
        "data.columns": {str(k): str(v) for k, v in (dataset.get("columns") or {}).items()},
    }
    if dataset.get("validation_fraction") is not None:
        chosen["data.validation_fraction"] = dataset["validation_fraction"]
    config = config_from_dotted({**chosen, **settings})
    return dataclasses.replace(config, name=_selection_name(config.method.name, dataset))


def with_train_values(config: FtuiConfig, values: dict[str, Any]) -> FtuiConfig:
    """`config` with the Train tab's run name and settings on top, checked by the config.
    An empty name keeps the config's; an empty setting (a cleared number box) is refused."""
    settings = {key: _filled(key, values.get(key)) for key in TRAIN_KEYS}
    name = str(values.get("name") or "").strip()
    if name:
        settings["name"] = name
    return config_from_dotted(settings, base=config)


def _filled(key: str, value: Any) -> Any:
    if value is None:
        number = field_spec(key).kind in ("int", "float")
        raise ConfigError(f"{key} is empty: {'type a number' if number else 'choose a value'}")
    return value


def save_for_cli(
    config: FtuiConfig, workspace: Workspace, cwd: Path, now: float | None = None
) -> tuple[Path, str, str]:
    """Write workspace/configs/<name>-<time>.yaml; return (path, its text, the command)."""
    folder = workspace.root / CONFIGS_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now or time.time()))
    safe = re.sub(r"[^A-Za-z0-9_-]+", "-", config.name).strip("-")[:40] or "run"
    path = folder / f"{safe}-{stamp}.yaml"
    config_path, workspace_path = _shown(path, cwd), _shown(workspace.root, cwd)
    command = f"cd {shlex.quote(str(cwd))}\nftui train {config_path} --workspace {workspace_path}"
    header = (
        f"Written by the ftui Train tab. Relative paths resolve from {cwd}.\n"
        f"Run: ftui train {config_path} --workspace {workspace_path}"
    )
    return path, write_config(config, path, header), command


def _shown(path: Path, cwd: Path) -> str:
    """A path relative to cwd when it lies inside it, shell-quoted."""
    try:
        return shlex.quote(str(path.relative_to(cwd)))
    except ValueError:
        return shlex.quote(str(path))


def _selection_name(method: str, dataset: dict) -> str:
    stem = Path(str(dataset.get("source") or "data")).stem
    return f"{method}-{stem}"[:60]


def start_run(
    jobs: Jobs,
    start_from: str,
    values: dict[str, Any],
    dataset: dict | None,
    settings: dict[str, Any],
    presets_dir: Path,
    owner: str,
    *,
    demo: DemoLimits,
) -> tuple[str, str | None]:
    """Check the config and queue the run: (a sentence for the user, the run id or None)."""
    try:
        config, cwd = config_for_start(start_from, values, dataset, settings, presets_dir)
        run = queue_web_run(jobs, config, cwd, owner, demo=demo)
    except START_ERRORS as exc:
        return f"**Cannot start:** {markdown_literal(exc)}", None
    where = queue_place(jobs, run.run_id)
    # the id is made of [A-Za-z0-9_-] by new_run_id: safe inside a code span
    return f"Started **{markdown_literal(config.name)}** as `{run.run_id}` ({where}).", run.run_id


def queue_web_run(
    jobs: Jobs, config: FtuiConfig, cwd: Path, owner: str, *, demo: DemoLimits
) -> RunDir:
    """The one way a web caller's config becomes a queued run (the Start button and the
    start_config API): the no-training baseline is refused, the model path is confined like
    every model path a web caller names, a public demo's caps (`demo`, the server's
    ServerSettings.demo) are checked, and the trainer gets the server's Hub token only where
    an admin opted in (ftui.server.hub_auth). Raises one of START_ERRORS."""
    check_trains(config)
    config = with_checked_model_path(config)
    check_demo_limits(jobs, config, cwd, demo)
    return jobs.submit(config, owner=owner, cwd=cwd, server_token=web_may_use_server_token())


def queue_place(jobs: Jobs, run_id: str) -> str:
    """'queued, #2 in line' or the run's state."""
    row = next(r for r in jobs.list() if r["id"] == run_id)
    return f"queued, #{row['position']} in line" if row["state"] == "queued" else row["state"]


def with_checked_model_path(config: FtuiConfig) -> FtuiConfig:
    """A local model path must lie where this server loads models from (ftui serve sets
    the folders); the run gets the absolute path that was checked. Raises ModelLoadError."""
    source = confine_model_source(config.model.name_or_path)
    if source == config.model.name_or_path:
        return config
    return dataclasses.replace(config, model=dataclasses.replace(config.model, name_or_path=source))


def check_demo_limits(jobs: Jobs, config: FtuiConfig, cwd: Path, limits: DemoLimits) -> None:
    """In demo mode, refuse a run over the public demo's caps (ftui.server.demo)."""
    if limits.enabled:
        active = sum(row["state"] in ("queued", "running") for row in jobs.list())
        check_run(config, cwd, limits, active_runs=active)


def preview_run(
    workspace: Workspace,
    start_from: str,
    values: dict[str, Any],
    dataset: dict | None,
    settings: dict[str, Any],
    presets_dir: Path,
) -> tuple[str, str, str]:
    """(a sentence for the user, the YAML, the command) for what Start would run."""
    try:
        config, cwd = config_for_start(start_from, values, dataset, settings, presets_dir)
        path, text, command = save_for_cli(config, workspace, cwd)
    except (ConfigError, OSError) as exc:
        return f"**Cannot preview:** {markdown_literal(exc)}", "", ""
    return f"Saved `{path}`: the command below runs the same training.", text, command


def selection_summary(dataset: dict, model: str) -> str:
    """One line per choice carried over from earlier tabs."""
    model_line = f"**Model:** {markdown_literal(model or 'default')}"
    if not dataset:
        return f"{model_line}\n\n**Dataset:** none yet — choose one in the Data tab."
    verdict = "ready" if dataset.get("ok") else "has errors, fix them in the Data tab"
    return (
        f"{model_line}\n\n**Dataset:** {markdown_literal(dataset['source'])} — "
        f"{markdown_literal(dataset.get('format'))}, "
        f"{dataset.get('rows')} rows ({verdict})"
    )
