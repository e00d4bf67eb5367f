"""The Train tab's log tail reads like a terminal: no escape sequences, one line per progress bar.

The logs are written by the real libraries: tqdm itself (with and without colours, a nested
bar, a message written through the bar) and transformers' ProgressCallback, the code that
draws the Trainer's bars and prints its logs, in a subprocess whose stderr goes to a file as
the runner's does. `RunDir.log_tail` must strip every control sequence, keep only the last
state of each bar and keep every other line in its order.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from tqdm import tqdm

from ftui.runs.rundir import RunDir, terminal_lines

CONTROL = ("\x1b", "\r", "\x07", "\x08")


def tqdm_log(path: Path, colour: str | None) -> None:
    """Five steps of a bar named train, a message at step 3 and a nested bar inside it."""
    with path.open("w", encoding="utf-8") as out:
        bar = tqdm(total=5, file=out, mininterval=0, colour=colour, desc="train")
        for step in range(5):
            bar.update(1)
            if step == 2:
                bar.write("{'loss': 1.5}", file=out)
                inner = tqdm(total=3, file=out, mininterval=0, leave=False, desc="eval")
                for _ in range(3):
                    inner.update(1)
                inner.close()
        bar.close()
        print("done", file=out)


def assert_plain(text: str) -> None:
    assert not any(char in text for char in CONTROL), repr(text)


@pytest.mark.parametrize("colour", [None, "green"])
def test_a_real_tqdm_bar_collapses_to_its_last_state(tmp_path, colour):
    run = RunDir(tmp_path)
    tqdm_log(run.log_path, colour)
    raw = run.log_path.read_bytes()  # bytes: read_text would turn each \r into a newline
    assert b"\r" in raw and (b"\x1b[32m" in raw) == (colour is not None)  # what tqdm wrote

    tail = run.log_tail(20)
    assert_plain(tail)
    lines = tail.splitlines()
    assert lines[0] == "{'loss': 1.5}"
    assert lines[1].startswith("eval: 100%|") and "| 3/3 [" in lines[1]
    assert lines[2].startswith("train: 100%|") and "| 5/5 [" in lines[2]
    assert lines[3] == "done"
    assert len(lines) == 4, "no earlier states of either bar, no blank lines"


def test_the_trainers_progress_and_logs_from_a_subprocess(tmp_path):
    """transformers' ProgressCallback draws the bars and prints the logs as in a real run."""
    script = textwrap.dedent(
        """
        from types import SimpleNamespace
        from transformers.trainer_callback import ProgressCallback

        state = SimpleNamespace(is_world_process_zero=True, max_steps=6, global_step=0)
        bar = ProgressCallback()
        bar.on_train_begin(None, state, None)
        for step in range(1, 7):
            state.global_step = step
            bar.on_step_end(None, state, None)
            bar.on_log(None, state, None, logs={"loss": 2.0 / step, "step": step})
            if step % 3 == 0:
                for _ in range(4):
                    bar.on_prediction_step(None, state, None, eval_dataloader=[0] * 4)
                bar.on_evaluate(None, state, None)
                bar.on_log(None, state, None, logs={"eval_loss": 1.0 / step})
        bar.on_train_end(None, state, None)
        print("[ftui] saved", flush=True)
        """
    )
    run = RunDir(tmp_path)
    with run.log_path.open("w") as log:  # as the runner starts the trainer: a file, no pipe
        subprocess.run(
            [sys.executable, "-c", script], stdout=log, stderr=subprocess.STDOUT, check=True,
            timeout=120,
        )  # fmt: skip
    assert run.log_path.read_bytes().count(b"\r") > 10

    lines = run.log_tail(40).splitlines()
    assert_plain("\n".join(lines))
    logs = [line for line in lines if line.startswith("{")]
    assert [line.split(",")[0].rstrip("}") for line in logs] == [
        "{'loss': '2'", "{'loss': '1'", "{'loss': '0.6667'", "{'eval_loss': '0.3333'",
        "{'loss': '0.5'", "{'loss': '0.4'", "{'loss': '0.3333'", "{'eval_loss': '0.1667'",
    ]  # fmt: skip
    bars = [line for line in lines if "%|" in line]
    assert len(bars) == 2, bars  # the training bar and the (reused) eval bar, once each
    assert any("| 6/6 [" in line and line.lstrip().startswith("100%") for line in bars)
    assert sum("/4 [" in line for line in bars) == 1  # drawn at 0/4 only: tqdm's mininterval
    assert lines[-1] == "[ftui] saved"


def test_other_escape_sequences_go_and_other_lines_stay():
    text = (
        "\x1b]0;window title\x07plain | pipes | kept\n"
        "\x1b[1;31mred error\x1b[0m\x1b[K\n"
        "\n   \n"
        "line one\x1b[2A\x1b[1G\n"
        "tab\tkept\r\n"
        "Map:  50%|#####     | 5/10 [00:01<00:01, 5.0 examples/s]\rMap: 100%|##########| 10/10"
        " [00:02<00:00, 5.0 examples/s]\n"
        "Tokenizing: 7it [00:02, 3.1it/s]\rTokenizing: 9it [00:03, 3.0it/s]\n"
        "step 9 of 10\n"
        "Tokenizing: 12it [00:04, 3.0it/s]\n"
    )
    assert terminal_lines(text) == [
        "plain | pipes | kept",
        "red error",
        "line one",
        "tab\tkept",
        "Map: 100%|##########| 10/10 [00:02<00:00, 5.0 examples/s]",
        "step 9 of 10",
        "Tokenizing: 12it [00:04, 3.0it/s]",
    ]


def test_a_long_log_of_redraws_still_gives_the_lines_asked_for(tmp_path):
    """Half a megabyte of one bar's redraws after 30 log lines: the tail reads further back
    (the first 64 KiB clean down to one line) and starts at a whole line."""
    run = RunDir(tmp_path)
    with run.log_path.open("w", encoding="utf-8") as out:
        for index in range(30):
            out.write(f"message {index} " + "x" * 40 + "\n")
        bar = tqdm(total=20_000, file=out, mininterval=0, miniters=1, desc="steps")
        for _ in range(6000):
            bar.update(1)
        out.write("\n")
    assert run.log_path.stat().st_size > 256 * 1024

    lines = run.log_tail(10).splitlines()
    assert len(lines) == 10
    assert lines[:9] == [f"message {index} " + "x" * 40 for index in range(21, 30)]
    assert lines[9].startswith("steps:  30%|") and "6000/20000" in lines[9]


def test_no_log_yet_is_an_empty_tail(tmp_path):
    assert RunDir(tmp_path).log_tail() == ""
