"""`ftui estimate`: memory, time and cost of a config before training.

The config is a YAML file (or the defaults) with `--set KEY=VALUE` on top; the flags people
type most are short for one setting each (`--lora-r 8` is `--set method.lora_r=8`) and take
the same path, so the config checks every value. `--device`, `--gpu`, `--price` and
`--dataset-tokens` are the estimate's own inputs, not settings of a run.
"""

from __future__ import annotations

import argparse
import json
import math

from ftui.cli.exits import EXIT_OK, refuse
from ftui.cli.settings import add_set_option, add_setting_flag, config_with_settings
from ftui.config import FtuiConfig, count_cuda_devices, load_config
from ftui.estimate.dataset import DatasetSize, measure_dataset

SETTING_FLAGS = [  # (flag, dotted key, metavar)
    ("--model", "model.name_or_path", "ID_OR_PATH"),
    ("--method", "method.name", "METHOD"),
    ("--seq-len", "data.max_length", "N"),
    ("--batch-size", "train.batch_size", "B"),
    ("--lora-r", "method.lora_r", "R"),
    ("--lora-targets", "method.target_modules", "T"),
    ("--optimizer", "train.optimizer", "NAME"),
]
QUANT_METHODS = {"4bit": "qlora", "8bit": "lora_8bit"}


def add_estimate_parser(commands) -> None:
    estimate = commands.add_parser(
        "estimate",
        help="memory, time and cost before training",
        description="Estimate a config's peak memory, speed and cost without loading its\n"
        "weights (only the model's config.json is read).",
    )
    estimate.add_argument("config", nargs="?", help="a YAML config (default: the defaults)")
    for flag, key, metavar in SETTING_FLAGS:
        add_setting_flag(estimate, flag, key, metavar)
    add_setting_flag(estimate, "--gradient-checkpointing", "train.gradient_checkpointing")
    add_setting_flag(estimate, "--quant", "method.name", mapping=QUANT_METHODS)
    add_set_option(estimate)
    estimate.add_argument(
        "--device", choices=["cpu", "cuda"],
        help="where it would train (default: cuda with --gpu, else the config's model.device; "
        "auto = this machine's CUDA GPU if it has one, else its CPU)",
    )  # fmt: skip
    estimate.add_argument(
        "--gpu", metavar="NAME", help="GPU for time and cost, e.g. 'A100 80GB' (default H100)"
    )
    estimate.add_argument(
        "--price",
        type=non_negative(float),
        metavar="USD",
        help="price per GPU-hour in USD (default: the GPU's)",
    )
    estimate.add_argument(
        "--dataset-tokens", type=non_negative(int), metavar="N",
        help="tokens in one epoch, for the time and cost of an epoch (default: counted from "
        "the config's data.path with the model's tokenizer; 0 = leave the epoch out)",
    )  # fmt: skip
    estimate.add_argument("--json", action="store_true", help="machine-readable output")
    estimate.set_defaults(handler=run_estimate)


def non_negative(kind: type):
    """An argparse type: a finite `kind` (int or float) of 0 or more, else a clear refusal."""

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            wanted = "a whole number" if kind is int else "a number"
            raise argparse.ArgumentTypeError(f"{text!r} is not {wanted}") from None
        if not math.isfinite(value) or value < 0:
            raise argparse.ArgumentTypeError(f"{text} must be a number of 0 or more")
        return value

    return parse


def config_from_args(args: argparse.Namespace) -> FtuiConfig:
    """The YAML config (or the defaults), then the short flags and --set in command-line
    order, every rule checked by the config."""
    base = load_config(args.config) if args.config else None
    return config_with_settings(args.settings, base)


def run_estimate(args: argparse.Namespace) -> int:
    from ftui.cli.estimate_view import estimate_config, render_estimate
    from ftui.models import ModelLoadError

    try:
        config = config_from_args(args)
        dataset, note = dataset_of(config, args.dataset_tokens)
        estimate = estimate_config(
            config,
            device=args.device or ("cuda" if args.gpu else device_of(config)),
            gpu_name=args.gpu,
            dataset_tokens=dataset.tokens if dataset else args.dataset_tokens or 0,
            dataset_rows=dataset.rows if dataset else 0,
            longest_row_tokens=dataset.longest_tokens if dataset else 0,
            price=args.price,
        )
    except (ValueError, OSError, ModelLoadError) as exc:  # ConfigError is a ValueError
        return refuse(exc)
    if args.json:
        measured = dataset.to_dict() if dataset else None
        print(
            json.dumps({**estimate.to_dict(), "dataset": measured, "dataset_note": note}, indent=2)
        )
    else:
        print("\n".join([line for line in (note, render_estimate(estimate)) if line]))
    return EXIT_OK


def device_of(config: FtuiConfig) -> str:
    """The config's device; auto is this machine's: cuda when it has a CUDA GPU, else cpu."""
    if config.model.device != "auto":
        return config.model.device
    return "cuda" if count_cuda_devices() else "cpu"


def dataset_of(config: FtuiConfig, dataset_tokens: int | None) -> tuple[DatasetSize | None, str]:
    """The config's own dataset, measured, and a line about it; none when --dataset-tokens
    gives the epoch's size or there is no data.path. A dataset that cannot be read or
    tokenized leaves the epoch out with a note: the memory estimate does not need it."""
    from ftui.models import ModelLoadError

    if dataset_tokens is not None or not config.data.path:
        return None, ""
    try:
        size = measure_dataset(config)
    except (ValueError, OSError, ModelLoadError) as exc:
        return None, f"dataset not counted ({exc}); give --dataset-tokens N for the epoch"
    return size, size.describe()
