"""`tinycats sample`: pictures for chosen breeds, written as PNGs with a grid per breed and an
overview grid with a row per breed.

Image i of every breed starts from the same noise (seed, i), so a row of the overview shows what
the class label alone changes, and sampling one breed gives the same pictures as sampling all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tinycats.config import SampleConfig
from tinycats.images import labelled_grid, plain_grid, to_pil
from tinycats.model import TinyDiT
from tinycats.sampling import sample


@dataclass
class Gallery:
    files: dict[str, list[Path]]
    overview: Path


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
    out = Path(out_dir)
    names = model.config.class_names
    labels = [b for b in breeds for _ in range(per_breed)]
    indices = [i for _ in breeds for i in range(per_breed)]
    pictures = to_pil(sample(model, labels, settings, seed=seed, batch_size=batch_size, indices=indices, progress=progress))
    files: dict[str, list[Path]] = {}
    rows = []
    for k, b in enumerate(breeds):
        name = names[b]
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
