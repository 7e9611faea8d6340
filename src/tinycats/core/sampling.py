"""Class-conditional sampling with classifier-free guidance, in PyTorch.

Guidance runs the conditional and the null half as ONE batched forward (half the launches of two
passes, and the same arithmetic as the ONNX graph). An optional guidance interval (Kynkäänniemi
et al. 2024) guides only while lo <= t <= hi and runs the conditional half alone elsewhere.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from tqdm.auto import tqdm

from tinycats.config import SampleConfig
from tinycats.core.flow import velocity
from tinycats.core.noise import initial_noise
from tinycats.core.solvers import SOLVERS, guided
from tinycats.runtime import autocast


def guided_velocity(
    model: torch.nn.Module, x: torch.Tensor, t: torch.Tensor, labels: torch.Tensor, cfg_scale: torch.Tensor
) -> torch.Tensor:
    """Classifier-free guidance, the one implementation: the conditional and null halves in ONE
    batched forward, then v_null + s * (v_cond - v_null). `t` and `cfg_scale` are per sample [B];
    s = 1 gives the conditional velocity. The PyTorch sampler and the exported ONNX graph
    (`GuidedStep`) both compute this."""
    n = x.shape[0]
    both = torch.cat([labels, torch.full_like(labels, model.null_label)])
    v = velocity(model, torch.cat([x, x]), torch.cat([t, t]), both)
    # Slices, not chunk(2): chunk makes torch.export specialise the batch size.
    return guided(v[:n], v[n:], cfg_scale.reshape(n, *[1] * (x.dim() - 1)))


class GuidedStep(torch.nn.Module):
    """One guided step as a module (what export-onnx traces): (x, t, label, cfg_scale) -> v."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor, t: torch.Tensor, label: torch.Tensor, cfg_scale: torch.Tensor) -> torch.Tensor:
        return guided_velocity(self.model, x, t, label, cfg_scale)


def velocity_fn(model: torch.nn.Module, labels: torch.Tensor, cfg_scale: float, interval: tuple[float, float]):
    """A function (x, t) -> guided velocity for the given labels. Outside the guidance interval
    (or with scale 1) only the conditional half runs: the same result at half the cost."""
    lo, hi = interval

    def fn(x: torch.Tensor, t: float) -> torch.Tensor:
        times = torch.full((x.shape[0],), t, device=x.device)
        if cfg_scale == 1.0 or not lo <= t <= hi:
            return velocity(model, x, times, labels)
        return guided_velocity(model, x, times, labels, torch.full_like(times, cfg_scale))

    return fn


@torch.inference_mode()
def sample(
    model: torch.nn.Module,
    labels: Sequence[int],
    settings: SampleConfig,
    seed: int = 0,
    batch_size: int = 64,
    indices: Sequence[int] | None = None,
    progress: bool = False,
) -> torch.Tensor:
    """Images in [-1, 1], [N, C, H, W] float32 on the CPU. Image k starts from the noise of
    (seed, indices[k]) (default indices: 0, 1, 2, ...), whatever the batch it falls in."""
    indices = list(range(len(labels))) if indices is None else list(indices)
    cfg = model.config
    device = next(model.parameters()).device
    amp = autocast(device, "auto")  # bf16 on CUDA, fp32 on the CPU
    solver = SOLVERS[settings.sampler]
    shape = (cfg.in_channels, cfg.image_size, cfg.image_size)
    out = []
    starts = range(0, len(labels), batch_size)
    for start in tqdm(starts, desc="sampling", unit="batch", disable=not progress):
        x = torch.from_numpy(initial_noise(seed, indices[start : start + batch_size], shape)).to(device)
        y = torch.tensor(labels[start : start + batch_size], device=device, dtype=torch.long)
        fn = velocity_fn(model, y, settings.cfg_scale, settings.guidance_interval)
        with amp:
            out.append(solver(fn, x, settings.steps, cfg.time_shift).float().clamp(-1, 1).cpu())
    return torch.cat(out) if out else torch.empty(0, *shape)
