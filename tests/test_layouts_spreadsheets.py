"""Spreadsheet exports: semicolon CSVs with a byte-order mark, UTF-16 tables and .xlsx workbooks.

Real files written here are read through `ftui data check` (a real subprocess for the JSON
output), which names the layout and how the file was read: delimiter, encoding, sheet.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import REPO_ROOT

from ftui.data.check import check_file
from ftui.data.reading import SUPPORTED_EXTENSIONS, read_table

# A German spreadsheet export: semicolons between columns, commas as decimal marks, a BOM.
SEMICOLON_CSV = (
    "\ufeffinstruction;input;output\n"
    "Rechne um;1,5 km in m;1500 m\n"
    'Übersetze;"Haus; Garten";"house; garden"\n'
    "Rechne um;2,25 kg in g;2250 g\n"
).encode("utf-8")


def test_a_semicolon_csv_with_a_bom_is_read_as_three_columns(tmp_path):
    path = tmp_path / "export.csv"
    path.write_bytes(SEMICOLON_CSV)
    frame = read_table(path)
    assert list(frame.columns) == ["instruction", "input", "output"]  # no BOM in the name
    assert frame.loc[0, "input"] == "1,5 km in m" and frame.loc[1, "input"] == "Haus; Garten"
    report = check_file(path)
    assert report.ok and report.format == "alpaca", report.summary_text()
    assert report.read_as == {"delimiter": "semicolon (;)", "encoding": "UTF-8 with BOM"}
    assert "delimiter semicolon (;), encoding UTF-8 with BOM" in report.summary_text()


def test_data_check_json_names_the_layout_and_the_delimiter(tmp_path):
    path = tmp_path / "export.csv"
    path.write_bytes(SEMICOLON_CSV)
    done = subprocess.run(
        [sys.executable, "-m", "ftui", "data", "check", str(path), "--json"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["format"] == "alpaca" and report["layout"] == "alpaca"
    assert report["read_as"]["delimiter"] == "semicolon (;)"


def test_utf16_tab_separated_text_with_a_bom_is_read(tmp_path):
    path = tmp_path / "unicode.tsv"  # Excel's "Unicode Text": UTF-16 with a BOM, tabs
    path.write_bytes("prompt\tcompletion\n2+2=\t4\n3+3=\t6\n".encode("utf-16"))
    report = check_file(path)
    assert report.ok and report.format == "prompt_completion", report.summary_text()
    assert report.read_as == {"delimiter": "tab", "encoding": "UTF-16 with BOM"}


def test_a_comma_csv_with_semicolons_in_its_text_stays_a_comma_csv(tmp_path):
    path = tmp_path / "plain.csv"
    path.write_text("instruction,output\nList: a; b; c,ok\nSay hi; twice,hi hi\n", "utf-8")
    report = check_file(path)
    assert report.ok and report.read_as["delimiter"] == "comma (,)", report.summary_text()
    assert read_table(path).loc[0, "instruction"] == "List: a; b; c"


def test_non_utf8_text_without_a_bom_is_refused_not_guessed(tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes("instruction;output\ncafé;olé\n".encode("latin-1"))
    text = check_file(path).summary_text()
    assert "is not valid UTF-8" in text and "in Excel choose 'CSV UTF-8'" in text


def write_workbook(path, sheets: dict[str, list[list]]) -> None:
    from openpyxl import Workbook

    workbook = Workbook()
    workbook.remove(workbook.active)
    for title, rows in sheets.items():
        sheet = workbook.create_sheet(title)
        for row in rows:
            sheet.append(row)
    workbook.save(path)


def test_an_xlsx_workbook_is_read_from_its_first_sheet(tmp_path):
    path = tmp_path / "tickets.xlsx"
    rows = [
        ["prompt", "completion", "label", None],
        ["Refund order 7?", "Done: refunded today.", True, None],
        ["Refund order 8?", "Ask someone else.", False, None],
        [None, None, None, None],
        ["Where is order 9?", "It ships on 12 May.", True, None],
    ]
    write_workbook(path, {"Tickets": rows, "Notes": [["ignored"]]})
    frame = read_table(path)
    assert list(frame.columns) == ["prompt", "completion", "label"] and len(frame) == 3
    report = check_file(path)
    assert report.ok and report.format == "kto", report.summary_text()  # TRUE/FALSE cells
    assert report.read_as == {"sheet": "'Tickets' (the first of 2)"}
    assert ".xlsx" in SUPPORTED_EXTENSIONS  # the Data tab's upload accepts it


def test_numbers_in_a_workbook_become_text_and_a_bad_workbook_is_refused(tmp_path):
    path = tmp_path / "sums.xlsx"
    write_workbook(path, {"Sheet": [["prompt", "completion"], ["2+2=", 4], ["1.5*2=", 3.0]]})
    assert check_file(path).ok
    broken = tmp_path / "broken.xlsx"
    broken.write_bytes(b"PK\x03\x04 not really a zip")
    text = check_file(broken).summary_text()
    assert "not an .xlsx workbook" in text and "Save it again from Excel" in text


def test_a_workbook_that_unpacks_past_the_memory_cap_is_refused(tmp_path, monkeypatch):
    path = tmp_path / "bomb.xlsx"
    write_workbook(path, {"Sheet": [["text"], *[["x" * 30_000 + str(i)] for i in range(80)]]})
    assert path.stat().st_size < 200_000  # compresses well: 2.4 MB of text inside
    monkeypatch.setenv("FTUI_MAX_DATA_MB", "1")
    text = check_file(path).summary_text()
    assert "the workbook unpacks to 2 MB, over this server's 1 MB limit" in text


@pytest.mark.parametrize("rows", [[["a", "a"], ["x", "y"]]])
def test_a_workbook_header_naming_a_column_twice_is_refused(tmp_path, rows):
    path = tmp_path / "twice.xlsx"
    write_workbook(path, {"Sheet": rows})
    assert "column 'a' appears twice in the header row" in check_file(path).summary_text()
