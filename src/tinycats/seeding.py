"""Random streams derived from (seed, purpose, position) instead of carried along as state.

Every random draw in training is a pure function of the run's seed and of how many samples the
run has consumed. That is what makes resume exact (nothing to restore but a counter), and makes a
run on 2 processes draw the same numbers as a run on 1 with the same global batch.
"""

from __future__ import annotations

import numpy as np
import torch

# Every purpose that draws random numbers, with the tag mixed into its seed. One table, so no two
# purposes can share a stream by accident; the numbers never change (they decide the results).
STREAMS: dict[str, int] = {
    "data-order": 1,  # the permutation of each epoch (data/stream.py)
    "batch": 2,  # augmentation, label dropout and times of a micro-batch (train.py)
    "noise": 3,  # the training noise of a micro-batch (train.py)
    "init": 4,  # the initial weights (train.py)
    "classifier-order": 7,  # the breed classifier's epoch order (evaluate/classifier.py)
}
if len(set(STREAMS.values())) != len(STREAMS):
    raise RuntimeError("two random streams share a tag")


def derive_seed(*parts: int) -> int:
    """A well-mixed 63-bit seed from a tuple of integers (numpy's SeedSequence hashing)."""
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1, np.uint64)[0] >> 1)


def generator(*parts: int, device: str | torch.device = "cpu") -> torch.Generator:
    """A torch generator on `device` seeded by derive_seed(*parts)."""
    return torch.Generator(device=device).manual_seed(derive_seed(*parts))
