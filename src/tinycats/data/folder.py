"""ImageFolder reading: find the classes, decode every image once into a uint8 cache.

Layouts: `DIR/train/<Class>/*` (and `DIR/test/<Class>/*`), or plain `DIR/<Class>/*`. When the
folder names are (a subset of) the Oxford cat classes, the canonical class map of breeds.py is used
(so "Other" is 12, not its alphabetical place); any other ImageFolder gets its sorted folder names.

Decoding (crop and resize, formats, refusals, colour modes) is data/decode.py's.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from tinycats.breeds import CLASS_NAMES
from tinycats.data.decode import DECODE_ERRORS, IMAGE_EXTENSIONS, decode_image, describe
from tinycats.errors import DataError


@dataclass
class ImageList:
    root: Path
    class_names: list[str]
    samples: list[tuple[Path, int]]  # (path, class index)


def split_root(data_dir: str | Path, split: str = "train") -> Path:
    """DIR/<split> when it exists; for "train", DIR itself when it holds class folders directly."""
    data_dir = check_data_dir(data_dir)
    if (data_dir / split).is_dir():
        return data_dir / split
    if split == "train" and not (data_dir / "test").is_dir():
        return data_dir
    raise DataError(f"{data_dir} has no {split}/ folder (expected {data_dir}/{split}/<Class>/*.jpg)")


def check_data_dir(data_dir: str | Path) -> Path:
    """DATA_DIR as a Path when it is a folder; else a DataError that says what to pass instead."""
    data_dir = Path(data_dir)
    if data_dir.is_dir():
        return data_dir
    if data_dir.exists() or data_dir.is_symlink():
        raise DataError(f"data directory {data_dir} is not a folder: pass the folder that holds train/<Class>/ images")
    raise DataError(
        f"data directory {data_dir} does not exist: create toy cats with "
        f"`tinycats data synth {data_dir}` or fetch Oxford-IIIT Pet with `tinycats data download`"
    )


def scan(data_dir: str | Path, split: str = "train") -> ImageList:
    root = split_root(data_dir, split)
    folders = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not folders:
        raise DataError(f"{root} has no class folders: expected {root}/<Class>/<image files>")
    class_names = list(CLASS_NAMES) if set(folders) <= set(CLASS_NAMES) else folders
    samples = []
    for name in folders:
        index = class_names.index(name)
        for path in sorted((root / name).iterdir()):
            if path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith("."):
                samples.append((path, index))
    if not samples:
        raise DataError(f"{root} has class folders but no images ({', '.join(IMAGE_EXTENSIONS)})")
    return ImageList(root, class_names, samples)


@dataclass
class ImageCache:
    images: torch.Tensor  # uint8 [N, 3, S, S]
    labels: torch.Tensor  # int64 [N]
    class_names: list[str]
    skipped: list[Path]


def build_cache(
    images: ImageList, size: int, skip_bad: bool = False, workers: int | None = None, progress: bool = True
) -> ImageCache:
    """Decode every image once. Unreadable files stop with a list of them, or with `skip_bad`
    are left out with a warning; the counts are in `skipped`."""
    paths = [p for p, _ in images.samples]

    def decode(path: Path) -> np.ndarray | BaseException:
        try:
            return decode_image(path, size)[0]
        except DECODE_ERRORS as exc:
            return exc

    workers = workers or min(8, os.cpu_count() or 1)
    with ThreadPoolExecutor(workers) as pool:
        decoded = list(tqdm(pool.map(decode, paths), total=len(paths), desc="decoding", unit="img", disable=not progress))
    bad = [(p, r) for p, r in zip(paths, decoded) if isinstance(r, BaseException)]
    if bad and not skip_bad:
        listing = "; ".join(f"{p} ({describe(e)})" for p, e in bad[:10])
        more = f" and {len(bad) - 10} more" if len(bad) > 10 else ""
        raise DataError(f"{len(bad)} unreadable image(s): {listing}{more}. Remove them, or pass --skip-bad-images")
    good = [(r, label) for r, (_, label) in zip(decoded, images.samples) if not isinstance(r, BaseException)]
    if not good:
        raise DataError(f"no readable images under {images.root}")
    pixels = torch.from_numpy(np.stack([r for r, _ in good])).permute(0, 3, 1, 2).contiguous()
    labels = torch.tensor([label for _, label in good], dtype=torch.long)
    return ImageCache(pixels, labels, images.class_names, [p for p, _ in bad])
