"""ImageFolder reading: find the classes, decode every image once into a uint8 cache.

Layouts: `DIR/train/<Class>/*` (and `DIR/test/<Class>/*`), or plain `DIR/<Class>/*`. When the
folder names are (a subset of) the Oxford cat classes, the canonical class map of breeds.py is used
(so "Other" is 12, not its alphabetical place); any other ImageFolder gets its sorted folder names.

Images are centre-cropped to a square and then resized (never squashed), with PIL, which reads
everything the real data set contains: CMYK and greyscale JPEGs, PNGs saved under a .jpg name.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps
from tqdm.auto import tqdm

from tinycats.breeds import CLASS_NAMES
from tinycats.errors import DataError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")


@dataclass
class ImageList:
    root: Path
    class_names: list[str]
    samples: list[tuple[Path, int]]  # (path, class index)


def split_root(data_dir: str | Path, split: str = "train") -> Path:
    """DIR/<split> when it exists; for "train", DIR itself when it holds class folders directly."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise DataError(
            f"data directory {data_dir} does not exist: create toy cats with "
            f"`tinycats data synth {data_dir}` or fetch Oxford-IIIT Pet with `tinycats data download`"
        )
    if (data_dir / split).is_dir():
        return data_dir / split
    if split == "train" and not (data_dir / "test").is_dir():
        return data_dir
    raise DataError(f"{data_dir} has no {split}/ folder (expected {data_dir}/{split}/<Class>/*.jpg)")


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


def load_image(path: str | Path, size: int) -> np.ndarray:
    """uint8 [size, size, 3]: upright (camera EXIF orientation applied, as viewers show photos),
    centre crop to a square, then a high-quality resize."""
    with Image.open(path) as img:
        img.draft("RGB", (size * 2, size * 2))  # lets JPEG decode at a reduced scale: much faster
        rgb = ImageOps.exif_transpose(img).convert("RGB")
    return np.asarray(ImageOps.fit(rgb, (size, size), Image.Resampling.BICUBIC, centering=(0.5, 0.5)))


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

    def decode(path: Path) -> np.ndarray | Exception:
        try:
            return load_image(path, size)
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
            return exc

    workers = workers or min(8, os.cpu_count() or 1)
    with ThreadPoolExecutor(workers) as pool:
        decoded = list(tqdm(pool.map(decode, paths), total=len(paths), desc="decoding", unit="img", disable=not progress))
    bad = [(p, r) for p, r in zip(paths, decoded) if isinstance(r, Exception)]
    if bad and not skip_bad:
        listing = "; ".join(f"{p} ({type(e).__name__}: {e})" for p, e in bad[:10])
        more = f" and {len(bad) - 10} more" if len(bad) > 10 else ""
        raise DataError(f"{len(bad)} unreadable image(s): {listing}{more}. Remove them, or pass --skip-bad-images")
    good = [(r, label) for r, (_, label) in zip(decoded, images.samples) if not isinstance(r, Exception)]
    if not good:
        raise DataError(f"no readable images under {images.root}")
    pixels = torch.from_numpy(np.stack([r for r, _ in good])).permute(0, 3, 1, 2).contiguous()
    labels = torch.tensor([label for _, label in good], dtype=torch.long)
    return ImageCache(pixels, labels, images.class_names, [p for p, _ in bad])
