"""Breed-classifier settings, without torch: the CLI builds its flags from them before any
subcommand runs, and `tinycats sample --onnx` must not import torch."""

from __future__ import annotations

from dataclasses import dataclass

from tinycats.errors import UsageError

BACKBONES = ("small-cnn", "resnet18")
DEFAULT_IMAGE_SIZE = {"small-cnn": 32, "resnet18": 128}
MIN_IMAGE_SIZE = 16  # the smallest generator resolution (tinydit-test)


@dataclass
class ClassifierSettings:
    backbone: str = "small-cnn"
    image_size: int | None = None  # None: DEFAULT_IMAGE_SIZE of the backbone
    epochs: int = 10
    batch_size: int = 64
    lr: float = 2e-3
    seed: int = 0
    pretrained_weights: str | None = None  # a torchvision resnet18 state dict file (ImageNet)
    device: str = "auto"

    def __post_init__(self) -> None:
        if self.backbone not in BACKBONES:
            raise UsageError(f"unknown backbone {self.backbone!r}; use one of {', '.join(BACKBONES)}")
        if self.pretrained_weights and self.backbone != "resnet18":
            raise UsageError("--pretrained-weights holds ResNet-18 weights: use it with --backbone resnet18")
        if self.epochs < 1 or self.batch_size < 1:
            raise UsageError("--epochs and --batch-size must be at least 1")
        if not self.lr > 0:
            raise UsageError(f"--lr {self.lr} must be a positive number, e.g. {ClassifierSettings.lr}")
        if self.image_size is not None and self.image_size < MIN_IMAGE_SIZE:
            raise UsageError(f"--image-size {self.image_size} is too small: use the generator's (at least {MIN_IMAGE_SIZE})")
        self.image_size = self.image_size or DEFAULT_IMAGE_SIZE[self.backbone]
