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


def build(model: torch.nn.Module, cfg: TrainConfig, device: torch.device):
    """AdamW (fused on CUDA) and a LambdaLR scheduler following `lr_factor`."""
    opt = torch.optim.AdamW(
        model.parameters(),
        lr=cfg.lr,
        betas=cfg.adam_betas,
        weight_decay=cfg.weight_decay,
        fused=device.type == "cuda",
    )
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: lr_factor(step, cfg))
    return opt, sched


def restore(opt: torch.optim.Optimizer, sched, state: dict, cfg: TrainConfig, step: int) -> None:
    """Load a checkpoint's optimiser and scheduler state, then re-apply this run's learning rate.

    The saved state carries the old base lr, so without this a --lr given on resume would be
    silently ignored. With an unchanged --lr the values written are the ones the scheduler
    would compute itself (base lr x the factor of `step`), so an exact resume stays exact.
    """
    opt.load_state_dict(state["optimizer"])
    sched.load_state_dict(state["scheduler"])
    sched.base_lrs = [cfg.lr] * len(opt.param_groups)
    for group in opt.param_groups:
        group["initial_lr"] = cfg.lr
        group["lr"] = cfg.lr * lr_factor(step, cfg)
    sched._last_lr = [group["lr"] for group in opt.param_groups]
