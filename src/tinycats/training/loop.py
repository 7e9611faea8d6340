"""The training loop: flow matching on an in-memory uint8 cache, EMA, exact resume.

Every random draw of a step is a function of (seed, data position) (batches.py), so the state a
checkpoint must carry is the weights, the optimiser, the scheduler and two counters: a resumed
run, or one on another number of processes, follows the same trajectory as an uninterrupted one.
The loop reads top to bottom: set up, then per step accumulate micro-batches, check, update, log,
save; a signal saves and stops, a non-finite loss stops before the update.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from contextlib import ExitStack, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.nn.parallel import DistributedDataParallel

from tinycats import checkpoint
from tinycats.config import RunConfig
from tinycats.core import flow
from tinycats.core.ema import EMA
from tinycats.core.model import TinyDiT, count_parameters
from tinycats.data import source
from tinycats.data.fingerprint import differences, fingerprint
from tinycats.data.folder import build_cache, scan
from tinycats.errors import DataError, TrainingDiverged, TrainingInterrupted, UsageError
from tinycats.runtime import StopSignals, autocast, pick_device, repeatable, require_compiler
from tinycats.seeding import STREAMS, derive_seed
from tinycats.training import distributed, optim, precision
from tinycats.training.batches import Batches
from tinycats.training.log import TrainLogger


@dataclass
class TrainResult:
    step: int
    checkpoint: Path
    ema_checkpoint: Path
    loss: float
    seconds: float
    main_process: bool = True  # False on the other ranks of a torchrun job, which should stay quiet


@dataclass
class State:
    """What changes as training runs, and what a checkpoint holds."""

    model: TinyDiT
    ema: EMA
    opt: torch.optim.Optimizer
    sched: Any
    step: int = 0
    position: int = 0  # samples drawn so far by all processes together


@dataclass
class Look:
    """What the host read at a look: the window's mean loss and size, the last gradient norm, the
    first non-finite step (None: there was none) and whether to stop."""

    mean_loss: float
    steps: int
    grad_norm: float
    bad_step: int | None
    bad_loss: float
    bad_norm: float
    stopping: bool


@dataclass
class Health:
    """The training numbers kept on the device between looks, so a step never waits for the GPU.

    `loss_sum` adds the step losses in float64 (the logged mean is the exact mean of the float32
    step losses, as when the host added them). `bad` is sticky: once a step's loss or gradient
    norm is not finite, fused AdamW (through `found_inf`) and the EMA skip every update, so the
    weights stay as the last good step left them until the host looks and stops the run.
    """

    loss_sum: torch.Tensor
    grad_norm: torch.Tensor
    bad: torch.Tensor
    first_bad: torch.Tensor  # [step, loss, grad norm] of the first non-finite step; step 0 = none
    last: torch.Tensor
    steps: int = 0

    @classmethod
    def on(cls, device: torch.device) -> Health:
        zero = torch.zeros((), device=device)
        return cls(zero.double(), zero.clone(), zero.clone(), torch.zeros(3, device=device), zero.clone())

    def note(self, step: int, loss: torch.Tensor, grad_norm: torch.Tensor) -> None:
        nonfinite = (~(torch.isfinite(loss) & torch.isfinite(grad_norm))).float()
        first = (nonfinite * (1 - self.bad)).bool()
        values = torch.stack([torch.full_like(loss, step), loss, grad_norm.float()])
        self.first_bad = torch.where(first, values, self.first_bad)
        self.bad = torch.maximum(self.bad, nonfinite)
        self.loss_sum += loss.double()
        self.grad_norm, self.last = grad_norm.float(), loss
        self.steps += 1

    def look(self, ctx: distributed.Context, stop: StopSignals) -> Look:
        """One read-back, agreed across processes (means; a flag is set when any process set it)."""
        signalled = torch.full_like(self.loss_sum, float(stop.signum is not None))
        local = torch.stack([self.loss_sum, self.grad_norm.double(), self.bad.double(), signalled])
        loss_sum, grad_norm, bad, stopping = distributed.mean(ctx, local).tolist()
        step, bad_loss, bad_norm = self.first_bad.tolist()
        bad_step = int(step) if bad > 0 else None
        return Look(loss_sum / max(1, self.steps), self.steps, grad_norm, bad_step, bad_loss, bad_norm, stopping > 0)

    def new_window(self) -> None:
        self.loss_sum.zero_()
        self.steps = 0

    def last_loss(self) -> float:
        return float(self.last)


def train(
    cfg: RunConfig,
    data_dir: str | Path,
    checkpoint_dir: str | Path = "checkpoints",
    log_dir: str | Path = "outputs",
    resume: dict[str, Any] | None = None,
    device: str = "auto",
    progress: bool | None = None,
    on_checkpoint: Callable[[Path], None] | None = None,
    allow_data_change: bool = False,
) -> TrainResult:
    """Train `cfg` on the ImageFolder at `data_dir`, continuing from `resume` (a loaded
    dit_step_N.pt) when given; a resume onto other data than the checkpoint's is refused unless
    `allow_data_change`. `on_checkpoint(path)` runs after each save on the main process (the
    Modal app commits its volume there)."""
    ctx = distributed.setup(pick_device(device).type)
    try:
        with ExitStack() as held:  # what the run holds until it ends: the checkpoint folder's lock, deterministic kernels
            paths = Path(data_dir), Path(checkpoint_dir), Path(log_dir)
            return _train(cfg, *paths, resume, device, progress, ctx, on_checkpoint, held, allow_data_change)
    finally:
        distributed.teardown(ctx)


def _train(
    cfg, data_dir, ckpt_dir, log_dir, resume, device_name, progress, ctx, on_checkpoint, held, allow_change
) -> TrainResult:
    tc = cfg.train
    if ctx.world_size > 1 and ":" in device_name:
        raise UsageError(f"--device {device_name} would put every process on one GPU; under torchrun use --device cuda")
    device = pick_device(device_name, ctx.local_rank)
    if tc.compile:
        require_compiler(device)
    held.enter_context(repeatable(device))
    if tc.batch_size % ctx.world_size:
        raise UsageError(f"--batch-size {tc.batch_size} is global and must divide by the {ctx.world_size} processes")
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True

    # Data, then the logger (so a wrong data folder leaves no empty outputs/ behind).
    images = scan(data_dir)
    prints = fingerprint(images, cfg.model.image_size)
    changed = _data_change(resume, images.class_names, prints, data_dir, allow_change)
    data = build_cache(images, cfg.model.image_size, tc.skip_bad_images, progress=ctx.is_main and progress is not False)
    cfg.model.class_names = list(data.class_names)
    data_source = source.describe(data_dir)
    if ctx.is_main:  # one writer per checkpoint folder; what a killed writer left half-written goes
        held.enter_context(checkpoint.RunLock(ckpt_dir))
        stale = checkpoint.remove_stale_temps(ckpt_dir)
    log = TrainLogger(log_dir, tc.steps, resume["step"] if resume else 0, ctx.is_main, progress)
    if ctx.is_main and stale:
        log.info(f"removed {len(stale)} temporary file(s) a killed run left in {ckpt_dir}, e.g. {stale[0].name}")
    if changed:
        log.info(f"warning: the data changed since the checkpoint ({changed}); --allow-data-change: not an exact resume")
    if data.skipped:
        log.info(f"warning: skipped {len(data.skipped)} unreadable image(s), e.g. {data.skipped[0]}")

    # The network, its average and the optimiser: fresh from --seed, or as the checkpoint left them.
    torch.manual_seed(derive_seed(tc.seed, STREAMS["init"]))
    model = TinyDiT(cfg.model).to(device)
    state = State(model, EMA(model, tc.ema_beta, tc.ema_sigma_rel), *optim.build(model, tc, resume))
    if resume:
        model.load_state_dict(resume["model"])
        state.ema.load_state_dict(resume["ema"])
        state.step, state.position = int(resume["step"]), int(resume["data_position"])
        checkpoint.set_rng_state(resume["rng"])
    # Resolved once, before DDP or compile wrap the network; a resumed run's settings already name it.
    rows = tc.batch_size // ctx.world_size
    trial = precision.trial(model, cfg.model, rows, device)
    chosen = precision.choose(device, tc.precision, trial, ctx, resume, network=precision.probe_facts(cfg.model, rows))
    tc.precision = chosen.precision  # what the log and every checkpoint record
    net: torch.nn.Module = model
    if ctx.enabled:
        net = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    if tc.compile:
        net = torch.compile(net)
    batches = Batches(cfg, data.images.to(device), data.labels.to(device), ctx, device)
    amp = autocast(device, tc.precision)
    per_step = tc.batch_size * tc.gradient_accumulation_steps
    log.info(
        f"{'resuming at step ' + str(state.step) if resume else 'training'}: {cfg.model.preset} "
        f"({count_parameters(model) / 1e6:.2f}M parameters, {cfg.model.image_size}px, prediction {cfg.model.prediction}) "
        f"on {len(data.labels)} images / {len(data.class_names)} classes, {ctx.world_size} process(es) on {device}, "
        f"{amp.precision} ({chosen.reason}){', compiled' if tc.compile else ''}; {tc.steps} steps of {per_step} images "
        f"({tc.batch_size} x {tc.gradient_accumulation_steps} accumulation)"
    )

    saver = Checkpointer(cfg, ckpt_dir, data_source, prints, ctx, log, on_checkpoint)
    started = time.perf_counter()
    window_start = started
    health = Health.on(device)
    saved_at = state.step if resume else -1
    with StopSignals() as stop:
        while state.step < tc.steps:
            lr = state.sched.get_last_lr()[0]
            loss, grad_norm = _accumulate(state, net, batches, cfg, amp, ctx)
            health.note(state.step + 1, loss, grad_norm)
            _update(state, health.bad)
            log.advance()
            at = state.step
            due_log = at % tc.log_interval == 0 or at == tc.steps
            due_save = bool(tc.checkpoint_interval) and at % tc.checkpoint_interval == 0
            due_samples = bool(tc.sample_interval) and at % tc.sample_interval == 0
            # The host reads the device only here: one sync per look, never per step. Alone, a signal is seen at
            # once; under torchrun the processes agree on it at the next look, which they all reach together.
            if not (due_log or due_save or due_samples or (stop.signum is not None and not ctx.enabled)):
                continue
            seen = health.look(ctx, stop)
            if seen.bad_step is not None:
                raise TrainingDiverged(
                    f"loss became {seen.bad_loss} (grad norm {seen.bad_norm}) at step {seen.bad_step}: no update was "
                    f"applied from it on and nothing was saved; last good checkpoint: {checkpoint.latest(ckpt_dir) or 'none'}. "
                    "Lower --lr or raise --warmup-steps, then --resume it"
                )
            if due_log:
                now = time.perf_counter()
                log.metrics(
                    at,
                    {
                        "loss": seen.mean_loss,
                        "lr": lr,
                        "grad_norm": seen.grad_norm,
                        "img_per_s": seen.steps * per_step / (now - window_start),
                        "elapsed_s": now - started,
                    },
                )
                health.new_window()
                window_start = now
            paused = time.perf_counter()
            if due_save:
                saver.save(state)
                saved_at = at
            if due_samples:
                log.samples(state.ema.model, cfg.sample, at)
            window_start += time.perf_counter() - paused  # img/s measures training, not saving
            if seen.stopping:
                saved = saver.save(state)[0] if saved_at != at else checkpoint.train_path(ckpt_dir, at)
                log.info(f"stopped at step {at} by a signal; resume with --resume {saved}")
                log.close()
                raise TrainingInterrupted(stop.signum or int(signal.SIGTERM), saved)
    last_loss = health.last_loss()
    step = state.step
    already = (checkpoint.train_path(ckpt_dir, step), checkpoint.ema_path(ckpt_dir, step))
    paths = saver.save(state) if saved_at != step else already
    if not tc.sample_interval or step % tc.sample_interval:
        log.samples(state.ema.model, cfg.sample, step)
    seconds = time.perf_counter() - started
    log.info(f"done: {step} steps in {seconds:.0f}s, final loss {last_loss:.4f}; EMA weights in {paths[1]}")
    log.close()
    return TrainResult(step, paths[0], paths[1], last_loss, seconds, ctx.is_main)


def _data_change(resume, class_names, prints, data_dir, allowed: bool) -> str:
    """What changed in the data since the resumed checkpoint ("" for nothing, or a new run). Other
    classes are refused always (the network's label table is fixed); other files unless allowed."""
    if not resume:
        return ""
    if list(class_names) != list(resume["config"]["model"]["class_names"]):
        raise DataError(
            f"{data_dir} has classes {class_names}, the checkpoint was trained on {resume['config']['model']['class_names']}"
        )
    before = resume.get("data_fingerprint")
    changed = differences(before, prints) if before else ""
    if changed and not allowed:
        raise DataError(
            f"{data_dir} is not the data the checkpoint was trained on ({changed}): resume on that data, "
            "or pass --allow-data-change to go on with this data (the run is then no longer exact)"
        )
    return changed


def _accumulate(state: State, net, batches: Batches, cfg: RunConfig, amp, ctx) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward and backward over the step's micro-batches, then clip: the step's loss and the
    gradient norm, left on the device."""
    tc = cfg.train
    loss_sum = torch.zeros((), device=batches.device)
    for micro in range(tc.gradient_accumulation_steps):
        last_micro = micro == tc.gradient_accumulation_steps - 1
        with net.no_sync() if ctx.enabled and not last_micro else nullcontext():
            x, labels, noise, t = batches(state.position)
            with amp:
                loss = flow.loss(net, cfg.model, x, labels, noise, t)
            (loss / tc.gradient_accumulation_steps).backward()
        loss_sum += loss.detach() / tc.gradient_accumulation_steps
        state.position += tc.batch_size
    return loss_sum, torch.nn.utils.clip_grad_norm_(state.model.parameters(), tc.grad_clip)


def _update(state: State, skip: torch.Tensor) -> None:
    """One optimiser, scheduler and EMA step; `skip` (on the device) makes the optimiser and the EMA
    leave the weights as they are."""
    state.opt.found_inf = skip  # read by fused AdamW: a set flag applies no update and does not count the step
    state.opt.step()
    state.sched.step()
    state.opt.zero_grad(set_to_none=True)
    state.ema.update(state.model, skip)
    state.step += 1


@dataclass
class Checkpointer:
    """Writes both checkpoint files on the main process (the others wait), drops the ones past
    --keep-last (but not --keep-every milestones), then calls `on_checkpoint`."""

    cfg: RunConfig
    directory: Path
    data_source: dict[str, Any]
    fingerprint: dict[str, Any]
    ctx: distributed.Context
    log: TrainLogger
    on_checkpoint: Callable[[Path], None] | None

    def save(self, state: State) -> tuple[Path, Path]:
        paths = (checkpoint.train_path(self.directory, state.step), checkpoint.ema_path(self.directory, state.step))
        if self.ctx.is_main:
            parts = {"model": state.model, "ema": state.ema, "optimizer": state.opt, "scheduler": state.sched}
            context = {"config": self.cfg, "data": self.data_source, "world_size": self.ctx.world_size}
            checkpoint.save(
                self.directory, state.step, **parts, data_position=state.position, fingerprint=self.fingerprint, **context
            )
            self.log.info(f"saved {paths[0]} and {paths[1].name}")
            removed = checkpoint.prune(self.directory, self.cfg.train.keep_last, self.cfg.train.keep_every)
            if removed:
                self.log.info(f"removed {', '.join(p.name for p in removed)} (--keep-last {self.cfg.train.keep_last})")
            if self.on_checkpoint:
                self.on_checkpoint(paths[0])
        distributed.barrier(self.ctx)
        return paths
