import math

import pytest
import torch

from tinycats.evaluate.seams import seam_ratios, seam_score


def by_hand(image: torch.Tensor, p: int) -> float:
    """Every adjacent pixel pair, one at a time: the independent computation."""
    c, h, w = image.shape
    border, inside = [], []
    for ch in range(c):
        for y in range(h):
            for x in range(w):
                for dy, dx in ((0, 1), (1, 0)):
                    y2, x2 = y + dy, x + dx
                    if y2 < h and x2 < w:
                        step = abs(float(image[ch, y2, x2]) - float(image[ch, y, x]))
                        (border if (y // p, x // p) != (y2 // p, x2 // p) else inside).append(step)
    return (sum(border) / len(border)) / (sum(inside) / len(inside))


def test_the_ratio_is_the_mean_step_across_borders_over_the_mean_step_inside():
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (3, 3, 12, 12), generator=g, dtype=torch.uint8)
    ratios = seam_ratios(images, 4)
    for image, ratio in zip(images, ratios):
        assert float(ratio) == pytest.approx(by_hand(image, 4), rel=1e-5)


def test_smooth_images_score_one_and_a_patch_grid_scores_well_above():
    g = torch.Generator().manual_seed(1)
    ramp = torch.linspace(0, 200, 32)
    smooth = (ramp[None, None, :] + ramp[None, :, None] * 0.3 + torch.randn(8, 3, 32, 32, generator=g) * 3).clamp(0, 255)
    offsets = torch.randn(8, 3, 8, 8, generator=g) * 12  # one colour shift per 4x4 patch: a decoder's grid
    gridded = (smooth + offsets.repeat_interleave(4, dim=2).repeat_interleave(4, dim=3)).clamp(0, 255)
    assert seam_score(smooth, 4).ratio == pytest.approx(1.0, abs=0.05)
    assert seam_score(gridded, 4).ratio > 2.0
    assert seam_score(gridded, 8).ratio < seam_score(gridded, 4).ratio  # measured at the wrong grid, less of it shows


def test_flat_images_are_left_out_and_counted():
    images = torch.zeros(3, 3, 8, 8)
    images[0] = torch.rand(3, 8, 8)
    score = seam_score(images, 4)
    assert (score.images, score.flat) == (1, 2) and math.isfinite(score.ratio)
    assert math.isnan(seam_score(torch.zeros(2, 3, 8, 8), 4).ratio)
    with pytest.raises(ValueError, match="no patch borders"):
        seam_score(images, 8)
