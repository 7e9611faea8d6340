"""The micro-batch of a training step as a pure function of the data position: which images, their
augmentation, label dropout, times and noise are all drawn from streams seeded by (seed, purpose,
position), so a resumed run, or one on another number of processes, draws exactly the same."""

from __future__ import annotations

import torch

from tinycats.breeds import null_index
from tinycats.config import RunConfig
from tinycats.core import flow
from tinycats.data import augment
from tinycats.data.stream import IndexStream
from tinycats.seeding import STREAMS, generator
from tinycats.training import distributed


class Batches:
    """Builds this process's slice of the global micro-batch that starts at a data position."""

    def __init__(
        self, cfg: RunConfig, images: torch.Tensor, labels: torch.Tensor, ctx: distributed.Context, device: torch.device
    ):
        self.cfg, self.images, self.labels, self.device = cfg, images, labels, device
        self.stream = IndexStream(len(labels), cfg.train.seed)
        local = cfg.train.batch_size // ctx.world_size
        self.part = slice(ctx.rank * local, (ctx.rank + 1) * local)

    def __call__(self, position: int) -> tuple[torch.Tensor, ...]:
        tc, mc, n = self.cfg.train, self.cfg.model, self.cfg.train.batch_size
        idx = self.stream.indices(position, n)[self.part].to(self.device)
        g = generator(tc.seed, STREAMS["batch"], position)
        params = augment.draw_params(tc.augmentation_level, n, g)
        dropped = (torch.rand(n, generator=g) < tc.label_dropout)[self.part].to(self.device)
        t = flow.sample_time(n, tc.time_sampling, g, tc.logit_mean, tc.logit_std, mc.time_shift)[self.part].to(self.device)
        shape = (n, mc.in_channels, mc.image_size, mc.image_size)
        g_noise = generator(tc.seed, STREAMS["noise"], position, device=self.device)
        noise = torch.randn(shape, generator=g_noise, device=self.device)[self.part]
        x = augment.apply(self.images[idx], augment.slice_params(params, self.part))
        labels = torch.where(dropped, null_index(mc.class_names), self.labels[idx])
        return x, labels, noise, t
