"""Inference speed per backend: PyTorch eager, torch.compile, ONNX Runtime fp32 and int8.

For each backend and batch size B it times two things, under torch.inference_mode:

- a *forward*: one guided step, i.e. B images as 2B rows (conditional + null) in one call,
  returning the guided velocity; median, p95 and p99 over `num_runs` calls;
- a *generation*: a whole sampling run of B images (`model_calls(sampler, steps)` forwards plus
  the solver), timed over fewer runs; images/s = B / its median.

One more row, "pytorch-naive", times what a user would otherwise write: 50 Euler steps at B = 1
with the conditional and unconditional passes as two separate forwards, fp32, eager.
Memory per row: the process's peak resident set, its growth over the row's start and, on CUDA,
PyTorch's peak allocation (see `benchmark_report.PeakMemory`).
"""

from __future__ import annotations

import dataclasses
import os
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tinycats.checkpoint import sha256, weights_sha256
from tinycats.config import SampleConfig
from tinycats.core.flow import velocity
from tinycats.core.model import count_parameters
from tinycats.core.noise import initial_noise
from tinycats.core.sampling import GuidedStep, sample
from tinycats.core.solvers import euler, guided, model_calls
from tinycats.errors import OnnxModelError, UsageError
from tinycats.export.benchmark_report import PeakMemory, environment, file_sizes
from tinycats.export.contract import INPUT_NAMES, int8_path
from tinycats.export.onnx import example_inputs, image_shape
from tinycats.generator import load_generator, weights_file
from tinycats.perf import time_per_call
from tinycats.runtime import autocast

NAIVE_STEPS = 50
Call = Callable[[], object]


@dataclass
class BenchmarkSettings:
    """Unset sampler fields (None) take the checkpoint's recommendation."""

    steps: int | None = None
    sampler: str | None = None
    cfg_scale: float | None = None
    guidance_interval: tuple[float, float] | None = None
    batch_sizes: Sequence[int] = (1, 4, 8, 16)
    num_warmup: int = 10
    num_runs: int = 100
    generation_runs: int = 0  # 0: max(1, num_runs // 10)
    throughput: bool = False
    compile: bool = True

    def __post_init__(self) -> None:
        if self.num_runs < 1 or self.num_warmup < 0 or self.generation_runs < 0 or not self.batch_sizes:
            raise UsageError("need --num-runs >= 1, --num-warmup >= 0 and at least one batch size")
        if min(self.batch_sizes) < 1:
            raise UsageError(f"batch sizes must be >= 1, not {list(self.batch_sizes)}")
        self.generation_runs = self.generation_runs or max(1, self.num_runs // 10)


@dataclass
class Backend:
    """How to call one forward and one generation of B images, on fixed inputs."""

    name: str
    forward: Callable[[int], Call]
    generate: Callable[[int], Call]
    steps: int  # sampler steps of one generation
    forwards: int  # network calls of one generation
    device: torch.device
    info: dict[str, Any] = field(default_factory=dict)
    batch_sizes: Sequence[int] | None = None  # None: every batch size of the settings
    rows_per_image: int = 2  # network rows per image in one forward: conditional + null


def generation_labels(model_classes: int, batch: int) -> list[int]:
    return [i % model_classes for i in range(batch)]


def torch_backend(model: torch.nn.Module, settings: SampleConfig, compiled: bool) -> Backend:
    """The guided step as exported (one batched forward) and `tinycats.core.sampling.sample`, eager or
    through torch.compile. On CUDA both run in bf16 autocast, as `tinycats sample` does."""
    device = next(model.parameters()).device
    step = GuidedStep(model).eval()
    net, sampler_net = (torch.compile(step), torch.compile(model)) if compiled else (step, model)
    amp = autocast(device, "auto")

    def forward(batch: int) -> Call:
        inputs = [t.to(device) for t in example_inputs(image_shape(model), model.config.num_classes, batch)]

        def call() -> object:
            with amp:
                return net(*inputs)

        return call

    def generate(batch: int) -> Call:
        labels = generation_labels(model.config.num_classes, batch)
        return lambda: sample(sampler_net, labels, settings, batch_size=batch)

    name = "pytorch-compiled" if compiled else "pytorch-eager"
    calls = model_calls(settings.sampler, settings.steps)
    return Backend(name, forward, generate, settings.steps, calls, device, {"precision": amp.precision})


def naive_backend(model: torch.nn.Module, cfg_scale: float) -> Backend:
    """Two separate forwards per step (conditional, then null), 50 Euler steps, fp32, B = 1."""
    device = next(model.parameters()).device
    cfg = model.config

    def velocity_fn(labels: torch.Tensor) -> Callable[[torch.Tensor, float], torch.Tensor]:
        null = torch.full_like(labels, model.null_label)

        def fn(x: torch.Tensor, t: float) -> torch.Tensor:
            times = torch.full((len(x),), t, device=device)
            return guided(velocity(model, x, times, labels), velocity(model, x, times, null), cfg_scale)

        return fn

    def inputs(batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.from_numpy(initial_noise(0, range(batch), (cfg.in_channels, cfg.image_size, cfg.image_size)))
        return x.to(device), torch.tensor(generation_labels(cfg.num_classes, batch), device=device)

    def forward(batch: int) -> Call:
        x, labels = inputs(batch)
        return lambda: velocity_fn(labels)(x, 0.5)

    def generate(batch: int) -> Call:
        x, labels = inputs(batch)
        return lambda: euler(velocity_fn(labels), x, NAIVE_STEPS).clamp(-1, 1)

    return Backend("pytorch-naive", forward, generate, NAIVE_STEPS, 2 * NAIVE_STEPS, device, {"precision": "fp32"}, (1,), 1)


def onnx_backend(path: str | Path, settings: SampleConfig, threads: int) -> Backend:
    """onnxruntime on the CPU with `threads` intra-op threads, through `tinycats.export.onnx_sampler`."""
    from tinycats.export import onnx_sampler  # only with --onnx: PyTorch alone needs no ONNX extra

    generator = onnx_sampler.load(path, threads=threads)
    meta = generator.metadata

    def forward(batch: int) -> Call:
        inputs = example_inputs(generator.image_shape, len(generator.class_names), batch)
        feed = {name: tensor.numpy() for name, tensor in zip(INPUT_NAMES, inputs)}
        return lambda: generator.session.run(None, feed)

    def generate(batch: int) -> Call:
        labels = generation_labels(len(generator.class_names), batch)
        return lambda: onnx_sampler.sample(generator, labels, settings, batch_size=batch)

    name = "onnx-fp32" if meta["quantization"] == "none" else "onnx-int8"
    info = {
        "file": str(path),
        "threads": threads,
        "quantization": meta["quantization"],
        "checkpoint_sha256": meta["checkpoint_sha256"],
    }
    calls = model_calls(settings.sampler, settings.steps)
    return Backend(name, forward, generate, settings.steps, calls, torch.device("cpu"), info)


def stats_ms(seconds: Sequence[float]) -> dict[str, float]:
    ms = np.asarray(seconds) * 1e3
    p50, p95, p99 = np.percentile(ms, [50, 95, 99])
    return {"median": float(p50), "p95": float(p95), "p99": float(p99), "mean": float(ms.mean()), "runs": len(ms)}


def measure(backend: Backend, batch: int, settings: BenchmarkSettings) -> dict[str, Any]:
    device = backend.device
    memory = PeakMemory(device)
    with torch.inference_mode(), memory:
        forward = backend.forward(batch)
        start = time.perf_counter()
        time_per_call(forward, device, warmup=0, runs=1)  # the first call: compilation, session warm-up
        first_call = time.perf_counter() - start
        forward_s = time_per_call(forward, device, settings.num_warmup, settings.num_runs)
        generation_s = time_per_call(backend.generate(batch), device, min(1, settings.num_warmup), settings.generation_runs)
    row: dict[str, Any] = {
        "backend": backend.name,
        "batch_size": batch,
        "rows_per_forward": backend.rows_per_image * batch,
        "first_call_ms": first_call * 1e3,
        "forward_ms": stats_ms(forward_s),
        "generation": {
            "images": batch,
            "steps": backend.steps,
            "forwards": backend.forwards,
            "ms": stats_ms(generation_s),
            "ms_per_image": statistics.median(generation_s) * 1e3 / batch,
        },
        **memory.result(),
    }
    if settings.throughput:
        row["images_per_s"] = batch / statistics.median(generation_s)
    return row


def onnx_files(paths: Sequence[str | Path]) -> list[Path]:
    """The given files, each followed by its _int8 sibling when that exists."""
    found: list[Path] = []
    for path in map(Path, paths):
        if not path.is_file():
            raise OnnxModelError(f"ONNX model {path} does not exist: make one with `tinycats export-onnx`")
        sibling = int8_path(path)
        found += [p for p in (path, sibling) if p.is_file() and p not in found]
    return found


def run_benchmark(
    checkpoint: str | Path,
    settings: BenchmarkSettings,
    onnx: Sequence[str | Path] = (),
    device: str = "auto",
    threads: int | None = None,
    progress: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Measure every backend at every batch size; returns the report (see the module docstring)."""
    if threads is not None and threads < 1:
        raise UsageError(f"--threads {threads}: need at least 1 (leave it out for PyTorch's default)")
    if threads:
        torch.set_num_threads(threads)
    threads = torch.get_num_threads()
    model = load_generator(checkpoint, device=device)
    sampler = model.sample_config.override(
        steps=settings.steps, sampler=settings.sampler, cfg_scale=settings.cfg_scale, guidance_interval=settings.guidance_interval
    )
    files = onnx_files(onnx)
    backends = [torch_backend(model, sampler, compiled=False)]
    if settings.compile:
        backends.append(torch_backend(model, sampler, compiled=True))
    backends += [onnx_backend(path, sampler, threads) for path in files]
    backends.append(naive_backend(model, sampler.cfg_scale))
    for i, backend in enumerate(backends):  # two ONNX files of one kind: tell their rows apart
        if any(b.name == backend.name for b in backends[:i]):
            backend.name += f":{Path(backend.info['file']).name}"
    checkpoint_sha = sha256(weights_file(checkpoint))
    env = environment(model, threads)  # the load average before measuring
    load = (env["load_average"] or [0.0])[0]
    if load > (os.cpu_count() or 1):
        progress(f"warning: the machine is busy (load {load:.1f} on {os.cpu_count()} CPUs); timings will be inflated")
    results, failures = [], {}
    for backend in backends:
        if backend.info.get("checkpoint_sha256", checkpoint_sha) != checkpoint_sha:
            progress(f"warning: {backend.info['file']} was not exported from {checkpoint}")
        for batch in backend.batch_sizes or settings.batch_sizes:
            progress(f"measuring {backend.name} at batch size {batch}")
            try:
                results.append(measure(backend, batch, settings))
            except Exception as exc:  # torch.compile fails in many ways (no compiler, unsupported op)
                if backend.name != "pytorch-compiled":
                    raise
                failures[backend.name] = f"{type(exc).__name__}: {exc}".splitlines()[0]
                progress(f"{backend.name} failed: {failures[backend.name]}")
                break
    return {
        "environment": env,
        "model": {
            "checkpoint": str(checkpoint),
            "checkpoint_sha256": checkpoint_sha,
            "weights_sha256": weights_sha256(model.state_dict()),
            "preset": model.config.preset,
            "parameters": count_parameters(model),
            "image_size": model.config.image_size,
            "prediction": model.config.prediction,
        },
        "settings": {**dataclasses.asdict(settings), **dataclasses.asdict(sampler), "naive_steps": NAIVE_STEPS},
        "backends": {b.name: b.info for b in backends},
        "files": file_sizes([weights_file(checkpoint), *files]),
        "results": results,
        "failures": failures,
    }
