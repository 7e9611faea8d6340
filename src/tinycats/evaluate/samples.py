"""The image sets an evaluation compares: real images from an ImageFolder split and generated
ones, written as (or read from) DIR/<Class>/<Class>_<i>.png.

Both are held as uint8 at the generator's resolution. Real images are decoded like training data
(centre crop, resize); generated ones are kept exactly as their PNGs store them (8-bit,
lossless), so an evaluation of freshly generated samples and one of the same PNGs read back
give the same numbers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import torch
from PIL import Image

from tinycats.data.decode import IMAGE_EXTENSIONS
from tinycats.data.folder import DataError, ImageList, build_cache
from tinycats.pictures import labelled_grid, to_uint8


@dataclass
class ImageSet:
    root: Path
    images: torch.Tensor  # uint8 [N, 3, S, S]
    labels: torch.Tensor  # int64 [N], indices into `names`
    names: list[str]
    paths: list[Path]
    ignored: list[str] = field(default_factory=list)  # folders that are not classes of `names`

    def pil(self) -> list[Image.Image]:
        return [Image.fromarray(a) for a in self.images.permute(0, 2, 3, 1).numpy()]


def read_folder(root: Path, names: list[str], size: int, ignore_unknown: bool = False) -> ImageSet:
    """Images of ROOT/<Class>/*, labelled by the index of <Class> in `names` (the model's class
    list). A folder that is not a class is an error, or with `ignore_unknown` left out."""
    if not root.is_dir():
        raise DataError(f"image folder {root} does not exist (expected {root}/<Class>/<images>)")
    folders = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    unknown = [f for f in folders if f not in names]
    if unknown and not ignore_unknown:
        raise DataError(f"{root} has folder(s) {unknown} that are not classes of the model ({', '.join(names)})")
    samples = [
        (p, names.index(f))
        for f in folders
        if f in names
        for p in sorted((root / f).iterdir())
        if p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".")
    ]
    if not samples:
        raise DataError(f"no images in {root}/<Class>/ for any class of the model")
    cache = build_cache(ImageList(root, list(names), samples), size, progress=False)
    return ImageSet(root, cache.images, cache.labels, list(names), [p for p, _ in samples], unknown)


def read_generated(fake_dir: Path, names: list[str], size: int) -> ImageSet:
    if not fake_dir.is_dir():
        raise DataError(
            f"no generated images at {fake_dir}: pass --generate-samples, or --fake-dir DIR holding DIR/<Class>/*.png"
        )
    return read_folder(fake_dir, names, size, ignore_unknown=True)


def write_generated(images: torch.Tensor, labels: list[int], names: list[str], fake_dir: Path) -> ImageSet:
    """Save [-1, 1] images as fake_dir/<Class>/<Class>_<i>.png (i: the image's index, which fixes
    its noise), replacing PNGs of that pattern from an earlier run so the folder holds exactly
    this set."""
    for name in names:
        folder = fake_dir / name
        if folder.is_dir():
            for old in folder.iterdir():
                if re.fullmatch(rf"{re.escape(name)}_\d+\.png", old.name):
                    old.unlink()
    pixels = to_uint8(images)
    paths = []
    for i, (array, label) in enumerate(zip(pixels, labels)):
        path = fake_dir / names[label] / f"{names[label]}_{i}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(array).save(path)
        paths.append(path)
    return ImageSet(fake_dir, torch.from_numpy(pixels).permute(0, 3, 1, 2).contiguous(), torch.tensor(labels), list(names), paths)


def overview_grid(images: ImageSet, per_class: int = 8) -> Image.Image:
    """A row per class that has images, with its first `per_class` of them."""
    pictures = images.pil()
    rows = []
    for i, name in enumerate(images.names):
        mine = [pictures[j] for j in torch.nonzero(images.labels == i).flatten()[:per_class].tolist()]
        if mine:
            rows.append((name, mine))
    return labelled_grid(rows)
