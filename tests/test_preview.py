"""The Data tab's plain functions (preview, paging, example rendering, status text), and its
settings widgets made from their config fields."""

from __future__ import annotations

import json

from conftest import SAMPLES

from ftui.data.preview import example_segments, load_preview, preview_page, status_markdown


def test_triage_sample_preview(tokenizer):
    preview = load_preview(
        str(SAMPLES / "triage" / "train.jsonl"),
        tokenizer=tokenizer,
        max_length=128,
        validation_fraction=0.2,
    )
    assert preview.ok and preview.report.format == "alpaca"
    assert (preview.train_rows, preview.validation_rows) == (240, 60)
    assert len(preview.lengths) == 300
    stats = preview.length_stats()
    assert stats["truncated"] == sum(1 for n in preview.lengths if n > 128) > 0
    assert "format **alpaca**" in status_markdown(preview)
    assert "would be truncated" in status_markdown(preview)
    segments = example_segments(preview, tokenizer, 1)
    trained = "".join(text for text, label in segments if label == "trained")
    assert trained.startswith('{"category": ')


def test_paging_shows_ten_rows_and_json_for_nested_values(tokenizer, tmp_path):
    path = tmp_path / "chat.jsonl"
    messages = [
        [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": f"a{i}"}]
        for i in range(23)
    ]
    rows = [json.dumps({"messages": m}) for m in messages]
    path.write_text("\n".join(rows) + "\n")
    preview = load_preview(str(path), tokenizer=tokenizer)
    first, pages = preview_page(preview.frame, 1)
    assert pages == 3 and len(first) == 10 and first["#"].tolist()[0] == 1
    last, _ = preview_page(preview.frame, 99)
    assert len(last) == 3 and last["#"].tolist() == [21, 22, 23]
    assert '"content": "q20"' in last["messages"].iloc[0]


def test_empty_rows_are_counted_but_not_measured(tokenizer, tmp_path):
    path = tmp_path / "with_blank.csv"
    path.write_text("instruction,output\nhello,world\n,\nbye,now\n")
    preview = load_preview(str(path), tokenizer=tokenizer)
    assert preview.report.empty_rows == 1
    assert len(preview.examples) == len(preview.lengths) == 2


def test_bad_file_gives_a_report_not_an_exception(tokenizer, tmp_path):
    path = tmp_path / "broken.jsonl"
    path.write_text('{"instruction": "a", "output": "b"}\n{"oops": \n')
    preview = load_preview(str(path), tokenizer=tokenizer)
    assert not preview.ok
    text = status_markdown(preview)
    assert "cannot be used" in text and "line 2" in text


def test_paths_outside_the_allowed_roots_are_refused(tokenizer, tmp_path):
    outside = tmp_path / "elsewhere.jsonl"
    outside.write_text('{"instruction": "a", "output": "b"}\n')
    root = tmp_path / "workspace"
    root.mkdir()
    preview = load_preview(
        str(root / ".." / "elsewhere.jsonl"), tokenizer=tokenizer, allowed_roots=[root]
    )
    assert not preview.ok and "outside" in status_markdown(preview)


def test_the_data_tab_settings_are_made_from_their_fields(tmp_path):
    import gradio as gr

    from ftui.config import field_spec
    from ftui.server.settings import ServerSettings
    from ftui.ui.data_tab import build_data_tab
    from ftui.ui.widgets import element_id
    from ftui.workspace import Workspace

    settings = ServerSettings(workspace=Workspace.open(tmp_path / "workspace"))
    with gr.Blocks() as blocks:
        build_data_tab(settings, gr.Textbox("default"))
    by_id = {block.elem_id: block for block in blocks.blocks.values() if block.elem_id}
    for key in ("data.format", "data.max_length", "data.validation_fraction"):
        spec, widget = field_spec(key), by_id[element_id("data", key)]
        assert (widget.label, widget.info, widget.value) == (spec.label, spec.help, spec.default)
        if spec.slider is not None:
            assert (widget.minimum, widget.maximum, widget.step) == spec.slider, key
