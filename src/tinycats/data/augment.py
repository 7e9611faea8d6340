"""Generator-safe augmentation, applied to whole batches on the training device.

Levels: "none"; "basic" = horizontal flip; "full" = flip + mild random-resized crop (80-100 % of
the area, aspect 0.9-1.1, always inside the image: no black borders) + mild brightness, contrast
and saturation jitter (±10 %). Never hue: a hue shift can turn a ruddy Abyssinian into a silver
Egyptian Mau, and the generator would learn the wrong breed.

Why not torchvision.transforms: v2 draws one set of parameters per call, so per-sample randomness
needs a Python loop over the batch; here the parameters are drawn per sample in one go (from a
generator the trainer derives from the data position, for exact resume) and applied in one
`grid_sample` on the device, crop and flip together.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from tinycats.config import AUGMENTATION_LEVELS as LEVELS
from tinycats.errors import ConfigError

CROP_SCALE = (0.8, 1.0)
CROP_RATIO = (0.9, 1.1)
JITTER = 0.1


def draw_params(level: str, n: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """Per-sample parameters for `n` images, drawn on the CPU. Always draws the same amount for a
    level, so the stream does not depend on the images."""
    if level not in LEVELS:
        raise ConfigError(f"unknown augmentation level {level!r}; use one of {', '.join(LEVELS)}")
    if level == "none":
        return {}
    params = {"flip": torch.rand(n, generator=generator) < 0.5}
    if level == "full":
        u = torch.rand(n, 7, generator=generator)
        area = CROP_SCALE[0] + (CROP_SCALE[1] - CROP_SCALE[0]) * u[:, 0]
        log_ratio = math.log(CROP_RATIO[0]) + (math.log(CROP_RATIO[1]) - math.log(CROP_RATIO[0])) * u[:, 1]
        ratio = log_ratio.exp()
        width = (area * ratio).sqrt().clamp(max=1.0)  # fractions of the side
        height = (area / ratio).sqrt().clamp(max=1.0)
        params["box"] = torch.stack([width, height, u[:, 2], u[:, 3]], dim=1)
        params["jitter"] = 1 + JITTER * (2 * u[:, 4:7] - 1)  # brightness, contrast, saturation
    return params


def slice_params(params: dict[str, torch.Tensor], part: slice) -> dict[str, torch.Tensor]:
    return {k: v[part] for k, v in params.items()}


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] -> float32 [-1, 1]."""
    return images.float().div(127.5).sub(1)


def apply(images: torch.Tensor, params: dict[str, torch.Tensor]) -> torch.Tensor:
    """uint8 [B, 3, H, W] -> augmented float32 [-1, 1] on the images' device."""
    x = to_float(images)
    if not params:
        return x
    device = x.device
    flip = params["flip"].to(device)
    if "box" not in params:
        return torch.where(flip[:, None, None, None], x.flip(-1), x)
    width, height, px, py = params["box"].to(device).unbind(1)
    # The crop's centre, in normalised [-1, 1] coordinates, anywhere that keeps the box inside.
    cx = (1 - width) * (2 * px - 1)
    cy = (1 - height) * (2 * py - 1)
    theta = torch.zeros(len(x), 2, 3, device=device)
    theta[:, 0, 0] = torch.where(flip, -width, width)
    theta[:, 0, 2] = cx
    theta[:, 1, 1] = height
    theta[:, 1, 2] = cy
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    return _jitter(x, params["jitter"].to(device))


def _jitter(x: torch.Tensor, factors: torch.Tensor) -> torch.Tensor:
    """Brightness, contrast, then saturation, each clamped, as torchvision's ColorJitter does."""
    img = (x + 1) / 2
    brightness, contrast, saturation = (factors[:, i, None, None, None] for i in range(3))
    img = (img * brightness).clamp(0, 1)
    mean = _gray(img).mean(dim=(2, 3), keepdim=True)
    img = ((img - mean) * contrast + mean).clamp(0, 1)
    gray = _gray(img)
    img = ((img - gray) * saturation + gray).clamp(0, 1)
    return img * 2 - 1


def _gray(img: torch.Tensor) -> torch.Tensor:
    return 0.299 * img[:, 0:1] + 0.587 * img[:, 1:2] + 0.114 * img[:, 2:3]
