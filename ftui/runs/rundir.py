"""A run directory: the contract between the training subprocess and whoever watches it.

    runs/<id>/
        config.yaml     the resolved config, secrets masked
        status.json     state (queued|running|completed|failed|cancelled), pid, heartbeat, error
        metrics.jsonl   one JSON line per logged step, appended by the trainer's callback
        train.log       the subprocess's stdout and stderr
        checkpoints/    the trainer's output_dir (checkpoint-<step>/)
        adapter/        the final PEFT adapter and tokenizer (full fine-tuning: model/)
        cancel          present when someone asked the run to stop

Writers replace status.json atomically (write a temp file, then rename), so a reader never
sees half a file. Readers skip a metrics line that is still being written.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ftui.config import FtuiConfig, config_to_yaml, load_config
from ftui.workspace import Workspace

LOG_WINDOW_BYTES = 64 * 1024
LOG_WINDOW_MAX_BYTES = 4 * 1024 * 1024
# ECMA-48 escape sequences: CSI (colours, cursor moves, erase), OSC (titles, links), and the
# two-byte ones; then the C0/C1 controls a terminal would act on rather than print.
ESCAPE_SEQUENCE = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]|\x9b[0-?]*[ -/]*[@-~]"
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[()*+][0-9A-Za-z]|\x1b[@-Z\\-_=>78]"
)
CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b-\x0c\x0e-\x1f\x7f-\x9f]")
# A tqdm bar ("desc: 40%|████      | 2/5 [00:01<00:02, 1.5it/s]") and one without a total
# ("desc: 7it [00:02, 3.1it/s]"); the description and total name the bar.
PROGRESS_BAR = re.compile(r"^(?P<desc>.*?)\s*\d{1,3}%\|[^|]*\|\s*\S+/(?P<total>\S+)\s+\[")
PROGRESS_COUNT = re.compile(r"^(?P<desc>.*?)\s*[\d.]+[kMGT]?\s?[A-Za-z/]* \[\d+:\d+(?::\d+)?, ")

STATES = ("queued", "running", "completed", "failed", "cancelled")
FINISHED = ("completed", "failed", "cancelled")


class StatusUnreadable(ValueError):
    """status.json exists but cannot be read (invalid JSON, no permission, not an object)."""


@dataclass(frozen=True)
class RunDir:
    path: Path

    @property
    def run_id(self) -> str:
        return self.path.name

    @property
    def config_path(self) -> Path:
        return self.path / "config.yaml"

    @property
    def status_path(self) -> Path:
        return self.path / "status.json"

    @property
    def metrics_path(self) -> Path:
        return self.path / "metrics.jsonl"

    @property
    def log_path(self) -> Path:
        return self.path / "train.log"

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def adapter(self) -> Path:
        return self.path / "adapter"

    @property
    def model(self) -> Path:
        return self.path / "model"

    @property
    def cancel_path(self) -> Path:
        return self.path / "cancel"

    @property
    def output(self) -> Path | None:
        """The saved adapter or model folder, when the run has saved one."""
        for folder in (self.adapter, self.model):
            if (folder / "config.json").is_file() or (folder / "adapter_config.json").is_file():
                return folder
        return None

    # ------------------------------------------------------------ cancel

    def request_cancel(self) -> None:
        self.cancel_path.write_text(str(time.time()), encoding="utf-8")

    def cancel_requested(self) -> bool:
        return self.cancel_path.exists()

    def cancel_requested_at(self) -> float | None:
        try:
            return float(self.cancel_path.read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError):
            return None

    # ------------------------------------------------------------ checkpoints

    def last_checkpoint(self) -> tuple[Path, int] | None:
        """The newest complete checkpoint and its step, or None.

        The trainer writes trainer_state.json last, so a checkpoint folder without a readable
        one (the process died while saving) is skipped.
        """
        found = [(step, folder) for folder, step in self._checkpoint_steps() if step is not None]
        if not found:
            return None
        step, folder = max(found)
        return folder, step

    def incomplete_checkpoints(self) -> list[Path]:
        """Checkpoint folders whose save never finished (no matching trainer_state.json)."""
        return [folder for folder, step in self._checkpoint_steps() if step is None]

    def _checkpoint_steps(self) -> list[tuple[Path, int | None]]:
        """(folder, step) per checkpoint-<step> folder; step None when it is incomplete."""
        found = []
        for folder in self.checkpoints.glob("checkpoint-*"):
            step = folder.name.removeprefix("checkpoint-")
            if not step.isdigit():
                continue
            try:
                state = json.loads((folder / "trainer_state.json").read_text(encoding="utf-8"))
            except (OSError, ValueError):
                state = {}
            complete = isinstance(state, dict) and state.get("global_step") == int(step)
            found.append((folder, int(step) if complete else None))
        return found

    def log_tail(self, lines: int = 40) -> str:
        """The last lines of train.log as a reader would see them in a terminal: escape
        sequences (colours, cursor moves) removed, each progress bar at its latest state.

        Reads the file's end, and more of it while the cleaned text has fewer lines than
        asked for (a log of progress-bar redraws cleans down to a few lines), up to 4 MiB.
        """
        window = LOG_WINDOW_BYTES
        while True:
            try:
                text, whole = _read_end(self.log_path, window)
            except FileNotFoundError:
                return ""
            rows = terminal_lines(text)
            if whole or len(rows) >= lines or window >= LOG_WINDOW_MAX_BYTES:
                return "\n".join(rows[-lines:])
            window *= 4

    # ------------------------------------------------------------ config

    def write_config(self, config: FtuiConfig) -> None:
        _write_atomic(self.config_path, config_to_yaml(config), create_folder=True)

    def read_config(self) -> FtuiConfig:
        return load_config(self.config_path)

    # ------------------------------------------------------------ status

    def write_status(self, state: str, **fields: Any) -> dict[str, Any]:
        """Replace status.json, keeping earlier fields (pid, started) unless given anew.

        An unreadable old file is replaced rather than kept; a run folder that is gone stays
        gone (FileNotFoundError), so a deleted run is never recreated by its own processes.
        """
        if state not in STATES:
            raise ValueError(f"unknown run state {state!r}; one of {', '.join(STATES)}")
        try:
            earlier = self.read_status()
        except StatusUnreadable:
            earlier = {}
        status = {**earlier, **fields, "state": state, "updated": time.time()}
        _write_atomic(self.status_path, json.dumps(status, indent=2))
        return status

    def read_status(self) -> dict[str, Any]:
        """status.json as a dict; {} when there is none yet. Raises StatusUnreadable."""
        try:
            status = json.loads(self.status_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:  # permission, invalid JSON or UTF-8
            raise StatusUnreadable(f"{self.status_path} cannot be read: {exc}") from exc
        if not isinstance(status, dict):
            raise StatusUnreadable(f"{self.status_path} does not hold a JSON object")
        return status

    def heartbeat(self) -> None:
        status = self.read_status()
        self.write_status(status.get("state", "running"), heartbeat=time.time())

    # ------------------------------------------------------------ metrics

    def append_metrics(self, record: dict[str, Any]) -> None:
        with self.metrics_path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")

    def keep_metrics_up_to(self, step: int) -> None:
        """Drop metrics after `step`: a resumed run logs those steps again."""
        kept = [record for record in self.read_metrics() if record.get("step", 0) <= step]
        _write_atomic(self.metrics_path, "".join(json.dumps(r) + "\n" for r in kept))

    def read_metrics(self) -> list[dict[str, Any]]:
        try:
            lines = self.metrics_path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return []
        records = []
        for line in lines:
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # the last line may be mid-write
        return records


def terminal_lines(text: str) -> list[str]:
    """Log text as a terminal would leave it: escape sequences removed, each carriage-return
    rewrite (a progress bar's redraw) reduced to its last state, one line per progress bar
    (the latest, where it was last drawn), blank lines dropped; everything else kept."""
    text = CONTROL_CHARACTERS.sub("", ESCAPE_SEQUENCE.sub("", text.replace("\r\n", "\n")))
    drawn_rows: list[tuple[str, tuple | None]] = []  # (row, the progress bar it shows)
    latest: dict[tuple, int] = {}  # progress bar -> index of its last state
    for line in text.split("\n"):
        drawn = [part for part in line.split("\r") if part.strip()]
        if not drawn:
            continue
        row = drawn[-1].rstrip()
        bar = _progress_bar(row)
        if bar is not None:
            latest[bar] = len(drawn_rows)
        drawn_rows.append((row, bar))
    return [
        row for index, (row, bar) in enumerate(drawn_rows) if bar is None or latest[bar] == index
    ]


def _progress_bar(row: str) -> tuple[str, str | None] | None:
    """(description, total) when the row is a tqdm progress bar, else None."""
    match = PROGRESS_BAR.match(row)
    if match:
        return match["desc"].strip().rstrip(":"), match["total"]
    match = PROGRESS_COUNT.match(row)
    if match:
        return match["desc"].strip().rstrip(":"), None
    return None


def _read_end(path: Path, window: int) -> tuple[str, bool]:
    """The file's last `window` bytes as text, starting at a whole line; and whether that
    is the whole file."""
    with path.open("rb") as handle:
        handle.seek(0, os.SEEK_END)
        size = handle.tell()
        handle.seek(max(0, size - window))
        data = handle.read()
    whole = size <= window
    if not whole:  # the first line is cut: start after it
        data = data[data.find(b"\n") + 1 :] if b"\n" in data else b""
    return data.decode("utf-8", errors="replace"), whole


def new_run_id(name: str) -> str:
    """A sortable, unique-enough id: UTC time to the millisecond plus a short safe name."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S-%f")[:-3]
    short = re.sub(r"[^A-Za-z0-9_-]+", "-", name).strip("-")[:32] or "run"
    return f"{stamp}-{short}"


def create_run_dir(config: FtuiConfig, workspace: Workspace) -> RunDir:
    """runs/<id>/ with config.yaml and a queued status."""
    while True:
        path = workspace.runs / new_run_id(config.name)
        try:
            path.mkdir(parents=True)
            break
        except FileExistsError:
            time.sleep(0.002)
    run = RunDir(path)
    run.write_config(config)
    run.write_status("queued", created=time.time())
    return run


def _write_atomic(path: Path, text: str, create_folder: bool = False) -> None:
    if create_folder:
        path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
