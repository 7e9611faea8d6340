"""Pictures: generated images to uint8 and PIL, labelled and plain grids, and the sample gallery's
folder layout (OUT/<Class>/<Class>_<i>.png, OUT/grids/<Class>.png, OUT/overview.png).

Torch-free: it takes numpy arrays or torch tensors alike (a tensor is converted, never imported),
so the PyTorch sampler and the ONNX-only sampler (which must run where torch is not installed)
write the same files in the same places through it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw


def to_uint8(images: Any) -> np.ndarray:
    """[-1, 1] float NCHW (numpy or torch) -> uint8 NHWC, rounding to the nearest level (ties to even)."""
    if hasattr(images, "detach"):  # a torch tensor, possibly on a GPU
        images = images.detach().float().cpu().numpy()
    x = ((np.clip(images.astype(np.float32, copy=False), -1, 1) + 1) * 127.5).round().astype(np.uint8)
    return x.transpose(0, 2, 3, 1)


def to_pil(images: Any) -> list[Image.Image]:
    return [Image.fromarray(a) for a in to_uint8(images)]


def labelled_grid(rows: Sequence[tuple[str, Sequence[Image.Image]]], cell: int | None = None, pad: int = 2) -> Image.Image:
    """One row per (label, images): the label on the left, the images after it. Small images are
    enlarged with nearest-neighbour so pixels stay honest."""
    first = rows[0][1][0]
    cell = cell or max(64, first.width)
    label_w = 8 + 7 * max(len(name) for name, _ in rows)
    cols = max(len(imgs) for _, imgs in rows)
    canvas = Image.new("RGB", (label_w + cols * (cell + pad) + pad, len(rows) * (cell + pad) + pad), "white")
    draw = ImageDraw.Draw(canvas)
    for r, (name, imgs) in enumerate(rows):
        y = pad + r * (cell + pad)
        draw.text((4, y + cell // 2 - 5), name, fill="black")
        for c, img in enumerate(imgs):
            canvas.paste(img.resize((cell, cell), Image.Resampling.NEAREST), (label_w + pad + c * (cell + pad), y))
    return canvas


def plain_grid(images: Sequence[Image.Image], columns: int, cell: int | None = None, pad: int = 2) -> Image.Image:
    cell = cell or max(64, images[0].width)
    rows = (len(images) + columns - 1) // columns
    canvas = Image.new("RGB", (columns * (cell + pad) + pad, rows * (cell + pad) + pad), "white")
    for i, img in enumerate(images):
        r, c = divmod(i, columns)
        canvas.paste(img.resize((cell, cell), Image.Resampling.NEAREST), (pad + c * (cell + pad), pad + r * (cell + pad)))
    return canvas


@dataclass
class Gallery:
    files: dict[str, list[Path]]
    overview: Path


def gallery_order(breeds: Sequence[int], per_breed: int) -> tuple[list[int], list[int]]:
    """Labels and noise indices of a gallery, breed after breed: picture i of every breed starts
    from the noise of (seed, i), so a row of the overview shows what the label alone changes."""
    labels = [b for b in breeds for _ in range(per_breed)]
    indices = [i for _ in breeds for i in range(per_breed)]
    return labels, indices


def write_gallery(
    draw: Callable[[list[int], list[int]], Any],
    class_names: Sequence[str],
    breeds: Sequence[int],
    per_breed: int,
    out_dir: str | Path,
) -> Gallery:
    """Draw the gallery's images with `draw(labels, noise_indices)` (a PyTorch or ONNX sampler,
    returning [-1, 1] NCHW) and write them with `save_gallery`."""
    labels, indices = gallery_order(breeds, per_breed)
    return save_gallery(to_pil(draw(labels, indices)), class_names, breeds, per_breed, out_dir)


def save_gallery(
    pictures: Sequence[Image.Image], class_names: Sequence[str], breeds: Sequence[int], per_breed: int, out_dir: str | Path
) -> Gallery:
    """Write OUT/<Class>/<Class>_<i>.png, OUT/grids/<Class>.png and OUT/overview.png (a row per
    breed, at most 8 pictures) for pictures in `gallery_order`."""
    out = Path(out_dir)
    files: dict[str, list[Path]] = {}
    rows = []
    for k, b in enumerate(breeds):
        name = class_names[b]
        mine = pictures[k * per_breed : (k + 1) * per_breed]
        folder = out / name
        folder.mkdir(parents=True, exist_ok=True)
        files[name] = []
        for i, picture in enumerate(mine):
            picture.save(folder / f"{name}_{i}.png")
            files[name].append(folder / f"{name}_{i}.png")
        (out / "grids").mkdir(parents=True, exist_ok=True)
        plain_grid(mine, columns=min(8, per_breed)).save(out / "grids" / f"{name}.png")
        rows.append((name, mine[:8]))
    overview = out / "overview.png"
    labelled_grid(rows).save(overview)
    return Gallery(files, overview)
