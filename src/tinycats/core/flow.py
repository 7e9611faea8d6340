"""Flow matching: the one place the time convention lives.

    t in [0, 1];  t = 0 is pure noise, t = 1 is data.
    x_t = t * x + (1 - t) * eps,   eps ~ N(0, I)
    v   = dx_t/dt = x - eps
    sampling integrates dx/dt = v from t = 0 to t = 1.

The network predicts either the clean image x (default; Li & He 2025, "Back to Basics: Let
Denoising Generative Models Denoise": a clean image lies on a low-dimensional manifold, noise does
not, so a small network has less to represent) or v directly (DiT/SiT style). Whatever it predicts,
the loss is taken on the velocity, v_hat = (x_hat - x_t) / max(1 - t, t_eps), so the two targets
are compared under the same objective. Training times are logit-normal (SD3, Esser et al. 2024)
by default, which spends steps in the middle of the path where the task is hardest. A model's
`time_shift` (ModelConfig) moves training times and every sampler's time grid toward the noise by
one formula (solvers.shift_time), for resolutions whose tokens carry more signal.
"""

from __future__ import annotations

import torch

from tinycats.config import TIME_SAMPLINGS, ModelConfig
from tinycats.core.solvers import shift_time
from tinycats.errors import ConfigError


def interpolate(x: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """The point x_t on the straight path from noise (t = 0) to data (t = 1)."""
    t = _expand(t, x)
    return t * x + (1 - t) * noise


def target_velocity(x: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """dx_t/dt along the path: constant in t."""
    return x - noise


def to_velocity(output: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor, config: ModelConfig) -> torch.Tensor:
    """Turn the network's output into a velocity, whatever its prediction target."""
    if config.prediction == "v":
        return output
    return (output - x_t) / _expand(1 - t, x_t).clamp_min(config.t_eps)


def velocity(
    model: torch.nn.Module, x_t: torch.Tensor, t: torch.Tensor, labels: torch.Tensor, config: ModelConfig | None = None
) -> torch.Tensor:
    """Evaluate the model and return v_hat in float32. `config` for a wrapped model (DDP,
    torch.compile) that does not carry its own."""
    out = model(x_t, t, labels).float()
    return to_velocity(out, x_t.float(), t.float(), config or model.config)


def sample_time(
    n: int, kind: str, generator: torch.Generator, mean: float = -0.8, std: float = 0.8, shift: float = 1.0
) -> torch.Tensor:
    """Training times on the generator's device: "logit-normal" = sigmoid(N(mean, std)), or
    "uniform"; then moved toward the noise by the model's time shift (solvers.shift_time), the
    same map the samplers apply to their time grid."""
    device = generator.device
    if kind == "uniform":
        t = torch.rand(n, generator=generator, device=device)
    elif kind == "logit-normal":
        t = torch.sigmoid(mean + std * torch.randn(n, generator=generator, device=device))
    else:
        raise ConfigError(f"unknown time sampling {kind!r}; use one of {', '.join(TIME_SAMPLINGS)}")
    return shift_time(t, shift)


def loss(
    net: torch.nn.Module,
    config: ModelConfig,
    x: torch.Tensor,
    labels: torch.Tensor,
    noise: torch.Tensor,
    t: torch.Tensor,
) -> torch.Tensor:
    """Mean squared error between predicted and true velocity, averaged over every pixel.

    `net` may be wrapped (DDP, torch.compile), so its config comes in separately. The random draws
    (noise, t, dropped labels) come from the caller, which derives them from (seed, data position)
    so that a resumed run draws exactly what an uninterrupted one would.
    """
    x_t = interpolate(x, noise, t)
    return (velocity(net, x_t, t, labels, config) - target_velocity(x, noise).float()).square().mean()


def _expand(t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return t.reshape(-1, *([1] * (like.dim() - 1))).to(like.dtype)
