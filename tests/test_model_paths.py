"""Model paths a web caller names stay inside the folders the server loads models from.

Unit tests of `ftui.models.confine_model_source` (the workspace, the model caches and
$FTUI_MODEL_DIRS; Hub ids and 'default' pass; a path refuses the same way whether or not it
exists), of its use in `resolve_model_dir`, `load_tokenizer`, `params.load_architecture` and
the Train tab's `start_run`; then, through a real `ftui serve`, the model box: `/etc`, `/root`
and `../../` are refused with the message, the bundled model and a model folder inside the
workspace work.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
from conftest import REPO_ROOT, SAMPLES, ftui_server, start_run_param, train_form

from ftui.models import (
    MODEL_DIRS_VARIABLE,
    ModelLoadError,
    ModelPathRefused,
    allow_model_roots,
    cache_dir,
    confine_model_source,
    load_tokenizer,
    resolve_model_dir,
    web_model_roots,
)
from ftui.params import load_architecture
from ftui.runs.jobs import Jobs
from ftui.workspace import Workspace

OUTSIDE = ("/etc", "/root", "../../", "/etc/passwd", "/no/such/folder", "~", "a/../../../etc")


@pytest.fixture
def workspace(tmp_path) -> Workspace:
    return Workspace.open(tmp_path / "workspace")


@pytest.fixture
def confined(workspace):
    """This process loads models only from the web roots of `workspace` (as `ftui serve`),
    with no admin folders (whatever $FTUI_MODEL_DIRS holds here)."""
    allow_model_roots(web_model_roots(workspace.root, env={}))
    yield workspace
    allow_model_roots(None)


def copy_model(source: Path, target: Path) -> Path:
    shutil.copytree(source, target)
    return target


def test_without_roots_any_path_goes_as_for_the_cli():
    for name in ("/etc", "../../", "org/model", "default"):
        assert confine_model_source(name) == name


def test_hub_ids_and_the_bundled_model_pass(workspace):
    roots = [workspace.root]
    for name in ("default", "", "HuggingFaceTB/SmolLM2-135M-Instruct", "gpt2", "org/m-1.5b"):
        assert confine_model_source(name, roots) == name


@pytest.mark.parametrize("name", OUTSIDE)
def test_paths_outside_the_roots_are_refused_with_what_to_do(workspace, name):
    with pytest.raises(ModelPathRefused) as refused:
        confine_model_source(name, [workspace.root])
    message = str(refused.value)
    assert repr(name) in message and "outside the folders this server loads models from" in message
    assert "Copy the model folder into the workspace" in message
    assert MODEL_DIRS_VARIABLE in message


def test_a_missing_path_refuses_like_an_existing_one(workspace):
    """No existence oracle: /etc and a made-up folder get the same words."""

    def words(name: str) -> str:
        with pytest.raises(ModelPathRefused) as refused:
            confine_model_source(name, [workspace.root])
        return str(refused.value).replace(repr(name), "NAME")

    assert words("/etc") == words("/no/such/folder-xyz")


def test_folders_inside_the_roots_pass_resolved(workspace, tiny_model_dir):
    model = copy_model(tiny_model_dir, workspace.root / "models" / "tiny")
    roots = [workspace.root]
    assert confine_model_source(str(model), roots) == str(model)
    assert confine_model_source("models/tiny", roots) == str(model)  # relative to the workspace
    assert confine_model_source(str(model / "config.json"), roots) == str(model / "config.json")


def test_a_link_out_of_the_workspace_is_refused(workspace, tiny_model_dir):
    link = workspace.root / "models" / "linked"
    link.parent.mkdir(parents=True)
    link.symlink_to(tiny_model_dir)
    with pytest.raises(ModelPathRefused):
        confine_model_source(str(link), [workspace.root])
    with pytest.raises(ModelPathRefused):
        confine_model_source("models/linked", [workspace.root])


def test_web_roots_hold_the_workspace_caches_and_the_admins_folders(workspace, tmp_path):
    from huggingface_hub import constants

    extra, other = tmp_path / "shared-models", tmp_path / "more"
    env = {MODEL_DIRS_VARIABLE: f"{extra}{os.pathsep} {os.pathsep}{other}"}
    roots = web_model_roots(workspace.root, env)
    assert roots == [workspace.root, cache_dir(), Path(constants.HF_HUB_CACHE), extra, other]
    (extra / "m").mkdir(parents=True)
    assert confine_model_source(str(extra / "m"), roots) == str((extra / "m").resolve())
    assert web_model_roots(workspace.root, {}) == roots[:3]


def test_loaders_enforce_the_process_roots(confined, tiny_model_dir):
    outside = str(tiny_model_dir)  # a real model folder, but outside the workspace
    for load in (resolve_model_dir, load_tokenizer, load_architecture):
        with pytest.raises(ModelPathRefused, match="outside the folders"):
            load(outside)
    inside = copy_model(tiny_model_dir, confined.root / "models" / "tiny")
    assert resolve_model_dir("models/tiny") == str(inside)
    assert load_architecture(str(inside)).num_hidden_layers == 3
    assert load_tokenizer("models/tiny") is not None


def test_start_run_refuses_a_model_outside_and_queues_nothing(confined):
    from ftui.server.demo import DemoLimits
    from ftui.ui.run_config import CURRENT_SELECTION, start_run, start_values

    jobs = Jobs(confined)
    dataset = {"ok": True, "source": str(SAMPLES / "triage" / "train.jsonl"), "format": "auto"}
    values = start_values(CURRENT_SELECTION, REPO_ROOT / "presets", dataset)
    for name in ("/etc", "../../"):
        settings = {"model.name_or_path": name}
        message, run_id = start_run(
            jobs, CURRENT_SELECTION, values, dataset, settings, REPO_ROOT / "presets", "local",
            demo=DemoLimits(),
        )  # fmt: skip
        assert run_id is None and "Cannot start" in message and "outside the folders" in message
    assert jobs.list() == []


def test_a_refusal_is_a_model_load_error_so_every_caller_shows_it():
    assert issubclass(ModelPathRefused, ModelLoadError)


# ------------------------------------------------------------------ through a real server


@pytest.mark.slow
def test_the_model_box_of_a_real_server_is_confined(tmp_path, tiny_model_dir):
    from gradio_client import Client

    from ftui.models import prepare_bundled_model
    from ftui.runs.runner import wait_for

    prepare_bundled_model()
    workspace = Workspace.open(tmp_path / "workspace")
    inside = copy_model(tiny_model_dir, workspace.root / "models" / "tiny")
    env = {**os.environ, "FTUI_MODEL_DIRS": ""}
    with ftui_server(workspace.root, env, tmp_path / "server.log") as url:
        client = Client(url + "/", verbose=False)
        for name in ("/etc", "/root", "../../"):
            assert "outside the folders" in analyse(client, name), name
            assert "outside the folders" in estimate(client, name), name
            assert "outside the folders" in start(client, name), name
        for name in ("default", str(inside), "models/tiny"):
            assert "no token statistics" not in analyse(client, name), name
            assert "trainable parameters" in estimate(client, name), name
        started = start(client, "models/tiny")
        assert "Started" in started, started
    run_id = re.search(r"as `([^`]+)`", started).group(1)
    run = Jobs(workspace).run_dir(run_id)
    assert run.read_config().model.name_or_path == str(inside)  # the path that was checked
    assert wait_for(run, 240)["state"] == "completed"  # no trainer is left running


def analyse(client, model: str) -> str:
    """The Data tab's status line for the triage sample with this model box."""
    source = str(SAMPLES / "triage" / "train.jsonl")
    return client.predict(source, model, api_name="/analyse")[0]


def estimate(client, model: str) -> str:
    """The Method tab's parameter-count panel for this model box."""
    return client.predict(param_0=model, api_name="/method_estimate")[0]


def start(client, model: str) -> str:
    """Start a 2-step run of the current selection (the last analysed dataset)."""
    form = train_form("Current selection", "confined", max_steps=2, eval_every=100, save_every=100)
    message, _ = client.predict(
        *form, **{start_run_param("model.name_or_path"): model}, api_name="/start_run"
    )
    return message
