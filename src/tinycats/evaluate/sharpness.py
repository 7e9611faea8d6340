"""Sharpness: how much fine detail generated images carry, against real ones of the same breed.

A generator that has learnt only the coarse layout of a cat draws soft faces: the eyes are blobs,
the fur has no texture. That shows as missing high-frequency energy. For one image it is the mean
squared response of the 3×3 Laplacian kernel [[0, 1, 0], [1, -4, 1], [0, 1, 0]] on its luminance
(Rec. 601 weights, pixel values in [0, 1], interior pixels only). The figure for a set against
another is the ratio of their mean energies: 1 is as sharp as the real images, below 1 blurrier,
above 1 noisier or over-sharpened. Breed accuracy and FD-classifier can be perfect while this
is far from 1.
"""

from __future__ import annotations

import torch

LUMA = (0.299, 0.587, 0.114)


def high_frequency_energy(images: torch.Tensor) -> torch.Tensor:
    """[N] mean squared Laplacian of the luminance of uint8 (0-255) or float ([-1, 1]) images [N, 3, H, W]."""
    x = images.float() / 255 if images.dtype == torch.uint8 else (images.float() + 1) / 2
    luma = torch.einsum("nchw,c->nhw", x, torch.tensor(LUMA))
    laplacian = luma[:, :-2, 1:-1] + luma[:, 2:, 1:-1] + luma[:, 1:-1, :-2] + luma[:, 1:-1, 2:] - 4 * luma[:, 1:-1, 1:-1]
    return laplacian.square().mean(dim=(1, 2))


def sharpness_ratio(generated: torch.Tensor, real: torch.Tensor) -> float:
    """Mean high-frequency energy of `generated` over that of `real` (nan when the real set has none)."""
    real_energy = float(high_frequency_energy(real).mean())
    return float(high_frequency_energy(generated).mean()) / real_energy if real_energy > 0 else float("nan")


def per_class(
    generated: torch.Tensor, generated_labels: torch.Tensor, real: torch.Tensor, real_labels: torch.Tensor, names: list[str]
) -> dict[str, float | None]:
    """The ratio within each class that both sets have (None for a class one of them lacks)."""
    out: dict[str, float | None] = {}
    for i, name in enumerate(names):
        g, r = generated_labels == i, real_labels == i
        out[name] = sharpness_ratio(generated[g], real[r]) if g.any() and r.any() else None
    return out
