"""Memory of the playground's three-way comparison against the base model alone.

    .venv/bin/python benchmarks/playground_memory.py [--repeats 3]

Each measurement runs in a fresh process and reports peak resident memory (CPU) or peak CUDA
memory above what the process held after importing the same libraries (torch, transformers,
peft, pandas):
    base        load the base model alone (ftui.models.load_model, as the Playground does)
                and answer one prompt greedily through the Playground's generation code
                (ftui.evaluate.compare.Comparison.generate)
    three-way   load the base with a LoRA adapter (Comparison.load, the Playground's path)
                and answer the same prompt as base, few-shot and fine-tuned
The adapter is the triage preset's LoRA (r16, all linear layers), freshly initialised and
saved in a run folder: its memory does not depend on how long it was trained. The ratio must
stay at or below 1.1 (one copy of the base weights serves all three columns).
Results: benchmarks/results/playground_memory.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "playground_memory.json"
QUESTION = [{"role": "user", "content": "Customer: the app says my camera is offline."}]
TARGET_RATIO = 1.1


def _peak_bytes() -> int:
    import resource

    import torch

    if torch.cuda.is_available():
        return int(torch.cuda.max_memory_allocated())
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _import_libraries() -> None:
    """The same libraries in both processes before the floor: torch, transformers, peft and
    pandas/pyarrow (which the app's gradio imports anyway), so only model memory is compared."""
    from ftui.heavy_imports import import_heavy_libraries

    import_heavy_libraries()
    import peft  # noqa: F401

    import ftui.data.training_data  # noqa: F401 - pandas, pyarrow


def measure_base() -> int:
    from ftui.config import load_config
    from ftui.evaluate.compare import Comparison
    from ftui.models import load_model

    _import_libraries()
    floor = _peak_bytes()
    config = load_config(REPO / "presets" / "triage-lora.yaml")
    loaded = load_model(config.model)
    loaded.tokenizer.padding_side = "left"  # as Comparison.load sets it
    # No adapter: base and tuned are the one base model, which the "fine_tuned" variant uses
    # as it is (the "base" variant would switch an adapter off).
    alone = Comparison(config, loaded.tokenizer, loaded.model, loaded.model, [], loaded.device)
    alone.generate([QUESTION], "fine_tuned", max_new_tokens=32)
    return _peak_bytes() - floor


def measure_three_way(run_path: str) -> int:
    from ftui.evaluate.compare import VARIANTS, Comparison
    from ftui.runs.rundir import RunDir

    _import_libraries()
    floor = _peak_bytes()
    compare = Comparison.load(RunDir(Path(run_path)))
    for variant in VARIANTS:
        compare.generate([compare.chat(QUESTION, variant)], variant, max_new_tokens=32)
    return _peak_bytes() - floor


def make_run(folder: Path) -> Path:
    """A run folder holding the triage preset's config and an untrained LoRA adapter."""
    from peft import get_peft_model

    from ftui.config import load_config
    from ftui.models import load_model
    from ftui.runs.rundir import RunDir
    from ftui.translate import peft_config

    config = load_config(REPO / "presets" / "triage-lora.yaml")
    for key in ("path", "validation_path"):  # absolute, so any working directory works
        setattr(config.data, key, str(REPO / getattr(config.data, key)))
    run = RunDir(folder / "run")
    run.write_config(config)
    loaded = load_model(config.model)
    get_peft_model(loaded.model, peft_config(config.method, loaded.model.config)).save_pretrained(
        run.adapter
    )
    return run.path


def _in_fresh_process(kind: str, run_path: Path) -> int:
    code = (
        "import sys; sys.path.insert(0, 'benchmarks'); import playground_memory as m; "
        f"print(m.measure_{kind}({str(run_path)!r}) if {kind!r} == 'three_way' "
        "else m.measure_base())"
    )
    output = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout
    return int(output.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run_path = make_run(Path(tmp))
        base, three = [], []
        for _ in range(args.repeats):  # interleaved, so drift hits both alike
            base.append(_in_fresh_process("base", run_path))
            three.append(_in_fresh_process("three_way", run_path))
    ratio = statistics.median(three) / statistics.median(base)
    result = {
        "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}, CPU only",
        "what": "peak memory above the post-import floor, one fresh process per measurement",
        "base_bytes": base,
        "three_way_bytes": three,
        "ratio_of_medians": round(ratio, 3),
        "target": TARGET_RATIO,
        "passes": ratio <= TARGET_RATIO,
    }
    RESULTS.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"base alone:       {statistics.median(base) / 1e6:8.0f} MB (median of {len(base)})")
    print(f"three-way (LoRA): {statistics.median(three) / 1e6:8.0f} MB")
    print(f"ratio: {ratio:.3f} (target <= {TARGET_RATIO})")


if __name__ == "__main__":
    main()
