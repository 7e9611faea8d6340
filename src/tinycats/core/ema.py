"""Exponential moving average of the weights, which sampling, evaluation and export use.

The decay ramps up as min(beta, (1 + n) / (10 + n)) after n updates: early on the average follows
the fast-moving weights (a 0.9999 average of the random initialisation would take ~10k steps to
forget it), later it settles to `beta`.

With `sigma_rel` > 0 it is EDM2's power-function EMA instead (Karras et al. 2024): decay
(1 - 1/t)^(gamma + 1) at update t makes the average exactly the mean of every weight so far under
the profile tau^gamma (each step's weights get the profile's integral over that step), a profile
whose width is `sigma_rel` of the run's length at every moment. The ramp above is nearly that
profile already ((1 + n) / (10 + n) ~ 1 - 9/n: gamma ~ 8, sigma_rel ~ 0.09) until it reaches beta;
from then on a fixed beta averages a fixed number of steps, an ever smaller share of a long run
(0.9999 at 400k steps: sigma_rel ~ 0.025).
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch
from torch import nn


def power_gamma(sigma_rel: float) -> float:
    """The exponent gamma of the profile t^gamma on [0, 1] whose std / peak is `sigma_rel`: the
    largest real root of sigma_rel^2 = (gamma + 1) / ((gamma + 2)^2 (gamma + 3)) (EDM2, eq. 3)."""
    t = sigma_rel**-2
    return float(np.roots([1, 7, 16 - t, 12 - t]).real.max())


class EMA:
    def __init__(self, model: nn.Module, beta: float, sigma_rel: float = 0.0) -> None:
        self.model = copy.deepcopy(model).eval().requires_grad_(False)
        self.beta = beta
        self.gamma = power_gamma(sigma_rel) if sigma_rel else None
        self.updates = 0

    def decay(self) -> float:
        """The decay the next update will use."""
        n = self.updates
        if self.gamma is not None:
            return (1 - 1 / (n + 1)) ** (self.gamma + 1)
        return min(self.beta, (1 + n) / (10 + n))

    @torch.no_grad()
    def update(self, model: nn.Module, skip: torch.Tensor | None = None) -> None:
        """One multi-tensor lerp towards `model`. `skip` (a 0-dim 0/1 tensor on the device) turns
        the update into a no-op without the host reading it: the training loop's non-finite flag.
        With skip = 0 the result is bitwise the plain update's."""
        ema_params = list(self.model.parameters())
        params = [p.detach() for p in model.parameters()]
        weight = 1.0 - self.decay()
        if skip is not None:
            weight = torch.tensor(weight, dtype=ema_params[0].dtype, device=skip.device) * (1 - skip)
        torch._foreach_lerp_(ema_params, params, weight)
        self.updates += 1

    def state_dict(self) -> dict[str, Any]:
        return {"model": self.model.state_dict(), "updates": self.updates, "beta": self.beta}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.updates = int(state["updates"])
