"""tinycats data ...: make, fetch and check data sets.

A folder argument that cannot be used (OUT a file, a file in the way of a parent folder, no write
permission, a DATA_DIR that does not exist) is one error line and a non-zero exit before anything
is written; the checks for --out of download/prepare and for DATA_DIR live in the library.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from tinycats.errors import DataError, UsageError

if TYPE_CHECKING:
    from tinycats.data.oxford import Prepared


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

    d = data_sub.add_parser(
        "download",
        help="fetch Oxford-IIIT Pet and lay out its cat breeds + Other",
        description="Download images.tar.gz and annotations.tar.gz (resumable, MD5-checked) and prepare OUT/train/<Class>/ and "
        "OUT/test/<Class>/ from the official trainval/test split: the 12 cat breeds plus Other, a balanced sample of the "
        "dogs. Offline, it prints how to get the files by hand. Does nothing when OUT is already prepared.",
    )
    d.add_argument("--cache", help="where the archives are kept (default: ~/.cache/tinycats/oxford-iiit-pet)")
    d.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for the server (default: 30)")
    _add_layout_flags(d)
    d.set_defaults(run=run_download)

    r = data_sub.add_parser(
        "prepare",
        help="lay out Oxford-IIIT Pet from files you already have",
        description="Like download, from SOURCE: a folder holding images.tar.gz and annotations.tar.gz, or their extracted "
        "images/ and annotations/ folders (files are hard-linked when possible, else copied).",
    )
    r.add_argument("--source", required=True, metavar="DIR", help="folder with the two archives or images/ and annotations/")
    _add_layout_flags(r)
    r.set_defaults(run=run_prepare)

    v = data_sub.add_parser(
        "validate",
        help="check a data set: counts, unreadable files, small images, duplicates, leaks, balance",
        description="Decode every image of DATA_DIR/train and DATA_DIR/test as training would and report the samples, "
        "batches per epoch and images per class, unreadable or truncated files, images smaller than --image-size, exact "
        "duplicates (train/test duplicates leak) and class imbalance. Exit 1 on errors; warnings alone exit 0.",
    )
    v.add_argument("data_dir", metavar="DATA_DIR", help="image folder, e.g. data/cats")
    v.add_argument("--image-size", type=int, default=128, help="training resolution; smaller images are flagged (default: 128)")
    v.add_argument("--batch-size", type=int, default=32, help="for the batches-per-epoch count (default: 32)")
    v.add_argument(
        "--imbalance-threshold",
        type=float,
        default=2.0,
        help="warn when the largest class is more than this many times the smallest (default: 2)",
    )
    v.add_argument("--workers", type=int, help="decoding threads (default: up to 8)")
    v.add_argument("--json", action="store_true", help="print the report as JSON")
    v.set_defaults(run=run_validate)


def _add_layout_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="data/cats", help="the prepared folder (default: data/cats)")
    parser.add_argument(
        "--other-per-split", type=int, help="dog images in Other per split (default: the mean count of a cat breed in that split)"
    )
    parser.add_argument("--seed", type=int, default=0, help="the same seed picks the same Other images (default: 0)")


def _check_writable_folder(out: str) -> None:
    """OUT is (or can be made as) a folder this user can write into."""
    path = Path(out).absolute()
    for folder in (path, *path.parents):
        if folder.exists():
            if not folder.is_dir():
                what = f"{out} is" if folder == path else f"cannot create {out}: {folder} is"
                raise DataError(f"{what} a file, not a folder: choose another OUT")
            if not os.access(folder, os.W_OK | os.X_OK):
                raise DataError(f"cannot write to {out}: {folder} is not writable; choose another OUT")
            return
        if folder.is_symlink():
            raise DataError(f"cannot write to {out}: {folder} is a broken symbolic link; choose another OUT")


def run_synth(args: argparse.Namespace) -> int:
    from tinycats.data.synth import MAX_SIZE, MIN_SIZE, write_dataset

    if not MIN_SIZE <= args.image_size <= MAX_SIZE:
        raise UsageError(f"--image-size must be {MIN_SIZE} to {MAX_SIZE} px, not {args.image_size}")
    for flag, count in (("--per-class", args.per_class), ("--test-per-class", args.test_per_class)):
        if count < 0:
            raise UsageError(f"{flag} must be >= 0, not {count}")
    if args.workers is not None and args.workers < 1:
        raise UsageError(f"--workers must be >= 1, not {args.workers}")
    _check_writable_folder(args.out)
    try:
        counts = write_dataset(args.out, args.per_class, args.test_per_class, args.image_size, args.seed, args.workers)
    except OSError as exc:  # what the checks above cannot foresee: OUT/train a file, a full disk
        raise DataError(f"cannot write toy cats to {args.out}: {exc}") from exc
    total = sum(sum(c.values()) for c in counts.values())
    print(f"wrote {total} toy cats ({args.image_size}px, seed {args.seed}) to {args.out}")
    return 0


def run_download(args: argparse.Namespace) -> int:
    from tinycats.data.oxford import download

    if not args.timeout > 0:
        raise UsageError(f"--timeout must be a positive number of seconds, not {args.timeout}")
    _print_prepared(download(args.out, args.cache, args.other_per_split, args.seed, args.timeout, sys.stderr.isatty()))
    return 0


def run_prepare(args: argparse.Namespace) -> int:
    from tinycats.data.oxford import prepare

    _print_prepared(prepare(args.source, args.out, args.other_per_split, args.seed, sys.stderr.isatty()))
    return 0


def _print_prepared(result: Prepared) -> None:
    from tinycats.breeds import OTHER

    print(f"{result.out} {'was already prepared: nothing to do' if result.already else 'is ready'}")
    for split, counts in result.counts.items():
        cats = sum(n for name, n in counts.items() if name != OTHER)
        print(f"  {split}: {cats} cats in {len(counts) - 1} breeds + {counts[OTHER]} Other")


def run_validate(args: argparse.Namespace) -> int:
    import json

    from tinycats.data.validate import format_report, validate

    progress = sys.stderr.isatty()
    report = validate(args.data_dir, args.image_size, args.batch_size, args.imbalance_threshold, args.workers, progress)
    print(json.dumps(report.to_dict(), indent=1) if args.json else format_report(report))
    return 0 if report.ok else 1
