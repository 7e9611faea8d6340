"""Pixels in and out of tokens: the patch embedding and the patch decoder, each in the variants the
seam study compares (docs/recipe.md).

DiT embeds and decodes every p×p patch on its own with one linear layer. Decoding that way lets
neighbouring patches disagree at their shared border, which shows as a grid (measured by
evaluate/seams.py). The variants give the border pixels a view across it:

    embed   "linear"   DiT: a linear layer per patch (a stride-p convolution with a p×p kernel).
            "conv"     overlapping: a stride-p convolution with a 2p×2p kernel, so each token also
                       sees half a patch of each neighbour.
            "bottleneck" JiT: the linear layer factored through `embed_width` values (p*p*C ->
                       width -> D, the first without bias). At p = 16 a patch has 768 values, more
                       than the network is wide; JiT finds the low-rank first step helps there.
    decoder "linear"   DiT: a linear layer per token to its p×p×C pixels.
            "conv"     U-ViT: the linear decoder, then a 3×3 convolution on the image added to it,
                       zero-initialised so a new network starts as the linear one.
            "pixel"    a light pixel decoder (after PixNerd / DeCo): the linear layer gives K
                       (`pixel_features`) features per pixel instead of C colours; two 3×3
                       convolutions over the whole image turn them into colours, so the last layer
                       sees across every border. Its cost grows with K² per pixel: at 64 px, K = 16
                       halves a tinydit-xs step's speed on a CPU and K = 8 costs a quarter.

Old checkpoints name neither setting and load as "linear"/"linear" (and K = 16): the same modules,
the same keys.
The zero-initialised last layers keep DiT's rule that a new network outputs zero; for "pixel" the
linear layer keeps its random start, or no gradient would reach the convolutions.
"""

from __future__ import annotations

import torch
from torch import nn


def patchify(images: torch.Tensor, patch: int) -> torch.Tensor:
    """[N, C, H, W] -> [N, T, p*p*C], tokens in row-major order, each token (row, col, channel)."""
    n, c, h, w = images.shape
    x = images.reshape(n, c, h // patch, patch, w // patch, patch)
    x = torch.einsum("nchpwq->nhwpqc", x)
    return x.reshape(n, (h // patch) * (w // patch), patch * patch * c)


def unpatchify(tokens: torch.Tensor, patch: int, channels: int, height: int, width: int) -> torch.Tensor:
    """Exact inverse of `patchify`: token k fills pixel block (k // (W/p), k % (W/p))."""
    n = tokens.shape[0]
    h, w = height // patch, width // patch
    x = tokens.reshape(n, h, w, patch, patch, channels)
    x = torch.einsum("nhwpqc->nchpwq", x)
    return x.reshape(n, channels, height, width)


def embedding(kind: str, channels: int, patch: int, hidden: int, width: int) -> nn.Module:
    """The patch embedding: nn.Linear for "linear" (its keys are those of every older checkpoint),
    two nn.Linear through `width` values for "bottleneck", nn.Conv2d with a 2p kernel centred on
    the patch, reaching p/2 into each neighbour, for "conv"."""
    if kind == "linear":
        return nn.Linear(patch * patch * channels, hidden)
    if kind == "bottleneck":
        return nn.Sequential(nn.Linear(patch * patch * channels, width, bias=False), nn.Linear(width, hidden))
    conv = nn.Conv2d(channels, hidden, kernel_size=2 * patch, stride=patch, padding=patch // 2)
    nn.init.xavier_uniform_(conv.weight.view(hidden, -1))  # as DiT initialises its patch convolution
    nn.init.zeros_(conv.bias)
    return conv


def embed(layer: nn.Module, images: torch.Tensor, patch: int) -> torch.Tensor:
    """[N, C, H, W] -> [N, T, D] through `embedding`'s layer."""
    if not isinstance(layer, nn.Conv2d):
        return layer(patchify(images, patch))
    return layer(images).flatten(2).transpose(1, 2)


def values_per_pixel(decoder: str, channels: int, features: int) -> int:
    """What the final linear layer gives each pixel: its colours, or the pixel decoder's features."""
    return features if decoder == "pixel" else channels


def refinement(decoder: str, channels: int, features: int) -> nn.Module | None:
    """What runs on the un-patchified image: nothing ("linear"), a zero-initialised 3×3 convolution
    whose output is added ("conv", so a new network decodes exactly as "linear"), or two 3×3
    convolutions from features to colours whose last layer starts at zero ("pixel")."""
    if decoder == "linear":
        return None
    if decoder == "conv":
        layers = nn.Conv2d(channels, channels, 3, padding=1)
        last = layers
    else:
        k = features
        layers = nn.Sequential(nn.Conv2d(k, k, 3, padding=1), nn.SiLU(), nn.Conv2d(k, channels, 3, padding=1))
        last = layers[-1]
    nn.init.zeros_(last.weight)
    nn.init.zeros_(last.bias)
    return layers


def decode(tokens: torch.Tensor, refine: nn.Module | None, patch: int, size: int) -> torch.Tensor:
    """[N, T, p*p*K] from the final layer -> [N, C, H, W]."""
    image = unpatchify(tokens, patch, tokens.shape[-1] // (patch * patch), size, size)
    if refine is None:
        return image
    if isinstance(refine, nn.Conv2d):
        return image + refine(image)
    return refine(image)
