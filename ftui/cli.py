"""The `ftui` command line: the same code paths as the UI.

    ftui serve [--host H] [--port P] [--workspace DIR] [--auth-file F]  # team mode if users
    ftui users add NAME [--admin] [--password-stdin] [--workspace DIR | --auth-file F]
    ftui users remove NAME | ftui users list           # the team-mode users file
    ftui data check FILE [--format F] [--json]      # exit 0 valid, 2 invalid
    ftui model prepare [MODEL]                      # convert/cache the bundled model now
    ftui estimate CONFIG.yaml [--gpu NAME] [--json]
    ftui train CONFIG.yaml [--workspace DIR] [--owner NAME] [--wait]  # queue; prints the id
    ftui train --resume RUN [--workspace DIR] [--wait]  # continue a failed/cancelled run
    ftui runs [--workspace DIR] [--json]                # history and queue
    ftui cancel RUN [--workspace DIR]                   # stop; hard kill after a grace period
    ftui delete RUN [--workspace DIR]                   # remove a finished run and its files
    ftui eval RUN [--limit N] [--json] [--forgetting] [--report FILE.html] [--workspace DIR]
    ftui export RUN --merge --out DIR [--push REPO_ID] [--workspace DIR]  # token: $HF_TOKEN
    ftui estimate --model ID_OR_PATH --method M [--seq-len N --batch-size B --lora-r R
                  --lora-targets T --quant 4bit|8bit --gradient-checkpointing --optimizer O
                  --device cpu|cuda --gpu NAME --price USD] [--json]

Heavy libraries are imported inside the commands, so `ftui --help` is instant.
"""

from __future__ import annotations

import argparse
import json
import sys

from ftui.config import DataConfig, MethodConfig, TrainConfig, field_choices

EXIT_OK = 0
EXIT_INVALID = 2


def main(argv: list[str] | None = None) -> int:
    parser = _build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "handler"):
        parser.print_help()
        return EXIT_INVALID
    return args.handler(args)


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ftui", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(metavar="COMMAND")

    serve = commands.add_parser(
        "serve",
        help="run the web app",
        description="Modes: local (no users file), users (a users file), hf (FTUI_AUTH=hf on a "
        "Space with hf_oauth), demo (FTUI_DEMO=1). See the README's security section.",
    )
    serve.add_argument(
        "--host", default="127.0.0.1",
        help="address to bind; a network address without logins is warned about",
    )  # fmt: skip
    serve.add_argument("--port", type=int, default=7860)
    serve.add_argument("--workspace", default=None, help="folder for uploads and runs")
    serve.add_argument(
        "--auth-file", default=None,
        help="users file for team mode (default WORKSPACE/.private/users.json when it exists)",
    )  # fmt: skip
    serve.set_defaults(handler=_serve)
    _add_users_parser(commands)

    data = commands.add_parser("data", help="dataset tools").add_subparsers(metavar="ACTION")
    check = data.add_parser("check", help="detect a dataset's format and list its problems")
    check.add_argument("file")
    check.add_argument("--format", default="auto", choices=field_choices(DataConfig, "format"))
    check.add_argument("--json", action="store_true", help="machine-readable report")
    check.set_defaults(handler=_data_check)

    model = commands.add_parser("model", help="model tools").add_subparsers(metavar="ACTION")
    prepare = model.add_parser("prepare", help="convert and cache a model ahead of time")
    prepare.add_argument("name_or_path", nargs="?", default="default")
    prepare.set_defaults(handler=_model_prepare)

    _add_estimate_parser(commands)
    _add_train_parser(commands)
    _add_runs_parsers(commands)
    return parser


def _add_users_parser(commands) -> None:
    users = commands.add_parser("users", help="team mode: who may log in").add_subparsers(
        metavar="ACTION"
    )
    add = users.add_parser("add", help="add a user, or set their password and role")
    add.add_argument("name")
    add.add_argument("--admin", action="store_true", help="may cancel or delete anyone's run")
    add.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    remove = users.add_parser("remove", help="remove a user (their sessions end at once)")
    remove.add_argument("name")
    listing = users.add_parser("list", help="list users and roles")
    for action, command in ((add, "add"), (remove, "remove"), (listing, "list")):
        action.add_argument("--workspace", default=None)
        action.add_argument(
            "--auth-file", default=None, help="default WORKSPACE/.private/users.json"
        )
        action.set_defaults(handler=_users, action=command)


def _add_train_parser(commands) -> None:
    train = commands.add_parser("train", help="queue a training run (it runs in the background)")
    train.add_argument(
        "target", nargs="?", help="a YAML config (a run folder trains in this process)"
    )
    train.add_argument("--workspace", default=None, help="folder for runs (default ./workspace)")
    train.add_argument("--owner", default="local", help="who the run belongs to")
    train.add_argument("--wait", action="store_true", help="wait for the run to finish")
    train.add_argument(
        "--resume", nargs="?", const=True, metavar="RUN",
        help="continue a failed or cancelled run (its id) from its last checkpoint",
    )  # fmt: skip
    train.set_defaults(handler=_train)


def _add_runs_parsers(commands) -> None:
    runs = commands.add_parser("runs", help="list runs: history and queue")
    runs.add_argument("--workspace", default=None)
    runs.add_argument("--json", action="store_true")
    runs.set_defaults(handler=_runs)
    for name, help in (
        ("cancel", "stop a running or queued run (what it trained is saved)"),
        ("delete", "delete a finished run and its files"),
    ):
        action = commands.add_parser(name, help=help)
        action.add_argument("run", help="run id")
        action.add_argument("--workspace", default=None)
        action.set_defaults(handler=_run_action, action=name)
    evaluate = commands.add_parser("eval", help="score base, few-shot and fine-tuned answers")
    evaluate.add_argument("run", help="run id")
    evaluate.add_argument("--limit", type=int, default=None, help="validation rows to score")
    evaluate.add_argument("--workspace", default=None)
    evaluate.add_argument("--json", action="store_true")
    evaluate.add_argument("--forgetting", action="store_true", help="also run the forgetting check")
    evaluate.add_argument("--report", help="write a self-contained HTML report to this file")
    evaluate.set_defaults(handler=_eval)
    export = commands.add_parser("export", help="merge a run's adapter and save or push it")
    export.add_argument("run", help="run id")
    export.add_argument("--merge", action="store_true", required=True, help="merge the adapter")
    export.add_argument("--out", required=True, help="folder inside the workspace")
    export.add_argument(
        "--push", metavar="REPO_ID", help="push to this Hub repo ($HF_TOKEN or `hf auth login`)"
    )
    export.add_argument("--workspace", default=None)
    export.set_defaults(handler=_export)
    supervise = commands.add_parser("supervise", help=argparse.SUPPRESS)
    supervise.add_argument("run_dir")
    supervise.set_defaults(handler=_supervise)


def _add_estimate_parser(commands) -> None:
    estimate = commands.add_parser("estimate", help="memory, time and cost before training")
    estimate.add_argument("config", nargs="?", help="a YAML config (or use the flags)")
    estimate.add_argument("--model", help="Hub id, model folder, config.json or 'default'")
    estimate.add_argument("--method", choices=field_choices(MethodConfig, "name"))
    estimate.add_argument("--seq-len", type=int)
    estimate.add_argument("--batch-size", type=int)
    estimate.add_argument("--lora-r", type=int)
    estimate.add_argument("--lora-targets", help="all-linear or q_proj,v_proj,...")
    estimate.add_argument("--quant", choices=["4bit", "8bit"])
    estimate.add_argument("--gradient-checkpointing", action="store_true", default=None)
    estimate.add_argument("--optimizer", choices=field_choices(TrainConfig, "optimizer"))
    estimate.add_argument("--device", choices=["cpu", "cuda"], default="cuda")
    estimate.add_argument("--gpu", help="GPU for time and cost, e.g. 'A100 80GB' (default H100)")
    estimate.add_argument("--price", type=float, help="price per GPU-hour in USD")
    estimate.add_argument("--dataset-tokens", type=int, default=0, help="tokens in one epoch")
    estimate.add_argument("--json", action="store_true")
    estimate.set_defaults(handler=_estimate)


def _serve(args: argparse.Namespace) -> int:
    from ftui.config import ConfigError
    from ftui.server.auth import AuthError
    from ftui.server.serve import serve

    try:
        serve(args.host, args.port, workspace_dir=args.workspace, auth_file=args.auth_file)
    except (AuthError, ConfigError) as exc:  # a wrong login setup or a malformed FTUI_DEMO_*
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INVALID
    return EXIT_OK


def _users(args: argparse.Namespace) -> int:
    import getpass

    from ftui.server.auth import AuthError, UserFile, users_file_path
    from ftui.workspace import Workspace

    users = UserFile(users_file_path(Workspace.open(args.workspace).root, args.auth_file))
    try:
        if args.action == "list":
            for user in users.users():
                print(f"{user.name}\t{user.role}")
            return EXIT_OK
        if args.action == "remove":
            users.remove(args.name)
            print(f"removed {args.name} from {users.path}")
            return EXIT_OK
        if args.password_stdin:
            password = sys.stdin.readline().rstrip("\r\n")
        else:
            password = getpass.getpass(f"password for {args.name}: ")
            if getpass.getpass("again: ") != password:
                print("error: the passwords differ", file=sys.stderr)
                return EXIT_INVALID
        users.add(args.name, password, "admin" if args.admin else "user")
    except AuthError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INVALID
    role = "admin" if args.admin else "user"
    print(f"{args.name} ({role}) saved in {users.path}; `ftui serve` now asks for a login")
    return EXIT_OK


def _data_check(args: argparse.Namespace) -> int:
    from ftui.data.check import check_file

    report = check_file(args.file, format=args.format)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
    else:
        print(report.summary_text())
    return EXIT_OK if report.ok else EXIT_INVALID


def _model_prepare(args: argparse.Namespace) -> int:
    from ftui.models import ModelLoadError, resolve_model_dir

    try:
        print(resolve_model_dir(args.name_or_path))
    except ModelLoadError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INVALID
    return EXIT_OK


def _estimate(args: argparse.Namespace) -> int:
    from ftui.estimate.cli_view import estimate_from_args, render_estimate
    from ftui.models import ModelLoadError

    try:
        estimate = estimate_from_args(args)
    except (ValueError, OSError, ModelLoadError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INVALID
    if args.json:
        print(json.dumps(estimate.to_dict(), indent=2))
    else:
        print(render_estimate(estimate))
    return EXIT_OK


def _train(args: argparse.Namespace) -> int:
    from pathlib import Path

    if args.target and (Path(args.target) / "config.yaml").is_file():
        from ftui.runs.train import train_run_dir  # the trainer subprocess's side

        return train_run_dir(args.target, resume=args.resume is True)

    from ftui.config import ConfigError, load_config
    from ftui.runs.jobs import JobError, Jobs
    from ftui.runs.runner import wait_for
    from ftui.workspace import Workspace

    jobs = Jobs(Workspace.open(args.workspace))
    try:
        if isinstance(args.resume, str):
            jobs.resume(args.resume)
            run = jobs.run_dir(args.resume)
        elif args.target:
            run = jobs.submit(load_config(args.target), owner=args.owner)
        else:
            print("error: give a config file, or --resume RUN", file=sys.stderr)
            return EXIT_INVALID
    except (ConfigError, JobError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INVALID
    print(run.run_id, flush=True)
    if not args.wait:
        return EXIT_OK
    status = wait_for(run)
    if status["state"] != "completed":
        print(f"run {status['state']}: {status.get('error') or run.log_path}", file=sys.stderr)
        return 1
    return EXIT_OK


def _runs(args: argparse.Namespace) -> int:
    from ftui.runs.jobs import Jobs
    from ftui.workspace import Workspace

    jobs = Jobs(Workspace.open(args.workspace))
    jobs.refresh()
    rows = jobs.list()
    if args.json:
        print(json.dumps(rows, indent=2))
        return EXIT_OK
    print(f"{'run':44} {'state':10} {'method':8} {'steps':>5} {'eval loss':>9}  owner")
    for row in rows:
        state = row["state"] + (f" #{row['position']}" if "position" in row else "")
        eval_loss = f"{row['eval_loss']:.4f}" if row["eval_loss"] is not None else "-"
        steps = row["steps"] if row["steps"] is not None else "-"
        method, owner = row["method"], row["owner"]
        print(f"{row['id']:44} {state:10} {method:8} {steps:>5} {eval_loss:>9}  {owner}")
    return EXIT_OK


def _run_action(args: argparse.Namespace) -> int:
    from ftui.runs.jobs import JobError, Jobs
    from ftui.workspace import Workspace

    jobs = Jobs(Workspace.open(args.workspace))
    try:
        if args.action == "cancel":
            print(jobs.cancel(args.run))
        else:
            jobs.delete(args.run)
            print("deleted")
    except JobError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INVALID
    return EXIT_OK


def _eval(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ftui.evaluate.batch import evaluate_run
    from ftui.evaluate.forgetting import forgetting_check_run
    from ftui.evaluate.report import report_html
    from ftui.evaluate.view import render_summary
    from ftui.runs.jobs import JobError, Jobs
    from ftui.workspace import Workspace

    jobs = Jobs(Workspace.open(args.workspace))
    try:
        jobs.get(args.run)
        run = jobs.run_dir(args.run)
        report = evaluate_run(run, limit=args.limit)
        forgetting = forgetting_check_run(run) if args.forgetting else None
    except (JobError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INVALID
    if args.report:
        Path(args.report).write_text(report_html(run, report, forgetting), encoding="utf-8")
    summary = {k: v for k, v in report.items() if k != "examples"}
    if args.json:
        print(json.dumps({**summary, "forgetting": forgetting}, indent=2))
    else:
        print(render_summary(report))
    return EXIT_OK


def _export(args: argparse.Namespace) -> int:
    from ftui.export import compare_latency, merge_run, push_to_hub
    from ftui.runs.jobs import JobError, Jobs
    from ftui.server.hub_auth import server_token
    from ftui.workspace import PathOutsideWorkspace, Workspace

    workspace = Workspace.open(args.workspace)
    jobs = Jobs(workspace)
    try:
        jobs.get(args.run)
        run = jobs.run_dir(args.run)
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
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INVALID
    return EXIT_OK


def _supervise(args: argparse.Namespace) -> int:
    """The detached supervisor of one run (started by ftui.runs.runner.launch)."""
    from pathlib import Path

    from ftui.runs.jobs import Jobs, device_key
    from ftui.runs.rundir import RunDir
    from ftui.runs.runner import supervise, trainer_command
    from ftui.workspace import Workspace

    run = RunDir(Path(args.run_dir).resolve())
    config = run.read_config()
    resume = bool(run.read_status().get("resume"))
    code = supervise(run, trainer_command(run, config, device_key(config), resume))
    Jobs(Workspace(run.path.parent.parent)).dispatch()  # the next queued run, if any
    return code
