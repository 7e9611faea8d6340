"""The GPU path. These run only where CUDA is (benchmarks/gpu_suite.sh runs them with `-m cuda`);
on the CPU machines of CI they skip, and the same code paths are covered by the CPU tests."""

from __future__ import annotations

import pytest
import torch

from tinycats.config import SampleConfig
from tinycats.core.model import TinyDiT
from tinycats.core.sampling import sample
from tinycats.runtime import StopSignals, autocast
from tinycats.training import distributed, optim
from tinycats.training.batches import Batches
from tinycats.training.loop import Health, State, _accumulate, _update

from conftest import tiny_config

pytestmark = [pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]


def cuda_state(cfg):
    from tinycats.core.ema import EMA

    torch.manual_seed(0)
    model = TinyDiT(cfg.model).cuda()
    return State(model, EMA(model, cfg.train.ema_beta), *optim.build(model, cfg.train))


def test_a_training_step_reads_nothing_back_from_the_gpu():
    """torch.cuda's sync debug mode raises on any synchronising call: a step must make none."""
    cfg = tiny_config(batch_size=8, precision="bf16")
    state = cuda_state(cfg)
    n = cfg.train.batch_size * 4
    images = torch.randint(0, 256, (n, 3, 16, 16), dtype=torch.uint8, device="cuda")
    labels = torch.arange(n, device="cuda") % cfg.model.num_classes
    ctx = distributed.Context()
    batches = Batches(cfg, images, labels, ctx, torch.device("cuda"))
    health, amp = Health.on(torch.device("cuda")), autocast(torch.device("cuda"), "bf16")
    _update(state, health.bad)  # first call: lazy optimiser state
    torch.cuda.synchronize()
    with StopSignals() as stop:
        torch.cuda.set_sync_debug_mode("error")
        try:
            for step in range(3):
                loss, norm = _accumulate(state, state.model, batches, cfg, amp, ctx)
                health.note(step + 1, loss, norm)
                _update(state, health.bad)
        finally:
            torch.cuda.set_sync_debug_mode("default")
        seen = health.look(ctx, stop)
    assert seen.bad_step is None and seen.steps == 3 and seen.mean_loss > 0


def test_sampling_on_the_gpu_matches_the_cpu():
    cfg = tiny_config()
    torch.manual_seed(0)
    model = TinyDiT(cfg.model)
    for p in model.parameters():
        p.data.normal_(0, 0.05)
    settings = SampleConfig(sampler="heun", steps=4, cfg_scale=2.0)
    on_cpu = sample(model.eval(), [0, 1, 2], settings, seed=1)
    on_gpu = sample(model.cuda().eval(), [0, 1, 2], settings, seed=1)  # bf16 autocast on CUDA
    assert (on_gpu - on_cpu).abs().max() < 0.1 and (on_gpu - on_cpu).abs().mean() < 0.01
