"""The breed classifier that judges generated samples: does "Siamese" look like a Siamese?

Two backbones: `small-cnn` (trains from scratch in about a minute on a CPU; the toy-cats judge)
and torchvision's `resnet18` (for real photos, optionally from local ImageNet weights, since the
weights cannot be downloaded offline). Its penultimate features also give the Fréchet distance in
classifier space (FD-classifier) and the nearest-neighbour memorisation check.

A classifier is trained at one resolution and reads any image by resizing it to that resolution,
so train it at the generator's resolution: then it sees real and generated images at the same
level of detail.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from tinycats import checkpoint
from tinycats.checkpoint import read_tensors
from tinycats.data import augment
from tinycats.data.decode import load_image
from tinycats.data.folder import build_cache, scan
from tinycats.errors import CheckpointError, ConfigError, DataError
from tinycats.evaluate.metrics import read_state_dict
from tinycats.evaluate.settings import BACKBONES, ClassifierSettings
from tinycats.runtime import pick_device
from tinycats.seeding import STREAMS, generator

FORMAT = "tinycats-classifier-v1"
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def _conv(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


class SmallCNN(nn.Module):
    """Three stages of two 3x3 convolutions, global average pooling: 128 features."""

    feature_dim = 128

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        widths = (32, 64, 128)
        layers: list[nn.Module] = []
        c_in = 3
        for i, width in enumerate(widths):
            layers += [_conv(c_in, width), _conv(width, width)]
            if i < len(widths) - 1:
                layers.append(nn.MaxPool2d(2))
            c_in = width
        self.body = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(self.feature_dim, num_classes)


class ResNet18(nn.Module):
    """torchvision's ResNet-18 as the body (512 features), a new linear head."""

    feature_dim = 512

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        from torchvision.models import resnet18

        net = resnet18()
        net.fc = nn.Identity()
        self.body = net
        self.head = nn.Linear(self.feature_dim, num_classes)


@dataclass
class Classifier:
    """A trained classifier and what it needs to read images: its input size and class names.
    `info` records how it was trained and its measured test accuracy (overall and per class)."""

    net: nn.Module
    backbone: str
    image_size: int
    class_names: list[str]
    test_accuracy: float | None = None
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def device(self) -> torch.device:
        return next(self.net.parameters()).device

    def _prepare(self, images: torch.Tensor) -> torch.Tensor:
        """Images of any size, uint8 [0, 255] or float [-1, 1] -> the network's input (resized,
        normalised for ResNet). uint8 is converted batch by batch, so a large set never needs a
        float copy in memory."""
        x = images.to(self.device)
        x = augment.to_float(x) if x.dtype == torch.uint8 else x.float()
        if x.shape[-1] != self.image_size or x.shape[-2] != self.image_size:
            x = F.interpolate(x, size=(self.image_size, self.image_size), mode="bilinear", antialias=True, align_corners=False)
        if self.backbone == "resnet18":
            mean = torch.tensor(IMAGENET_MEAN, device=x.device)[:, None, None]
            std = torch.tensor(IMAGENET_STD, device=x.device)[:, None, None]
            x = ((x + 1) / 2 - mean) / std
        return x

    @torch.inference_mode()
    def features(self, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
        """Penultimate features (after global pooling), float32 on the CPU."""
        self.net.eval()
        return torch.cat([self.net.body(self._prepare(b)).float().cpu() for b in images.split(batch_size)])

    @torch.inference_mode()
    def probabilities(self, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
        self.net.eval()
        return torch.cat(
            [self.net.head(self.net.body(self._prepare(b))).softmax(-1).float().cpu() for b in images.split(batch_size)]
        )

    def save(self, path: str | Path) -> Path:
        return checkpoint.save_atomic(
            {
                "format": FORMAT,
                "backbone": self.backbone,
                "image_size": self.image_size,
                "class_names": list(self.class_names),
                "test_accuracy": self.test_accuracy,
                "info": self.info,
                "model": self.net.state_dict(),
            },
            path,
        )


def build(backbone: str, num_classes: int) -> nn.Module:
    if backbone == "small-cnn":
        return SmallCNN(num_classes)
    if backbone == "resnet18":
        return ResNet18(num_classes)
    raise ConfigError(f"unknown backbone {backbone!r}; use one of {', '.join(BACKBONES)}")


def load(path: str | Path, device: str | torch.device = "cpu") -> Classifier:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(
            f"classifier {path} does not exist: train one with `tinycats train-classifier DATA --output {path}`"
        )
    state = read_tensors(path, "classifier")
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a tinycats classifier (made by `tinycats train-classifier`)")
    net = build(state["backbone"], len(state["class_names"]))
    net.load_state_dict(state["model"])
    device = pick_device(device) if isinstance(device, str) else device
    return Classifier(
        net.to(device).eval(),
        state["backbone"],
        state["image_size"],
        list(state["class_names"]),
        state["test_accuracy"],
        state.get("info", {}),
    )


def load_pretrained_backbone(net: nn.Module, path: str | Path) -> None:
    """Copy ImageNet weights (a torchvision resnet18 state dict file) into the body; the head stays new."""
    weights = read_state_dict(path, "give --pretrained-weights a torchvision resnet18 state dict file")
    weights = {k: v for k, v in weights.items() if not k.startswith("fc.")}
    missing, unexpected = net.body.load_state_dict(weights, strict=False)
    if unexpected or missing:
        raise CheckpointError(f"{path} does not hold resnet18 weights (missing {missing[:3]}, unexpected {unexpected[:3]})")


EpochReport = Callable[[int, int, float, float, float], None]  # (epoch, epochs, mean loss, train accuracy, seconds)


def train_classifier(
    images: torch.Tensor,
    labels: torch.Tensor,
    class_names: list[str],
    settings: ClassifierSettings | None = None,
    progress: EpochReport | None = None,
) -> Classifier:
    """Train on a uint8 cache [N, 3, S, S] with the generator's `full` augmentation (flips, mild
    crops, mild colour jitter, never hue). The order and augmentation of every epoch come from
    (seed, epoch), and the initial weights from the seed, without touching the global RNG."""
    s = settings or ClassifierSettings()
    device = pick_device(s.device)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(s.seed)
        net = build(s.backbone, len(class_names))
    if s.pretrained_weights:
        load_pretrained_backbone(net, s.pretrained_weights)
    net = net.to(device)
    clf = Classifier(net, s.backbone, s.image_size, list(class_names))
    images, labels = images.to(device), labels.to(device)
    batch = min(s.batch_size, len(labels))
    steps_per_epoch = len(labels) // batch  # the last partial batch is left out: BatchNorm wants full ones
    opt = torch.optim.AdamW(net.parameters(), lr=s.lr, weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=s.lr, total_steps=s.epochs * steps_per_epoch)
    for epoch in range(s.epochs):
        start, net_loss, correct = time.perf_counter(), 0.0, 0
        net.train()
        g = generator(s.seed, STREAMS["classifier-order"], epoch)
        order = torch.randperm(len(labels), generator=g).to(device)
        for i in range(steps_per_epoch):
            idx = order[i * batch : (i + 1) * batch]
            x = augment.apply(images[idx], augment.draw_params("full", len(idx), g))
            logits = net.head(net.body(clf._prepare(x)))
            loss = F.cross_entropy(logits, labels[idx], label_smoothing=0.05)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            net_loss += loss.item()
            correct += (logits.argmax(-1) == labels[idx]).sum().item()
        if progress:
            progress(
                epoch + 1, s.epochs, net_loss / steps_per_epoch, correct / (steps_per_epoch * batch), time.perf_counter() - start
            )
    net.eval()
    return clf


def accuracy(clf: Classifier, images: torch.Tensor, labels: torch.Tensor) -> tuple[float, torch.Tensor]:
    """Top-1 accuracy of images (uint8, or float in [-1, 1]), and the predicted class of each."""
    predicted = clf.probabilities(images).argmax(-1)
    return (predicted == labels.cpu()).float().mean().item(), predicted


def per_class_accuracy(predicted: torch.Tensor, labels: torch.Tensor, class_names: list[str]) -> dict[str, float]:
    """Accuracy per class present in `labels`."""
    labels = labels.cpu()
    return {class_names[c]: (predicted[labels == c] == c).float().mean().item() for c in sorted(set(labels.tolist()))}


def train_from_folder(
    data_dir: str | Path, settings: ClassifierSettings | None = None, progress: EpochReport | None = None
) -> Classifier:
    """Train on DATA_DIR's train split and measure top-1 accuracy on its test split (when there
    is one); the accuracy travels in the saved file."""
    s = settings or ClassifierSettings()
    train = build_cache(scan(data_dir, "train"), s.image_size, progress=False)
    clf = train_classifier(train.images, train.labels, train.class_names, s, progress)
    clf.info = {"data_dir": str(data_dir), "train_images": len(train.labels), "epochs": s.epochs, "seed": s.seed}
    if (Path(data_dir) / "test").is_dir():
        test = build_cache(scan(data_dir, "test"), s.image_size, progress=False)
        if list(test.class_names) != list(train.class_names):
            raise DataError(f"{data_dir}: test classes {test.class_names} differ from train classes {train.class_names}")
        clf.test_accuracy, predicted = accuracy(clf, test.images, test.labels)
        clf.info |= {
            "test_images": len(test.labels),
            "test_per_class": per_class_accuracy(predicted, test.labels, clf.class_names),
        }
    return clf


def classify_files(clf: Classifier, paths: list[str], top: int = 3) -> list[tuple[str, list[tuple[str, float]]]]:
    """The `top` most likely classes of each image file, read like training data (centre crop, resize)."""
    pixels = torch.from_numpy(np.stack([load_image(p, clf.image_size) for p in paths])).permute(0, 3, 1, 2)
    probs = clf.probabilities(pixels)
    best = probs.topk(min(top, probs.shape[1]), dim=1)
    return [
        (str(path), [(clf.class_names[i], p) for i, p in zip(idx.tolist(), values.tolist())])
        for path, values, idx in zip(paths, best.values, best.indices)
    ]
