"""tinycats demo: the whole job on toy cats, offline, on a CPU."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help="the whole job on toy cats, offline: render, train, sample every breed, evaluate (7-15 min on 2 cores)",
        description="Render toy cats to OUT/data, train the cpu-demo preset into OUT/checkpoints, train the breed classifier "
        "OUT/classifier.pt, sample every breed "
        "into OUT/samples/<Class>/ with OUT/samples/overview.png, evaluate (OUT/evaluation_report.json, .md) and write "
        "OUT/summary.md.",
    )
    p.add_argument("--out", default="demo", help="output folder (default: demo)")
    p.add_argument("--config", default="cpu-demo", help="training preset (default: cpu-demo)")
    p.add_argument("--steps", type=int, help="override the preset's training steps (e.g. 50 for a smoke run)")
    p.add_argument("--device", default="cpu", help="cpu (default), cuda or auto")
    p.add_argument(
        "--compile",
        action=argparse.BooleanOptionalAction,
        help="torch.compile the network (the preset's choice unless given; on a CPU it needs a C++ compiler)",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from tinycats.demo import run_demo

    summary = run_demo(args.out, args.config, args.steps, args.device, args.compile)
    print(f"demo done: see {summary}")
    return 0
