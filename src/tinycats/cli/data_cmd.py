"""tinycats data ...: make, fetch and check data sets."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="make, fetch and check data sets", description="Make, fetch and check data sets.")
    data_sub = p.add_subparsers(dest="data_command", metavar="ACTION", required=True)

    s = data_sub.add_parser(
        "synth",
        help="render the procedural toy-cats data set (offline)",
        description="Render toy cats: 13 classes (12 breeds + Other) as OUT/train/<Class>/*.png and OUT/test/<Class>/*.png. "
        "Deterministic per seed.",
    )
    s.add_argument("out", metavar="OUT", help="output folder, e.g. data/toycats")
    s.add_argument("--per-class", type=int, default=200, help="training images per class (default: 200)")
    s.add_argument("--test-per-class", type=int, default=40, help="test images per class (default: 40)")
    s.add_argument("--image-size", type=int, default=64, help="pixels, 16 to 256 (default: 64)")
    s.add_argument("--seed", type=int, default=0, help="the same seed renders the same images (default: 0)")
    s.add_argument("--workers", type=int, help="processes (default: one per CPU core)")
    s.set_defaults(run=run_synth)


def run_synth(args: argparse.Namespace) -> int:
    from tinycats.data.synth import write_dataset

    counts = write_dataset(args.out, args.per_class, args.test_per_class, args.image_size, args.seed, args.workers)
    total = sum(sum(c.values()) for c in counts.values())
    print(f"wrote {total} toy cats ({args.image_size}px, seed {args.seed}) to {args.out}")
    return 0
