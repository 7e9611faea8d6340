"""The `tinycats` command. Each subcommand lives in its own module, parses its flags and calls
the library. A TinycatsError (a problem the user can fix) prints one line and exits non-zero
(TINYCATS_DEBUG=1 shows its traceback too); any other exception is a bug and shows its traceback."""

from __future__ import annotations

import argparse
import os
import sys
from typing import NoReturn

from tinycats import __version__
from tinycats.cli import (
    benchmark_cmd,
    classifier_cmd,
    data_cmd,
    demo_cmd,
    evaluate_cmd,
    export_cmd,
    sample_cmd,
    space_cmd,
    train_cmd,
    upload_cmd,
    web_cmd,
)
from tinycats.errors import TinycatsError, TrainingInterrupted, UsageError

COMMANDS = (
    demo_cmd,
    data_cmd,
    train_cmd,
    sample_cmd,
    export_cmd,
    benchmark_cmd,
    evaluate_cmd,
    classifier_cmd,
    upload_cmd,
    space_cmd,
    web_cmd,
)


class Parser(argparse.ArgumentParser):
    """argparse whose errors (a bad value, a missing or contradicting flag) are one line like every
    other error, instead of the usage block and a second line; the subcommands inherit it."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see `{self.prog} --help`)")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="tinycats",
        description="Train, sample and ship a tiny breed-conditional cat generator (TinyDiT + flow matching).",
    )
    parser.add_argument("--version", action="version", version=f"tinycats {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in COMMANDS:
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return int(args.run(args) or 0)
    except KeyboardInterrupt:
        print("tinycats: interrupted", file=sys.stderr)
        return 130
    except TinycatsError as exc:
        if os.environ.get("TINYCATS_DEBUG"):
            raise
        kind = "stopped" if isinstance(exc, TrainingInterrupted) else "error"
        print(f"tinycats: {kind}: {exc}", file=sys.stderr)
        return exc.exit_code
