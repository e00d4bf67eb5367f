"""Real peak memory of fine-tuning steps (full, LoRA, QLoRA) over a grid of configurations.

Run:
    .venv/bin/python benchmarks/memory_grid.py --device cpu --grid quick
    .venv/bin/python benchmarks/memory_grid.py --device cpu --grid cpu
    python3 benchmarks/memory_grid.py --device cuda --grid gpu [--only-arch llama-3.1-8b] [--resume]

Each configuration runs in a fresh subprocess (the script re-invokes itself with
`--one JSON_CONFIG`) so allocator state and peaks never leak between rows. The child builds a
causal LM with random weights straight from a built-in architecture dict (no download; memory
does not depend on weight values), attaches LoRA adapters with peft where asked, then runs 3
optimizer steps (forward with labels = input ids on random token ids, backward,
optimizer.step, zero_grad(set_to_none=True)) in a plain loop, no Trainer.

QLoRA weights are made in place, not loaded from disk: the model is built on the meta device,
every nn.Linear inside the decoder layers is replaced by a bitsandbytes Linear4bit (nf4, double
quant on/off, compute dtype bf16 on CUDA) whose random bf16 weight is quantized one layer at a
time on the target device, the remaining tensors (embeddings, norms, lm_head, rotary buffers) are
materialised, and then peft's prepare_model_for_kbit_training runs as in the usual HF recipe
(it upcasts the non-quantized bf16 parameters to fp32).

Measured on CUDA: after_load_bytes (memory_allocated once the model and adapters are ready),
load_peak_bytes (max_memory_allocated up to then), step_peak_bytes (max_memory_allocated over the
3 steps, peak stats reset after load), peak_allocated_bytes = max of the two,
peak_reserved_bytes (max_memory_reserved over the whole run). On CPU: RSS above the baseline
taken after imports (after_load from /proc/self/statm, peaks from ru_maxrss). Both: median
seconds of steps 2-3, trainable and total parameter counts (4-bit weights counted as
parameters, i.e. numel * 2), optimizer state dtype. An out-of-memory error is a result
("oom": true). The table is written to benchmarks/results/memory_grid_<device-tag>.json after
every row, so a cut-off run still leaves its results.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
MARKER = "MEMORY_GRID_RESULT "
STEPS = 3

ARCHS = {
    "tiny-llama": dict(
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        vocab_size=1024,
        tie_word_embeddings=True,
        max_position_embeddings=1024,
    ),
    "smollm2-135m": dict(
        hidden_size=576,
        intermediate_size=1536,
        num_hidden_layers=30,
        num_attention_heads=9,
        num_key_value_heads=3,
        vocab_size=49152,
        tie_word_embeddings=True,
        max_position_embeddings=8192,
    ),
    "llama-3.2-1b": dict(
        hidden_size=2048,
        intermediate_size=8192,
        num_hidden_layers=16,
        num_attention_heads=32,
        num_key_value_heads=8,
        vocab_size=128256,
        tie_word_embeddings=True,
        max_position_embeddings=131072,
    ),
    "llama-2-7b": dict(
        hidden_size=4096,
        intermediate_size=11008,
        num_hidden_layers=32,
        num_attention_heads=32,
        num_key_value_heads=32,
        vocab_size=32000,
        tie_word_embeddings=False,
        max_position_embeddings=4096,
    ),
    "llama-3.1-8b": dict(
        hidden_size=4096,
        intermediate_size=14336,
        num_hidden_layers=32,
        num_attention_heads=32,
        num_key_value_heads=8,
        vocab_size=128256,
        tie_word_embeddings=False,
        max_position_embeddings=131072,
    ),
}

DEFAULTS = dict(
    method="lora",
    lora_r=16,
    lora_targets="all-linear",
    quant_type=None,
    double_quant=None,
    compute_dtype=None,
    batch_size=1,
    seq_len=512,
    grad_ckpt=False,
    attn="sdpa",
    optimizer="adamw_torch",
    param_dtype=None,
    device="cuda",
    lora_dropout=0.0,
)
# Methods built by ftui's own translator (ftui.translate.apply_method), as ftui trains them.
FTUI_METHODS = ("freeze", "ia3", "prefix", "prompt", "llama_adapter", "bottleneck")

CONFIG_KEYS = ("arch", *DEFAULTS)


# ----------------------------------------------------------------------------- grids


def row(arch: str, device: str, **kw) -> dict:
    cfg = {"arch": arch, **DEFAULTS, **kw, "device": device}
    if cfg["param_dtype"] is None:
        cfg["param_dtype"] = "bf16" if device == "cuda" else "fp32"
    if cfg["method"] == "qlora":
        cfg["quant_type"] = cfg["quant_type"] or "nf4"
        cfg["double_quant"] = bool(cfg["double_quant"])
        cfg["compute_dtype"] = cfg["compute_dtype"] or ("bf16" if device == "cuda" else "fp32")
    if cfg["method"] == "full" or cfg["method"] in FTUI_METHODS:
        cfg["lora_r"] = cfg["lora_targets"] = None
    return cfg


def gpu_grid() -> list[dict]:
    d = "cuda"
    qv = dict(lora_r=8, lora_targets="q_proj,v_proj")
    anchors = [
        row("llama-2-7b", d, seq_len=1304, batch_size=1, **qv),
        row("llama-2-7b", d, seq_len=1304, batch_size=2, **qv),
        row("llama-2-7b", d, method="qlora", seq_len=1304, batch_size=1, double_quant=True, **qv),
    ]
    rows = list(anchors)
    for arch in ("llama-3.1-8b", "llama-3.2-1b"):
        rows += [
            row(arch, d, batch_size=1, seq_len=512),
            row(arch, d, batch_size=1, seq_len=2048),
            row(arch, d, batch_size=4, seq_len=2048),
            row(arch, d, batch_size=4, seq_len=2048, grad_ckpt=True),
            row(arch, d, batch_size=4, seq_len=512),
            row(arch, d, batch_size=1, seq_len=2048, **qv),
            row(arch, d, batch_size=4, seq_len=2048, grad_ckpt=True, **qv),
            row(arch, d, method="qlora", batch_size=1, seq_len=2048, double_quant=True),
            row(arch, d, method="qlora", batch_size=1, seq_len=2048, double_quant=False),
            row(
                arch,
                d,
                method="qlora",
                batch_size=4,
                seq_len=2048,
                double_quant=True,
                grad_ckpt=True,
            ),
            row(arch, d, method="qlora", batch_size=4, seq_len=512, double_quant=True),
        ]
    rows += [
        row("llama-3.2-1b", d, method="full", batch_size=1, seq_len=512),
        row("llama-3.2-1b", d, method="full", batch_size=1, seq_len=2048),
        row("llama-3.2-1b", d, method="full", batch_size=4, seq_len=2048, grad_ckpt=True),
        row("llama-3.2-1b", d, method="full", batch_size=4, seq_len=2048),
        row("llama-3.2-1b", d, method="full", batch_size=1, seq_len=2048, param_dtype="fp32"),
        row("llama-3.1-8b", d, method="full", batch_size=1, seq_len=512),
    ]
    return rows


def cpu_grid() -> list[dict]:
    rows = []
    for method in ("full", "lora", "qlora"):
        extra = {"double_quant": True} if method == "qlora" else {}
        rows += [
            row("smollm2-135m", "cpu", method=method, batch_size=1, seq_len=128, **extra),
            row("smollm2-135m", "cpu", method=method, batch_size=1, seq_len=512, **extra),
            row("smollm2-135m", "cpu", method=method, batch_size=4, seq_len=128, **extra),
            row(
                "smollm2-135m",
                "cpu",
                method=method,
                batch_size=4,
                seq_len=128,
                grad_ckpt=True,
                **extra,
            ),
        ]
    rows.append(
        row(
            "smollm2-135m",
            "cpu",
            method="lora",
            batch_size=1,
            seq_len=512,
            lora_r=8,
            lora_targets="q_proj,v_proj",
        )
    )
    return rows


def accuracy_grid() -> list[dict]:
    """The bundled model on CPU for the methods the LoRA grid lacks, plus LoRA's defaults."""
    arch, d = "smollm2-135m", "cpu"
    return [
        row(arch, d, method="prefix", batch_size=1, seq_len=128),
        row(arch, d, method="prefix", batch_size=1, seq_len=512),
        row(arch, d, method="prefix", batch_size=4, seq_len=128),
        row(arch, d, method="prefix", batch_size=2, seq_len=256),  # peft: no checkpointing
        row(arch, d, method="prompt", batch_size=2, seq_len=256),
        row(arch, d, method="ia3", batch_size=2, seq_len=256),
        row(arch, d, method="freeze", batch_size=2, seq_len=256),
        row(arch, d, method="bottleneck", batch_size=2, seq_len=256),
        row(arch, d, method="lora", batch_size=2, seq_len=256, lora_dropout=0.05),
        row(arch, d, method="full", batch_size=2, seq_len=256, grad_ckpt=True),
        row(arch, d, method="qlora", batch_size=2, seq_len=256, double_quant=True),
    ]


def quick_grid(device: str) -> list[dict]:
    return [
        row("tiny-llama", device, method="lora", batch_size=2, seq_len=64, grad_ckpt=True),
        row("tiny-llama", device, method="qlora", batch_size=1, seq_len=64, double_quant=True),
    ]


def build_grid(name: str, device: str) -> list[dict]:
    if name == "gpu":
        return [{**r, "device": device} for r in gpu_grid()]
    if name == "cpu":
        return [{**r, "device": device} for r in cpu_grid()]
    if name == "accuracy":
        return accuracy_grid()
    return quick_grid(device)


# ----------------------------------------------------------------------------- child side

DTYPES = {"bf16": "bfloat16", "fp32": "float32", "fp16": "float16"}


def torch_dtype(name: str):
    import torch

    return getattr(torch, DTYPES[name])


def rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def maxrss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def hf_config(cfg: dict):
    from transformers import LlamaConfig

    return LlamaConfig(**ARCHS[cfg["arch"]], use_cache=False)


def build_plain(cfg: dict):
    import torch
    from transformers import AutoModelForCausalLM

    with torch.device(cfg["device"]):
        return AutoModelForCausalLM.from_config(
            hf_config(cfg), dtype=torch_dtype(cfg["param_dtype"]), attn_implementation=cfg["attn"]
        )


def quantized_linear(lin, cfg: dict):
    import bitsandbytes as bnb
    import torch

    dev, compute = cfg["device"], torch_dtype(cfg["compute_dtype"])
    q = bnb.nn.Linear4bit(
        lin.in_features,
        lin.out_features,
        bias=lin.bias is not None,
        compute_dtype=compute,
        compress_statistics=cfg["double_quant"],
        quant_type=cfg["quant_type"],
        device="meta",
    )
    w = torch.randn(lin.out_features, lin.in_features, device=dev, dtype=torch.bfloat16) * 0.02
    q.weight = bnb.nn.Params4bit(
        w,
        requires_grad=False,
        compress_statistics=cfg["double_quant"],
        quant_type=cfg["quant_type"],
        module=q,
    ).to(dev)
    if lin.bias is not None:
        q.bias = torch.nn.Parameter(torch.zeros(lin.out_features, device=dev, dtype=compute))
    return q


def materialise_meta(model, cfg: dict) -> None:
    """Give every tensor still on the meta device real storage (shared parameters stay shared)."""
    import torch

    dev, dtype, done = cfg["device"], torch_dtype(cfg["param_dtype"]), {}
    for module in model.modules():
        if type(module).__name__.endswith("RotaryEmbedding") and any(
            b.is_meta for b in module.buffers()
        ):
            with torch.device(dev):
                fresh = type(module)(config=model.config)
            for name, buf in fresh.named_buffers(recurse=False):
                module._buffers[name] = buf
        for name, p in list(module._parameters.items()):
            if p is None or not p.is_meta:
                continue
            if id(p) not in done:
                data = (
                    torch.ones(p.shape, dtype=dtype, device=dev)
                    if p.dim() == 1
                    else torch.randn(p.shape, dtype=dtype, device=dev) * 0.02
                )
                done[id(p)] = torch.nn.Parameter(data, requires_grad=p.requires_grad)
            module._parameters[name] = done[id(p)]
    left = [n for n, t in [*model.named_parameters(), *model.named_buffers()] if t.is_meta]
    assert not left, f"meta tensors left: {left[:5]}"


def build_qlora_base(cfg: dict):
    import torch
    from transformers import AutoModelForCausalLM

    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(
            hf_config(cfg), dtype=torch_dtype(cfg["param_dtype"]), attn_implementation=cfg["attn"]
        )
    for layer in model.model.layers:
        for name, child in list(layer.named_modules()):
            if isinstance(child, torch.nn.Linear):
                parent_name, _, attr = name.rpartition(".")
                setattr(layer.get_submodule(parent_name), attr, quantized_linear(child, cfg))
    materialise_meta(model, cfg)
    model.is_loaded_in_4bit = True
    return model


def attach_lora(model, cfg: dict):
    from peft import LoraConfig, get_peft_model

    targets = cfg["lora_targets"]
    targets = targets if targets == "all-linear" else targets.split(",")
    lcfg = LoraConfig(
        r=cfg["lora_r"],
        lora_alpha=2 * cfg["lora_r"],
        lora_dropout=cfg.get("lora_dropout", 0.0),
        target_modules=targets,
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, lcfg)


def enable_ckpt(model) -> None:
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})


def build_model(cfg: dict):
    if cfg["method"] == "qlora":
        from peft import prepare_model_for_kbit_training

        model = build_qlora_base(cfg)
        model = prepare_model_for_kbit_training(
            model,
            use_gradient_checkpointing=cfg["grad_ckpt"],
            gradient_checkpointing_kwargs={"use_reentrant": False},
        )
        return attach_lora(model, cfg)
    model = build_plain(cfg)
    if cfg["grad_ckpt"]:
        enable_ckpt(model)
    if cfg["method"] in FTUI_METHODS:
        return attach_with_ftui(model, cfg)
    return model if cfg["method"] == "full" else attach_lora(model, cfg)


def attach_with_ftui(model, cfg: dict):
    """Freeze, IA3, prefix/prompt tuning, LLaMA-Adapter, bottleneck: ftui's translator."""
    sys.path.insert(0, str(ROOT))
    from ftui.config import FtuiConfig
    from ftui.translate import apply_method

    config = FtuiConfig()
    config.method.name = cfg["method"]
    config.train.gradient_checkpointing = cfg["grad_ckpt"]
    return apply_method(model, config)


def count_params(model) -> tuple[int, int]:
    total = trainable = 0
    for p in model.parameters():
        n = p.numel() * (2 if type(p).__name__ == "Params4bit" else 1)
        total += n
        trainable += n if p.requires_grad else 0
    return trainable, total


def one_step(model, opt, batch, autocast) -> None:
    with autocast():
        loss = model(input_ids=batch, labels=batch).loss
    loss.backward()
    opt.step()
    opt.zero_grad(set_to_none=True)


def sync(device: str) -> None:
    import torch

    if device == "cuda":
        torch.cuda.synchronize()


def run_steps(model, cfg: dict, res: dict) -> None:
    import contextlib

    import torch

    dev = cfg["device"]
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-5)
    vocab = ARCHS[cfg["arch"]]["vocab_size"]
    batch = torch.randint(0, vocab, (cfg["batch_size"], cfg["seq_len"]), device=dev)
    mixed = cfg["method"] == "full" and cfg["param_dtype"] == "fp32" and dev == "cuda"
    autocast = (
        (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if mixed else contextlib.nullcontext
    )
    model.train()
    times = []
    for _ in range(STEPS):
        t0 = time.perf_counter()
        one_step(model, opt, batch, autocast)
        sync(dev)
        times.append(time.perf_counter() - t0)
        res["steps_done"] = len(times)
    res["step_seconds"] = round(statistics.median(times[1:]), 4)
    res["step_seconds_all"] = [round(t, 4) for t in times]
    res["autocast_bf16"] = mixed
    states = [
        t for s in opt.state.values() for t in s.values() if torch.is_tensor(t) and t.dim() > 0
    ]
    res["optim_state_dtype"] = str(states[0].dtype).replace("torch.", "") if states else None


def measure_load(cfg: dict, res: dict, base: int):
    import torch

    model = build_model(cfg)
    res["trainable_params"], res["total_params"] = count_params(model)
    if cfg["device"] == "cuda":
        sync("cuda")
        res["after_load_bytes"] = torch.cuda.memory_allocated()
        res["load_peak_bytes"] = torch.cuda.max_memory_allocated()
        torch.cuda.reset_peak_memory_stats()
    else:
        res["after_load_bytes"] = rss_bytes() - base
        res["load_peak_bytes"] = maxrss_bytes() - base
    return model


def finish_measure(cfg: dict, res: dict, base: int) -> None:
    import torch

    if cfg["device"] == "cuda":
        res["step_peak_bytes"] = torch.cuda.max_memory_allocated()
        res["peak_reserved_bytes"] = torch.cuda.max_memory_reserved()
        res["peak_allocated_bytes"] = max(res["step_peak_bytes"], res.get("load_peak_bytes", 0))
    else:
        peak = maxrss_bytes() - base
        res["peak_allocated_bytes"] = peak
        res["step_peak_bytes"] = peak if res.get("steps_done") else None
        res["peak_reserved_bytes"] = None


def run_one(cfg: dict) -> dict:
    import peft  # noqa: F401  (imports count towards the CPU baseline)
    import torch
    import transformers.models.llama.modeling_llama  # noqa: F401

    if cfg["method"] == "qlora":
        import bitsandbytes  # noqa: F401

    torch.manual_seed(0)
    base = maxrss_bytes() if cfg["device"] == "cpu" else 0
    res: dict = {"oom": False, "error": None, "steps_done": 0}
    t0 = time.perf_counter()
    try:
        model = measure_load(cfg, res, base)
        res["load_seconds"] = round(time.perf_counter() - t0, 2)
        run_steps(model, cfg, res)
    except torch.OutOfMemoryError as exc:
        res["oom"], res["error"] = True, str(exc).splitlines()[0][:300]
    finish_measure(cfg, res, base)
    res["cpu_baseline_rss_bytes"] = base or None
    return res


# ----------------------------------------------------------------------------- parent side


def versions() -> dict:
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for pkg in ("torch", "transformers", "peft", "bitsandbytes", "accelerate"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            out[pkg] = None
    return out


def device_name(device: str) -> str:
    if device != "cuda":
        return f"cpu ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)"
    import torch

    props = torch.cuda.get_device_properties(0)
    return f"{torch.cuda.get_device_name(0)} ({props.total_memory / 2**30:.1f} GiB)"


def device_tag(device: str) -> str:
    if device != "cuda":
        return "cpu"
    import torch

    name = torch.cuda.get_device_name(0).lower()
    return next((tag for tag in ("h100", "h200", "a100", "l4", "a10") if tag in name), "cuda")


def spawn(cfg: dict, timeout: float) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--one", json.dumps(cfg)]
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timeout after {timeout:.0f}s", "oom": False}
    wall = round(time.perf_counter() - t0, 1)
    for line in proc.stdout.splitlines():
        if line.startswith(MARKER):
            return {**json.loads(line[len(MARKER) :]), "wall_seconds": wall}
    tail = (proc.stderr or proc.stdout)[-1500:]
    return {
        "error": f"exit {proc.returncode}: {tail}",
        "oom": "out of memory" in tail.lower(),
        "wall_seconds": wall,
    }


def gb(n) -> str:
    return f"{n / 1e9:6.2f}" if isinstance(n, int) else "   -  "


def describe(cfg: dict) -> str:
    m = cfg["method"]
    if m != "full":
        m += f" r{cfg['lora_r']} {cfg['lora_targets']}"
    if cfg["method"] == "qlora":
        m += " dq" if cfg["double_quant"] else " nodq"
    ck = " ckpt" if cfg["grad_ckpt"] else ""
    return f"{cfg['arch']} {m} {cfg['param_dtype']} b{cfg['batch_size']} s{cfg['seq_len']}{ck}"


def report(cfg: dict, res: dict) -> None:
    flag = " OOM" if res.get("oom") else (" ERROR" if res.get("error") else "")
    print(
        f"{describe(cfg):70s} peak {gb(res.get('peak_allocated_bytes'))} GB  "
        f"load {gb(res.get('after_load_bytes'))} GB  step {res.get('step_seconds')}s{flag}",
        flush=True,
    )
    if res.get("error") and not res.get("oom"):
        print("   ", res["error"][-600:], flush=True)


def write(out: Path, header: dict, rows: list[dict]) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"header": header, "rows": rows}, indent=1) + "\n")


def key(cfg: dict) -> str:
    return json.dumps({k: cfg.get(k) for k in CONFIG_KEYS}, sort_keys=True)


def load_done(out: Path) -> list[dict]:
    if not out.exists():
        return []
    return [r for r in json.loads(out.read_text())["rows"] if not r.get("error") or r.get("oom")]


def run_grid(args) -> None:
    grid = build_grid(args.grid, args.device)
    if args.only_arch:
        grid = [c for c in grid if c["arch"] in args.only_arch.split(",")]
    out = Path(args.out) if args.out else RESULTS / f"memory_grid_{device_tag(args.device)}.json"
    rows = load_done(out) if args.resume else []
    done = {key(r) for r in rows}
    header = {
        "device": device_name(args.device),
        "versions": versions(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "steps": STEPS,
        "notes": __doc__.split("\n\n")[2:5],
    }
    started = time.perf_counter()
    for cfg in grid:
        if key(cfg) in done:
            continue
        left = args.budget_seconds - (time.perf_counter() - started)
        if left < 20:
            print(f"budget spent, skipping {describe(cfg)}", flush=True)
            continue
        res = spawn(cfg, timeout=min(args.row_timeout, left))
        rows.append({**cfg, **res})
        report(cfg, res)
        write(out, header, rows)
    print(f"wrote {out} ({len(rows)} rows)", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    ap.add_argument("--grid", choices=("gpu", "cpu", "accuracy", "quick"), default="quick")
    ap.add_argument(
        "--out", help="JSON path (default benchmarks/results/memory_grid_<device-tag>.json)"
    )
    ap.add_argument("--only-arch", help="comma-separated architecture names to keep")
    ap.add_argument(
        "--resume", action="store_true", help="keep rows already in --out and skip them"
    )
    ap.add_argument(
        "--budget-seconds", type=float, default=1e9, help="stop starting rows after this"
    )
    ap.add_argument("--row-timeout", type=float, default=300.0)
    ap.add_argument("--one", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(MARKER + json.dumps(run_one(json.loads(args.one))), flush=True)
        return
    run_grid(args)


if __name__ == "__main__":
    main()
