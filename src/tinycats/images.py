"""Converting generated tensors to pictures. The torch-free parts (arrays to uint8, grids) live in
`grids.py`, which the ONNX-only sampler shares."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from tinycats import grids


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """[-1, 1] float NCHW -> uint8 NHWC, rounding to the nearest level."""
    return grids.to_uint8(images.detach().float().cpu().numpy())


def to_pil(images: torch.Tensor) -> list[Image.Image]:
    return [Image.fromarray(a) for a in to_uint8(images)]
