"""The initial noise of sampling, defined so that numpy and JavaScript compute the same numbers.

Image `index` of a run with `seed` starts from a stream of standard normals that depends on
(seed, index) alone, not on the batch it is drawn in nor on the backend (PyTorch, onnxruntime,
the browser). numpy's generators cannot be reproduced in a browser, so the stream is spelled out:

    key      = mix(mix(seed + G) + index * G)                 (mod 2^64; G = 0x9E3779B97F4A7C15)
    z_j      = mix(key + (j + 1) * G)                         SplitMix64 as a counter-based generator
    u1, u2   = ((z_2m >> 11) + 1) * 2^-53,  (z_2m+1 >> 11) * 2^-53       u1 in (0, 1], u2 in [0, 1)
    n_2m     = sqrt(-2 ln u1) * cos(2 pi u2),  n_2m+1 = sqrt(-2 ln u1) * sin(2 pi u2)   (float64)

then rounded to float32, in C-order of the image tensor [C, H, W]. `mix` is SplitMix64's finaliser.
web/noise.js implements the same lines; both are checked against tests/noise_vectors.json.
Everything up to u1, u2 is exact integer arithmetic; log, cos and sin are the platforms' float64
functions, which may differ in the last bit of float64, so the two sides agree to within one
float32 rounding step (the vectors are identical on the machines measured).
"""

from __future__ import annotations

import numpy as np

MASK = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15
_M1, _M2 = 0xBF58476D1CE4E5B9, 0x94D049BB133111EB


def _mix_int(z: int) -> int:
    z = ((z ^ (z >> 30)) * _M1) & MASK
    z = ((z ^ (z >> 27)) * _M2) & MASK
    return z ^ (z >> 31)


def _mix(z: np.ndarray) -> np.ndarray:
    z = (z ^ (z >> np.uint64(30))) * np.uint64(_M1)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(_M2)
    return z ^ (z >> np.uint64(31))


def stream_key(seed: int, index: int) -> int:
    return _mix_int((_mix_int((seed + GOLDEN) & MASK) + index * GOLDEN) & MASK)


def standard_normal(seed: int, index: int, count: int) -> np.ndarray:
    """The first `count` normals of the stream of (seed, index), float32."""
    pairs = (count + 1) // 2
    counters = np.arange(1, 2 * pairs + 1, dtype=np.uint64)
    with np.errstate(over="ignore"):  # wrapping mod 2^64 is the definition
        z = _mix(np.uint64(stream_key(seed, index)) + counters * np.uint64(GOLDEN))
    bits = (z >> np.uint64(11)).astype(np.float64)
    u1 = (bits[0::2] + 1.0) * 2.0**-53
    u2 = bits[1::2] * 2.0**-53
    radius = np.sqrt(-2.0 * np.log(u1))
    angle = 2.0 * np.pi * u2
    out = np.empty(2 * pairs, dtype=np.float64)
    out[0::2], out[1::2] = radius * np.cos(angle), radius * np.sin(angle)
    return out[:count].astype(np.float32)


def initial_noise(seed: int, indices: range | list[int], shape: tuple[int, ...]) -> np.ndarray:
    """Standard normal noise [len(indices), *shape]; image i from the stream of (seed, i)."""
    count = int(np.prod(shape))
    return np.stack([standard_normal(seed, i, count).reshape(shape) for i in indices]).astype(np.float32, copy=False)
