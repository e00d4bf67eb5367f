"""`ftui data check` and `ftui model prepare`: look at a run's inputs before training."""

from __future__ import annotations

import argparse
import json

from ftui.cli.exits import EXIT_INVALID, EXIT_OK, refuse
from ftui.config import DataConfig, field_choices


def add_input_parsers(commands) -> None:
    data = commands.add_parser("data", help="dataset tools").add_subparsers(metavar="ACTION")
    check = data.add_parser("check", help="detect a dataset's format and list its problems")
    check.add_argument("file", help="a dataset file (.jsonl, .json, .csv, .tsv, .parquet or .txt)")
    check.add_argument(
        "--format", default="auto", choices=field_choices(DataConfig, "format"),
        help="the dataset's layout (default: detect it)",
    )  # fmt: skip
    check.add_argument("--json", action="store_true", help="machine-readable report")
    check.set_defaults(handler=check_data)

    model = commands.add_parser("model", help="model tools").add_subparsers(metavar="ACTION")
    prepare = model.add_parser("prepare", help="convert and cache a model ahead of time")
    prepare.add_argument(
        "name_or_path", nargs="?", default="default",
        help="'default' (the bundled model), a model folder or a Hub id",
    )  # fmt: skip
    prepare.set_defaults(handler=prepare_model)


def check_data(args: argparse.Namespace) -> int:
    """Exit 0 when the dataset is valid, 2 when it has problems."""
    from ftui.data.check import check_file

    report = check_file(args.file, format=args.format)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
    else:
        print(report.summary_text())
    return EXIT_OK if report.ok else EXIT_INVALID


def prepare_model(args: argparse.Namespace) -> int:
    from ftui.models import ModelLoadError, resolve_model_dir

    try:
        print(resolve_model_dir(args.name_or_path))
    except ModelLoadError as exc:
        return refuse(exc)
    return EXIT_OK
