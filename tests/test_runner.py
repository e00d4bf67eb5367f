"""The runner's pure parts: trainer commands for one or several processes, liveness, and the
words a failed run ends with. (Real processes are in test_jobs.py.)"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from ftui.config import FtuiConfig, TrainConfig
from ftui.runs.rundir import RunDir
from ftui.runs.runner import (
    _death_message,
    is_alive,
    supervise,
    trainer_command,
    trainer_devices,
)


def test_trainer_command_for_one_process_torchrun_on_cpu_and_accelerate_on_gpus(tmp_path):
    run = RunDir(tmp_path / "run")
    one = trainer_command(run, FtuiConfig(), "cpu", resume=False)
    assert one == [sys.executable, "-m", "ftui", "train", str(run.path)]

    two = FtuiConfig(train=TrainConfig(num_processes=2))
    cpu = trainer_command(run, two, "cpu", resume=True)
    assert cpu[1:4] == ["-m", "torch.distributed.run", "--standalone"]
    assert "--nproc_per_node=2" in cpu and cpu[-2:] == [str(run.path), "--resume"]

    gpu = trainer_command(run, two, "cuda", resume=False)
    assert gpu[1:3] == ["-m", "accelerate.commands.launch"] and "--multi_gpu" in gpu
    assert gpu[gpu.index("--num_processes") + 1] == "2"
    fsdp = FtuiConfig(train=TrainConfig(num_processes=4, accelerate_config="fsdp.yaml"))
    with_file = trainer_command(run, fsdp, "cuda", resume=False)
    assert with_file[with_file.index("--config_file") + 1] == "fsdp.yaml"
    assert "--multi_gpu" not in with_file


@pytest.mark.slow
def test_is_alive_sees_live_dead_and_zombie_processes():
    assert is_alive(os.getpid())
    assert not is_alive(None) and not is_alive(0)
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    while not os.path.exists(f"/proc/{child.pid}/stat") or "Z" not in _state(child.pid):
        pass  # exited but not yet reaped: a zombie
    assert not is_alive(child.pid)
    child.wait()
    assert not is_alive(child.pid)


def _state(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[-1].split()[0]
    except OSError:
        return "Z"


def test_death_message_names_the_signal_the_checkpoint_and_the_log(tmp_path):
    run = RunDir(tmp_path)
    run.log_path.write_text("loading\nstep 7\n", encoding="utf-8")
    killed = _death_message(-signal.SIGKILL, "the checkpoint at step 5 is kept", run)
    assert killed.startswith("The trainer was killed by SIGKILL (often the system's out-of-memory")
    assert "step 5 is kept" in killed and killed.endswith("loading\nstep 7")
    crashed = _death_message(3, "no checkpoint was saved", run)
    assert crashed.startswith("The trainer exited with code 3 before finishing")


@pytest.mark.slow
def test_out_of_memory_message_gives_the_estimators_fixes(tmp_path, monkeypatch):
    from ftui.estimate import gpus
    from ftui.runs import train

    t4 = next(gpu for gpu in gpus.CATALOG if gpu.name.startswith("T4"))
    monkeypatch.setattr(gpus, "local_gpu", lambda: t4)
    config = FtuiConfig()
    config.method.name = "full"
    config.train.batch_size = 64
    config.data.max_length = 2048
    run = RunDir(tmp_path)
    run.write_config(config)
    message = train._out_of_memory_message(run)
    assert message.startswith("Out of GPU memory")
    assert "- " in message and "needs" in message and "GB" in message


@pytest.mark.parametrize(
    ("visible", "gpus", "processes", "pinned"),
    [
        ("3,5,7", 0, 1, "3"),  # one process: one GPU, not DataParallel over three
        ("3,5,7", 0, 2, "3,5"),
        (None, 4, 1, "0"),  # nothing set: the machine's first GPU by index
        (None, 4, 3, "0,1,2"),
        ("GPU-aa, GPU-bb", 0, 1, "GPU-aa"),  # UUIDs are kept as written
    ],
)
def test_a_gpu_run_is_pinned_to_as_many_gpus_as_it_has_processes(
    monkeypatch, visible, gpus, processes, pinned
):
    monkeypatch.setattr("ftui.runs.runner.count_cuda_devices", lambda: gpus)
    config = FtuiConfig(train=TrainConfig(num_processes=processes))
    env = {} if visible is None else {"CUDA_VISIBLE_DEVICES": visible}
    assert trainer_devices(config, "cuda", env)["CUDA_VISIBLE_DEVICES"] == pinned


def test_a_cpu_run_or_a_machine_without_gpus_keeps_its_environment(monkeypatch):
    monkeypatch.setattr("ftui.runs.runner.count_cuda_devices", lambda: 0)
    env = {"PATH": "/bin", "CUDA_VISIBLE_DEVICES": "1,2"}
    assert trainer_devices(FtuiConfig(), "cpu", env) == env
    assert "CUDA_VISIBLE_DEVICES" not in trainer_devices(FtuiConfig(), "cuda", {"PATH": "/x"})


@pytest.mark.slow
def test_the_supervised_trainer_runs_in_the_pinned_environment(tmp_path):
    from ftui.runs.rundir import create_run_dir
    from ftui.workspace import Workspace

    run = create_run_dir(FtuiConfig(name="pinned"), Workspace.open(tmp_path / "workspace"))
    show = "import os; print('visible=' + os.environ['CUDA_VISIBLE_DEVICES'])"
    env = trainer_devices(FtuiConfig(), "cuda", {**os.environ, "CUDA_VISIBLE_DEVICES": "4,6"})
    supervise(run, [sys.executable, "-c", show], env)
    assert "visible=4\n" in run.log_path.read_text(encoding="utf-8")
