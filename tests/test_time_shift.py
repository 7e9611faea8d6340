"""The resolution time shift: one formula (core/solvers.shift_time) for training times and every
sampler's grid; pinned by what it must do, and by vectors the browser's copy also meets."""

import itertools
import json
from pathlib import Path

import pytest
import torch

from tinycats.config import ModelConfig
from tinycats.core import flow
from tinycats.core.solvers import euler, shift_time, time_grid
from tinycats.errors import ConfigError

VECTORS = json.loads((Path(__file__).parent / "time_grid_vectors.json").read_text())


@pytest.mark.parametrize("shift", [0.5, 2.0, 4.0])
def test_the_shift_multiplies_the_noise_to_signal_ratio_and_keeps_the_ends(shift):
    grid = time_grid(8, shift)
    assert grid[0] == 0.0 and grid[-1] == 1.0
    assert all(a < b for a, b in itertools.pairwise(grid))
    for plain, shifted in zip(time_grid(8)[1:-1], grid[1:-1]):
        # σ = 1 - t is the noise fraction; SD3's shift multiplies σ / (1 - σ) by α
        assert (1 - shifted) / shifted == pytest.approx(shift * (1 - plain) / plain, rel=1e-12)
    assert (grid[4] < 0.5) == (shift > 1)  # more than 1: the steps crowd toward the noise end


def test_no_shift_is_exactly_the_old_grid_and_sampler():
    assert time_grid(10) == time_grid(10, 1.0) == [i / 10 for i in range(11)]
    calls = []
    euler(lambda x, t: calls.append(t) or x, 1.0, 4)
    assert calls == [0.0, 0.25, 0.5, 0.75]
    calls.clear()
    euler(lambda x, t: calls.append(t) or x, 1.0, 4, 3.0)
    assert calls == time_grid(4, 3.0)[:-1]


def test_the_grid_is_the_shared_vectors_bit_for_bit():
    for case in VECTORS["cases"]:
        assert time_grid(case["steps"], case["shift"]) == case["grid"], case


def test_training_times_are_shifted_by_the_same_formula():
    plain = flow.sample_time(50_000, "logit-normal", torch.Generator().manual_seed(0))
    shifted = flow.sample_time(50_000, "logit-normal", torch.Generator().manual_seed(0), shift=4.0)
    assert torch.equal(shifted, shift_time(plain, 4.0))
    assert shifted.mean() < plain.mean() - 0.1  # toward the noise
    assert torch.equal(flow.sample_time(8, "uniform", torch.Generator().manual_seed(1), shift=1.0),
                       flow.sample_time(8, "uniform", torch.Generator().manual_seed(1)))  # fmt: skip


def test_a_checkpoint_without_the_setting_has_no_shift_and_a_bad_one_is_refused():
    assert ModelConfig().time_shift == 1.0
    with pytest.raises(ConfigError, match="time_shift"):
        ModelConfig(time_shift=0)
