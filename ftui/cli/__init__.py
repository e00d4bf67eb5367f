"""The `ftui` command line: the same code paths as the UI.

    ftui serve [--host H] [--port P] [--workspace DIR] [--auth-file F]  # team mode if users
    ftui users add NAME [--admin] [--password-stdin] [--workspace DIR | --auth-file F]
    ftui users remove NAME | ftui users list           # the team-mode users file
    ftui data check FILE [--format F] [--json]      # exit 0 valid, 2 invalid
    ftui model prepare [MODEL]                      # convert/cache the bundled model now
    ftui estimate [CONFIG.yaml] [--set KEY=VALUE ...] [--gpu NAME] [--json]
    ftui train CONFIG.yaml [--set KEY=VALUE ...] [--workspace DIR] [--owner NAME] [--wait]
    ftui train --resume RUN [--workspace DIR] [--wait]  # continue a failed/cancelled run
    ftui runs [--workspace DIR] [--json]                # history and queue
    ftui cancel RUN [--workspace DIR]                   # stop; hard kill after a grace period
    ftui delete RUN [--workspace DIR]                   # remove a finished run and its files
    ftui eval RUN [--limit N] [--json] [--forgetting] [--report FILE.html] [--workspace DIR]
    ftui export RUN --merge --out DIR [--push REPO_ID] [--workspace DIR]  # token: $HF_TOKEN
    ftui export RUN --gguf f16|q8_0 --out DIR   # one GGUF file + an Ollama Modelfile

`--set train.epochs=3` changes any setting of the config (repeatable); `ftui train --help`
lists them all with their defaults and allowed values. `ftui estimate` also takes short flags
for the common ones (--model, --method, --seq-len, --batch-size, --lora-r, --lora-targets,
--optimizer, --gradient-checkpointing, --quant 4bit|8bit) and the estimate's own inputs
(--device, --gpu, --price, --dataset-tokens).

Heavy libraries are imported inside the commands, so `ftui --help` is instant. A command
refused for bad input exits with 2 and says why on stderr.
"""

from __future__ import annotations

import argparse

from ftui.cli.estimate import add_estimate_parser
from ftui.cli.exits import EXIT_INVALID, EXIT_OK
from ftui.cli.inputs import add_input_parsers
from ftui.cli.runs import add_run_parsers
from ftui.cli.serving import add_serve_parser, add_users_parser

__all__ = ["EXIT_INVALID", "EXIT_OK", "build_parser", "main"]


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "handler"):
        parser.print_help()
        return EXIT_INVALID
    return args.handler(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ftui", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(metavar="COMMAND")
    add_serve_parser(commands)
    add_users_parser(commands)
    add_input_parsers(commands)
    add_estimate_parser(commands)
    add_run_parsers(commands)
    return parser
