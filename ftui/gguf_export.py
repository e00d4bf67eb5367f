"""Export a finished run as GGUF (llama.cpp, Ollama, LM Studio) with an Ollama Modelfile beside it.

    record = export_gguf(run, workspace.resolve("exports/triage"), "q8_0", progress)
    print(describe_export(record))   # file, size, time, and the `ollama create` line

The architecture, tokenizer and format are checked before anything is merged or written
(`check_gguf_export`): what ftui cannot convert is refused with the list of what it can. A
LoRA-style run is merged into its base in a temporary folder inside the output folder, deleted
afterwards; a full fine-tune is read where it is. The GGUF is written under a `.partial` name
and renamed when complete, so a failed export leaves no half file. The file carries the
tokenizer and chat template; the Modelfile carries the chat template in Ollama's syntax (for
ChatML and Llama 3 templates) and the run's system prompt (or the template's default one).

f16 and q8_0 are written by the `gguf` package (ftui.gguf_convert). q4_k_m needs llama.cpp's
C++ quantizer: offered only where `llama-quantize` is on PATH or FTUI_LLAMA_QUANTIZE names it.
Who may export into which folder is the caller's check (the same as a merge).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ftui.export import record_export, write_merged_model
from ftui.gguf_convert import (
    FORMATS,
    GgufPlan,
    GgufUnsupported,
    check_architecture,
    plan_gguf,
    write_gguf,
)
from ftui.runs.rundir import RunDir

QUANTIZER_ENV = "FTUI_LLAMA_QUANTIZE"
LLAMA_QUANTIZE_ONLY = {"q4_k_m": "Q4_K_M"}  # ftui's name -> llama-quantize's type name
QUANTIZE_TIMEOUT_SECONDS = 3600
Progress = Callable[[float, str], None]
# Chat templates Ollama's Go template syntax can say: marker in the Jinja template ->
# (Go template, stop token, pattern of the system turn the Jinja template renders by default)
OLLAMA_TEMPLATES = {
    "<|im_start|>": (
        "{{- range .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n"
        "{{ end }}<|im_start|>assistant\n",
        "<|im_end|>",
        r"<\|im_start\|>system\n(.*?)<\|im_end\|>",
    ),
    "<|start_header_id|>": (
        "{{- range .Messages }}<|start_header_id|>{{ .Role }}<|end_header_id|>\n\n"
        "{{ .Content }}<|eot_id|>{{ end }}<|start_header_id|>assistant<|end_header_id|>\n\n",
        "<|eot_id|>",
        r"<\|start_header_id\|>system<\|end_header_id\|>\n\n(.*?)<\|eot_id\|>",
    ),
}


def _no_progress(fraction: float, text: str) -> None:
    return None


def llama_quantize() -> str | None:
    """llama.cpp's quantizer program, if this machine has one."""
    return os.environ.get(QUANTIZER_ENV) or shutil.which("llama-quantize")


def gguf_formats() -> list[str]:
    """The formats this machine can write: f16 and q8_0, and q4_k_m with llama-quantize."""
    return [*FORMATS, *(LLAMA_QUANTIZE_ONLY if llama_quantize() else ())]


def check_gguf_export(run: RunDir, format: str) -> GgufPlan:
    """Can this run be written as GGUF in this format? Reads only the config and tokenizer."""
    if run.output is None:
        raise ValueError(f"run {run.run_id} has saved no adapter or model to export")
    if format in LLAMA_QUANTIZE_ONLY and not llama_quantize():
        raise GgufUnsupported(
            f"{format} needs llama.cpp's quantizer: put llama-quantize on PATH or set "
            f"{QUANTIZER_ENV}=/path/to/llama-quantize (the gguf package has no {format} "
            f"quantizer). Formats here: {', '.join(gguf_formats())}"
        )
    from ftui.heavy_imports import import_heavy_libraries

    import_heavy_libraries()  # gradio's worker threads: transformers' lazy import is not safe
    from transformers import AutoConfig, AutoTokenizer

    source = _source_folder(run)
    written = "f16" if format in LLAMA_QUANTIZE_ONLY else format
    try:
        config = AutoConfig.from_pretrained(source)
        check_architecture(config, written)  # before the tokenizer: a clear refusal first
        tokenizer = AutoTokenizer.from_pretrained(source)
    except (OSError, ValueError) as exc:  # e.g. an architecture that needs remote code
        if isinstance(exc, GgufUnsupported):
            raise
        raise GgufUnsupported(f"cannot read {run.run_id}'s model for GGUF: {exc}") from None
    return plan_gguf(config, tokenizer, written)


def _source_folder(run: RunDir) -> str:
    if run.output == run.model:
        return str(run.model)
    from ftui.models import resolve_model_dir

    return resolve_model_dir(run.read_config().model.name_or_path)


def export_gguf(
    run: RunDir, out: Path, format: str, progress: Progress = _no_progress
) -> dict[str, Any]:
    """Write <name>-<format>.gguf and <name>-<format>.Modelfile into `out`; return the
    export record (path, bytes, seconds) with `file` and `modelfile` added."""
    progress(0.0, "checking the model")
    plan = check_gguf_export(run, format)
    started = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    config = run.read_config()
    stem = f"{_slug(config.name)}-{format}"
    target = out / f"{stem}.gguf"
    partial = out / f"{stem}.gguf.partial"
    try:
        with _model_folder(run, out, progress) as folder:
            write_gguf(plan, folder, partial, config.name, _scaled(progress, 0.15, 0.9))
        if format in LLAMA_QUANTIZE_ONLY:
            progress(0.92, f"quantizing to {format} with llama-quantize")
            _quantize(partial, LLAMA_QUANTIZE_ONLY[format])
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)
    modelfile = out / f"{stem}.Modelfile"
    modelfile.write_text(ollama_modelfile(run, plan.tokenizer, target.name), encoding="utf-8")
    seconds = time.perf_counter() - started
    record = record_export(run, f"gguf {format}", target, target.stat().st_size, seconds)
    progress(1.0, "done")
    return {**record, "file": str(target), "modelfile": str(modelfile), "name": _slug(config.name)}


@contextmanager
def _model_folder(run: RunDir, out: Path, progress: Progress) -> Iterator[Path]:
    """The whole model as a folder: a full fine-tune's own, or the adapter merged into the
    base in a temporary folder inside `out` (same disk, deleted afterwards)."""
    if run.output == run.model:
        yield run.model
        return
    progress(0.02, "merging the adapter into the base model")
    merged = Path(tempfile.mkdtemp(prefix=".merging-", dir=out))
    try:
        write_merged_model(run, merged)
        yield merged
    finally:
        shutil.rmtree(merged, ignore_errors=True)


def _scaled(progress: Progress, start: float, end: float) -> Progress:
    return lambda fraction, text: progress(start + (end - start) * fraction, text)


def _quantize(path: Path, type_name: str) -> None:
    """Re-quantize an f16 GGUF in place with llama.cpp's llama-quantize."""
    quantized = path.with_name(path.name + ".q")
    command = [llama_quantize() or "llama-quantize", str(path), str(quantized), type_name]
    try:
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=QUANTIZE_TIMEOUT_SECONDS
        )
        if result.returncode != 0:
            tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
            raise RuntimeError(f"llama-quantize failed: {' '.join(tail)}")
        quantized.replace(path)
    finally:
        quantized.unlink(missing_ok=True)


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.") or "model"


# ---------------------------------------------------------------- Ollama


def ollama_modelfile(run: RunDir, tokenizer: Any, gguf_name: str) -> str:
    """An Ollama Modelfile for the GGUF beside it: the chat template in Ollama's syntax, the
    run's system prompt (or the one the template adds by default), greedy decoding."""
    config = run.read_config()
    jinja = tokenizer.chat_template or ""
    family = next((marker for marker in OLLAMA_TEMPLATES if marker in jinja), None)
    name = _slug(config.name)
    lines = [
        f"# Ollama: ollama create {name} -f {Path(gguf_name).stem}.Modelfile",
        f"#         ollama run {name}",
        f"# Made by ftui from run {run.run_id}.",
        f"FROM ./{gguf_name}",
    ]
    system = config.data.system_prompt
    if family is None:
        lines.insert(3, "# Ollama reads the chat template stored in the GGUF file.")
    else:
        template, stop, default_system = OLLAMA_TEMPLATES[family]
        system = system or _rendered_default(tokenizer, default_system)
        lines += [f'TEMPLATE """{template}"""', f'PARAMETER stop "{stop}"']
    if system:
        lines.append(f'SYSTEM """{system.replace(chr(34) * 3, chr(39) * 3)}"""')
    lines += ["# ftui's evaluation decodes greedily; raise it for varied answers"]
    lines += ["PARAMETER temperature 0", ""]
    return "\n".join(lines)


def _rendered_default(tokenizer: Any, pattern: str) -> str:
    """The system turn the Jinja template renders when a chat has none (SmolLM2 adds one)."""
    try:
        text = tokenizer.apply_chat_template([{"role": "user", "content": "x"}], tokenize=False)
    except Exception:  # a template that refuses a lone user turn: no default to copy
        return ""
    found = re.search(pattern, text, flags=re.DOTALL)
    return found.group(1) if found else ""


def describe_export(record: dict[str, Any]) -> str:
    """One Markdown paragraph: which files, how big, how long, and how to run it in Ollama."""
    from ftui.units import format_duration

    modelfile = Path(record["modelfile"]).name
    return (
        f"Wrote `{record['path']}` ({record['bytes'] / 1e6:.1f} MB) in "
        f"{format_duration(record['seconds'])}, and `{modelfile}` beside it for Ollama: "
        f"`ollama create {record['name']} -f {modelfile}` in that folder, then "
        f"`ollama run {record['name']}`. llama.cpp: `llama-cli -m {Path(record['file']).name}`."
    )
