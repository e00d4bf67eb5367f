"""10 concurrent gradio_client users browse while one job trains: no call fails.

A short run of benchmarks/concurrent_users.py (the full one measures for 60 s with the bundled
model): a real `ftui serve` subprocess on loopback, a tiny-model run training, and ten users
looping over the history, a run's curves, a preset preview and a sample's data preview.
"""

from __future__ import annotations

import importlib.util

import pytest
from conftest import REPO_ROOT

pytestmark = [pytest.mark.slow, pytest.mark.soak]  # minutes each: make test-soak


def _benchmark():
    path = REPO_ROOT / "benchmarks" / "concurrent_users.py"
    spec = importlib.util.spec_from_file_location("concurrent_users", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_ten_users_browse_while_a_job_trains_without_errors(tmp_path, tokenizer):
    result = _benchmark().measure(users=10, seconds=12, model="tiny", workspace=tmp_path)
    overall = result["overall"]
    assert overall["errors"] == 0, result["first_errors"]
    assert overall["calls"] >= 10 * 2, overall  # every user got through more than one call
    assert set(result["endpoints"]) == {"/list_runs", "/compare_runs", "/preview_run", "/analyse"}
    assert result["job"]["trained_throughout"], result["job"]
    assert overall["p95_ms"] > 0
