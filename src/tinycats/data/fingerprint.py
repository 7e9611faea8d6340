"""The fingerprint of the data a run trains on, kept in every training checkpoint so that a resume
onto other data is caught instead of training on silently.

Exact resume replays every batch from (seed, data position); that only holds when the files are
the same ones. The fingerprint hashes what decides the batches — each image's path under the class
folders and its size in bytes, the class list, the training resolution — and not modification
times, so a copy of the folder on another machine still resumes. Per-class counts are kept beside
the digest so the refusal can say what changed.
"""

from __future__ import annotations

import hashlib
from typing import Any

from tinycats.data.folder import ImageList


def fingerprint(images: ImageList, image_size: int) -> dict[str, Any]:
    """{"sha256", "files", "bytes", "image_size", "per_class"} of a scanned folder."""
    digest = hashlib.sha256(f"{image_size}|{'|'.join(images.class_names)}\n".encode())
    per_class = dict.fromkeys(images.class_names, 0)
    total = 0
    for path, label in images.samples:
        size = path.stat().st_size
        digest.update(f"{label}|{path.relative_to(images.root).as_posix()}|{size}\n".encode())
        per_class[images.class_names[label]] += 1
        total += size
    return {
        "sha256": digest.hexdigest(),
        "files": len(images.samples),
        "bytes": total,
        "image_size": image_size,
        "per_class": per_class,
    }


def differences(before: dict[str, Any], now: dict[str, Any]) -> str:
    """What changed between two fingerprints, in a few words ("" when they are equal)."""
    if before["sha256"] == now["sha256"]:
        return ""
    changes = []
    if before["image_size"] != now["image_size"]:
        changes.append(f"image size {before['image_size']} -> {now['image_size']}")
    counts = [
        f"{name} {before['per_class'].get(name, 0)} -> {now['per_class'].get(name, 0)}"
        for name in dict.fromkeys([*before["per_class"], *now["per_class"]])
        if before["per_class"].get(name, 0) != now["per_class"].get(name, 0)
    ]
    changes += counts[:3] + ([f"{len(counts) - 3} more classes"] if len(counts) > 3 else [])
    if not changes:
        changes.append(f"same counts, other files or sizes ({before['bytes']} -> {now['bytes']} bytes)")
    return ", ".join(changes)
