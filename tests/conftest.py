"""Fixtures built by the tests themselves: tiny image folders, tiny configs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tinycats.config import RunConfig, load_config

# Three classes with clearly different colours, so a few steps of training have something to learn.
COLOURS = {"Bengal": (220, 140, 40), "Bombay": (20, 20, 20), "Other": (60, 120, 220)}


def make_folder(root: Path, per_class: int = 6, size: int = 20, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    for name, colour in COLOURS.items():
        folder = root / "train" / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            pixels = np.clip(np.array(colour) + rng.normal(0, 25, (size, size + 4, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(folder / f"{name}_{i}.png")
    return root


@pytest.fixture
def image_folder(tmp_path: Path) -> Path:
    return make_folder(tmp_path / "data")


def tiny_config(**train: object) -> RunConfig:
    settings = {"steps": 6, "batch_size": 4, "log_interval": 2, "lr": 1e-3, "ema_beta": 0.99, **train}
    return load_config(None, {"model": {"preset": "tinydit-test"}, "train": settings, "sample": {"steps": 4}})
