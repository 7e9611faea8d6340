"""Measuring speed honestly: FLOPs counted by PyTorch, the device's GEMM peak measured in the same
process, and timings that wait for the device to finish (CUDA is asynchronous)."""

from __future__ import annotations

import time
from collections.abc import Callable

import torch
from torch.utils.flop_counter import FlopCounterMode, sdpa_backward_flop_count, sdpa_flop_count

# FlopCounterMode knows the CUDA attention kernels but not the CPU one that
# F.scaled_dot_product_attention dispatches to: without these, attention counts 0 FLOPs on the CPU.
# FlopCounterMode passes tensor arguments as their shapes.


def _cpu_attention(query: torch.Size, key: torch.Size, value: torch.Size, *args: object, **kwargs: object) -> int:
    return sdpa_flop_count(query, key, value)


def _cpu_attention_backward(
    grad: torch.Size, query: torch.Size, key: torch.Size, value: torch.Size, *args: object, **kwargs: object
) -> int:
    return sdpa_backward_flop_count(grad, query, key, value)


_aten = torch.ops.aten
CPU_ATTENTION_FLOPS = {
    _aten._scaled_dot_product_flash_attention_for_cpu: _cpu_attention,
    _aten._scaled_dot_product_flash_attention_for_cpu_backward: _cpu_attention_backward,
}


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def count_flops(fn: Callable[[], object]) -> int:
    """FLOPs of one call of `fn` (matmuls, convolutions and attention; 2 per multiply-add).

    Attention's backward counts as PyTorch counts it for the CUDA kernels: 2.5x the forward,
    since the kernel recomputes the scores."""
    with FlopCounterMode(display=False, custom_mapping=CPU_ATTENTION_FLOPS) as counter:
        fn()
    return counter.get_total_flops()


def time_per_call(fn: Callable[[], object], device: torch.device, warmup: int, runs: int) -> list[float]:
    """Seconds of each of `runs` calls after `warmup` untimed ones."""
    for _ in range(warmup):
        fn()
    synchronize(device)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return times


def peak_matmul_flops(device: torch.device, dtype: torch.dtype, size: int | None = None, runs: int = 10) -> float:
    """The best FLOP/s of a square matmul of `dtype`: the denominator of MFU, measured, not quoted."""
    size = size or (8192 if device.type == "cuda" else 2048)
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    best = min(time_per_call(lambda: a @ b, device, warmup=2, runs=runs))
    return 2 * size**3 / best
