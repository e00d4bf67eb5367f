"""benchmarks/gpu_trainer.py, the GPU benchmark of issue 11, tried here on CPU.

`--smoke` runs the script's whole path (models built and saved, ftui's trainer through
`python -m ftui train`, ftui's estimate, the plain transformers Trainer, the table) on a
2-layer Llama; the GPU rows' architectures are checked against the published parameter counts
on the meta device; the table's arithmetic and merging, and a child over its time limit, are
checked directly.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO_ROOT

from ftui.runs.rundir import RunDir

SCRIPT = REPO_ROOT / "benchmarks" / "gpu_trainer.py"
STEPS = 3


def load_script():
    spec = importlib.util.spec_from_file_location("gpu_trainer", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_trainer"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def smoke_table(tmp_path_factory) -> dict:
    tmp = tmp_path_factory.mktemp("gpu-trainer")
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--smoke", "--steps", str(STEPS),
         "--results-dir", str(tmp / "results"), "--scratch", str(tmp / "scratch")],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return json.loads((tmp / "results" / "gpu_trainer_smoke-cpu.json").read_text())


@pytest.mark.slow
def test_smoke_run_records_peak_speed_estimate_and_baseline_per_row(smoke_table):
    assert smoke_table["gpu"]["name"] == "cpu"
    assert all(smoke_table["versions"][name] for name in ("torch", "transformers", "trl", "peft"))
    assert [row["name"] for row in smoke_table["rows"]] == ["smoke-lora", "smoke-qlora"]
    for row in smoke_table["rows"]:
        ftui, baseline, summary = row["ftui"], row["baseline"], row["summary"]
        assert "error" not in ftui and "error" not in baseline, row
        for part in (ftui, baseline):
            assert part["peak_allocated_bytes"] > 100e6  # a process's peak RSS on CPU
            assert len(part["step_seconds"]) == STEPS
            assert part["tokens_per_second"] == pytest.approx(
                row["batch_size"] * row["tokens"] / part["seconds_per_step"], rel=1e-3
            )
        assert row["estimate"]["peak_memory_bytes"] > 0 and row["estimate"]["components"]
        measured, predicted = ftui["peak_allocated_bytes"], row["estimate"]["peak_memory_bytes"]
        assert summary["estimate_error"] == pytest.approx(predicted / measured - 1, abs=1e-4)
        ratio = ftui["tokens_per_second"] / baseline["tokens_per_second"]
        assert summary["throughput_ratio"] == pytest.approx(ratio, rel=1e-2)
    assert smoke_table["summary"]["rows_measured"] == 2


@pytest.mark.slow
def test_smoke_rows_trained_through_ftuis_own_run_folders(smoke_table):
    """The ftui part is a real `ftui train` run of the row's config on the built model."""
    for row in smoke_table["rows"]:
        run = RunDir(Path(row["ftui"]["run_folder"]))
        assert run.read_status()["state"] == "completed"
        assert (run.adapter / "adapter_config.json").is_file()
        config = run.read_config()
        assert config.method.name == row["method"] and config.model.device == "cpu"
        assert (config.data.max_length, config.train.batch_size) == (
            row["tokens"],
            row["batch_size"],
        )
        model = Path(config.model.name_or_path)
        built = json.loads((model / "config.json").read_text())
        assert (built["num_hidden_layers"], built["hidden_size"], built["vocab_size"]) == (
            2, 64, 1024,
        )  # fmt: skip
        assert [m["step"] for m in run.read_metrics() if "loss" in m] == list(range(1, STEPS + 1))


def test_gpu_rows_have_the_published_llama_architectures():
    """Parameter counts of meta-llama/Llama-3.1-8B and Llama-3.2-3B, from the script's shapes."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    script = load_script()
    published = {"llama-3.1-8b": 8_030_261_248, "llama-3.2-3b": 3_212_749_824}
    for shape, count in published.items():
        with torch.device("meta"):
            model = LlamaForCausalLM(LlamaConfig(**script.SHAPES[shape]))
        assert sum(p.numel() for p in model.parameters()) == count, shape
    rows = {row.name: row for row in script.ROWS}
    assert (rows["8b-qlora-28k"].tokens, rows["8b-qlora-28k"].lora_r) == (28454, 32)
    assert {name: row.published_gb for name, row in rows.items()} == {
        "8b-lora": 17.4, "8b-qlora": 7.95, "3b-lora": 9.1, "3b-qlora": 4.9, "8b-qlora-28k": 40.0,
    }  # fmt: skip


def test_table_reads_errors_and_ratios_and_keeps_rows_of_earlier_runs(tmp_path):
    script = load_script()
    row = next(r for r in script.ROWS if r.name == "8b-qlora")  # 2 x 2048 tokens a step
    entry = {
        "name": row.name,
        "estimate": {"peak_memory_bytes": 7.2e9, "tokens_per_second": 4000.0},
        "ftui": {"peak_allocated_bytes": 8.0e9, "step_seconds": [9.0, 1.0, 1.0, 2.0]},
        "baseline": {"peak_allocated_bytes": 9.0e9, "step_seconds": [9.0, 2.0, 2.0, 2.0]},
    }
    earlier = {"name": "8b-lora", "ftui": {"error": "out of memory"}}
    path = tmp_path / "table.json"
    script.save_table(path, {"rows": [entry, earlier]}, script.ROWS)
    table = json.loads(path.read_text())
    assert [r["name"] for r in table["rows"]] == ["8b-lora", "8b-qlora"]  # the catalog's order
    measured = table["rows"][1]
    assert measured["ftui"]["tokens_per_second"] == 4096.0  # median of the steps after the first
    assert measured["summary"] == {
        "estimate_error": -0.1, "measured_gb": 8.0, "within_published": False,
        "speed_estimate_error": pytest.approx(-0.0234, abs=1e-4), "throughput_ratio": 2.0,
    }  # fmt: skip
    assert table["rows"][0]["summary"] == {}  # a failed part has no figures
    assert table["summary"]["rows_above_published"] == ["8b-qlora"]
    assert table["summary"]["not_measured"][:3] == [
        "8b-lora ftui",
        "8b-lora baseline",
        "3b-lora ftui",
    ]
    prepared = {"environment": {"gpu": {"name": "X"}, "versions": {}}, "tokenizer": "t",
                "models": {}}  # fmt: skip
    args = script.parse_args(["--rows", "3b-lora"])
    reopened = script.open_table(path, prepared, args)
    assert [r["name"] for r in reopened["rows"]] == ["8b-lora", "8b-qlora"]


def test_rows_named_wrongly_are_refused_and_the_plan_names_each_row(capsys):
    script = load_script()
    plan = script.plan(script.parse_args(["--rows", "8b-qlora,8b-qlora-28k", "--parts", "ftui"]))
    assert "row 8b-qlora: llama-3.1-8b qlora r8, 2 x 2048 tokens" in plan
    assert "row 8b-qlora-28k: llama-3.1-8b qlora r32, 1 x 28454 tokens" in plan
    assert "3b-lora" not in plan and "parts ftui," in plan
    with pytest.raises(SystemExit):
        script.parse_args(["--rows", "8b-lora,70b"])
    assert "unknown rows ['70b']" in capsys.readouterr().err


@pytest.mark.slow
def test_a_child_over_its_time_limit_is_a_result_not_a_hang(tmp_path, monkeypatch):
    script = load_script()
    sleeper = tmp_path / "sleeper.py"
    sleeper.write_text("import time\nprint('started', flush=True)\ntime.sleep(60)\n")
    monkeypatch.setattr(script, "CHILD", sleeper)
    started = time.monotonic()
    result = script.run_child([], timeout=2, log=tmp_path / "child.log")
    assert time.monotonic() - started < 20
    assert result["exit_code"] != 0
    assert result["error"].startswith("timed out after 2 s") and "started" in result["error"]
