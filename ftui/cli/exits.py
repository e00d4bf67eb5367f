"""The CLI's exit codes, and how a refused command says why."""

from __future__ import annotations

import sys

EXIT_OK = 0
EXIT_FAILED = 1  # the command ran, but what it waited for failed (a run, with --wait)
EXIT_INVALID = 2  # bad input: the message says which value and what to do


def refuse(reason: object) -> int:
    """Print `error: REASON` on stderr; return EXIT_INVALID for the command to return."""
    print(f"error: {reason}", file=sys.stderr)
    return EXIT_INVALID
