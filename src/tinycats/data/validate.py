"""Check a data set before spending GPU hours on it: what the record's validation snippet printed
(samples, batches per epoch, distribution per breed) and the faults that silently spoil training.

Every file is decoded with the training loader's own decode (decode.decode_image), so "readable"
here means readable by training, and what training refuses (special files, decompression bombs) is
refused here. Errors (exit 1): unreadable or truncated files, the same image in train and test (the
test set would leak into training), no images. Warnings: images smaller than the training size (they
get upscaled), exact duplicates within a split (by content hash), class imbalance above a ratio,
canonical classes with no images, no test split. A DATA_DIR that is missing or not a folder is one
DataError line, not a report.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import os
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from tqdm.auto import tqdm

from tinycats.breeds import CLASS_NAMES
from tinycats.data.decode import DECODE_ERRORS, decode_image, describe, open_image_file
from tinycats.data.folder import DataError, check_data_dir, scan
from tinycats.errors import UsageError

SPLITS = ("train", "test")
SHOWN = 5  # examples per finding in the text report; the JSON report lists them all


@dataclass
class FileCheck:
    path: str  # relative to the data directory
    split: str
    class_name: str
    digest: str = ""  # sha256 of the bytes; "" when the file cannot be read
    width: int = 0
    height: int = 0
    error: str = ""


@dataclass
class Report:
    data_dir: str
    image_size: int
    batch_size: int
    class_names: list[str]
    counts: dict[str, dict[str, int]]  # split -> class name -> files
    batches_per_epoch: dict[str, int]
    unreadable: list[dict] = field(default_factory=list)  # {path, error}
    small: list[dict] = field(default_factory=list)  # {path, width, height}
    duplicates: list[list[str]] = field(default_factory=list)  # same bytes within one split
    leaks: list[list[str]] = field(default_factory=list)  # same bytes in train and test
    imbalance: dict[str, float] = field(default_factory=dict)  # split -> largest / smallest non-empty class
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_dict(self) -> dict:
        """What `--json` prints: every field, with `ok`."""
        return {**dataclasses.asdict(self), "ok": self.ok}


def validate(
    data_dir: str | Path,
    image_size: int = 128,
    batch_size: int = 32,
    imbalance_threshold: float = 2.0,
    workers: int | None = None,
    progress: bool = True,
) -> Report:
    if image_size < 1 or batch_size < 1:
        raise UsageError(f"--image-size and --batch-size must be positive, not {image_size} and {batch_size}")
    if workers is not None and workers < 1:
        raise UsageError(f"--workers must be at least 1, not {workers}")
    data_dir = check_data_dir(data_dir)  # a missing folder is one line, not a report of nothing
    files: list[FileCheck] = []
    class_names: list[str] = []
    problems: list[tuple[str, str]] = []  # (kind, message) found while scanning
    for split in SPLITS:
        try:
            images = scan(data_dir, split)
        except DataError as exc:
            problems.append(("error" if split == "train" else "warning", f"{split}: {exc}"))
            continue
        class_names += [c for c in images.class_names if c not in class_names]
        files += [FileCheck(str(p.relative_to(data_dir)), split, images.class_names[i]) for p, i in images.samples]

    workers = workers or min(8, os.cpu_count() or 1)
    with ThreadPoolExecutor(workers) as pool:
        jobs = pool.map(lambda f: _check(f, data_dir, image_size), files)
        for _ in tqdm(jobs, total=len(files), desc="checking", unit="img", disable=not progress):
            pass

    counts = {s: dict.fromkeys(class_names, 0) for s in SPLITS if any(f.split == s for f in files)}
    for f in files:
        counts[f.split][f.class_name] += 1
    report = Report(
        str(data_dir),
        image_size,
        batch_size,
        class_names,
        counts,
        {s: math.ceil(sum(c.values()) / batch_size) for s, c in counts.items()},
        unreadable=[{"path": f.path, "error": f.error} for f in files if f.error],
        small=[
            {"path": f.path, "width": f.width, "height": f.height}
            for f in files
            if not f.error and min(f.width, f.height) < image_size
        ],
    )
    by_digest = defaultdict(list)
    for f in files:
        if f.digest:
            by_digest[f.digest].append(f)
    for group in by_digest.values():
        if len(group) > 1:
            leak = len({f.split for f in group}) > 1
            (report.leaks if leak else report.duplicates).append([f.path for f in group])
    for split, per_class in counts.items():
        present = [n for n in per_class.values() if n]
        report.imbalance[split] = max(present) / min(present)
    _judge(report, problems, imbalance_threshold)
    return report


def _check(f: FileCheck, data_dir: Path, size: int) -> None:
    path = data_dir / f.path
    try:
        digest = hashlib.sha256()
        with open_image_file(path) as file:  # a FIFO or device named *.jpg is refused, never read
            while chunk := file.read(1 << 20):
                digest.update(chunk)
        f.digest = digest.hexdigest()
        _, (f.width, f.height) = decode_image(path, size)  # the training decode: fails exactly where training would
    except DECODE_ERRORS as exc:
        f.error = describe(exc)


def _judge(report: Report, problems: list[tuple[str, str]], imbalance_threshold: float) -> None:
    """Turn the findings into error and warning lines."""
    for kind, message in problems:
        (report.errors if kind == "error" else report.warnings).append(message)
    if report.unreadable:
        report.errors.append(f"{len(report.unreadable)} unreadable or truncated file(s): remove or replace them")
    if report.leaks:
        report.errors.append(f"{len(report.leaks)} image(s) in both train and test: the test set leaks into training")
    if report.small:
        report.warnings.append(f"{len(report.small)} image(s) smaller than {report.image_size} px: they will be upscaled")
    if report.duplicates:
        extra = sum(len(g) - 1 for g in report.duplicates)
        report.warnings.append(f"{len(report.duplicates)} group(s) of identical files within a split ({extra} redundant)")
    for split, ratio in report.imbalance.items():
        if ratio > imbalance_threshold:
            report.warnings.append(f"{split}: largest class {ratio:.2f}x the smallest (more than {imbalance_threshold:g}x)")
        if report.class_names == list(CLASS_NAMES):
            empty = [c for c, n in report.counts[split].items() if not n]
            if empty:
                report.warnings.append(f"{split}: no images of {', '.join(empty)}")


def format_report(report: Report) -> str:
    """The text report: the record's three lines, a table per class, then the findings."""
    train = report.counts.get("train", {})
    lines = [
        f"{report.data_dir}: {len(report.class_names)} classes, checked at {report.image_size} px",
        f"Total samples: {sum(train.values())}",
        f"Batches per epoch: {report.batches_per_epoch.get('train', 0)} (batch size {report.batch_size})",
        f"Breed distribution: { {i: n for i, n in enumerate(train.values()) if n} }",
        "",
        f"{'class':<22}" + "".join(f"{s:>8}" for s in report.counts),
    ]
    for i, name in enumerate(report.class_names):
        lines.append(f"{i:>2} {name:<19}" + "".join(f"{c[name]:>8}" for c in report.counts.values()))
    lines.append(f"{'total':<22}" + "".join(f"{sum(c.values()):>8}" for c in report.counts.values()))
    findings = {
        "unreadable or truncated": [f"{u['path']}: {u['error']}" for u in report.unreadable],
        f"smaller than {report.image_size} px": [f"{s['path']}: {s['width']}x{s['height']}" for s in report.small],
        "duplicates within a split": [" = ".join(g) for g in report.duplicates],
        "duplicates across train/test": [" = ".join(g) for g in report.leaks],
    }
    lines.append("")
    for label, examples in findings.items():
        lines += [f"{label + ':':<30}{len(examples)}", *(f"  {e}" for e in examples[:SHOWN])]
    balance = ", ".join(f"{s} {r:.2f}" for s, r in report.imbalance.items())
    lines += [
        f"{'largest / smallest class:':<30}{balance}",
        "",
        *(f"ERROR: {e}" for e in report.errors),
        *(f"warning: {w}" for w in report.warnings),
        "OK" if report.ok and not report.warnings else f"{len(report.errors)} error(s), {len(report.warnings)} warning(s)",
    ]
    return "\n".join(lines)
