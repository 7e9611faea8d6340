"""The training loop: flow matching on an in-memory uint8 cache, EMA, exact resume.

Every random draw of a step (which images, their augmentation, label dropout, times, noise) is a
function of (seed, data position), see seeding.py; the state a checkpoint must carry is therefore
the weights, the optimiser, the scheduler and two counters. A resumed run, or one on another number
of processes, follows the same trajectory as an uninterrupted one.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.nn.parallel import DistributedDataParallel

from tinycats import checkpoint, distributed, flow, optim
from tinycats.config import RunConfig
from tinycats.data import augment, source
from tinycats.data.folder import build_cache, scan
from tinycats.data.stream import IndexStream
from tinycats.ema import EMA
from tinycats.errors import TrainingDiverged, TrainingInterrupted
from tinycats.model import TinyDiT, count_parameters
from tinycats.preview import write_preview
from tinycats.runtime import StopSignals, autocast, pick_device
from tinycats.seeding import derive_seed, generator
from tinycats.trainlog import TrainLogger

_BATCH_STREAM, _NOISE_STREAM, _INIT_STREAM = 2, 3, 4  # purpose tags for derive_seed


@dataclass
class TrainResult:
    step: int
    checkpoint: Path
    ema_checkpoint: Path
    loss: float
    seconds: float
    main_process: bool = True  # False on the other ranks of a torchrun job, which should stay quiet


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
        g = generator(tc.seed, _BATCH_STREAM, position)
        params = augment.draw_params(tc.augmentation_level, n, g)
        dropped = (torch.rand(n, generator=g) < tc.label_dropout)[self.part].to(self.device)
        t = flow.sample_time(n, tc.time_sampling, g, tc.logit_mean, tc.logit_std)[self.part].to(self.device)
        shape = (n, mc.in_channels, mc.image_size, mc.image_size)
        g_noise = generator(tc.seed, _NOISE_STREAM, position, device=self.device)
        noise = torch.randn(shape, generator=g_noise, device=self.device)[self.part]
        x = augment.apply(self.images[idx], augment.slice_params(params, self.part))
        labels = torch.where(dropped, mc.num_classes, self.labels[idx])
        return x, labels, noise, t


def train(
    cfg: RunConfig,
    data_dir: str | Path,
    checkpoint_dir: str | Path = "checkpoints",
    log_dir: str | Path = "outputs",
    resume: dict[str, Any] | None = None,
    device: str = "auto",
    progress: bool | None = None,
    on_checkpoint: Callable[[Path], None] | None = None,
) -> TrainResult:
    """Train `cfg` on the ImageFolder at `data_dir`, continuing from `resume` (a loaded
    dit_step_N.pt) when given. `on_checkpoint(path)` runs after each save on the main process
    (the Modal app commits its volume there)."""
    ctx = distributed.setup(pick_device(device).type)
    try:
        return _train(cfg, Path(data_dir), Path(checkpoint_dir), Path(log_dir), resume, device, progress, ctx, on_checkpoint)
    finally:
        distributed.teardown(ctx)


def _train(cfg, data_dir, ckpt_dir, log_dir, resume, device_name, progress, ctx, on_checkpoint) -> TrainResult:
    tc = cfg.train
    if ctx.world_size > 1 and ":" in device_name:
        raise ValueError(f"--device {device_name} would put every process on one GPU; under torchrun use --device cuda")
    device = pick_device(device_name, ctx.local_rank)
    if tc.batch_size % ctx.world_size:
        raise ValueError(f"--batch-size {tc.batch_size} is global and must divide by the {ctx.world_size} processes")
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    data = build_cache(scan(data_dir), cfg.model.image_size, tc.skip_bad_images, progress=ctx.is_main and progress is not False)
    if resume and list(data.class_names) != list(cfg.model.class_names):
        raise ValueError(f"{data_dir} has classes {data.class_names}, the checkpoint was trained on {cfg.model.class_names}")
    cfg.model.class_names = list(data.class_names)
    data_source = source.describe(data_dir)
    # The logger opens its files only now, so a wrong data folder leaves no empty outputs/ behind.
    log = TrainLogger(log_dir, tc.steps, resume["step"] if resume else 0, ctx.is_main, progress)
    if data.skipped:
        log.info(f"warning: skipped {len(data.skipped)} unreadable image(s), e.g. {data.skipped[0]}")

    torch.manual_seed(derive_seed(tc.seed, _INIT_STREAM))  # the initial weights follow --seed too
    model = TinyDiT(cfg.model).to(device)
    ema = EMA(model, tc.ema_beta)
    opt, sched = optim.build(model, tc, device)
    step, position = 0, 0
    if resume:
        model.load_state_dict(resume["model"])
        ema.load_state_dict(resume["ema"])
        step, position = int(resume["step"]), int(resume["data_position"])
        optim.restore(opt, sched, resume, tc, step)
        checkpoint.set_rng_state(resume["rng"])
    net: torch.nn.Module = model
    if ctx.enabled:
        net = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    if tc.compile:
        net = torch.compile(net)
    batches = Batches(cfg, data.images.to(device), data.labels.to(device), ctx, device)
    amp = autocast(device, tc.precision)
    per_step = tc.batch_size * tc.gradient_accumulation_steps
    log.info(
        f"{'resuming at step ' + str(step) if resume else 'training'}: {cfg.model.preset} "
        f"({count_parameters(model) / 1e6:.2f}M parameters, {cfg.model.image_size}px, prediction {cfg.model.prediction}) "
        f"on {len(data.labels)} images / {len(data.class_names)} classes, {ctx.world_size} process(es) on {device}, "
        f"{amp.precision}; {tc.steps} steps of {per_step} images "
        f"({tc.batch_size} x {tc.gradient_accumulation_steps} accumulation)"
    )

    def save(at: int) -> tuple[Path, Path]:
        paths = (checkpoint.train_path(ckpt_dir, at), checkpoint.ema_path(ckpt_dir, at))
        if ctx.is_main:
            config = cfg.to_dict()
            ema_state = {"format": checkpoint.EMA_FORMAT, "step": at, "model": ema.model.state_dict()}
            checkpoint.save_atomic({**ema_state, "config": config, "data": data_source}, paths[1])
            checkpoint.save_atomic(
                {
                    "format": checkpoint.TRAIN_FORMAT,
                    "step": at,
                    "data_position": position,
                    "model": model.state_dict(),
                    "ema": ema.state_dict(),
                    "optimizer": opt.state_dict(),
                    "scheduler": sched.state_dict(),
                    "rng": checkpoint.rng_state(),
                    "config": config,
                    "data": data_source,
                    "world_size": ctx.world_size,
                },
                paths[0],
            )
            log.info(f"saved {paths[0]} and {paths[1].name}")
            if on_checkpoint:
                on_checkpoint(paths[0])
        distributed.barrier(ctx)
        return paths

    def preview(at: int) -> None:
        if ctx.is_main:
            picture = write_preview(ema.model, cfg.sample, log_dir / "samples" / f"step_{at:07d}.png")
            log.image("samples", picture, at)

    started, window_start, window_steps, window_loss = time.perf_counter(), time.perf_counter(), 0, 0.0
    last_loss, saved_at = float("nan"), step if resume else -1
    with StopSignals() as stop:
        while step < tc.steps:
            lr = sched.get_last_lr()[0]
            loss_sum = torch.zeros((), device=device)
            for micro in range(tc.gradient_accumulation_steps):
                last_micro = micro == tc.gradient_accumulation_steps - 1
                with net.no_sync() if ctx.enabled and not last_micro else nullcontext():
                    x, labels, noise, t = batches(position)
                    with amp:
                        loss = flow.loss(net, cfg.model, x, labels, noise, t)
                    (loss / tc.gradient_accumulation_steps).backward()
                loss_sum += loss.detach() / tc.gradient_accumulation_steps
                position += tc.batch_size
            grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), tc.grad_clip)
            flags = torch.tensor([float(stop.signum is not None)], device=device)
            stats = distributed.mean(ctx, torch.cat([loss_sum[None], grad_norm.float()[None], flags]))
            step_loss, step_norm, stopping = stats.tolist()
            if not (math.isfinite(step_loss) and math.isfinite(step_norm)):
                last = checkpoint.latest(ckpt_dir)
                raise TrainingDiverged(
                    f"loss became {step_loss} (grad norm {step_norm}) at step {step + 1}: nothing was saved from this "
                    f"step; last good checkpoint: {last or 'none'}. Lower --lr or raise --warmup-steps, then --resume it"
                )
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
            ema.update(model)
            step += 1
            log.advance()
            window_steps, window_loss, last_loss = window_steps + 1, window_loss + step_loss, step_loss
            if step % tc.log_interval == 0 or step == tc.steps:
                now = time.perf_counter()
                log.metrics(
                    step,
                    {
                        "loss": window_loss / window_steps,
                        "lr": lr,
                        "grad_norm": step_norm,
                        "img_per_s": window_steps * per_step / (now - window_start),
                        "elapsed_s": now - started,
                    },
                )
                window_start, window_steps, window_loss = now, 0, 0.0
            paused = time.perf_counter()
            if tc.checkpoint_interval and step % tc.checkpoint_interval == 0:
                save(step)
                saved_at = step
            if tc.sample_interval and step % tc.sample_interval == 0:
                preview(step)
            window_start += time.perf_counter() - paused  # img/s measures training, not saving
            if stopping:
                saved = save(step)[0] if saved_at != step else checkpoint.train_path(ckpt_dir, step)
                log.info(f"stopped at step {step} by a signal; resume with --resume {saved}")
                log.close()
                raise TrainingInterrupted(stop.signum or 15, saved)
    paths = save(step) if saved_at != step else (checkpoint.train_path(ckpt_dir, step), checkpoint.ema_path(ckpt_dir, step))
    if not tc.sample_interval or step % tc.sample_interval:
        preview(step)
    seconds = time.perf_counter() - started
    log.info(f"done: {step} steps in {seconds:.0f}s, final loss {last_loss:.4f}; EMA weights in {paths[1]}")
    log.close()
    return TrainResult(step, paths[0], paths[1], last_loss, seconds, ctx.is_main)
