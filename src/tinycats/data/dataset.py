"""The record's Python API: `CatsDataset('data/cats', augmentation_level='full')`, a map-style torch
Dataset over one split of an image folder, for DataLoader users and for looking at the data.

The trainer does not use it (it decodes the set once into a uint8 tensor on the device, see
folder.py), but it goes through the same code: the same scan and class map, the same decode
(centre crop + resize) and the same augmentation, so a DataLoader over it yields what training sees.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch.utils.data import Dataset

from tinycats.data import augment
from tinycats.data.decode import load_image
from tinycats.data.folder import scan


class Augmentation:
    """One image's augmentation at `level`. Draws from torch's global generator, which DataLoader
    seeds differently in every worker, so workers do not repeat each other's crops and flips."""

    def __init__(self, level: str):
        self.level = level

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        """uint8 [3, S, S] -> float32 [3, S, S] in [-1, 1]."""
        return augment.apply(image[None], augment.draw_params(self.level, 1, torch.default_generator))[0]

    def __repr__(self) -> str:
        return f"Augmentation({self.level!r})"


class CatsDataset(Dataset):
    """`dataset[i]` = (float32 image [3, S, S] in [-1, 1], class index); `samples[i]` = (path, class index)."""

    def __init__(self, root: str | Path, split: str = "train", image_size: int = 128, augmentation_level: str = "none"):
        augment.draw_params(augmentation_level, 1, torch.Generator())  # an unknown level fails now, not at the first image
        images = scan(root, split)
        self.root = images.root
        self.class_names = images.class_names
        self.samples = images.samples
        self.image_size = image_size
        self.augmentation = None if augmentation_level == "none" else Augmentation(augmentation_level)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        path, label = self.samples[index]
        image = torch.tensor(load_image(path, self.image_size)).permute(2, 0, 1)
        return (self.augmentation(image) if self.augmentation else augment.to_float(image)), label
