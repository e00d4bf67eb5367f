"""The Data tab's choices reach the run, and the README lists every layout ftui reads.

The app is built as `ftui serve` builds it; its `analyse` and `preview_run` handlers are called
as Gradio calls them for a browser, with the validation-share slider moved to 0.25.
"""

from __future__ import annotations

import re

import yaml
from conftest import REPO_ROOT, SAMPLES

from ftui.data.layouts import FORMATS, LAYOUT_EXAMPLES
from ftui.server.demo import DemoLimits
from ftui.server.settings import ServerSettings
from ftui.ui.run_config import CURRENT_SELECTION
from ftui.workspace import Workspace


def handler(blocks, api_name: str):
    return next(fn for fn in blocks.fns.values() if fn.api_name == api_name)


def test_the_validation_slider_reaches_the_runs_config(tmp_path, tokenizer):
    from ftui.ui.app import build_app
    from ftui.ui.data_tab import ALL_ROLES, AUTO

    settings = ServerSettings(Workspace.open(tmp_path / "workspace"), demo=DemoLimits())
    blocks = build_app(settings)
    analyse = handler(blocks, "analyse")
    source = str(SAMPLES / "triage" / "train.jsonl")
    outputs = analyse.fn(source, "default", "auto", 256, 0.25, *[AUTO] * len(ALL_ROLES))
    dataset_state = analyse.outputs[5]
    dataset = outputs[5]
    assert dataset["ok"] and dataset["validation_fraction"] == 0.25
    assert "Split: 225 train / 75 validation" in outputs[0]

    preview = handler(blocks, "preview_run")
    values = []
    for block in preview.inputs:
        value = block.value
        if block is dataset_state:
            value = dataset
        elif block is preview.inputs[0]:
            value = CURRENT_SELECTION  # the Train tab starts from the Data tab's choice
        values.append(block.preprocess(value) if hasattr(block, "preprocess") else value)
    message, _, text, _ = preview.fn(*values)
    assert message.startswith("Saved"), message
    assert yaml.safe_load(text)["data"]["validation_fraction"] == 0.25


def test_the_readme_has_a_table_row_with_an_example_for_every_layout():
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Data layouts", 1)[1].split("\n## ", 1)[0]
    rows = {
        match.group(1): match.group(2)
        for match in re.finditer(r"^\| `(\w+)` \|.*?\| `(\{.*\})` \|$", section, re.MULTILINE)
    }
    assert set(rows) == set(FORMATS), rows
    for fmt in FORMATS:
        assert rows[fmt] == LAYOUT_EXAMPLES[fmt]
