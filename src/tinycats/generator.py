"""The generator of any checkpoint kind, ready to sample: the one loader that sampling, evaluation,
export, benchmarks, the demo and the Python API share."""

from __future__ import annotations

from pathlib import Path

from tinycats import checkpoint
from tinycats.core.model import TinyDiT
from tinycats.hub import layout as hub_layout
from tinycats.hub import load as hub_load
from tinycats.runtime import pick_device


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
        run = checkpoint.run_config(state)
        model = TinyDiT(run.model)
        model.load_state_dict(checkpoint.ema_weights(state), strict=True)
        model.sample_config = run.sample
    return model.to(pick_device(device)).eval().requires_grad_(False)


def weights_file(checkpoint: str | Path) -> Path:
    """The file that holds a checkpoint's weights: the .pt itself, or a Hub folder's safetensors."""
    if hub_layout.is_ref(checkpoint):
        return hub_load.local_folder(str(checkpoint)) / hub_layout.WEIGHTS
    path = Path(checkpoint)
    return path / hub_layout.WEIGHTS if path.is_dir() else path
