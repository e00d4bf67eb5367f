"""Every shipped preset loads strictly and points at data that exists; the sample data is
exactly what scripts/make_samples.py writes, and the triage labels are well formed."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from ftui.config import load_config

ROOT = Path(__file__).resolve().parent.parent
PRESETS = sorted((ROOT / "presets").glob("*.yaml"))
DATA = ROOT / "presets" / "data"
TRIAGE_TRAIN = DATA / "triage" / "train.jsonl"
TRIAGE_VALIDATION = DATA / "triage" / "validation.jsonl"
CATEGORIES = {"billing", "technical", "account", "shipping", "other"}
PRIORITIES = {"low", "medium", "high"}


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_presets_exist():
    assert len(PRESETS) >= 3, f"expected at least 3 presets in presets/, found {PRESETS}"


@pytest.mark.parametrize("preset", PRESETS, ids=lambda p: p.name)
def test_preset_loads_and_its_data_exists(preset: Path):
    config = load_config(preset)
    assert config.data.path, "a preset must name its training data"
    for path in filter(None, [config.data.path, config.data.validation_path]):
        assert not Path(path).is_absolute(), f"{path}: paths are relative to the repo root"
        assert (ROOT / path).is_file(), f"{preset.name}: {path} does not exist"


@pytest.mark.parametrize("preset", PRESETS, ids=lambda p: p.name)
def test_preset_header_says_how_to_run_it(preset: Path):
    lines = preset.read_text(encoding="utf-8").splitlines()
    header = []
    for line in lines:
        if not line.startswith("#"):
            break
        header.append(line)
    assert header, f"{preset.name}: start with a comment block saying what it is"
    run = re.compile(rf"# Run: +ftui train presets/{re.escape(preset.name)}$")
    assert any(run.match(line) for line in header), f"{preset.name}: add a '# Run:' line"


@pytest.mark.slow
def test_samples_are_what_the_script_writes(tmp_path: Path):
    script = ROOT / "scripts" / "make_samples.py"
    subprocess.run([sys.executable, str(script), "--out", str(tmp_path)], check=True, cwd=ROOT)
    generated = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    committed = sorted(
        p.relative_to(DATA) for p in DATA.rglob("*") if p.is_file() and p.name != "README.md"
    )
    assert generated == committed
    for relative in generated:
        assert (tmp_path / relative).read_bytes() == (DATA / relative).read_bytes(), (
            f"presets/data/{relative} differs from what scripts/make_samples.py writes; "
            "run the script and commit its output"
        )


def test_triage_outputs_are_exact_json_labels():
    for path in (TRIAGE_TRAIN, TRIAGE_VALIDATION):
        rows = _rows(path)
        assert {row["instruction"] for row in rows} == {rows[0]["instruction"]}
        for row in rows:
            label = json.loads(row["output"])
            assert set(label) == {"category", "priority"}
            assert label["category"] in CATEGORIES and label["priority"] in PRIORITIES
            assert row["output"] == json.dumps(label), "one compact format for every answer"
            assert row["input"].strip()


def test_triage_validation_is_disjoint_from_train():
    train = {row["input"] for row in _rows(TRIAGE_TRAIN)}
    validation = [row["input"] for row in _rows(TRIAGE_VALIDATION)]
    assert len(validation) == len(set(validation))
    assert not train & set(validation)


def test_triage_labels_are_balanced():
    labels = [json.loads(row["output"]) for row in _rows(TRIAGE_TRAIN)]
    categories = Counter(label["category"] for label in labels)
    priorities = Counter(label["priority"] for label in labels)
    assert set(categories) == CATEGORIES and min(categories.values()) >= 30, categories
    assert set(priorities) == PRIORITIES and min(priorities.values()) >= 60, priorities


def test_preference_pairs_differ():
    rows = _rows(DATA / "preferences" / "pairs.jsonl")
    assert len(rows) >= 100
    for row in rows:
        assert set(row) == {"prompt", "chosen", "rejected"}
        assert row["chosen"] != row["rejected"]


SAMPLE_FORMATS = [
    ("triage/train.jsonl", "alpaca"),
    ("triage/validation.jsonl", "alpaca"),
    ("domain/corpus.txt", "text"),
    ("preferences/pairs.jsonl", "preference"),
]


@pytest.mark.parametrize(("relative", "expected"), SAMPLE_FORMATS)
def test_data_check_accepts_each_sample(relative: str, expected: str):
    from ftui.data.check import check_file

    report = check_file(DATA / relative)
    assert report.ok, report.summary_text()
    assert report.format == expected, report.summary_text()
    assert report.rows > 0
