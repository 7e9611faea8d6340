"""ODE solvers, written for numpy arrays and torch tensors alike.

Sampling integrates dx/dt = v(x, t) from t = 0 (noise) to t = 1 (data). The solvers only add and
scale arrays, so the PyTorch sampler and the ONNX-only sampler (which must import without torch)
share them, and with them the exact order of operations; web/src/solvers.js repeats that order in
float32 for the browser. The initial noise is `tinycats.core.noise`. Like it, this module imports
nothing of tinycats: a Hub repo's onnx/sample.py carries both (hub/stage.py).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import TypeVar

Array = TypeVar("Array")
VelocityFn = Callable[[Array, float], Array]


def shift_time(t: Array, shift: float) -> Array:
    """Move times toward the noise end for a model that sees more signal per token (a higher
    resolution at the same token count): SD3's shift (Esser et al. 2024), σ' = α·σ / (1 + (α − 1)·σ)
    on the noise fraction σ = 1 − t, which multiplies the noise-to-signal ratio σ / (1 − σ) by α.
    α = 1 is the identity; t = 0 and t = 1 stay where they are. Plain arithmetic, so floats, numpy
    arrays and torch tensors alike: training (core/flow.py) and every sampler use this one formula,
    web/src/solvers.js repeats it in the same order."""
    if shift == 1:
        return t
    sigma = 1 - t
    return 1 - shift * sigma / (1 + (shift - 1) * sigma)


def time_grid(steps: int, shift: float = 1.0) -> list[float]:
    """steps + 1 times from 0 to 1: evenly spaced, then shifted (`shift_time`)."""
    return [shift_time(i / steps, shift) for i in range(steps + 1)]


def euler(velocity: VelocityFn, x: Array, steps: int, shift: float = 1.0) -> Array:
    grid = time_grid(steps, shift)
    for t0, t1 in itertools.pairwise(grid):
        x = x + (t1 - t0) * velocity(x, t0)
    return x


def heun(velocity: VelocityFn, x: Array, steps: int, shift: float = 1.0) -> Array:
    """Second order (trapezoidal predictor-corrector); the last step is plain Euler because
    its end point t = 1 needs no correction, so `steps` steps cost 2*steps - 1 evaluations."""
    grid = time_grid(steps, shift)
    for i, (t0, t1) in enumerate(itertools.pairwise(grid)):
        v0 = velocity(x, t0)
        x_euler = x + (t1 - t0) * v0
        if i == steps - 1:
            x = x_euler
        else:
            x = x + (t1 - t0) * 0.5 * (v0 + velocity(x_euler, t1))
    return x


SOLVERS: dict[str, Callable[[VelocityFn, Array, int, float], Array]] = {"euler": euler, "heun": heun}  # config.SAMPLERS


def model_calls(sampler: str, steps: int) -> int:
    """Network evaluations (per guided batch) a sampler spends."""
    calls = {"euler": steps, "heun": 2 * steps - 1}
    if sampler not in calls:
        raise KeyError(f"unknown sampler {sampler!r}; known: {', '.join(calls)}")
    return calls[sampler]


def guided(v_cond: Array, v_null: Array, scale: float) -> Array:
    """Classifier-free guidance in velocity space: v_null + scale * (v_cond - v_null)."""
    return v_null + scale * (v_cond - v_null)
