"""The first page must not wait for heavy libraries: building the app imports no torch."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("torch", "transformers", "peft", "trl", "bitsandbytes", "datasets", "accelerate")


@pytest.mark.slow
def test_building_the_app_imports_no_heavy_library(tmp_path):
    code = (
        "import sys\n"
        "from ftui.server.serve import server_settings\n"
        f"settings = server_settings({str(tmp_path)!r})\n"
        "from ftui.ui.app import build_app\n"
        "build_app(settings)\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert result.stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.slow
def test_cli_help_lists_the_commands():
    result = subprocess.run(
        [sys.executable, "-m", "ftui", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    for command in ("serve", "data", "model"):
        assert command in result.stdout
