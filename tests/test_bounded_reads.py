"""Reads stop at the caps: a small Parquet file that decodes to GBs, too many rows in any
format, Hub datasets (streamed), and what a browser session keeps of a preview.

The slow test is the acceptance check of finding 8: a ~2 KB Parquet file that would decode to
over 2 GB is refused through a real `ftui serve` while the server's RSS, sampled during the
call, stays within 300 MB of what it was before.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import pandas as pd
import psutil
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import SAMPLES, ftui_server

from ftui.data.bounded import ReadLimits, load_hub_rows, read_parquet
from ftui.data.errors import DataError
from ftui.data.preview import SAMPLE_CELL_CHARS, SAMPLE_ROWS, load_preview
from ftui.data.reading import read_table

RSS_BOUND_MB = 300
BOMB_ROWS, BOMB_GROUPS, BOMB_WIDTH = 20_000, 11, 10_000  # 220,000 x 10 KB = 2.2 GB decoded


def write_parquet_bomb(path: Path) -> Path:
    """One 10 KB string repeated in every row, dictionary-encoded: stored once per row group.
    Written row group by row group from one dictionary array, so writing never decodes it."""
    indices = pa.array([0] * BOMB_ROWS, pa.int32())
    column = pa.DictionaryArray.from_arrays(indices, pa.array(["A" * BOMB_WIDTH]))
    table = pa.table({"text": column})
    with pq.ParquetWriter(path, table.schema, store_schema=False, compression="zstd") as writer:
        for _ in range(BOMB_GROUPS):
            writer.write_table(table)
    return path


def test_the_bomb_is_small_on_disk_and_huge_decoded(tmp_path):
    path = write_parquet_bomb(tmp_path / "bomb.parquet")
    metadata = pq.read_metadata(path)
    assert path.stat().st_size < 5 * 1024 * 1024
    assert metadata.num_rows * BOMB_WIDTH > 2 * 1024**3
    assert str(pq.read_schema(path).field("text").type) == "string"  # read back as text


def test_a_parquet_bomb_is_refused_before_it_is_decoded(tmp_path):
    path = write_parquet_bomb(tmp_path / "bomb.parquet")
    before = psutil.Process().memory_info().rss
    with pytest.raises(DataError) as refused:
        read_table(path)
    message = str(refused.value)
    assert "bomb.parquet" in message and "1,024 MB limit" in message
    assert "FTUI_MAX_DATA_MB" in message and "fewer or shorter rows" in message
    assert psutil.Process().memory_info().rss - before < RSS_BOUND_MB * 1024 * 1024


def test_the_row_cap_refuses_parquet_by_its_footer(tmp_path):
    path = tmp_path / "rows.parquet"
    pq.write_table(pa.table({"text": [f"row {i}" for i in range(11)]}), path)
    with pytest.raises(DataError, match="more than 10 rows"):
        read_parquet(path, ReadLimits(max_rows=10))
    assert len(read_parquet(path, ReadLimits(max_rows=11))) == 11


def test_plain_encoded_text_is_capped_by_its_uncompressed_size(tmp_path):
    path = tmp_path / "plain.parquet"
    table = pa.table({"text": ["B" * 100_000] * 30})
    pq.write_table(table, path, use_dictionary=False, compression="zstd")
    with pytest.raises(DataError, match="in memory once read"):
        read_parquet(path, ReadLimits(max_bytes=2 * 1024 * 1024))
    assert len(read_parquet(path, ReadLimits(max_bytes=4 * 1024 * 1024))) == 30


def test_text_inside_nested_columns_counts_toward_the_cap(tmp_path):
    path = tmp_path / "chat.parquet"
    turn = {"role": "user", "content": "C" * 50_000}
    pq.write_table(pa.table({"messages": [[turn, turn]] * 40}), path)  # 4 MB of content
    with pytest.raises(DataError, match="in memory once read"):
        read_parquet(path, ReadLimits(max_bytes=3 * 1024 * 1024))
    frame = read_parquet(path, ReadLimits(max_bytes=5 * 1024 * 1024))
    assert frame["messages"][0][1]["content"] == "C" * 50_000  # decoded, not categories


def test_parquet_within_the_caps_reads_as_a_whole_read_did(tmp_path):
    path = tmp_path / "ok.parquet"
    messages = [[{"role": "user", "content": "hi"}], [], None]
    rows = {"instruction": ["a", "b", None], "score": [1, 2, 3], "messages": messages}
    pq.write_table(pa.table(rows), path, row_group_size=2)
    pd.testing.assert_frame_equal(read_table(path), pq.read_table(path).to_pandas())
    stored = tmp_path / "categorical.parquet"  # a file whose own schema says dictionary
    pq.write_table(pa.table({"text": pa.array(["p", "q", "p"]).dictionary_encode()}), stored)
    assert read_table(stored)["text"].tolist() == ["p", "q", "p"]
    assert str(read_table(stored)["text"].dtype) != "category"


TEXT_FILES = {  # extension -> (header, one row)
    ".jsonl": ("", '{"text": "row"}\n'),
    ".json": (None, None),
    ".csv": ("text\n", "row\n"),
    ".tsv": ("text\tlabel\n", "row\tx\n"),
    ".txt": ("", "row\n"),
}


def write_rows(path: Path, count: int) -> Path:
    if path.suffix == ".json":
        path.write_text(json.dumps([{"text": f"row {i}"} for i in range(count)]))
    else:
        header, row = TEXT_FILES[path.suffix]
        path.write_text(header + row * count)
    return path


@pytest.mark.parametrize("extension", TEXT_FILES)
def test_the_row_cap_holds_in_every_text_format(tmp_path, monkeypatch, extension):
    monkeypatch.setenv("FTUI_MAX_ROWS", "50")
    assert len(read_table(write_rows(tmp_path / f"ok{extension}", 50))) == 50
    with pytest.raises(DataError) as refused:
        read_table(write_rows(tmp_path / f"big{extension}", 51))
    assert f"big{extension}" in str(refused.value) and "more than 50 rows" in str(refused.value)
    assert "FTUI_MAX_ROWS" in str(refused.value)


def test_a_bad_cap_setting_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv("FTUI_MAX_DATA_MB", "lots")
    with pytest.raises(DataError, match="FTUI_MAX_DATA_MB='lots' is not a whole number"):
        read_table(write_rows(tmp_path / "a.jsonl", 2))


def test_hub_datasets_are_streamed_and_stop_at_the_caps(tmp_path):
    folder = tmp_path / "owner" / "name"  # datasets loads a local folder like a Hub repo
    folder.mkdir(parents=True)
    write_rows(folder / "train.jsonl", 30)
    assert len(load_hub_rows(str(folder), "train", ReadLimits(max_rows=30))) == 30
    with pytest.raises(DataError, match="more than 29 rows"):
        load_hub_rows(str(folder), "train", ReadLimits(max_rows=29))
    with pytest.raises(DataError, match="in memory once read"):
        load_hub_rows(str(folder), "train", ReadLimits(max_bytes=200))


def test_a_session_keeps_a_bounded_sample_not_the_frame(tokenizer, tmp_path):
    path = tmp_path / "many.jsonl"
    row = {"instruction": "I" * 5000, "output": "fine"}
    path.write_text("".join(json.dumps({**row, "n": i}) + "\n" for i in range(1500)))
    preview = load_preview(str(path), tokenizer=tokenizer, max_length=64)
    sample = preview.sample()
    assert len(preview.frame) == 1500 and sample.total_rows == 1500
    assert len(sample.rows) == SAMPLE_ROWS and sample.rows["n"].iloc[-1] == str(SAMPLE_ROWS - 1)
    assert max(sample.rows["instruction"].map(len)) == SAMPLE_CELL_CHARS
    assert 1 <= len(sample.examples) <= SAMPLE_ROWS
    kept = len(json.dumps(sample.examples)) + sample.rows.map(len).to_numpy().sum()
    assert kept < 500_000  # the whole dataset is 7.5 MB


def server_process(url: str) -> psutil.Process:
    port = url.rsplit(":", 1)[1]
    children = psutil.Process().children(recursive=True)
    return next(child for child in children if port in " ".join(child.cmdline()))


def peak_rss_during(process: psutil.Process, call) -> tuple[object, int]:
    """Run `call()` while a thread samples the process's RSS every 20 ms; (result, peak)."""
    peak, done = [process.memory_info().rss], threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], process.memory_info().rss)
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        result = call()
    finally:
        done.set()
        sampler.join()
    return result, peak[0]


@pytest.mark.slow
def test_a_parquet_bomb_is_refused_by_a_real_server_within_an_rss_bound(tmp_path):
    from gradio_client import Client

    from ftui.models import prepare_bundled_model
    from ftui.ui.data_tab import ALL_ROLES

    prepare_bundled_model()
    workspace = tmp_path / "workspace"
    (workspace / "uploads").mkdir(parents=True)
    write_parquet_bomb(workspace / "uploads" / "bomb.parquet")
    env = {**os.environ, "FTUI_MAX_UPLOAD_MB": "10"}
    with ftui_server(workspace, env, tmp_path / "server.log") as url:
        client = Client(url, verbose=False)

        def analyse(source: str) -> str:
            args = (source, "default", "auto", 1024, 0.1, *["(auto)"] * len(ALL_ROLES))
            return client.predict(*args, api_name="/analyse")[0]

        assert "format **alpaca**" in analyse(str(SAMPLES / "triage" / "validation.jsonl"))
        server = server_process(url)
        before = server.memory_info().rss  # tokenizer and first preview already loaded
        status, peak = peak_rss_during(server, lambda: analyse("uploads/bomb.parquet"))
    assert "cannot be used" in status and "bomb.parquet" in status
    assert "1,024 MB limit" in status and "FTUI_MAX_DATA_MB" in status
    grown = (peak - before) / 2**20
    print(f"server RSS {before / 2**20:.0f} MB before, peak {grown:+.0f} MB while refusing")
    assert grown < RSS_BOUND_MB, f"the server grew by {grown:.0f} MB while refusing the file"
