"""The Data tab through the app's own API with gradio_client, against the real server.

Checks what a user of the API (or a crafted request) gets: server-side limits and path
confinement hold whatever the browser shows.
"""

from __future__ import annotations

import pytest
from conftest import SAMPLES

from ftui.ui.data_tab import ALL_ROLES as ROLES

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def analyse(app_server):
    from gradio_client import Client

    client = Client(app_server[0], verbose=False)

    def call(source: str, fmt: str = "auto", max_length: int = 1024, columns=None) -> str:
        """Load a source like the Load button; a format or mapping re-analyses like the menus."""
        mapped = [(columns or {}).get(role, "(auto)") for role in ROLES]
        endpoint = "/reanalyse" if fmt != "auto" or columns else "/analyse"
        result = client.predict(source, "default", fmt, max_length, 0.1, *mapped, api_name=endpoint)
        return result[0]  # the status markdown

    return call


def test_sample_is_detected_with_rows_and_token_statistics(analyse):
    status = analyse(str(SAMPLES / "triage" / "validation.jsonl"))
    assert "format **alpaca**" in status and "60 rows" in status
    assert "Tokens per example" in status


def test_truncation_count_follows_max_length(analyse):
    status = analyse(str(SAMPLES / "triage" / "validation.jsonl"), max_length=96)
    assert "would be truncated" in status and "**0** rows" not in status


@pytest.mark.parametrize("source", ["/etc/passwd", "../../../etc/hostname"])
def test_paths_outside_the_workspace_are_refused(analyse, source):
    status = analyse(source)
    assert "cannot be used" in status and "outside" in status


def test_files_in_hidden_folders_of_the_workspace_are_refused(analyse, app_server):
    """.private holds the logins; a file there that reads as data must still not be shown."""
    secret = app_server[1] / ".private-test" / "rows.jsonl"
    secret.parent.mkdir(exist_ok=True)
    secret.write_text('{"instruction": "password", "output": "hunter2"}\n' * 3)
    for source in (".private-test/rows.jsonl", str(secret)):
        status = analyse(source)
        assert "cannot be used" in status and "hidden folder" in status, status
        assert "hunter2" not in status
    shown = analyse("uploads/../.private-test/rows.jsonl")
    assert "hidden folder" in shown and "hunter2" not in shown


def test_oversize_file_in_the_workspace_is_refused(analyse, app_server):
    big = app_server[1] / "uploads" / "big.jsonl"
    row = '{"instruction": "%s", "output": "ok"}\n' % ("x" * 1000)
    big.write_text(row * 3000)  # ~3 MB; the server runs with FTUI_MAX_UPLOAD_MB=2
    status = analyse("uploads/big.jsonl")
    assert "cannot be used" in status and "MB" in status


def test_unreachable_hub_dataset_is_a_clear_error(analyse):
    status = analyse("nobody-here/no-such-dataset")
    assert "cannot be used" in status and "no-such-dataset" in status


def test_forced_wrong_format_is_explained(analyse):
    status = analyse(str(SAMPLES / "triage" / "validation.jsonl"), fmt="chat")
    assert "cannot be used" in status and "messages" in status


def test_column_mapping_rescues_unusual_column_names(analyse, tmp_path, app_server):
    odd = app_server[1] / "uploads" / "odd.csv"
    odd.write_text("ask,reply\nHow do I reset it?,Hold the button for 10 seconds.\n" * 3)
    assert "cannot be used" in analyse("uploads/odd.csv")
    mapped = analyse(
        "uploads/odd.csv", fmt="prompt_completion", columns={"prompt": "ask", "completion": "reply"}
    )
    assert "format **prompt_completion**" in mapped and "cannot be used" not in mapped
