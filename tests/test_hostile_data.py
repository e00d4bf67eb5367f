"""Malformed and hostile dataset files: every one is refused with a message that says what to do.

Each case writes its file in the test (no committed binaries) into a real workspace and runs it
through the Data tab's own preview path (`ftui.ui.data_tab._run_preview`: workspace-relative
paths, the upload cap, allowed roots, the bundled tokenizer) and the status text the tab shows.
The message must name the file, say what is wrong and what to do, and carry no traceback. A
sample goes through `ftui data check` in a subprocess (exit code 2). HTML in a dataset is not
refused but neutralised: the status text escapes it and the preview table shows it as text.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import random
import subprocess
import sys
import zipfile

import pandas as pd
import pytest
from conftest import REPO_ROOT

from ftui.data.preview import preview_page, status_markdown
from ftui.server.settings import ServerSettings
from ftui.ui.data_tab import _run_preview
from ftui.workspace import Workspace

CAP = 64 * 1024  # a small upload cap keeps the oversize cases fast


def jsonl(*rows: object) -> bytes:
    return "\n".join(json.dumps(row) for row in rows).encode() + b"\n"


GOOD = {"instruction": "Classify: printer on fire", "output": '{"team": "facilities"}'}
GOOD_LINES = jsonl(GOOD, {**GOOD, "instruction": "Classify: VPN down"})


def chat(*turns: tuple[str, object]) -> dict:
    return {"messages": [{"role": role, "content": content} for role, content in turns]}


def parquet(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer)
    return buffer.getvalue()


def zip_bomb() -> bytes:
    """50 MB of zeros that compress to ~50 KB, named like a dataset."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("train.jsonl", b"\0" * 50_000_000)
    return buffer.getvalue()


def deep(depth: int) -> str:
    return "[" * depth + "]" * depth


GOOD_PARQUET = parquet(pd.DataFrame([GOOD] * 20))

# (id, file name, bytes, what is wrong, what to do) — both phrases must be in the message.
CASES: list[tuple[str, str, bytes, str, str]] = [
    ("empty", "empty.jsonl", b"", "empty (0 bytes)", "Upload a file with rows"),
    ("whitespace", "blank.jsonl", b"  \n\t\n  \n", "only whitespace", "Add data rows"),
    ("bom-only", "bom.jsonl", b"\xef\xbb\xbf", "only whitespace", "Add data rows"),
    ("random-bytes", "noise.jsonl", random.Random(6).randbytes(4096), "not", "UTF-8"),
    ("utf16", "wide.jsonl", GOOD_LINES.decode().encode("utf-16"), "UTF-16", "Save it again"),
    (
        "latin1",
        "accents.csv",
        "instruction,output\ncaf\xe9,ol\xe9\n".encode("latin-1"),
        "is not valid UTF-8",
        "Save the file as UTF-8",
    ),
    (
        "nul-bytes",
        "nul.jsonl",
        GOOD_LINES + b'{"instruction": "a\x00b"}\n',
        "NUL byte",
        "saved as UTF-8",
    ),
    (
        "truncated-line",
        "cut.jsonl",
        GOOD_LINES + b'{"instruction": "Classify: di',
        "line 3: not valid JSON",
        "Fix that line",
    ),
    (
        "number-array",
        "numbers.json",
        b"[1, 2, 3]",
        "row 1 is a number, not an object",
        "Make every row an object",
    ),
    (
        "top-level-string",
        "string.json",
        b'"just a string"',
        "top level is a string",
        "Use a list of objects",
    ),
    (
        "not-objects",
        "lists.jsonl",
        b"[1, 2]\n[3, 4]\n",
        "expected a JSON object, found a list",
        "one object per line",
    ),
    (
        "nested-types",
        "nested.jsonl",
        jsonl(*[{"instruction": {"a": 1}, "output": [1]}] * 3),
        "instruction should be text but is an object",
        "flatten the nested value",
    ),
    (
        "missing-columns",
        "columns.jsonl",
        jsonl(*[{"question_text": "a", "reply": "b"}] * 3),
        "no known format",
        "Pass a column mapping",
    ),
    (
        "all-empty",
        "hollow.jsonl",
        jsonl(*[{"instruction": " ", "output": ""}] * 4),
        "every row is empty",
        "row",
    ),
    (
        "empty-output",
        "noanswer.jsonl",
        jsonl(GOOD, {"instruction": "Hi", "output": "  "}),
        "output is empty",
        "row 2",
    ),
    (
        "oversize-line",
        "huge.jsonl",
        jsonl({"text": "x" * (CAP + 1)}),
        "over the",
        "Split it into smaller files",
    ),
    (
        "gzip-named-jsonl",
        "packed.jsonl",
        gzip.compress(GOOD_LINES * 1000),
        "gzip archive",
        "Decompress it first",
    ),
    ("zip-bomb", "bomb.jsonl", zip_bomb(), "ZIP archive", "Unzip it"),
    (
        "png-named-csv",
        "picture.csv",
        b"\x89PNG\r\n\x1a\n" + bytes(200),
        "PNG image",
        "Upload the dataset file itself",
    ),
    (
        "parquet-wrong-schema",
        "schema.parquet",
        parquet(pd.DataFrame({"id": [1, 2], "v": [3, 4]})),
        "no known format",
        "Pass a column mapping",
    ),
    (
        "parquet-corrupt",
        "broken.parquet",
        b"PAR1" + random.Random(1).randbytes(500) + b"PAR1",
        "damaged Parquet",
        "Export it again",
    ),
    (
        "parquet-truncated",
        "half.parquet",
        GOOD_PARQUET[: len(GOOD_PARQUET) // 2],
        "not a Parquet file",
        "export it again as Parquet",
    ),
    (
        "csv-ragged",
        "ragged.csv",
        b"instruction,output\na,b\nc,d,e\n",
        "line 3: row has 3 fields but the header has 2",
        "Quote fields",
    ),
    (
        "csv-unterminated-quote",
        "quote.csv",
        b'instruction,output\n"a,b\nc,d\n',
        "fields",
        "Quote fields",
    ),
    ("csv-duplicate-header", "twice.csv", b"output,output\na,b\n", "appears twice", "unique name"),
    (
        "deep-jsonl",
        "deep.jsonl",
        ('{"text": ' + deep(20_000) + "}\n").encode(),
        "nested more than",
        "Flatten it",
    ),
    ("deep-json", "deep.json", deep(30_000).encode(), "nested more than", "Flatten it"),
    (
        "huge-integer",
        "bigint.jsonl",
        b'{"instruction": "a", "output": ' + b"9" * 5000 + b"}\n",
        "5000 digits",
        "Fix that value",
    ),
    (
        "nan",
        "nan.jsonl",
        b'{"instruction": "a", "output": NaN}\n',
        "NaN is not valid JSON",
        "write null",
    ),
    (
        "duplicate-key",
        "dupkey.jsonl",
        b'{"instruction": "a", "output": "b", "output": "c"}\n',
        "key 'output' appears twice",
        "Fix that value",
    ),
    ("exe", "setup.exe", b"MZ\x90\x00" + bytes(100), "unsupported file type '.exe'", "Use one of"),
    (
        "python",
        "train.py",
        b"import os\nos.system('rm -rf /')\n",
        "unsupported file type '.py'",
        "Use one of",
    ),
    (
        "html",
        "page.html",
        b"<html><script>alert(1)</script></html>",
        "unsupported file type '.html'",
        "Use one of",
    ),
    (
        "chat-bad-roles",
        "roles.jsonl",
        jsonl(*[chat(("hacker", "x"), ("assistant", "y"))] * 3),
        "role 'hacker'",
        "allowed roles are",
    ),
    (
        "chat-no-assistant",
        "oneside.jsonl",
        jsonl(*[chat(("user", "x"), ("user", "y"))] * 3),
        "no assistant turn",
        "add the reply",
    ),
    (
        "chat-as-string",
        "chatstr.jsonl",
        jsonl(*[{"messages": "hello"}] * 3),
        "should be a list of objects",
        '"role": "user"',
    ),
    (
        "sharegpt-bad-speaker",
        "speakers.jsonl",
        jsonl(*[{"conversations": [{"from": "alien", "value": "x"}]}] * 3),
        "from='alien'",
        "allowed",
    ),
    (
        "preference-identical",
        "pairs.jsonl",
        jsonl(*[{"prompt": f"q{i}", "chosen": "same", "rejected": "same"} for i in range(3)]),
        "chosen and rejected are identical",
        "make the rejected answer the worse one",
    ),
]


@pytest.fixture(scope="module")
def settings(tmp_path_factory, tokenizer) -> ServerSettings:
    """A workspace with the small cap; `tokenizer` makes sure the bundled model is prepared."""
    workspace = Workspace.open(tmp_path_factory.mktemp("hostile") / "workspace")
    return ServerSettings(workspace=workspace, max_upload_bytes=CAP)


def data_tab_status(settings: ServerSettings, source: str) -> tuple[bool, str]:
    """What the Data tab shows for `source`: (ok, the status markdown)."""
    preview, _, note = _run_preview(settings, source, "default", "auto", 256, 0.1, {})
    return preview.ok, "\n\n".join(filter(None, [status_markdown(preview), note]))


def assert_clear_refusal(ok: bool, text: str, name: str, wrong: str, todo: str) -> None:
    assert not ok, text
    assert "This dataset cannot be used yet" in text
    assert name in text, f"the message does not name the file:\n{text}"
    assert wrong in text, f"does not say what is wrong ({wrong!r}):\n{text}"
    assert todo in text, f"does not say what to do ({todo!r}):\n{text}"
    assert "Traceback" not in text and "Error(" not in text


def test_there_are_at_least_30_hostile_files():
    assert len(CASES) >= 30 and len({case[0] for case in CASES}) == len(CASES)


@pytest.mark.parametrize(
    ("case", "name", "data", "wrong", "todo"), [pytest.param(*c, id=c[0]) for c in CASES]
)
def test_hostile_file_is_refused_with_a_clear_message(settings, case, name, data, wrong, todo):
    folder = settings.workspace.uploads / case
    folder.mkdir()
    (folder / name).write_bytes(data)
    ok, text = data_tab_status(settings, f"uploads/{case}/{name}")  # as an upload is named
    assert_clear_refusal(ok, text, name, wrong, todo)


def test_paths_leaving_the_workspace_are_refused(settings, tmp_path):
    outside = tmp_path / "secret.jsonl"
    outside.write_bytes(GOOD_LINES * 3)
    link = settings.workspace.uploads / "innocent.jsonl"
    link.symlink_to(outside)
    sources = {
        "../../etc/passwd": "passwd",
        "uploads/../../secret.jsonl": "secret.jsonl",
        str(outside): "secret.jsonl",  # absolute
        "uploads/innocent.jsonl": "innocent.jsonl",  # a link inside pointing out
    }
    for source, name in sources.items():
        ok, text = data_tab_status(settings, source)
        assert_clear_refusal(ok, text, name, "outside the workspace", "Upload the file instead")


def test_a_folder_or_missing_file_is_refused(settings):
    (settings.workspace.uploads / "dir.jsonl").mkdir()
    ok, text = data_tab_status(settings, "uploads/dir.jsonl")
    assert_clear_refusal(ok, text, "dir.jsonl", "a folder, not a file", "Pick one data file")
    ok, text = data_tab_status(settings, "uploads/nothing-here.jsonl")
    assert_clear_refusal(ok, text, "nothing-here.jsonl", "file not found", "upload the file")


def test_a_single_row_is_flagged(settings):
    (settings.workspace.uploads / "one.jsonl").write_bytes(jsonl(GOOD))
    _, text = data_tab_status(settings, "uploads/one.jsonl")
    assert "only 1 usable row" in text and "add more examples" in text


def test_html_in_a_dataset_is_shown_as_text(settings):
    script, image = "<script>alert(1)</script>", "<img src=x onerror=alert(2)>"
    rows = [{"instruction": script, "output": image, script: "x"}] * 2 + [GOOD]
    hostile_name = f"{image}.jsonl"
    staged = settings.workspace.root / "staging"
    staged.mkdir()
    (staged / hostile_name).write_bytes(jsonl(*rows))
    stored = settings.workspace.store_upload(staged / hostile_name)  # what an upload goes through
    assert stored.parent == settings.workspace.uploads and "<" not in stored.name

    preview, _, _ = _run_preview(
        settings, str(stored.relative_to(settings.workspace.root)), "default", "auto", 256, 0.1, {}
    )
    text = status_markdown(preview)
    assert "<script" not in text and "<img" not in text
    table, _ = preview_page(preview.frame, 1)
    assert script in table.to_numpy().tolist()[0]  # shown verbatim, as text

    from ftui.ui.app import build_app

    app = build_app(settings)
    tables = [
        c for c in app.config["components"] if c.get("props", {}).get("elem_id") == "data-preview"
    ]
    datatype = tables[0]["props"].get("datatype", "str")
    kinds = datatype if isinstance(datatype, list) else [datatype]
    assert not {"html", "markdown"} & set(kinds), "cells would be rendered as HTML"


CLI_SAMPLE = ["empty", "utf16", "truncated-line", "zip-bomb", "exe", "preference-identical"]


@pytest.mark.slow
def test_the_cli_refuses_a_sample_with_exit_code_2(tmp_path):
    by_id = {case[0]: case for case in CASES}
    for case_id in CLI_SAMPLE:
        _, name, data, wrong, todo = by_id[case_id]
        path = tmp_path / name
        path.write_bytes(data)
        result = subprocess.run(
            [sys.executable, "-m", "ftui", "data", "check", str(path)],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "HF_HUB_OFFLINE": "1"},
        )
        assert result.returncode == 2, (case_id, result.stdout, result.stderr)
        assert name in result.stdout and wrong in result.stdout and todo in result.stdout
        assert "Traceback" not in result.stdout + result.stderr
