"""The Python API for notebooks: load a generator, make pictures.

import tinycats
model = tinycats.load_generator("checkpoints/dit_step_400000_ema.pt")
images = tinycats.generate(model, ["Siamese", "Bombay"], num_steps=25, cfg_scale=2.0, seed=0)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import torch
from PIL import Image

from tinycats import checkpoint
from tinycats.breeds import class_index
from tinycats.config import ModelConfig, SampleConfig
from tinycats.hub import layout as hub_layout
from tinycats.hub import load as hub_load
from tinycats.images import to_pil
from tinycats.model import TinyDiT
from tinycats.runtime import pick_device
from tinycats.sampling import sample


def load_generator(path: str | Path, device: str = "auto") -> TinyDiT:
    """The EMA network of a checkpoint, in eval mode, with `.config` (class names included) and
    `.sample_config` (the sampler it was trained to recommend).

    `path` is a dit_step_N_ema.pt or dit_step_N.pt file, a folder holding config.json +
    model.safetensors (the Hub layout, docs/hub.md), or hf://OWNER/REPO[@REVISION] to read that
    folder from the Hub (and its cache afterwards).
    """
    if hub_layout.is_ref(path) or Path(path).is_dir():
        model = hub_load.load_model(hub_load.local_folder(str(path)) if hub_layout.is_ref(path) else Path(path))
    else:
        state = checkpoint.load(path)
        config = state["config"]
        model = TinyDiT(ModelConfig(**config["model"]))
        model.load_state_dict(checkpoint.ema_weights(state), strict=True)
        model.sample_config = SampleConfig(**config["sample"])
    return model.to(pick_device(device)).eval().requires_grad_(False)


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
        raise ValueError(f"class index {bad[0]} out of range 0..{len(names) - 1}")
    settings = _settings(getattr(model, "sample_config", SampleConfig()), num_steps, sampler, cfg_scale)
    with torch.inference_mode():
        return to_pil(sample(model, labels, settings, seed=seed, batch_size=batch_size))


def _settings(base: SampleConfig, steps: int | None, sampler: str | None, cfg_scale: float | None) -> SampleConfig:
    changes = {"steps": steps, "sampler": sampler, "cfg_scale": cfg_scale}
    return dataclasses.replace(base, **{k: v for k, v in changes.items() if v is not None})
