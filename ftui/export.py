"""Export a run: merge its adapter into the base, save safetensors, optionally push to the Hub.

    folder = merge_run(run, workspace.resolve("exports/triage"))   # loads with plain transformers
    exported = read_exports(run)                                    # what was written, for reports
    timing = compare_latency(run, folder)                           # merged vs base + adapter
    url = push_to_hub(folder, "me/triage-smollm2", token)           # token never stored or logged

The output folder must be inside the workspace (the caller resolves it through
`Workspace.resolve`). A full fine-tune already is a whole model: it is copied as it is.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path
from typing import Any

import yaml

from ftui.config import DEFAULT_MODEL
from ftui.markup import markdown_literal
from ftui.runs.rundir import RunDir

BUNDLED_HUB_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*")
EXPORTS_FILE = "exports.jsonl"  # in the run folder: one line per export
LATENCY_PROMPT = [{"role": "user", "content": "Describe what a help desk does in one sentence."}]


def merge_run(run: RunDir, out: Path) -> Path:
    """Base + adapter merged into one model folder (safetensors, tokenizer, model card),
    recorded in the run's exports list (the HTML report names it)."""
    started = time.perf_counter()
    write_merged_model(run, out)
    size = sum(path.stat().st_size for path in out.iterdir() if path.is_file())
    record_export(run, "safetensors", out, size, time.perf_counter() - started)
    return out


def write_merged_model(run: RunDir, out: Path) -> Path:
    """The merge itself, recorded nowhere. It runs on the device ftui.runs.device_lease's
    policy picks (never a GPU that is training); the saved dtype is the run's own either way."""
    output = run.output
    if output is None:
        raise ValueError(f"run {run.run_id} has saved no adapter or model to export")
    out.mkdir(parents=True, exist_ok=True)
    if output == run.model:
        shutil.copytree(output, out, dirs_exist_ok=True)
    else:
        from ftui.runs.device_lease import place_work, workspace_of

        model_config = run.read_config().model
        holder = f"merge {run.run_id}"
        with place_work(workspace_of(run.path), model_config.device, holder) as placement:
            _merge_adapter(model_config, output, out, placement.device)
    (out / "README.md").write_text(model_card(run), encoding="utf-8")
    return out


def _merge_adapter(model_config: Any, adapter: Path, out: Path, device: str) -> None:
    from dataclasses import replace

    from ftui.heavy_imports import import_heavy_libraries

    import_heavy_libraries()
    from peft import PeftModel

    from ftui.models import load_model

    loaded = load_model(replace(model_config, dtype=_run_dtype_name(model_config)), device)
    merged = PeftModel.from_pretrained(loaded.model, adapter).merge_and_unload()
    merged.save_pretrained(out, safe_serialization=True)
    loaded.tokenizer.save_pretrained(out)


def _run_dtype_name(model_config: Any) -> str:
    """The dtype the run's weights have on the run's own device ('bfloat16', ...), so a merge
    moved to the CPU saves the same files as one on the GPU."""
    from ftui.models import choose_device, choose_dtype

    dtype = choose_dtype(model_config.dtype, choose_device(model_config.device))
    return str(dtype).removeprefix("torch.")


def model_card(run: RunDir) -> str:
    """The README.md of an export: YAML front matter, then the run described in Markdown.

    The front matter is built by yaml.safe_dump and the run's name and description are
    escaped, so no run name can add front-matter keys, Markdown or HTML to the card."""
    config = run.read_config()
    metrics = [m for m in run.read_metrics() if "eval_loss" in m]
    eval_line = f"Final eval loss: {metrics[-1]['eval_loss']:.4f}." if metrics else ""
    front = {"library_name": "transformers", "tags": ["ftui", config.method.name]}
    base = _hub_base_model(config.model.name_or_path)
    if base:
        front = {"base_model": base, **front}
    header = yaml.safe_dump(front, sort_keys=False, allow_unicode=True)
    title = markdown_literal(" ".join(config.name.split())) or "Fine-tuned model"
    description = markdown_literal(config.description)
    return (
        f"---\n{header}---\n\n# {title}\n\n{description}\n\n"
        f"Fine-tuned with ftui: method `{config.method.name}`, objective "
        f"`{config.method.objective}`, {config.train.epochs} epoch(s), learning rate "
        f"{config.train.learning_rate}. {eval_line}\n\nThe adapter is merged into the base "
        "weights, so the model loads with `AutoModelForCausalLM.from_pretrained`.\n"
    )


def record_export(run: RunDir, kind: str, path: Path, size: int, seconds: float) -> dict:
    """Append one line to the run's exports.jsonl: what was written, where (relative to the
    workspace: no server path leaves in a report), how big, how long it took."""
    try:
        where = str(path.resolve().relative_to(run.path.resolve().parent.parent))
    except ValueError:  # outside the workspace (a caller's own folder): its name only
        where = path.name
    record = {
        "kind": kind, "path": where, "bytes": size, "seconds": round(seconds, 1),
        "time": time.strftime("%Y-%m-%d %H:%M:%S"),
    }  # fmt: skip
    with (run.path / EXPORTS_FILE).open("a", encoding="utf-8") as log:
        log.write(json.dumps(record) + "\n")
    return record


def read_exports(run: RunDir) -> list[dict]:
    """The run's export records, oldest first (none if it was never exported)."""
    path = run.path / EXPORTS_FILE
    if not path.is_file():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def _hub_base_model(name_or_path: str) -> str | None:
    """The base model's Hub id for the card; None for a local folder (its server path
    stays on the server)."""
    if name_or_path in ("", DEFAULT_MODEL):
        return BUNDLED_HUB_ID
    return name_or_path if _HUB_ID.fullmatch(name_or_path) and ".." not in name_or_path else None


def compare_latency(run: RunDir, merged_folder: Path, new_tokens: int = 32) -> dict[str, Any]:
    """Seconds per generated token: base + adapter (unmerged) against the merged model, on the
    device the lease policy picks; `device` and `device_note` say which and why."""
    from ftui.runs.device_lease import place_work, workspace_of

    model_config = run.read_config().model
    holder = f"latency {run.run_id}"
    with place_work(workspace_of(run.path), model_config.device, holder) as placement:
        timing = _measure_latency(run, merged_folder, new_tokens, placement.device)
    return {**timing, "device": placement.device, "device_note": placement.note}


def _measure_latency(
    run: RunDir, merged_folder: Path, new_tokens: int, device: str
) -> dict[str, float]:
    from peft import PeftModel

    from ftui.models import load_model, saved_model_config

    model_config = run.read_config().model
    loaded = load_model(model_config, device)
    unmerged = PeftModel.from_pretrained(loaded.model, run.adapter).eval()
    merged = load_model(saved_model_config(model_config, merged_folder), device).model
    inputs = loaded.tokenizer.apply_chat_template(
        LATENCY_PROMPT, add_generation_prompt=True, return_tensors="pt", return_dict=True
    ).to(loaded.device)
    return {
        "unmerged_seconds_per_token": _seconds_per_token(unmerged, inputs, loaded, new_tokens),
        "merged_seconds_per_token": _seconds_per_token(merged, inputs, loaded, new_tokens),
    }


def _seconds_per_token(model: Any, inputs: Any, loaded: Any, new_tokens: int) -> float:
    import torch

    settings = dict(
        max_new_tokens=new_tokens,
        min_new_tokens=new_tokens,
        do_sample=False,
        pad_token_id=loaded.tokenizer.pad_token_id,
    )
    with torch.inference_mode():
        model.generate(**inputs, **{**settings, "max_new_tokens": 2, "min_new_tokens": 2})
        best = float("inf")
        for _ in range(3):  # the best of three: the machine's noise only ever adds time
            started = time.perf_counter()
            model.generate(**inputs, **settings)
            best = min(best, time.perf_counter() - started)
    return best / new_tokens


def push_to_hub(folder: Path, repo_id: str, token: str, private: bool = True) -> str:
    """Upload the folder to a Hub model repo with exactly this token (never an implicit one);
    errors never contain the token. Whose token it may be is the caller's decision
    (ftui.server.hub_auth: the web uses the caller's own, the CLI the server's)."""
    from huggingface_hub import HfApi, constants

    if not token:
        raise ValueError(
            "pushing needs a Hugging Face token with write access: paste one, or on the "
            "command line set HF_TOKEN or run `hf auth login`"
        )
    api = HfApi(token=token)
    try:
        api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
        api.upload_folder(folder_path=str(folder), repo_id=repo_id, repo_type="model")
    except Exception as exc:  # hub errors may echo request headers: scrub before showing
        lines = str(exc).replace(token, "***").splitlines() or [type(exc).__name__]
        raise RuntimeError(f"push to {repo_id} failed: {lines[0]}") from None
    return f"{constants.ENDPOINT}/{repo_id}"
