"""Which arithmetic a training run computes in, when it is asked for "auto".

On CUDA the answer is always bf16 autocast. On a CPU it depends on the processor, and no rule of
thumb has held: one Xeon's bf16 matmul ran at half its fp32 speed (no AVX-512 BF16), an AMX Xeon's
at 6x, an EPYC's at 2.5-3x, and a whole training step gains far less than its matmuls, since casts
and elementwise work do not speed up (docs/performance.md). So "auto" on a CPU is decided in two
steps: without bf16 instructions (AVX-512 BF16 or AMX) it is fp32 at once; with them, a short
probe times the run's own network, forward and backward, in both precisions and keeps bf16 only
where it is clearly faster. Under torchrun the processes average their timings, so they agree.

A probe's timing is noisy where the two precisions are close, and a rerun that chose differently
would compute different numbers: a run killed before its first checkpoint and started again would
not match the one that was not killed. So the measured speed-up is kept per machine and network
(cache_dir()/precision.json, keyed by CPU, torch, threads, probe rows and network shape) and reused
by every later run there; delete the file to measure again. Two runs started at once on one
machine take turns (a lock beside the file): the second waits for the first's probe and reuses it,
instead of both timing each other's contention and perhaps choosing differently.

The answer is written into the run's settings (train.precision), so the log and every checkpoint
name what ran, and a resume computes in the same precision without probing again: exact resume
holds per machine. Runs on other processors may pick differently and then differ in their numbers.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from tinycats.config import ModelConfig
from tinycats.core import flow
from tinycats.runtime import autocast, cache_dir
from tinycats.training import distributed

# bf16 must beat fp32 by this much: a tie keeps fp32, whose numbers are the same on every CPU.
MIN_SPEEDUP = 1.15
PROBE_ROWS = 32  # images per probe call: enough to show the matmuls' share of a step, cheap at 128 px


@dataclass(frozen=True)
class Choice:
    precision: str  # "fp32" or "bf16"
    reason: str  # one clause for the log: why this precision


def cpu_bf16_units() -> str | None:
    """The bf16 matrix instructions this CPU has ("AMX", "AVX-512 BF16") or None. PyTorch's own
    checks (private, so a release without one counts as not having the instructions)."""
    for units, check in (("AMX", "_is_amx_tile_supported"), ("AVX-512 BF16", "_is_avx512_bf16_supported")):
        if getattr(torch.cpu, check, lambda: False)():
            return units
    return None


def choose(
    device: torch.device,
    requested: str,
    trial: Callable[[str], None],
    ctx: distributed.Context | None = None,
    resume: dict | None = None,
    repeats: int = 3,
    network: dict | None = None,
) -> Choice:
    """Resolve `requested` ("auto", "fp32", "bf16") for training on `device`. `trial(precision)`
    runs one forward and backward of the run's network in that precision (the probe); `network`
    says what it runs (probe_facts), for the kept results. Resuming (`resume`: a loaded
    dit_step_N.pt), "auto" is what the checkpoint's run computed in."""
    if requested == "auto" and resume is not None:
        saved = resume["config"]["train"].get("precision", "auto")
        # A checkpoint from before "auto" was resolved at the start says "auto": fp32 on a CPU then.
        return Choice(autocast(device, saved).precision, "as the resumed run computed")
    if requested != "auto":
        return Choice(requested, "as set")
    if device.type == "cuda":
        return Choice("bf16", "auto on CUDA")
    units = cpu_bf16_units()
    if units is None:
        return Choice("fp32", "auto: this CPU has no bf16 instructions")
    ctx = ctx or distributed.Context()
    key = machine_key(units, network or {})
    # One process takes the lock for its whole look-up and probe; torchrun's processes agree through
    # their collectives instead (a lock held across one would deadlock the others).
    with Speedups.turn() if ctx.world_size == 1 else contextlib.nullcontext():
        return _auto(units, key, trial, ctx, repeats)


def _auto(units: str, key: str, trial: Callable[[str], None], ctx: distributed.Context, repeats: int) -> Choice:
    kept = Speedups.load()
    known = kept.get(key)
    # Reuse a kept speed-up only when every process has one, so that all of them decide alike.
    hits, mean_known = distributed.mean(ctx, torch.tensor([known is not None, known or 0.0], dtype=torch.float64)).tolist()
    if hits == 1:
        speedup, when = mean_known, "measured by an earlier run on this machine"
    else:
        fp32, bf16 = distributed.mean(ctx, torch.tensor(probe(trial, repeats), dtype=torch.float64)).tolist()
        speedup, when = fp32 / bf16, "measured now"
        if ctx.local_rank == 0:
            kept.store(key, speedup)
    measured = f"a step {when} ran {speedup:.2f}x as fast in bf16 as in fp32 on this CPU ({units})"
    if speedup >= MIN_SPEEDUP:
        return Choice("bf16", f"auto: {measured}")
    return Choice("fp32", f"auto: {measured}, under the {MIN_SPEEDUP}x that bf16 must win by")


def cpu_name() -> str:
    """The processor's model name (Linux's /proc/cpuinfo; elsewhere what platform reports)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_key(units: str, shape: dict) -> str:
    """What a probe's answer depends on: the processor, torch, the thread count and the network."""
    facts = {"cpu": cpu_name(), "units": units, "torch": torch.__version__, "threads": torch.get_num_threads(), **shape}
    return hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()[:16]


class Speedups:
    """The kept probe results: {key: bf16 speed-up}. A missing or unreadable file is an empty one
    (the probe runs again); it is replaced atomically, so a reader never sees half of it."""

    def __init__(self, path: Path, table: dict[str, float]) -> None:
        self.path, self.table = path, table

    @staticmethod
    @contextlib.contextmanager
    def turn() -> Iterator[None]:
        """Hold the lock file beside the kept results (POSIX flock); where there is none to take, go on."""
        try:
            import fcntl

            cache_dir().mkdir(parents=True, exist_ok=True)
            handle = open(cache_dir() / "precision.lock", "a")
        except (ImportError, OSError):
            yield
            return
        with handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            yield

    @classmethod
    def load(cls) -> Speedups:
        path = cache_dir() / "precision.json"
        try:
            table = json.loads(path.read_text())
            table = {str(k): float(v) for k, v in table.items()}
        except (OSError, ValueError, AttributeError, TypeError):
            table = {}
        return cls(path, table)

    def get(self, key: str) -> float | None:
        return self.table.get(key)

    def store(self, key: str, speedup: float) -> None:
        self.table[key] = round(speedup, 4)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            temp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
            temp.write_text(json.dumps(self.table, indent=1, sort_keys=True))
            os.replace(temp, self.path)
        except OSError:
            pass  # a read-only home: the run still trains, the next one probes again


def probe(trial: Callable[[str], None], repeats: int) -> tuple[float, float]:
    """The best seconds of `trial` in fp32 and in bf16, after one untimed call of each, taken in
    turns so that a slow moment of a shared machine hits both."""
    for precision in ("fp32", "bf16"):
        trial(precision)
    best = {"fp32": float("inf"), "bf16": float("inf")}
    for _ in range(repeats):
        for precision in best:
            start = time.perf_counter()
            trial(precision)
            best[precision] = min(best[precision], time.perf_counter() - start)
    return best["fp32"], best["bf16"]


def probe_facts(config: ModelConfig, batch_rows: int) -> dict:
    """What `trial` runs, for the kept results: the network's shape and the probe's batch."""
    shape = {k: v for k, v in asdict(config).items() if k not in ("preset", "class_names")}
    return {**shape, "classes": config.num_classes, "rows": probe_rows(batch_rows)}


def probe_rows(batch_rows: int) -> int:
    return max(1, min(batch_rows, PROBE_ROWS))


def trial(model: torch.nn.Module, config: ModelConfig, batch_rows: int, device: torch.device) -> Callable[[str], None]:
    """One forward and backward of `model` on random data of the run's shape (at most PROBE_ROWS
    images), in a given precision: the probe's unit of work. Its draws come from a generator of its
    own and its gradients are dropped, so probing changes nothing the run computes."""
    rows = probe_rows(batch_rows)
    g = torch.Generator(device=device).manual_seed(0)
    size = config.image_size
    x = torch.rand(rows, config.in_channels, size, size, device=device, generator=g) * 2 - 1
    noise = torch.randn(x.shape, device=device, generator=g)
    t = torch.rand(rows, device=device, generator=g)
    labels = torch.randint(0, config.num_classes + 1, (rows,), device=device, generator=g)

    def run(name: str) -> None:
        with autocast(device, name):
            loss = flow.loss(model, config, x, labels, noise, t)
        loss.backward()
        model.zero_grad(set_to_none=True)

    return run
