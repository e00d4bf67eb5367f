"""The run commands: train, runs, cancel, delete, eval, export, and the hidden supervise.

`ftui train CONFIG --set KEY=VALUE` queues a run of the YAML with the settings on top (every
rule checked by the config); the run's config.yaml is written from the result, so it shows
them. A resumed run keeps the config it started with, so --set is refused there.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ftui.cli.exits import EXIT_FAILED, EXIT_OK, refuse
from ftui.cli.settings import add_set_option, config_with_settings

if TYPE_CHECKING:
    from ftui.workspace import Workspace

WORKSPACE_HELP = "the workspace folder (default ./workspace)"
RUN_HELP = "run id (`ftui runs` lists them) or its folder, WORKSPACE/runs/<id>"


def add_run_parsers(commands) -> None:
    _add_train_parser(commands)
    runs = commands.add_parser("runs", help="list runs: history and queue")
    runs.add_argument("--workspace", default=None, metavar="DIR", help=WORKSPACE_HELP)
    runs.add_argument("--json", action="store_true", help="machine-readable output")
    runs.set_defaults(handler=list_runs)
    for name, help in (
        ("cancel", "stop a running or queued run (what it trained is saved)"),
        ("delete", "delete a finished run and its files"),
    ):
        action = commands.add_parser(name, help=help)
        action.add_argument("run", help=RUN_HELP)
        action.add_argument("--workspace", default=None, metavar="DIR", help=WORKSPACE_HELP)
        action.set_defaults(handler=cancel_or_delete, action=name)
    _add_eval_parser(commands)
    _add_export_parser(commands)
    supervise = commands.add_parser("supervise")  # no help: not listed (runner.launch's own)
    supervise.add_argument("run_dir", help="the run folder to supervise")
    supervise.set_defaults(handler=supervise_run)


def _add_train_parser(commands) -> None:
    train = commands.add_parser(
        "train",
        help="queue a training run (it runs in the background)",
        description="Queue a run of a YAML config, with --set changes on top; print its id.",
    )
    train.add_argument(
        "target", nargs="?", help="a YAML config (a run folder trains in this process)"
    )
    add_set_option(train)
    train.add_argument("--workspace", default=None, metavar="DIR", help=WORKSPACE_HELP)
    train.add_argument("--owner", default="local", metavar="NAME", help="who the run belongs to")
    train.add_argument("--wait", action="store_true", help="wait for the run to finish")
    train.add_argument(
        "--resume", nargs="?", const=True, metavar="RUN",
        help="continue a failed or cancelled run (its id) from its last checkpoint, with the "
        "config it started with",
    )  # fmt: skip
    train.set_defaults(handler=train_command)


def _add_eval_parser(commands) -> None:
    evaluate = commands.add_parser("eval", help="score base, few-shot and fine-tuned answers")
    evaluate.add_argument("run", help=RUN_HELP)
    evaluate.add_argument("--limit", type=int, default=None, help="validation rows to score")
    evaluate.add_argument("--workspace", default=None, metavar="DIR", help=WORKSPACE_HELP)
    evaluate.add_argument("--json", action="store_true", help="machine-readable output")
    evaluate.add_argument("--forgetting", action="store_true", help="also run the forgetting check")
    evaluate.add_argument("--report", help="write a self-contained HTML report to this file")
    evaluate.set_defaults(handler=evaluate_run_command)


def _add_export_parser(commands) -> None:
    export = commands.add_parser(
        "export", help="merge a run's adapter and save, push or write it as GGUF"
    )
    export.add_argument("run", help=RUN_HELP)
    export.add_argument("--merge", action="store_true", help="merge the adapter (safetensors)")
    export.add_argument(
        "--gguf", metavar="FORMAT",
        help="write one GGUF file and an Ollama Modelfile: f16 or q8_0 (q4_k_m with "
        "llama.cpp's llama-quantize installed)",
    )  # fmt: skip
    export.add_argument("--out", required=True, help="folder inside the workspace")
    export.add_argument(
        "--push", metavar="REPO_ID", help="push to this Hub repo ($HF_TOKEN or `hf auth login`)"
    )
    export.add_argument("--workspace", default=None, metavar="DIR", help=WORKSPACE_HELP)
    export.set_defaults(handler=export_run)


def train_command(args: argparse.Namespace) -> int:
    if args.target and (Path(args.target) / "config.yaml").is_file():
        if args.settings:
            return refuse(
                f"--set does not apply to a run folder: {args.target} trains with its own "
                "config.yaml"
            )
        from ftui.runs.train import train_run_dir  # the trainer subprocess's side

        return train_run_dir(args.target, resume=args.resume is True)
    if isinstance(args.resume, str) and args.settings:
        return refuse(
            f"--set does not apply to --resume: run {args.resume} continues with the config it "
            f"started with; to change settings, start a new run from it: ftui train "
            f"WORKSPACE/runs/{args.resume}/config.yaml --set KEY=VALUE"
        )
    if not (args.target or isinstance(args.resume, str)):
        return refuse("give a config file, or --resume RUN")
    return _queue_run(args)


def _queue_run(args: argparse.Namespace) -> int:
    from ftui.config import ConfigError, load_config
    from ftui.runs.jobs import JobError, Jobs
    from ftui.runs.runner import wait_for
    from ftui.workspace import Workspace

    jobs = Jobs(Workspace.open(args.workspace))
    try:
        if isinstance(args.resume, str):
            jobs.resume(args.resume)
            run = jobs.run_dir(args.resume)
        else:
            config = config_with_settings(args.settings, load_config(args.target))
            run = jobs.submit(config, owner=args.owner)
    except (ConfigError, JobError) as exc:
        return refuse(exc)
    print(run.run_id, flush=True)
    if not args.wait:
        return EXIT_OK
    status = wait_for(run)
    if status["state"] != "completed":
        print(f"run {status['state']}: {status.get('error') or run.log_path}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def list_runs(args: argparse.Namespace) -> int:
    from ftui.runs.jobs import Jobs
    from ftui.workspace import Workspace

    jobs = Jobs(Workspace.open(args.workspace))
    jobs.refresh()
    rows = jobs.list()
    if args.json:
        print(json.dumps(rows, indent=2))
        return EXIT_OK
    print(f"{'run':44} {'state':10} {'gpus':7} {'method':8} {'steps':>5} {'eval loss':>9}  owner")
    for row in rows:
        state = row["state"] + (f" #{row['position']}" if "position" in row else "")
        eval_loss = f"{row['eval_loss']:.4f}" if row["eval_loss"] is not None else "-"
        steps = row["steps"] if row["steps"] is not None else "-"
        gpus, method, owner = row["gpus"] or "-", row["method"], row["owner"]
        print(f"{row['id']:44} {state:10} {gpus:7} {method:8} {steps:>5} {eval_loss:>9}  {owner}")
    return EXIT_OK


def run_target(target: str, workspace: str | None) -> tuple[Workspace, str]:
    """(workspace, run id) of a run named by its id or by its folder. A folder
    (WORKSPACE/runs/<id>, relative or absolute) belongs to the workspace two levels up;
    --workspace, when given as well, has to be that one. Raises JobError saying what is wrong."""
    from ftui.runs.jobs import JobError
    from ftui.workspace import Workspace

    folder = Path(target).expanduser()
    looks_like_path = any(sep in target for sep in ("/", "\\")) or target in (".", "..")
    if not (looks_like_path or (folder / "config.yaml").is_file()):
        return Workspace.open(workspace), target
    folder = folder.resolve()
    if not (folder / "config.yaml").is_file():
        raise JobError(f"{target} is not a run folder (it has no config.yaml); give a run id or "
                       "a WORKSPACE/runs/<id> folder")  # fmt: skip
    if folder.parent.name != "runs":
        raise JobError(f"{target} is not inside a workspace's runs/ folder (WORKSPACE/runs/<id>)")
    root = folder.parent.parent
    if workspace and Path(workspace).expanduser().resolve() != root:
        raise JobError(
            f"{target} belongs to the workspace {root}, not {workspace}; leave out --workspace "
            "or give the run id"
        )
    return Workspace.open(root), folder.name


def cancel_or_delete(args: argparse.Namespace) -> int:
    from ftui.runs.jobs import JobError, Jobs

    try:
        workspace, run_id = run_target(args.run, args.workspace)
        jobs = Jobs(workspace)
        if args.action == "cancel":
            print(jobs.cancel(run_id))
        else:
            jobs.delete(run_id)
            print("deleted")
    except JobError as exc:
        return refuse(exc)
    return EXIT_OK


def evaluate_run_command(args: argparse.Namespace) -> int:
    from ftui.cli.eval_view import render_summary
    from ftui.evaluate.batch import evaluate_run
    from ftui.evaluate.forgetting import forgetting_check_run
    from ftui.evaluate.report import report_html
    from ftui.runs.jobs import JobError, Jobs

    try:
        workspace, run_id = run_target(args.run, args.workspace)
        jobs = Jobs(workspace)
        jobs.get(run_id)
        run = jobs.run_dir(run_id)
        report = evaluate_run(run, limit=args.limit)
        forgetting = forgetting_check_run(run) if args.forgetting else None
    except (JobError, ValueError) as exc:
        return refuse(exc)
    if args.report:
        Path(args.report).write_text(report_html(run, report, forgetting), encoding="utf-8")
    summary = {k: v for k, v in report.items() if k != "examples"}
    if args.json:
        print(json.dumps({**summary, "forgetting": forgetting}, indent=2))
    else:
        print(render_summary(report))
    return EXIT_OK


def export_run(args: argparse.Namespace) -> int:
    from ftui.export import compare_latency, merge_run, push_to_hub
    from ftui.runs.jobs import JobError, Jobs
    from ftui.server.hub_auth import server_token
    from ftui.workspace import PathOutsideWorkspace

    if not (args.merge or args.gguf):
        return refuse("say what to export: --merge, --gguf FORMAT, or both")
    if args.push and not args.merge:
        return refuse("--push uploads the merged folder: add --merge")
    try:
        workspace, run_id = run_target(args.run, args.workspace)
        jobs = Jobs(workspace)
        jobs.get(run_id)
        run = jobs.run_dir(run_id)
        if args.gguf:
            _export_gguf(run, workspace.resolve(args.out), args.gguf)
        if not args.merge:
            return EXIT_OK
        folder = merge_run(run, workspace.resolve(args.out))
        print(f"merged model saved to {folder}")
        if run.output == run.adapter:
            timing = compare_latency(run, folder)
            print(
                f"latency per token: {timing['unmerged_seconds_per_token'] * 1000:.1f} ms "
                f"base + adapter, {timing['merged_seconds_per_token'] * 1000:.1f} ms merged"
            )
        if args.push:
            print(push_to_hub(folder, args.push, server_token()))  # the CLI: the owner's token
    except (JobError, ValueError, PathOutsideWorkspace, RuntimeError) as exc:
        return refuse(exc)
    return EXIT_OK


def _export_gguf(run, out: Path, format: str) -> None:
    """Write the GGUF, printing progress to stderr every tenth; GgufUnsupported is a
    ValueError, so the caller refuses it with its message."""
    from ftui.gguf_export import describe_export, export_gguf

    shown = [-1]

    def progress(fraction: float, text: str) -> None:
        if int(fraction * 10) > shown[0]:
            shown[0] = int(fraction * 10)
            print(f"[ftui] GGUF {format}: {fraction:.0%} {text}", file=sys.stderr, flush=True)

    print(describe_export(export_gguf(run, out, format, progress)))


def supervise_run(args: argparse.Namespace) -> int:
    """The detached supervisor of one run (started by ftui.runs.runner.launch)."""
    from ftui.runs.rundir import RunDir
    from ftui.runs.runner import supervise_queued_run

    return supervise_queued_run(RunDir(Path(args.run_dir).resolve()))
