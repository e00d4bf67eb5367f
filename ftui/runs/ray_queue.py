"""The job queue's side of Ray: with FTUI_RAY_ADDRESS set, queued runs go to the Ray cluster
instead of this machine's GPU slots (ftui.runs.jobs calls these; ftui.runs.ray_engine talks
to Ray).

    device = check_fits_cluster(config)   # at submit and resume: "cuda" or "cpu", on the cluster
    job_id = place_run(run, row, gpus)    # in dispatch: one Ray job per queued run
    watch_ray_runs(runs)                  # in refresh: Ray's word on them; cancels' hard kill
    state = cancel_run(run, status)       # the cancel file first; "cancelled" when it never ran

The choice: every queued run is handed to Ray at once, and Ray holds the jobs that do not fit
yet (PENDING) and starts them as GPUs free up. ftui cannot know the free GPUs of a cluster
others may use as well, and a job waiting inside Ray starts the moment its GPUs are free,
without a poll from the web server. The cost: Ray has no priorities and no age limit, so
ftui's oldest-first rule and its no-starvation limit do not reach there. A run stays `queued`
in ftui.db only while Ray cannot be reached; the next dispatch tries it again.

The web server's own GPUs are not Ray's business, and the Ray cluster's are not the local
queue's: a Ray run's row has its `ray_job` and takes no local slot. Its `gpus` column reads
"ray: 2 GPUs" in the history and `ftui runs`; status.json has `gpus_requested`.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3

from ftui.config import ConfigError, FtuiConfig
from ftui.runs.ray_engine import PYTHON_VARIABLE, RayEngine, RayEngineError, ray_address
from ftui.runs.rundir import FINISHED, RunDir
from ftui.server.hub_auth import IMPLICIT_OFF, TOKEN_VARIABLES

# Settings of the web server that a job on a node should see too (none of them secret: a job's
# environment is readable through the jobs API). Tokens come from the nodes' own environment.
FORWARDED_VARIABLES = (
    "HF_HUB_OFFLINE",
    "HF_DATASETS_OFFLINE",
    "TRANSFORMERS_OFFLINE",
    "HF_HUB_DISABLE_TELEMETRY",
)
_ENGINES: dict[tuple[str, str | None], RayEngine] = {}


def ray_engine_for(address: str | None = None) -> RayEngine:
    """The engine of `address` (default $FTUI_RAY_ADDRESS), one per address and interpreter:
    its jobs client is kept between refreshes."""
    key = (address or ray_address() or "", os.environ.get(PYTHON_VARIABLE))
    if key not in _ENGINES:
        _ENGINES[key] = RayEngine(key[0] or None)
    return _ENGINES[key]


def placement_text(gpus: int) -> str:
    """What the history's gpus column says for a run on Ray: "ray: 2 GPUs", "ray: CPU"."""
    if not gpus:
        return "ray: CPU"
    return f"ray: {gpus} GPU{'s' if gpus != 1 else ''}"


def check_fits_cluster(config: FtuiConfig) -> str:
    """check() plus the cluster's rules, in place of check_runnable's local ones: the slot kind
    ("cuda" when model.device is cuda, or auto on a cluster with GPUs; else "cpu") and no more
    processes than the cluster has GPUs (or CPUs). Raises ConfigError, also when the cluster
    cannot be asked (nothing is queued then)."""
    config.check()
    engine = ray_engine_for()
    try:
        resources = engine.cluster_resources()
    except RayEngineError as exc:
        raise ConfigError(f"{exc}; nothing was queued: try again when Ray answers") from exc
    gpus, cpus = int(resources.get("GPU", 0)), int(resources.get("CPU", 0))
    device = config.model.device
    if device == "cuda" and not gpus:
        raise ConfigError(
            f"model.device is cuda, but the Ray cluster at {engine.address} has no GPU; set "
            "model.device to auto or cpu, or start a GPU node (ray start --address ...)"
        )
    kind = "cuda" if device == "cuda" or (device == "auto" and gpus) else "cpu"
    have, what = (gpus, "GPUs") if kind == "cuda" else (cpus, "CPUs")
    processes = config.train.num_processes
    if processes > have:
        raise ConfigError(
            f"train.num_processes: {processes} is more than the {have} {what} of the Ray "
            f"cluster at {engine.address}; use a whole number from 1 to {max(have, 1)}"
        )
    return kind


def job_environment(server_token: bool, env: dict[str, str] | None = None) -> dict[str, str]:
    """The variables a run's Ray job gets: the forwarded settings, and for a run started from
    the web (`server_token` False) no Hugging Face token, not even the node's own."""
    source = os.environ if env is None else env
    child = {name: source[name] for name in FORWARDED_VARIABLES if name in source}
    if not server_token:
        child.update({name: "" for name in TOKEN_VARIABLES})
        child[IMPLICIT_OFF] = "1"
    return child


def place_run(run: RunDir, row: sqlite3.Row, gpus: int) -> str:
    """Hand a queued run to Ray with `gpus` GPUs; return the Ray job id. Raises RayUnreachable
    (try again later), RayEngineError (Ray refused it), OSError or ValueError."""
    return ray_engine_for().submit(
        run,
        gpus=gpus,
        env=job_environment(bool(row["server_token"])),
        resume=bool(row["resume"]),
        cwd=row["cwd"],
    )


def watch_ray_runs(runs: list[RunDir]) -> None:
    """Bring the status.json of each running run Ray holds (engine "ray") up to date with
    Ray, before the queue reads them: the hard kill of a cancel that outlived its grace, then
    a job that ended without the trainer's word is recorded failed (or cancelled). Ray out of
    reach changes nothing; the next refresh asks again."""
    for run in runs:
        status = status_or_empty(run)
        if status.get("engine") != "ray" or status.get("state") in FINISHED:
            continue
        if not status.get("ray_job_id"):
            continue
        engine = ray_engine_for(status.get("ray_address"))
        with contextlib.suppress(RayEngineError, OSError, ValueError):
            engine.enforce_cancel(run)
            engine.check(run)


def status_or_empty(run: RunDir) -> dict:
    """status.json, or {} when it cannot be read (the queue marks that run failed)."""
    try:
        return run.read_status()
    except (OSError, ValueError):
        return {}


def cancel_run(run: RunDir, status: dict) -> str:
    """Ask a Ray run to stop (the cancel file; `ray job stop` at once for a job still waiting
    for GPUs); return "cancelled" when it ended at once, else "cancelling"."""
    engine = ray_engine_for(status.get("ray_address"))
    with contextlib.suppress(RayEngineError):  # the cancel file is written: the trainer stops
        engine.cancel(run)
    return "cancelled" if run.read_status().get("state") in FINISHED else "cancelling"
