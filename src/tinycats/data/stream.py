"""The order in which training visits the data, as a function of position alone.

Position p (samples consumed so far, over all processes) falls in epoch p // n at offset p % n;
each epoch is a fresh permutation seeded by (seed, epoch). A batch that crosses an epoch boundary
takes the rest from the next permutation, so every sample is seen once per epoch and a resumed run
(or one on another number of processes) continues with exactly the same indices.
"""

from __future__ import annotations

import torch

from tinycats.seeding import STREAMS, generator


class IndexStream:
    def __init__(self, num_samples: int, seed: int) -> None:
        if num_samples < 1:
            raise ValueError("cannot stream an empty dataset")
        self.n = num_samples
        self.seed = seed
        self._cached: tuple[int, torch.Tensor] | None = None

    def permutation(self, epoch: int) -> torch.Tensor:
        if self._cached is None or self._cached[0] != epoch:
            perm = torch.randperm(self.n, generator=generator(self.seed, STREAMS["data-order"], epoch))
            self._cached = (epoch, perm)
        return self._cached[1]

    def indices(self, position: int, count: int) -> torch.Tensor:
        """The `count` dataset indices that follow `position`."""
        parts = []
        while count > 0:
            epoch, offset = divmod(position, self.n)
            take = self.permutation(epoch)[offset : offset + count]
            parts.append(take)
            position += len(take)
            count -= len(take)
        return torch.cat(parts)
