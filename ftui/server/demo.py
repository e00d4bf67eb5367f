"""Demo mode for public Spaces: what a visitor may start, capped, read from the environment.

A public Space shares one small machine with everyone, so with FTUI_DEMO=1 the server refuses
runs that would hog it, with a sentence that names the cap and what to do instead:

    FTUI_DEMO=1                       turn demo mode on
    FTUI_DEMO_TRAINING=off            no training at all (Data, Method, Playground still work)
    FTUI_DEMO_MAX_MODEL_PARAMS=500M   largest base model (counted exactly on the meta device)
    FTUI_DEMO_MAX_STEPS=100           longest run in optimizer steps (the triage preset: 75)
    FTUI_DEMO_MAX_UPLOAD_MB=10        largest upload (also Gradio's max_file_size)
    FTUI_DEMO_MAX_QUEUE=3             runs queued or running at once, everyone's together

Models that would be downloaded (a Hub id not already in this machine's cache) and Hub
datasets are refused, and so is trust_remote_code. The checks run on the server when a run
is started (`check_run`, called by the Train tab's start path), never only in the browser.

    limits = DemoLimits.from_env()
    check_run(config, cwd, limits, active_runs=2)   # raises DemoRefusal (a ConfigError)
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ftui.config import DEFAULT_MODEL, ConfigError, FtuiConfig

LOCALLY = "run ftui on your own machine, or duplicate this Space and turn FTUI_DEMO off"
_ON = {"1", "true", "yes", "on"}
_OFF = {"0", "false", "no", "off", ""}
_SUFFIXES = {"k": 10**3, "m": 10**6, "b": 10**9}
_HUB_ID = re.compile(r"[\w.-]+/[\w.-]+(:[\w.-]+)?")


class DemoRefusal(ConfigError):
    """A run or upload this public demo does not allow; the text says which cap and why."""


@dataclass(frozen=True)
class DemoLimits:
    enabled: bool = False
    training: bool = True
    max_model_params: int = 500_000_000
    max_steps: int = 100
    max_upload_bytes: int = 10 * 1024 * 1024
    max_queue: int = 3

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> DemoLimits:
        """Limits from FTUI_DEMO* variables; a malformed value raises ConfigError naming it."""
        env = os.environ if environ is None else environ
        defaults = cls()
        return cls(
            enabled=_flag(env, "FTUI_DEMO", False),
            training=_flag(env, "FTUI_DEMO_TRAINING", True),
            max_model_params=_count(env, "FTUI_DEMO_MAX_MODEL_PARAMS", defaults.max_model_params),
            max_steps=_count(env, "FTUI_DEMO_MAX_STEPS", defaults.max_steps),
            max_upload_bytes=_megabytes(env, "FTUI_DEMO_MAX_UPLOAD_MB", defaults.max_upload_bytes),
            max_queue=_count(env, "FTUI_DEMO_MAX_QUEUE", defaults.max_queue),
        )

    def upload_limit(self, server_limit: int) -> int:
        """The upload cap in force: the server's, lowered to the demo's in demo mode."""
        return min(server_limit, self.max_upload_bytes) if self.enabled else server_limit

    def banner(self) -> str:
        """One line for the top of the page in demo mode; empty otherwise."""
        if not self.enabled:
            return ""
        if not self.training:
            rules = "training is switched off"
        else:
            rules = (
                f"runs are capped at {self.max_steps} steps on models up to "
                f"{human_count(self.max_model_params)} parameters"
            )
        return (
            f"**Public demo:** {rules}; uploads up to {_mb(self.max_upload_bytes)}. "
            f"For more, {LOCALLY}."
        )


def check_run(config: FtuiConfig, cwd: Path, limits: DemoLimits, active_runs: int) -> None:
    """Refuse a run this demo does not allow (DemoRefusal); do nothing outside demo mode.

    `cwd` is the folder the run's relative data paths resolve from; `active_runs` counts the
    runs queued or running now.
    """
    if not limits.enabled:
        return
    if not limits.training:
        raise DemoRefusal(
            "Training is switched off in this public demo. Explore the Data, Method and "
            f"Playground tabs here; to train, {LOCALLY}."
        )
    if active_runs >= limits.max_queue:
        raise DemoRefusal(
            f"This public demo runs at most {limits.max_queue} trainings at a time (queued or "
            f"running), and {active_runs} are in now. Try again when one has finished, or "
            f"{LOCALLY}."
        )
    check_model(config, limits)
    for path in (config.data.path, config.data.validation_path):
        check_dataset_source(path, limits)
    steps = planned_steps(config, cwd)
    if steps > limits.max_steps:
        raise DemoRefusal(
            f"This run would take {steps} optimizer steps; this public demo caps training at "
            f"{limits.max_steps} steps. Lower Max steps (or the epochs), raise the batch size, "
            f"or {LOCALLY} for more."
        )


def check_model(config: FtuiConfig, limits: DemoLimits) -> None:
    """Refuse downloads, remote code, and base models over the parameter cap."""
    name = config.model.name_or_path or DEFAULT_MODEL
    if config.model.trust_remote_code:
        raise DemoRefusal(
            "This public demo does not run code shipped with model repositories: turn "
            f"trust_remote_code off, or {LOCALLY}."
        )
    local = name == DEFAULT_MODEL or Path(name).expanduser().is_dir()
    if not local and not _in_hub_cache(name, config.model.revision):
        raise DemoRefusal(
            f"This public demo does not download models, and {name!r} is not on this "
            "machine. Use 'default' (the bundled SmolLM2-135M-Instruct); to fine-tune Hub "
            f"models, {LOCALLY}."
        )
    from ftui.params import count_parameters, load_architecture

    # few_shot counts the base model alone: no adapters are built for a size check
    base_only = dataclasses.replace(
        config, method=dataclasses.replace(config.method, name="few_shot")
    )
    params = count_parameters(load_architecture(name), base_only).base_total
    if params > limits.max_model_params:
        raise DemoRefusal(
            f"{name} has {human_count(params)} parameters; this public demo caps models at "
            f"{human_count(limits.max_model_params)}. Pick a smaller model (e.g. 'default'), "
            f"or {LOCALLY}."
        )


def check_dataset_source(source: str, limits: DemoLimits) -> None:
    """Refuse a Hub dataset id in demo mode: it would be downloaded, at any size."""
    source = (source or "").strip()
    if not limits.enabled or not source or not looks_like_hub_id(source):
        return
    raise DemoRefusal(
        f"This public demo does not download datasets from the Hub ({source!r}). Download it "
        f"yourself and upload the file (up to {_mb(limits.max_upload_bytes)}), or {LOCALLY}."
    )


def looks_like_hub_id(source: str) -> bool:
    """`owner/name[:split]` that is not a file here (the same rule as the data reader's)."""
    from ftui.data.reading import SUPPORTED_EXTENSIONS

    if Path(source).expanduser().exists() or source.lower().endswith(SUPPORTED_EXTENSIONS):
        return False
    return bool(_HUB_ID.fullmatch(source))


def planned_steps(config: FtuiConfig, cwd: Path) -> int:
    """Optimizer steps the run will take, computed as the trainer does, from the data.

    Rows are read and split exactly as for training; packed raw text (the domain objective)
    counts blocks of max_length tokens with the model's tokenizer.
    """
    train = config.train
    if train.max_steps > 0:
        return train.max_steps  # overrides epochs: the Trainer cycles the data that long
    from ftui.data.errors import DataError
    from ftui.data.training_data import load_training_rows
    from ftui.estimate.steps import optimizer_steps

    data = dataclasses.replace(
        config.data,
        path=_from(cwd, config.data.path),
        validation_path=_from(cwd, config.data.validation_path),
    )
    try:
        rows, _ = load_training_rows(data, config.method.objective)
    except DataError as exc:
        raise ConfigError(f"cannot read the training data: {exc}") from None
    sequences = len(rows)
    if config.method.objective == "domain":
        sequences = _packed_blocks([row["text"] for row in rows], config)
    return optimizer_steps(
        sequences, train.batch_size, train.num_processes, train.gradient_accumulation, train.epochs
    )


def human_count(number: int) -> str:
    """500000000 -> '500M', 1700000000 -> '1.7B'."""
    for suffix, size in (("B", 10**9), ("M", 10**6), ("K", 10**3)):
        if number >= size:
            return f"{number / size:.3g}{suffix}"
    return str(number)


def _packed_blocks(texts: list[str], config: FtuiConfig) -> int:
    from ftui.models import load_tokenizer

    tokenizer = load_tokenizer(config.model.name_or_path or DEFAULT_MODEL)
    ids = tokenizer(texts, add_special_tokens=False)["input_ids"] if texts else []
    tokens = sum(len(row) + 1 for row in ids)  # +1: the end-of-text token between documents
    return math.ceil(tokens / config.data.max_length)


def _from(cwd: Path, path: str) -> str:
    if not path or Path(path).expanduser().is_absolute() or looks_like_hub_id(path):
        return path
    return str(Path(cwd) / path)


def _in_hub_cache(model_id: str, revision: str | None) -> bool:
    """Whether this Hub model's config and weights are in the local cache already."""
    if not _HUB_ID.fullmatch(model_id):
        return False
    from huggingface_hub import try_to_load_from_cache

    try:
        config = try_to_load_from_cache(model_id, "config.json", revision=revision)
    except ValueError:
        return False
    if not isinstance(config, str):
        return False
    folder = Path(config).parent
    return any(folder.glob("*.safetensors")) or any(folder.glob("*.bin"))


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    value = env.get(name)
    if value is None:
        return default
    if value.strip().lower() in _ON:
        return True
    if value.strip().lower() in _OFF:
        return False
    raise ConfigError(f"${name} must be on or off (1/0, true/false), got {value!r}")


def _count(env: Mapping[str, str], name: str, default: int) -> int:
    """A positive whole number, with an optional K/M/B suffix: 500M, 1.5B, 60."""
    value = (env.get(name) or "").strip()
    if not value:
        return default
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([kKmMbB]?)", value)
    number = float(match.group(1)) * _SUFFIXES.get(match.group(2).lower(), 1) if match else 0
    if number < 1:
        raise ConfigError(f"${name} must be a positive number such as 60 or 500M, got {value!r}")
    return int(number)


def _megabytes(env: Mapping[str, str], name: str, default: int) -> int:
    value = (env.get(name) or "").strip()
    if not value:
        return default
    try:
        megabytes = float(value)
    except ValueError:
        megabytes = 0.0
    if not megabytes > 0:
        raise ConfigError(f"${name} must be a positive number of megabytes, got {value!r}")
    return int(megabytes * 1024 * 1024)


def _mb(size: int) -> str:
    return f"{size / (1024 * 1024):g} MB"
