"""`tinycats sample`: pictures for chosen breeds, written as PNGs with a grid per breed and an
overview grid with a row per breed.

Image i of every breed starts from the same noise (seed, i), so a row of the overview shows what
the class label alone changes, and sampling one breed gives the same pictures as sampling all.
The file layout lives in `grids.py`, shared with the ONNX-only sampler.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from tinycats.config import SampleConfig
from tinycats.grids import Gallery, gallery_order, save_gallery
from tinycats.images import to_pil
from tinycats.model import TinyDiT
from tinycats.sampling import sample


def write_gallery(
    model: TinyDiT,
    breeds: Sequence[int],
    per_breed: int,
    out_dir: str | Path,
    settings: SampleConfig,
    seed: int = 0,
    batch_size: int = 64,
    progress: bool = False,
) -> Gallery:
    labels, indices = gallery_order(breeds, per_breed)
    pictures = to_pil(sample(model, labels, settings, seed=seed, batch_size=batch_size, indices=indices, progress=progress))
    return save_gallery(pictures, model.config.class_names, breeds, per_breed, out_dir)
