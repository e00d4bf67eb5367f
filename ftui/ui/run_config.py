"""The config of a new run from the Train tab, and the command line that does the same.

A run starts from a preset (presets/*.yaml) or from the current selection (the Data tab's
dataset and the Method tab's settings, defaults for the rest); the tab's train settings go on
top. Every value is checked here, on the server, and a bad one raises ConfigError with a
sentence that names the setting.

    message, run_id = start_run(jobs, start_from, values, dataset, settings, presets_dir, owner)
    message, yaml_text, command = preview_run(workspace, start_from, values, ...)
"""

from __future__ import annotations

import dataclasses
import re
import shlex
import time
import typing
from pathlib import Path
from typing import Any

from ftui.config import (
    ConfigError,
    DataConfig,
    FtuiConfig,
    TrainConfig,
    config_from_dict,
    config_to_dict,
    field_choices,
    load_config,
    write_config,
)
from ftui.markup import markdown_literal
from ftui.models import ModelLoadError, confine_model_source
from ftui.runs.jobs import JobError, Jobs
from ftui.server.demo import DemoLimits, check_run
from ftui.server.hub_auth import web_may_use_server_token
from ftui.workspace import Workspace

CURRENT_SELECTION = "Current selection"
TRAIN_FIELDS = (
    "epochs", "max_steps", "learning_rate", "eval_every", "save_every",
    "early_stopping_patience", "num_processes",
)  # fmt: skip
CONFIGS_FOLDER = "configs"


def preset_names(presets_dir: Path) -> list[str]:
    return sorted(path.stem for path in presets_dir.glob("*.yaml"))


def load_preset(presets_dir: Path, name: str) -> FtuiConfig:
    """A preset by name; only names listed in presets_dir are accepted (no paths)."""
    names = preset_names(presets_dir)
    if name not in names:
        raise ConfigError(f"no preset named {name!r}; choose one of: {', '.join(names)}")
    return load_config(presets_dir / f"{name}.yaml")


def start_values(start_from: str, presets_dir: Path, dataset: dict | None = None) -> dict[str, Any]:
    """The run name and train settings to show for a starting point."""
    if start_from == CURRENT_SELECTION:
        config = FtuiConfig(name=_selection_name("lora", dataset or {}))
    else:
        config = load_preset(presets_dir, start_from)
    return {"name": config.name, **{name: getattr(config.train, name) for name in TRAIN_FIELDS}}


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
    if config.method.name == "few_shot":
        raise ConfigError(
            "few_shot trains nothing: it is the no-training baseline. Compare it in the "
            "Playground, or choose a training method in the Method tab."
        )
    return config, cwd


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
    tree: dict[str, Any] = {
        "data": {
            "path": str(dataset["source"]),
            "format": fmt if fmt in field_choices(DataConfig, "format") else "auto",
            "columns": {str(k): str(v) for k, v in (dataset.get("columns") or {}).items()},
        }
    }
    if dataset.get("validation_fraction") is not None:
        tree["data"]["validation_fraction"] = float(dataset["validation_fraction"])
    for key, value in settings.items():
        section, name = key.split(".", 1)
        tree.setdefault(section, {})[name] = _widget_value(section, name, value)
    tree["name"] = _selection_name(tree.get("method", {}).get("name", "lora"), dataset)
    return config_from_dict(tree)


def with_train_values(config: FtuiConfig, values: dict[str, Any]) -> FtuiConfig:
    """A copy of `config` with the run name and TRAIN_FIELDS from `values`, checked."""
    tree = config_to_dict(config)
    name = str(values.get("name") or "").strip()
    if name:
        tree["name"] = name
    for key in TRAIN_FIELDS:
        value = values.get(key)
        if value is None:
            raise ConfigError(f"train.{key} is empty: type a number")
        tree["train"][key] = _widget_value("train", key, value)
    config = config_from_dict(tree)
    check_train_values(config.train)
    return config


def check_train_values(train: TrainConfig) -> None:
    """Ranges the config classes leave to the trainer, said before anything starts."""
    rules = [
        ("epochs", train.epochs > 0, "must be more than 0, e.g. 1"),
        ("max_steps", train.max_steps == -1 or train.max_steps >= 1, "must be -1 or 1+"),
        ("eval_every", train.eval_every >= 1, "must be at least 1 step"),
        ("save_every", train.save_every >= 1, "must be at least 1 step"),
        ("early_stopping_patience", train.early_stopping_patience >= 0, "must be 0 or more"),
    ]
    for key, ok, rule in rules:
        if not ok:
            raise ConfigError(f"train.{key} {rule} (got {getattr(train, key)})")


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


def _widget_value(section: str, name: str, value: Any) -> Any:
    """Sliders hand over floats: whole numbers become ints for int fields."""
    section_class = typing.get_type_hints(FtuiConfig).get(section)
    hint = typing.get_type_hints(section_class).get(name) if section_class else None
    if hint is int and isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def start_run(
    jobs: Jobs,
    start_from: str,
    values: dict[str, Any],
    dataset: dict | None,
    settings: dict[str, Any],
    presets_dir: Path,
    owner: str,
) -> tuple[str, str | None]:
    """Check the config and queue the run: (a sentence for the user, the run id or None).

    The run's model path is confined like every model path a web caller names, and its
    trainer gets the server's Hub token only where an admin opted in (ftui.server.hub_auth)."""
    try:
        config, cwd = config_for_start(start_from, values, dataset, settings, presets_dir)
        config = with_checked_model_path(config)
        check_demo_limits(jobs, config, cwd)
        run = jobs.submit(config, owner=owner, cwd=cwd, server_token=web_may_use_server_token())
    except (ConfigError, JobError, ModelLoadError, OSError) as exc:
        return f"**Cannot start:** {markdown_literal(exc)}", None
    row = next(r for r in jobs.list() if r["id"] == run.run_id)
    where = f"queued, #{row['position']} in line" if row["state"] == "queued" else row["state"]
    # the id is made of [A-Za-z0-9_-] by new_run_id: safe inside a code span
    return f"Started **{markdown_literal(config.name)}** as `{run.run_id}` ({where}).", run.run_id


def with_checked_model_path(config: FtuiConfig) -> FtuiConfig:
    """A local model path must lie where this server loads models from (ftui serve sets
    the folders); the run gets the absolute path that was checked. Raises ModelLoadError."""
    source = confine_model_source(config.model.name_or_path)
    if source == config.model.name_or_path:
        return config
    return dataclasses.replace(config, model=dataclasses.replace(config.model, name_or_path=source))


def check_demo_limits(jobs: Jobs, config: FtuiConfig, cwd: Path) -> None:
    """In demo mode (FTUI_DEMO=1), refuse a run over the public demo's caps (ftui.server.demo)."""
    limits = DemoLimits.from_env()
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
