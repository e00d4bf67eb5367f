"""Data tab: upload or pick a dataset, see its format, rows, a rendered example and statistics.

Layout pieces, then wiring. The work is done by `ftui.data.preview`; this module turns its
plain values into component updates. Every callback returns a readable message instead of
raising. The settings (format, max length, validation share) are built from their config
fields by `ftui.ui.widgets`: labels, help and slider ranges are declared there, not here.

Each browser session keeps a `PreviewSample` (the first rows and examples, bounded) between
clicks, never the whole dataset; text from the user goes into Markdown through
`markdown_literal`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import gradio as gr

from ftui.config import field_spec
from ftui.data.layouts import FORMAT_ROLES
from ftui.data.preview import (
    DatasetPreview,
    PreviewSample,
    example_segments,
    load_preview,
    preview_page,
    status_markdown,
)
from ftui.data.reading import SUPPORTED_EXTENSIONS
from ftui.data.tokens import BAD_ANSWER, TRAINED, WEIGHT_ZERO
from ftui.markup import markdown_literal
from ftui.models import (
    ModelLoadError,
    is_bundled_model_ready,
    load_tokenizer,
    prepare_bundled_model,
)
from ftui.presets import SAMPLES_DIR
from ftui.server.demo import DemoRefusal, check_dataset_source
from ftui.server.settings import ServerSettings
from ftui.ui.widgets import config_widget, element_id

SAMPLES = {
    "Support-ticket triage (instruction, JSON out)": "triage/train.jsonl",
    "Product manual corpus (raw text, domain adaptation)": "domain/corpus.txt",
    "Support reply preferences (DPO pairs)": "preferences/pairs.jsonl",
}
ALL_ROLES = sorted({role for req, opt in FORMAT_ROLES.values() for role in (*req, *opt)})
AUTO = "(auto)"
EXAMPLE_COLORS = {  # the labels of ftui.data.tokens.highlighted_tokens
    TRAINED: "green",
    BAD_ANSWER: "orange",
    WEIGHT_ZERO: "gray",
    "cut": "red",
    "error": "red",
}
PAGE_SIZE = 10


@dataclass
class DataTab:
    dataset: gr.State  # plain dict the other tabs read: source, format, columns, rows, ok
    status: gr.Markdown


@dataclass
class SourcePicker:
    upload: gr.File
    sample: gr.Dropdown
    source: gr.Textbox  # what is analysed: a workspace path or a Hub id
    load: gr.Button


@dataclass
class DataSettings:
    """The config settings the preview depends on, and the column mapping."""

    format: gr.Dropdown
    max_length: gr.Slider
    validation: gr.Slider
    mapping_box: gr.Accordion
    mapping: list[gr.Dropdown]  # one per role of ALL_ROLES


@dataclass
class PreviewPanes:
    table: gr.Dataframe
    page: gr.Number
    pages: gr.Markdown
    example_index: gr.Number
    example: gr.HighlightedText
    histogram: gr.BarPlot


def build_data_tab(settings: ServerSettings, model_box: gr.Textbox) -> DataTab:
    dataset = gr.State({})
    preview_state = gr.State(None)  # a PreviewSample: bounded, whatever the dataset's size
    picker = _layout_source_picker()
    status = gr.Markdown("Upload a file or pick a sample to begin.", elem_id="data-status")
    choices = _layout_settings()
    panes = _layout_preview_panes()
    tab = DataTab(dataset, status)
    _wire_analysis(settings, model_box, tab, picker, choices, panes, preview_state)
    _wire_browsing(panes, preview_state, model_box)
    return tab


# ---------------------------------------------------------------- layout pieces


def _layout_source_picker() -> SourcePicker:
    with gr.Row():
        upload = gr.File(
            label=f"Upload a dataset ({', '.join(SUPPORTED_EXTENSIONS)})",
            file_types=list(SUPPORTED_EXTENSIONS),
            elem_id="data-upload",
        )
        with gr.Column():
            sample = gr.Dropdown(list(SAMPLES), label="Or try a sample", value=None)
            source = gr.Textbox(
                label="Dataset: a path in the workspace, or a Hub dataset id",
                placeholder="uploads/my.jsonl or owner/dataset",
                elem_id="data-source",
            )
            load = gr.Button("Load")
    return SourcePicker(upload, sample, source, load)


def _layout_settings() -> DataSettings:
    with gr.Row():
        fmt = _setting_widget("data.format")
        max_length = _setting_widget("data.max_length")
        validation = _setting_widget("data.validation_fraction")
    with gr.Accordion("Column mapping", open=False) as mapping_box:
        gr.Markdown(field_spec("data.columns").help)
        with gr.Row():
            mapping = [
                gr.Dropdown([AUTO], value=AUTO, label=role, visible=False) for role in ALL_ROLES
            ]
    return DataSettings(fmt, max_length, validation, mapping_box, mapping)


def _setting_widget(key: str) -> gr.components.Component:
    return config_widget(key, elem_id=element_id("data", key))


def _layout_preview_panes() -> PreviewPanes:
    with gr.Tabs():
        with gr.Tab("Preview"):
            # hidden until a dataset fills it: an empty Dataframe is headed "1 2 3"
            table = gr.Dataframe(
                elem_id="data-preview", wrap=True, max_height=420, max_chars=160, visible=False
            )
            with gr.Row():
                page = gr.Number(1, label="Page", precision=0, minimum=1)
                pages = gr.Markdown("")
        with gr.Tab("Example as the model sees it"):
            gr.Markdown(
                "Highlighted tokens carry the training loss (a KTO answer labelled false is "
                "a *bad answer*, trained to be less likely); turns with weight 0 and the rest "
                "are context."
            )
            example_index = gr.Number(1, label="Example #", precision=0, minimum=1)
            example = gr.HighlightedText(
                color_map=EXAMPLE_COLORS,
                show_legend=True,
                elem_id="data-example",
                label="Rendered with the model's chat template",
            )
        with gr.Tab("Statistics"):
            histogram = gr.BarPlot(
                x="tokens",
                y="rows",
                color="fits",
                elem_id="data-histogram",
                title="Token length per example",
                x_label_angle=-45,
            )
    return PreviewPanes(table, page, pages, example_index, example, histogram)


# ---------------------------------------------------------------- wiring


def _wire_analysis(
    settings: ServerSettings,
    model_box: gr.Textbox,
    tab: DataTab,
    picker: SourcePicker,
    choices: DataSettings,
    panes: PreviewPanes,
    preview_state: gr.State,
) -> None:
    """A new source is analysed from detection; a changed setting re-analyses the same one.
    The inputs' order is the `analyse` and `reanalyse` API's parameter order."""
    inputs = [picker.source, model_box, choices.format, choices.max_length, choices.validation]
    inputs += choices.mapping
    outputs = [
        tab.status, panes.table, panes.pages, panes.example, panes.histogram, tab.dataset,
        preview_state, panes.page, panes.example_index, choices.format, choices.mapping_box,
        *choices.mapping,
    ]  # fmt: skip

    def analyse(src, model, fmt, max_len, val_frac, *mapped):
        mapping = dict(zip(ALL_ROLES, mapped, strict=True))
        return _render(*_run_preview(settings, src, model, fmt, max_len, val_frac, mapping))

    def analyse_new_source(src, model, _fmt, max_len, val_frac, *_mapped):
        """A new file starts from detection: earlier format and mapping do not apply."""
        return _render(*_run_preview(settings, src, model, "auto", max_len, val_frac, {}))

    def from_upload(file):
        return _store_upload(settings, file)

    fresh = {"fn": analyse_new_source, "inputs": inputs, "outputs": outputs}
    picker.upload.upload(from_upload, picker.upload, [picker.source, picker.upload]).then(**fresh)
    picker.sample.input(_sample_path, picker.sample, picker.source).then(**fresh)
    picker.load.click(api_name="analyse", **fresh)
    picker.source.submit(**fresh)
    model_box.submit(**fresh)
    choices.format.input(analyse, inputs, outputs, api_name="reanalyse")
    for control in (choices.max_length, choices.validation, *choices.mapping):
        control.input(analyse, inputs, outputs)


def _wire_browsing(panes: PreviewPanes, preview_state: gr.State, model_box: gr.Textbox) -> None:
    """Paging and the example number read the session's sample, not the dataset."""
    panes.page.input(_page, [preview_state, panes.page], [panes.table, panes.pages])
    example_inputs = [preview_state, model_box, panes.example_index]
    panes.example_index.input(_example, example_inputs, panes.example)


# ---------------------------------------------------------------- callbacks


def _store_upload(settings: ServerSettings, file: str | None):
    """Keep the upload in the workspace; clear the widget so another file can follow."""
    if not file:
        return gr.skip(), gr.skip()
    if os.path.getsize(file) > settings.max_upload_bytes:  # Gradio checks too; be sure
        gr.Warning(f"Over this server's upload limit of {settings.max_upload_bytes >> 20} MB.")
        return gr.skip(), None
    stored = settings.workspace.store_upload(file)
    return str(stored.relative_to(settings.workspace.root)), None


def _sample_path(name: str | None):
    return str(SAMPLES_DIR / SAMPLES[name]) if name else gr.skip()


def _run_preview(settings, source, model, fmt, max_len, val_frac, mapped):
    source = (source or "").strip()
    if not source:
        return None, None, "Upload a file or pick a sample to begin."
    in_workspace = settings.workspace.root / source
    if not Path(source).is_absolute() and in_workspace.exists():
        source = str(in_workspace)
    try:
        check_dataset_source(source, settings.demo)  # demo mode: no Hub downloads
    except DemoRefusal as exc:
        return None, None, f"**Cannot load:** {markdown_literal(exc)}"
    tokenizer, note = None, ""
    try:
        if (model or "default") == "default" and not is_bundled_model_ready():
            gr.Info("Preparing the bundled model once (about 30 s on a small CPU)...")
            prepare_bundled_model()
        tokenizer = load_tokenizer(model or "default")
    except ModelLoadError as exc:
        note = f"**Warning:** no token statistics: {markdown_literal(exc)}"
    roles = set(sum(FORMAT_ROLES[fmt], ())) if fmt in FORMAT_ROLES else set(mapped)
    columns = {role: col for role, col in mapped.items() if role in roles and col != AUTO}
    preview = load_preview(
        source,
        tokenizer=tokenizer,
        format=fmt,
        columns=columns,
        max_length=int(max_len),
        validation_fraction=float(val_frac),
        max_bytes=settings.max_upload_bytes,
        allowed_roots=[settings.workspace.root, SAMPLES_DIR],
    )
    return preview, tokenizer, note


def _render(preview: DatasetPreview | None, tokenizer, note: str):
    mapping_updates = _mapping_updates(preview)
    if preview is None:
        return (
            note,
            gr.update(value=None, visible=False),
            "",
            None,
            None,
            {},
            None,
            1,
            1,
            gr.Dropdown(),
            gr.Accordion(),
            *mapping_updates,
        )
    sample = preview.sample()
    table, pages_text = _page(sample, 1)
    segments = example_segments(sample, tokenizer, 1) if tokenizer else None
    text = "\n\n".join(filter(None, [status_markdown(preview), note]))
    report = preview.report
    dataset = {
        "source": preview.source,
        "format": report.format,
        "columns": report.columns,
        "rows": report.rows,
        "ok": report.ok,
        "max_length": preview.max_length,
        "validation_fraction": preview.validation_fraction,
    }
    histogram = preview.histogram()
    plot = gr.BarPlot(value=histogram if len(histogram) else None, sort=list(histogram["tokens"]))
    unsure = report.format is None or not report.confident
    fmt = report.format or "auto"
    return (
        text,
        table,
        pages_text,
        segments,
        plot,
        dataset,
        sample,
        1,
        1,
        gr.Dropdown(value=fmt),
        gr.Accordion(open=unsure),
        *mapping_updates,
    )


def _mapping_updates(preview: DatasetPreview | None) -> list:
    if preview is None or preview.frame.empty:
        return [gr.Dropdown(visible=False) for _ in ALL_ROLES]
    columns = [AUTO, *map(str, preview.frame.columns)]
    fmt = preview.report.format
    shown = set(sum(FORMAT_ROLES[fmt], ())) if fmt else set(ALL_ROLES)
    chosen = preview.report.columns
    return [
        gr.Dropdown(choices=columns, value=chosen.get(role, AUTO), visible=role in shown)
        for role in ALL_ROLES
    ]


def _page(sample: PreviewSample | None, page: float):
    """The preview table's page (hidden when there are no rows) and the pages text."""
    if sample is None or sample.rows.empty:
        return gr.update(value=None, visible=False), ""
    table, page_count = preview_page(sample.rows, int(page or 1), PAGE_SIZE)
    shown = gr.update(value=table, visible=True)
    if sample.total_rows > len(sample.rows):
        return (
            shown,
            f"of {page_count} pages: the first {len(sample.rows)} of {sample.total_rows:,} rows",
        )
    return shown, f"of {page_count} pages"


def _example(sample: PreviewSample | None, model: str, index: float):
    if sample is None or not sample.examples:
        return None
    try:
        tokenizer = load_tokenizer(model or "default")
    except ModelLoadError:
        return None
    return example_segments(sample, tokenizer, int(index or 1))
