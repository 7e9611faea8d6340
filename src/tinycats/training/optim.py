"""AdamW and the learning-rate schedule: linear warm-up, then cosine decay (or constant)."""

from __future__ import annotations

import math

import torch

from tinycats.config import TrainConfig


def lr_factor(step: int, cfg: TrainConfig) -> float:
    """Multiplier of cfg.lr for the update that takes the model from `step` to `step + 1`."""
    if cfg.warmup_steps and step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    if cfg.lr_schedule == "constant":
        return 1.0
    progress = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
    cosine = 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * cosine


def build(model: torch.nn.Module, cfg: TrainConfig, resume: dict | None = None):
    """Fused AdamW and a LambdaLR scheduler following `lr_factor`, at step 0 or, with `resume` (a
    loaded dit_step_N.pt), at its step with its optimiser state.

    Fused on every device: one kernel for the whole update, and the implementation that honours
    `found_inf`, which lets the loop skip a non-finite step without reading anything back.

    On resume the scheduler is built at the saved step from this run's settings rather than loaded:
    the saved scheduler carries the old base lr, so a --lr given on resume would be silently
    ignored. With an unchanged --lr it sets exactly the lr the uninterrupted run had (base lr x the
    factor of the step), so an exact resume stays exact.
    """
    opt = torch.optim.AdamW(
        model.parameters(),
        lr=cfg.lr,
        betas=cfg.adam_betas,
        weight_decay=cfg.weight_decay,
        fused=True,
    )
    step = 0
    if resume is not None:
        opt.load_state_dict(resume["optimizer"])
        for group in opt.param_groups:
            group["initial_lr"] = cfg.lr
        step = int(resume["step"])
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, cfg), last_epoch=step - 1)
    sched._step_count = step + 1  # the call count an uninterrupted run has here: resumed checkpoints match it bit for bit
    return opt, sched
