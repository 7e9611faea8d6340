"""Converting generated tensors to pictures, and laying pictures out in grids."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """[-1, 1] float NCHW -> uint8 NHWC, rounding to the nearest level."""
    x = ((images.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return x.permute(0, 2, 3, 1).numpy()


def to_pil(images: torch.Tensor) -> list[Image.Image]:
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
