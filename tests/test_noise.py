"""The initial noise: numpy's implementation against an independent one in plain Python integers
and `math`, against the fixed vectors the JavaScript side also meets, and as a distribution."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from tinycats.core.noise import initial_noise, standard_normal

VECTORS = json.loads((Path(__file__).parent / "noise_vectors.json").read_text())
ROOT = Path(__file__).resolve().parents[1]


def reference(seed: int, index: int, count: int) -> list[float]:
    """The module docstring's formulas, one number at a time."""
    mask, golden = (1 << 64) - 1, 0x9E3779B97F4A7C15

    def mix(z: int) -> int:
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
        return z ^ (z >> 31)

    key = mix((mix((seed + golden) & mask) + index * golden) & mask)
    out = []
    for m in range((count + 1) // 2):
        z1, z2 = mix((key + (2 * m + 1) * golden) & mask), mix((key + (2 * m + 2) * golden) & mask)
        u1, u2 = ((z1 >> 11) + 1) * 2.0**-53, (z2 >> 11) * 2.0**-53
        r = math.sqrt(-2.0 * math.log(u1))
        out += [r * math.cos(2.0 * math.pi * u2), r * math.sin(2.0 * math.pi * u2)]
    return out[:count]


def bits(values: np.ndarray) -> list[str]:
    return [f"{v:08x}" for v in values.astype(np.float32).view(np.uint32)]


@pytest.mark.parametrize(("seed", "index", "count"), [(0, 0, 9), (3, 11, 1000), (2**40 + 1, 2, 7)])
def test_numpy_matches_an_independent_implementation(seed, index, count):
    # Same float64 up to the last bit of log/cos/sin (numpy and libm may differ there), so float32 agrees exactly.
    ours = standard_normal(seed, index, count)
    theirs = np.asarray(reference(seed, index, count), dtype=np.float32)
    assert np.array_equal(ours, theirs)


def test_the_fixed_vectors():
    for case in VECTORS["cases"]:
        seed = int(case["seed"])
        assert bits(standard_normal(seed, case["index"], 11)) == case["first_11"]
        full = standard_normal(seed, case["index"], 49152)
        assert {k: bits(full[int(k) : int(k) + 1])[0] for k in case["at"]} == case["at"]


def test_it_is_standard_normal_and_streams_are_independent():
    x = standard_normal(0, 0, 200_000).astype(np.float64)
    assert abs(x.mean()) < 0.01 and abs(x.std() - 1) < 0.01
    assert stats.kstest(x, "norm").pvalue > 0.01
    assert abs(stats.skew(x)) < 0.03 and abs(stats.kurtosis(x)) < 0.05
    neighbours = [standard_normal(0, i, 50_000) for i in range(3)] + [standard_normal(1, 0, 50_000)]
    corr = np.corrcoef(neighbours)
    assert np.abs(corr[np.triu_indices(4, 1)]).max() < 0.02


def test_images_are_streams_in_c_order_whatever_the_batch():
    batch = initial_noise(5, [0, 4, 2], (3, 4, 4))
    assert batch.dtype == np.float32 and batch.shape == (3, 3, 4, 4)
    assert np.array_equal(batch[1].reshape(-1), standard_normal(5, 4, 48))


@pytest.mark.skipif(shutil.which("node") is None, reason="needs node (installed by `make test`)")
def test_the_javascript_side_meets_the_same_vectors():
    result = subprocess.run(["node", "--test", "test/"], cwd=ROOT / "web", capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "# fail 0" in result.stdout
