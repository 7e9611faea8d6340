"""Random streams derived from (seed, purpose, position) instead of carried along as state.

Every random draw in training is a pure function of the run's seed and of how many samples the
run has consumed. That is what makes resume exact (nothing to restore but a counter), and makes a
run on 2 processes draw the same numbers as a run on 1 with the same global batch.
"""

from __future__ import annotations

import numpy as np
import torch


def derive_seed(*parts: int) -> int:
    """A well-mixed 63-bit seed from a tuple of integers (numpy's SeedSequence hashing)."""
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1, np.uint64)[0] >> 1)


def generator(*parts: int, device: str | torch.device = "cpu") -> torch.Generator:
    """A torch generator on `device` seeded by derive_seed(*parts)."""
    return torch.Generator(device=device).manual_seed(derive_seed(*parts))
