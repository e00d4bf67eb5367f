"""Reading and checking real dataset files: every bad file gets a precise error, good ones pass.

Each case writes a real file to tmp_path and runs `check_file` on it (no mocks); the CLI test
runs `python -m ftui data check` in a subprocess.
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
from pathlib import Path

import pandas as pd
import pytest

from ftui.data.check import check_dataframe, check_file
from ftui.data.errors import DataError
from ftui.data.reading import load_source, read_table

os.environ.setdefault("HF_HUB_OFFLINE", "1")
REPO_ROOT = Path(__file__).resolve().parents[1]


def jsonl(*rows: object) -> bytes:
    return "\n".join(json.dumps(row) for row in rows).encode() + b"\n"


def json_lines_array(*rows: object) -> bytes:
    """A JSON array with one row per line, so row N starts on line N + 1."""
    return ("[\n" + ",\n".join(json.dumps(row) for row in rows) + "\n]\n").encode()


def chat(*turns: tuple[str, object]) -> dict:
    return {"messages": [{"role": role, "content": content} for role, content in turns]}


def sharegpt(*turns: tuple[str, str]) -> dict:
    return {"conversations": [{"from": who, "value": value} for who, value in turns]}


def zip_bytes() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("train.jsonl", jsonl({"text": "hello"}))
    return buffer.getvalue()


def nested(depth: int) -> object:
    value: object = "deep"
    for _ in range(depth):
        value = [value]
    return value


GOOD_ALPACA = {"instruction": "Say hi", "output": "Hi"}
HELLO = ("user", "Hello")
REPLY = ("assistant", "Hi there")

# (id, file name, content or None for "do not write", check_file kwargs, expected substrings)
BAD_FILES = [
    ("empty-file", "empty.jsonl", b"", {}, ["empty", "0 bytes"]),
    ("whitespace-only", "blank.csv", b"  \n\n\t \n", {}, ["empty", "whitespace"]),
    (
        "malformed-json",
        "bad.json",
        b'[\n  {"text": "a"},\n  {"text": "b" "c"}\n]\n',
        {},
        ["bad.json, line 3", "not valid JSON"],
    ),
    (
        "malformed-jsonl-line-3",
        "bad.jsonl",
        jsonl(GOOD_ALPACA, GOOD_ALPACA) + b'{"instruction": "x", "output": }\n',
        {},
        ["line 3", "not valid JSON", "Fix that line"],
    ),
    (
        "jsonl-row-not-object",
        "rows.jsonl",
        jsonl(GOOD_ALPACA, ["a", "b"]),
        {},
        ["line 2", "expected a JSON object, found a list"],
    ),
    (
        "latin-1-bytes",
        "latin.csv",
        "instruction,output\nhi,ok\ncafé,olé\n".encode("latin-1"),
        {},
        ["UTF-8", "line 3", "0xe9"],
    ),
    ("random-binary", "noise.jsonl", random.Random(0).randbytes(4000), {}, ["UTF-8"]),
    ("png-named-csv", "image.csv", b"\x89PNG\r\n\x1a\n" + bytes(64), {}, ["PNG image"]),
    ("zip-named-jsonl", "archive.jsonl", zip_bytes(), {}, ["ZIP archive", "Unzip"]),
    ("gzip-named-json", "rows.json", gzip.compress(jsonl(GOOD_ALPACA)), {}, ["gzip"]),
    # UTF-16 CSVs with a BOM are read (tests/test_layouts_spreadsheets.py); JSON must be UTF-8
    ("utf16-json", "wide.json", '[{"text": "a"}]'.encode("utf-16"), {}, ["UTF-16"]),
    (
        "json-that-is-jsonl",
        "rows.json",
        jsonl(GOOD_ALPACA, GOOD_ALPACA),
        {},
        ["JSON Lines", "Rename the file to .jsonl"],
    ),
    (
        "jsonl-that-is-json",
        "rows.jsonl",
        json.dumps([GOOD_ALPACA, GOOD_ALPACA], indent=2).encode(),
        {},
        ["not JSON Lines", "Rename the file to .json"],
    ),
    (
        "text-named-parquet",
        "data.parquet",
        b"instruction,output\na,b\n",
        {},
        ["not a Parquet file", "PAR1"],
    ),
    (
        "unsupported-xls",
        "sheet.xls",
        zip_bytes(),
        {},
        ["unsupported file type '.xls'", ".csv, .tsv, .json, .jsonl, .parquet, .txt, .xlsx"],
    ),
    (
        "unknown-columns",
        "odd.csv",
        b"foo,bar\n1,2\n",
        {},
        ["columns found are foo, bar", "instruction/output", "column mapping"],
    ),
    (
        "chat-invalid-role",
        "chat.jsonl",
        jsonl(chat(HELLO, REPLY), chat(HELLO, ("bot", "Hi"))),
        {},
        ["row 2", "role 'bot'", "allowed roles are system, user, assistant"],
    ),
    (
        "chat-no-assistant-turn",
        "chat.jsonl",
        jsonl(chat(HELLO, ("user", "Anyone?")), chat(HELLO, REPLY)),
        {},
        ["row 1", "no assistant turn", "roles found: user, user"],
    ),
    (
        "chat-messages-not-a-list",
        "chat.jsonl",
        jsonl({"messages": "hello there"}),
        {},
        ["row 1", "messages should be a list", "a string"],
    ),
    (
        "chat-content-not-string",  # text parts are read; an object is neither text nor parts
        "chat.jsonl",
        jsonl(chat(HELLO, ("assistant", {"text": "Hi"}))),
        {},
        ["row 1", "message 2 (assistant) content should be a string but is an object"],
    ),
    (
        "sharegpt-bad-from",
        "share.json",
        json.dumps([sharegpt(("human", "Hi"), ("robot", "Beep"))]).encode(),
        {},
        ["row 1", "from='robot'", "human, user, gpt"],
    ),
    (
        "sharegpt-no-assistant",
        "share.json",
        json.dumps([sharegpt(("human", "Hi"))]).encode(),
        {},
        ["row 1", "no assistant turn"],
    ),
    (
        "alpaca-empty-outputs",
        "alpaca.csv",
        b"instruction,output\nSay hi,Hi\nSay bye,\nSay yes,   \n",
        {},
        ["row 2, column 'output': output is empty", "row 3, column 'output'"],
    ),
    (
        "completion-empty",
        "pc.jsonl",
        jsonl({"prompt": "2+2=", "completion": ""}),
        {},
        ["row 1", "completion is empty"],
    ),
    (
        "preference-empty-rejected",
        "pref.jsonl",
        jsonl(
            {"prompt": "Hi", "chosen": "Hello!", "rejected": "Go away"},
            {"prompt": "Hi", "chosen": "Hello!", "rejected": ""},
        ),
        {},
        ["row 2", "column 'rejected'", "rejected is empty"],
    ),
    (
        "nested-too-deep",
        "deep.json",
        json_lines_array(GOOD_ALPACA, {"instruction": "x", "output": nested(10)}),
        {},
        ["line 3", "column 'output'", "nested more than 8 levels"],
    ),
    ("nested-beyond-recursion", "deep.json", b"[" * 50_000, {}, ["nested more than 8"]),
    (
        "dict-where-string-expected",
        "alpaca.jsonl",
        jsonl(GOOD_ALPACA, {"instruction": {"text": "Say hi"}, "output": "Hi"}),
        {},
        ["row 2", "column 'instruction'", "should be text but is an object"],
    ),
    (
        "oversize-file",
        "big.jsonl",
        jsonl(*[GOOD_ALPACA] * 40),
        {"max_bytes": 500},
        ["MB", "over the", "limit (500 bytes)"],
    ),
    (
        "ragged-csv",
        "ragged.csv",
        b"instruction,output\na,b\nc,d,e\n",
        {},
        ["line 3", "3 fields", "header has 2"],
    ),
    ("header-only-csv", "header.csv", b"instruction,output\n", {}, ["no data rows"]),
    ("duplicate-header", "dup.csv", b"instruction,output,output\na,b,c\n", {}, ["twice"]),
    # a TSV named .csv is read (the delimiter is sniffed); a ragged row is still refused
    (
        "ragged-semicolons",
        "semi.csv",
        b"instruction;output\na;b\nc;d;e\n",
        {},
        ["line 3", "3 fields"],
    ),
    ("missing-file", "nowhere.jsonl", None, {}, ["nowhere.jsonl", "file not found"]),
    (
        "json-object-not-rows",
        "one.json",
        json.dumps(GOOD_ALPACA).encode(),
        {},
        ["not a list of rows", "keys: instruction, output"],
    ),
    ("json-rows-not-objects", "nums.json", b"[1, 2, 3]", {}, ["row 1 is a number"]),
    ("every-row-empty", "holes.csv", b"instruction,output\n,\n , \n", {}, ["every row is empty"]),
    (
        "format-forced-mismatch",
        "alpaca.jsonl",
        jsonl(GOOD_ALPACA),
        {"format": "chat"},
        ["no column for 'messages'", "columns are: instruction, output"],
    ),
    (
        "mapping-unknown-column",
        "qa.csv",
        b"question,answer\nq,a\n",
        {"columns": {"instruction": "question", "output": "answr"}},
        ["unknown column 'answr'", "columns are: question, answer"],
    ),
]


@pytest.mark.parametrize(
    ("name", "content", "kwargs", "expected"),
    [pytest.param(*case[1:], id=case[0]) for case in BAD_FILES],
)
def test_bad_file_gets_a_precise_error(tmp_path, name, content, kwargs, expected):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    report = check_file(path, **kwargs)
    text = report.summary_text()
    assert not report.ok, text
    assert report.errors
    for fragment in expected:
        assert fragment in text, f"{fragment!r} not in:\n{text}"
    json.dumps(report.to_dict())  # always serialisable


def test_there_are_at_least_24_distinct_bad_files():
    assert len({case[0] for case in BAD_FILES}) == len(BAD_FILES) >= 24


def _write_parquet(path: Path, rows: list[dict]) -> None:
    pd.DataFrame(rows).to_parquet(path)


def _write_alpaca_csv(path: Path) -> None:
    pd.DataFrame(ALPACA_ROWS).to_csv(path, index=False)


ALPACA_ROWS = [
    {"instruction": "Classify: printer on fire", "input": "", "output": "urgent"},
    {"instruction": "Classify", "input": "password, again", "output": "low"},
]
CHAT_ROWS = [chat(HELLO, REPLY), chat(("system", "Be brief."), HELLO, REPLY)]
GOOD_FILES = [
    # (id, file name, writer, expected format, expected rows)
    ("alpaca-csv", "a.csv", _write_alpaca_csv, "alpaca", 2),
    (
        "alpaca-tsv-uppercase",
        "a.tsv",
        lambda p: p.write_text("Instruction\tInput\tOutput\nSay hi\t\tHi\nAdd\t2 2\t4\n"),
        "alpaca",
        2,
    ),
    (
        "alpaca-json-wrapped",
        "a.json",
        lambda p: p.write_text(json.dumps({"data": ALPACA_ROWS})),
        "alpaca",
        2,
    ),
    (
        "alpaca-csv-bom-crlf",
        "bom.csv",
        lambda p: p.write_bytes(b'\xef\xbb\xbfinstruction,output\r\n"a, b","multi\nline"\r\n'),
        "alpaca",
        1,
    ),
    (
        "chat-jsonl-blank-lines",
        "c.jsonl",
        lambda p: p.write_bytes(jsonl(CHAT_ROWS[0]) + b"\n  \n" + jsonl(CHAT_ROWS[1])),
        "chat",
        2,
    ),
    (
        "chat-csv-json-strings",
        "c.csv",
        lambda p: pd.DataFrame([{"messages": json.dumps(r["messages"])} for r in CHAT_ROWS]).to_csv(
            p, index=False
        ),
        "chat",
        2,
    ),
    ("chat-parquet", "c.parquet", lambda p: _write_parquet(p, CHAT_ROWS), "chat", 2),
    (
        "sharegpt-json",
        "s.json",
        lambda p: p.write_text(json.dumps([sharegpt(("human", "Hi"), ("gpt", "Hello"))])),
        "sharegpt",
        1,
    ),
    (
        "prompt-completion-parquet",
        "pc.parquet",
        lambda p: _write_parquet(p, [{"prompt": "2+2=", "completion": "4"}]),
        "prompt_completion",
        1,
    ),
    (
        "text-txt-documents",
        "t.txt",
        lambda p: p.write_text("First doc\nstill first.\n\n\nSecond doc.\n\nThird.\n"),
        "text",
        3,
    ),
    ("text-txt-lines", "lines.txt", lambda p: p.write_text("one\ntwo\nthree\n"), "text", 3),
    (
        "text-jsonl",
        "t.jsonl",
        lambda p: p.write_bytes(jsonl({"text": "a"}, {"text": "b"})),
        "text",
        2,
    ),
    (
        "preference-jsonl",
        "p.jsonl",
        lambda p: p.write_bytes(jsonl({"prompt": "Hi", "chosen": "Hello!", "rejected": "No."})),
        "preference",
        1,
    ),
    (
        "preference-parquet-no-prompt",
        "p.parquet",
        lambda p: _write_parquet(p, [{"chosen": "Good", "rejected": "Bad"}]),
        "preference",
        1,
    ),
]


@pytest.mark.parametrize(
    ("name", "write", "expected_format", "rows"),
    [pytest.param(*case[1:], id=case[0]) for case in GOOD_FILES],
)
def test_good_file_passes(tmp_path, name, write, expected_format, rows):
    path = tmp_path / name
    write(path)
    report = check_file(path)
    assert report.ok, report.summary_text()
    assert report.format == expected_format
    assert report.rows == rows
    assert report.confident
    assert report.summary_text().startswith(f"{name}: {expected_format}, {rows} row")


def test_empty_and_duplicate_rows_are_counted_and_warned(tmp_path):
    path = tmp_path / "dups.csv"
    path.write_text("instruction,output\na,b\n,\na,b\nc,d\na,b\n")
    report = check_file(path)
    assert report.ok
    assert (report.empty_rows, report.duplicate_rows) == (1, 2)
    text = report.summary_text()
    assert "1 empty rows (skipped in training): rows 2" in text
    assert "2 exact duplicate rows: rows 3, 5" in text
    assert "— OK, 2 warnings" in text.splitlines()[0]


def test_many_bad_rows_are_capped_with_a_summary():
    frame = pd.DataFrame({"instruction": [f"q{i}" for i in range(80)], "output": [""] * 80})
    report = check_dataframe(frame, file="many.csv")
    assert len(report.errors) == 51
    assert report.errors[-1].message == "... and 30 more problems (30 more rows)"
    assert "... and 31 more" in report.summary_text()  # 51 problems, 20 shown


def test_synonym_columns_warn_but_pass():
    frame = pd.DataFrame({"question": ["q"], "answer": ["a"]})
    report = check_dataframe(frame)
    assert report.ok and not report.confident
    assert report.columns == {"instruction": "question", "output": "answer"}
    assert "format guessed" in report.warnings[0].message


def test_column_mapping_rescues_unknown_columns():
    frame = pd.DataFrame({"q": ["Say hi"], "a": ["Hi"]})
    assert not check_dataframe(frame).ok
    report = check_dataframe(frame, columns={"instruction": "q", "output": "a"})
    assert report.ok and report.format == "alpaca" and report.confident
    text_like = pd.DataFrame({"text": ["Say hi"], "reply": ["Hi"]})
    assert check_dataframe(text_like).format == "text"
    report = check_dataframe(text_like, columns={"instruction": "text", "output": "reply"})
    assert report.ok and report.format == "alpaca"
    assert report.columns == {"instruction": "text", "output": "reply"}


def test_report_to_dict_has_the_documented_keys(tmp_path):
    path = tmp_path / "ok.jsonl"
    path.write_bytes(jsonl(GOOD_ALPACA))
    data = check_file(path).to_dict()
    assert set(data) == {
        "file", "format", "confident", "rows", "columns", "empty_rows", "duplicate_rows",
        "ok", "problems", "reason", "layout", "features", "read_as",
    }  # fmt: skip
    assert data["ok"] is True
    assert data["columns"] == {"instruction": "instruction", "output": "output"}


def test_data_error_text_says_where_what_and_what_to_do(tmp_path):
    path = tmp_path / "triage.jsonl"
    path.write_bytes(jsonl(*[GOOD_ALPACA] * 6) + b'{"instruction": "x" "output": "y"}\n')
    with pytest.raises(DataError) as caught:
        read_table(path)
    assert str(caught.value) == (
        "triage.jsonl, line 7: not valid JSON (Expecting ',' delimiter at column 21). "
        "Fix that line or remove it."
    )
    assert (caught.value.line, caught.value.file) == (7, str(path))


def test_read_table_keeps_csv_values_as_text(tmp_path):
    path = tmp_path / "n.csv"
    path.write_text("text,label\n007,NA\nnull,1.50\n")
    frame = read_table(path)
    assert frame.to_dict("records") == [
        {"text": "007", "label": "NA"},
        {"text": "null", "label": "1.50"},
    ]


def test_load_source_reads_paths_inside_allowed_roots(tmp_path):
    root = tmp_path / "workspace"
    (root / "uploads").mkdir(parents=True)
    (root / "uploads" / "a.jsonl").write_bytes(jsonl(GOOD_ALPACA))
    outside = tmp_path / "secret.jsonl"
    outside.write_bytes(jsonl(GOOD_ALPACA))
    assert len(load_source(str(root / "uploads" / "a.jsonl"), allowed_roots=[root])) == 1
    assert len(load_source("uploads/a.jsonl", allowed_roots=[root])) == 1
    for escape in (str(outside), "../secret.jsonl"):
        with pytest.raises(DataError, match="outside the workspace.*[Uu]pload"):
            load_source(escape, allowed_roots=[root])


def test_load_source_hub_id_offline_is_a_clear_error():
    with pytest.raises(DataError) as caught:
        load_source("nobody-here/no-such-dataset:train")
    text = str(caught.value)
    assert "could not load Hub dataset 'nobody-here/no-such-dataset'" in text
    assert "check the id, your network, or download it and upload the file" in text


def _run_cli(path: Path) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "ftui", "data", "check", str(path), "--json"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, env=env)


@pytest.mark.slow
def test_cli_data_check_exit_codes_and_json(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(jsonl(GOOD_ALPACA) + b"{oops\n")
    good = tmp_path / "good.jsonl"
    good.write_bytes(jsonl(GOOD_ALPACA, {"instruction": "Add 2 2", "output": "4"}))

    result = _run_cli(bad)
    assert result.returncode == 2, result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] is False and "line 2" in report["problems"][0]["message"]

    result = _run_cli(good)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert (report["ok"], report["format"], report["rows"]) == (True, "alpaca", 2)
