"""The `ftui` command line: the same code paths as the UI.

    ftui serve [--host H] [--port P] [--workspace DIR]
    ftui data check FILE [--format F] [--json]      # exit 0 valid, 2 invalid
    ftui model prepare [MODEL]                      # convert/cache the bundled model now

Heavy libraries are imported inside the commands, so `ftui --help` is instant.
"""

from __future__ import annotations

import argparse
import json
import sys

from ftui.config import DataConfig, field_choices

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

    serve = commands.add_parser("serve", help="run the web app")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=7860)
    serve.add_argument("--workspace", default=None, help="folder for uploads and runs")
    serve.set_defaults(handler=_serve)

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
    return parser


def _serve(args: argparse.Namespace) -> int:
    from ftui.serve import serve

    serve(host=args.host, port=args.port, workspace_dir=args.workspace)
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
