"""The sample grid written during training: one row per class, a fixed seed, EMA weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from tinycats.config import SampleConfig
from tinycats.grids import labelled_grid
from tinycats.images import to_pil
from tinycats.sampling import sample


def write_preview(
    model: torch.nn.Module, settings: SampleConfig, path: str | Path, per_class: int = 4, seed: int = 0
) -> np.ndarray:
    """Sample `per_class` images of every class and save the grid; returns it as HWC uint8.
    The same seed at every step, so successive grids show the model improving, not new noise."""
    names = model.config.class_names
    labels = [c for c in range(len(names)) for _ in range(per_class)]
    pictures = to_pil(sample(model, labels, settings, seed=seed))
    grid = labelled_grid([(name, pictures[i * per_class : (i + 1) * per_class]) for i, name in enumerate(names)])
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    grid.save(path)
    return np.asarray(grid)
