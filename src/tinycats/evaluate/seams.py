"""The seam metric: how much more the pixels step across patch borders than inside patches.

A patch-based generator decodes each p×p patch on its own, so a visible grid shows as larger
colour steps between neighbouring pixels that lie in different patches. For one image, the mean
|difference| of horizontally and vertically adjacent pixels whose pair crosses a patch border is
divided by the same mean over pairs inside a patch; a photo, which knows nothing of the grid,
scores about 1, a visible grid well above. The figure for a set is the mean over its images
(images with no detail inside patches, which have no ratio, are left out and counted).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class SeamScore:
    ratio: float  # mean over images of border step / inside step; nan when no image has a ratio
    images: int  # images that have a ratio
    flat: int  # images left out: no pixel steps inside patches


def seam_ratios(images: torch.Tensor, patch_size: int) -> torch.Tensor:
    """Per image border/inside ratio of uint8 or float images [N, C, H, W] (nan for a flat one)."""
    x = images.float()
    steps_w = (x[..., :, 1:] - x[..., :, :-1]).abs().mean(dim=(1, 2))  # [N, W-1]: mean over channels and rows
    steps_h = (x[..., 1:, :] - x[..., :-1, :]).abs().mean(dim=(1, 3))  # [N, H-1]
    border_w = (torch.arange(1, x.shape[-1]) % patch_size) == 0  # the pair (j-1, j) straddles a border
    border_h = (torch.arange(1, x.shape[-2]) % patch_size) == 0
    border = torch.cat([steps_w[:, border_w], steps_h[:, border_h]], dim=1).mean(dim=1)
    inside = torch.cat([steps_w[:, ~border_w], steps_h[:, ~border_h]], dim=1).mean(dim=1)
    return torch.where(inside > 0, border / inside.clamp_min(1e-12), torch.full_like(inside, float("nan")))


def seam_score(images: torch.Tensor, patch_size: int) -> SeamScore:
    if patch_size < 2 or images.shape[-1] <= patch_size or images.shape[-2] <= patch_size:
        raise ValueError(f"images of {tuple(images.shape[-2:])} px have no patch borders at patch size {patch_size}")
    ratios = seam_ratios(images, patch_size)
    known = ratios[~ratios.isnan()]
    return SeamScore(float(known.mean()) if len(known) else float("nan"), len(known), len(ratios) - len(known))
