"""The `tinycats` command. Each subcommand lives in its own module, parses its flags and calls
the library; errors a user can fix print one line and exit non-zero (TINYCATS_DEBUG=1 shows the
traceback)."""

from __future__ import annotations

import argparse
import os
import sys

from tinycats import __version__
from tinycats.cli import (
    benchmark_cmd,
    classifier_cmd,
    data_cmd,
    demo_cmd,
    evaluate_cmd,
    export_cmd,
    sample_cmd,
    train_cmd,
    upload_cmd,
    web_cmd,
)
from tinycats.errors import TrainingDiverged, TrainingInterrupted

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
    web_cmd,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tinycats",
        description="Train, sample and ship a tiny breed-conditional cat generator (TinyDiT + flow matching).",
    )
    parser.add_argument("--version", action="version", version=f"tinycats {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in COMMANDS:
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except KeyboardInterrupt:
        print("tinycats: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a user-facing message for anything the library reports
        if os.environ.get("TINYCATS_DEBUG") or not isinstance(exc, (ValueError, OSError, TrainingDiverged, TrainingInterrupted)):
            raise
        kind = "stopped" if isinstance(exc, TrainingInterrupted) else "error"
        print(f"tinycats: {kind}: {exc}", file=sys.stderr)
        return getattr(exc, "exit_code", 2)
