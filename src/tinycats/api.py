"""The Python API for notebooks: load a generator, make pictures.

import tinycats
model = tinycats.load_generator("checkpoints/dit_step_400000_ema.pt")
images = tinycats.generate(model, ["Siamese", "Bombay"], num_steps=25, cfg_scale=2.0, seed=0)
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from PIL import Image

from tinycats.breeds import class_index
from tinycats.config import SampleConfig
from tinycats.core.model import TinyDiT
from tinycats.core.sampling import sample
from tinycats.errors import UsageError
from tinycats.generator import load_generator
from tinycats.pictures import to_pil

__all__ = ["generate", "load_generator"]


def generate(
    model: TinyDiT,
    breeds: Sequence[str | int],
    num_steps: int | None = None,
    sampler: str | None = None,
    cfg_scale: float | None = None,
    seed: int = 0,
    batch_size: int = 64,
) -> list[Image.Image]:
    """One picture per entry of `breeds` (names or class indices); unset sampler settings come
    from the model's recommendation."""
    names = model.config.class_names
    labels = [b if isinstance(b, int) else class_index(b, names) for b in breeds]
    bad = [b for b in labels if not 0 <= b < len(names)]
    if bad:
        raise UsageError(f"class index {bad[0]} out of range 0..{len(names) - 1}")
    recommended = getattr(model, "sample_config", SampleConfig())
    settings = recommended.override(steps=num_steps, sampler=sampler, cfg_scale=cfg_scale)
    with torch.inference_mode():
        return to_pil(sample(model, labels, settings, seed=seed, batch_size=batch_size))
