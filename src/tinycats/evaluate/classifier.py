"""The breed classifier that judges generated samples: does "Siamese" look like a Siamese?

Two backbones: `small-cnn` (trains from scratch in about a minute on a CPU; the toy-cats judge)
and torchvision's `resnet18` (for real photos, optionally from local ImageNet weights, since the
weights cannot be downloaded offline). Its penultimate features also give the Fréchet distance in
classifier space (FD-classifier) and the nearest-neighbour memorisation check.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from tinycats import checkpoint
from tinycats.data import augment
from tinycats.seeding import generator

FORMAT = "tinycats-classifier-v1"
BACKBONES = ("small-cnn", "resnet18")
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
    """A trained classifier and what it needs to read images: its input size and class names."""

    net: nn.Module
    backbone: str
    image_size: int
    class_names: list[str]
    test_accuracy: float | None = None

    def _prepare(self, images: torch.Tensor) -> torch.Tensor:
        """[-1, 1] images of any size -> the network's input (resized, normalised for ResNet)."""
        x = images.to(next(self.net.parameters()).device).float()
        if x.shape[-1] != self.image_size:
            x = F.interpolate(x, size=(self.image_size, self.image_size), mode="bilinear", antialias=True, align_corners=False)
        if self.backbone == "resnet18":
            mean = torch.tensor(IMAGENET_MEAN, device=x.device)[:, None, None]
            std = torch.tensor(IMAGENET_STD, device=x.device)[:, None, None]
            x = ((x + 1) / 2 - mean) / std
        return x

    @torch.inference_mode()
    def features(self, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
        self.net.eval()
        return torch.cat([self.net.body(self._prepare(b)).float().cpu() for b in images.split(batch_size)])

    @torch.inference_mode()
    def probabilities(self, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
        self.net.eval()
        return torch.cat([self.net.head(self.net.body(self._prepare(b))).softmax(-1).float().cpu() for b in images.split(batch_size)])

    def save(self, path: str | Path) -> Path:
        return checkpoint.save_atomic(
            {
                "format": FORMAT,
                "backbone": self.backbone,
                "image_size": self.image_size,
                "class_names": self.class_names,
                "test_accuracy": self.test_accuracy,
                "model": self.net.state_dict(),
            },
            path,
        )


def build(backbone: str, num_classes: int) -> nn.Module:
    if backbone == "small-cnn":
        return SmallCNN(num_classes)
    if backbone == "resnet18":
        return ResNet18(num_classes)
    raise ValueError(f"unknown backbone {backbone!r}; use one of {', '.join(BACKBONES)}")


def load(path: str | Path, device: str | torch.device = "cpu") -> Classifier:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"classifier {path} does not exist: train one with `tinycats train-classifier DATA --output {path}`")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ValueError(f"{path} is not a tinycats classifier (made by `tinycats train-classifier`)")
    net = build(state["backbone"], len(state["class_names"]))
    net.load_state_dict(state["model"])
    return Classifier(net.to(device).eval(), state["backbone"], state["image_size"], list(state["class_names"]), state["test_accuracy"])


def load_pretrained_backbone(net: nn.Module, path: str | Path) -> None:
    """Copy ImageNet weights (a torchvision resnet18 state dict file) into the body; the head stays new."""
    weights = torch.load(path, map_location="cpu", weights_only=True)
    weights = {k: v for k, v in weights.items() if not k.startswith("fc.")}
    missing, unexpected = net.body.load_state_dict(weights, strict=False)
    if unexpected or [k for k in missing if not k.startswith("fc.")]:
        raise ValueError(f"{path} does not hold resnet18 weights (missing {missing[:3]}, unexpected {unexpected[:3]})")


def train_classifier(
    images: torch.Tensor,
    labels: torch.Tensor,
    class_names: list[str],
    backbone: str = "small-cnn",
    epochs: int = 15,
    batch_size: int = 64,
    lr: float = 2e-3,
    seed: int = 0,
    pretrained: str | Path | None = None,
    device: str | torch.device = "cpu",
    progress=None,
) -> Classifier:
    """Train on a uint8 cache [N, 3, S, S] with flips and mild crops (the generator's `full`
    augmentation). Returns the classifier in eval mode."""
    torch.manual_seed(seed)
    net = build(backbone, len(class_names))
    if pretrained:
        load_pretrained_backbone(net, pretrained)
    net = net.to(device)
    clf = Classifier(net, backbone, images.shape[-1], list(class_names))
    steps_per_epoch = max(1, len(labels) // batch_size)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=epochs * steps_per_epoch)
    for epoch in range(epochs):
        net.train()
        g = generator(seed, 7, epoch)
        order = torch.randperm(len(labels), generator=g)
        for i in range(steps_per_epoch):
            idx = order[i * batch_size : (i + 1) * batch_size]
            x = augment.apply(images[idx], augment.draw_params("full", len(idx), g))
            loss = F.cross_entropy(net.head(net.body(clf._prepare(x))), labels[idx].to(device), label_smoothing=0.05)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        if progress:
            progress(epoch + 1, epochs, loss.item())
    net.eval()
    return clf


def accuracy(clf: Classifier, images: torch.Tensor, labels: torch.Tensor) -> tuple[float, torch.Tensor]:
    """Top-1 accuracy of [-1, 1] images, and the predicted class of each."""
    predicted = clf.probabilities(images).argmax(-1)
    return (predicted == labels).float().mean().item(), predicted
