"""What a benchmark row needs besides timings: peak memory, the environment, file sizes, the table."""

from __future__ import annotations

import os
import platform
import resource
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime
import torch

import tinycats


class PeakMemory:
    """Peak memory during a block, in bytes.

    CUDA: torch.cuda.max_memory_allocated (tensors PyTorch allocated, weights included).
    CPU: growth of the process's peak resident set (RSS) over the RSS at the start: on Linux the
    peak (VmHWM) is reset first through /proc/self/clear_refs, so each block gets its own peak;
    elsewhere ru_maxrss is a high-water mark for the whole process, so a block that peaks lower
    than an earlier one reports 0. RSS counts everything the process touches (onnxruntime's
    arenas, PyTorch's caching allocator, activations), not only tensors.
    """

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.kind = "cuda_max_memory_allocated" if device.type == "cuda" else "rss_peak_growth"
        self.start = self.peak = 0

    def __enter__(self) -> PeakMemory:
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        elif _reset_rss_peak():
            self.start = _proc_status_bytes("VmRSS")
        else:
            self.kind = "maxrss_growth"
            self.start = _maxrss_bytes()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.kind == "cuda_max_memory_allocated":
            self.peak = torch.cuda.max_memory_allocated(self.device)
        elif self.kind == "rss_peak_growth":
            self.peak = _proc_status_bytes("VmHWM") - self.start
        else:
            self.peak = _maxrss_bytes() - self.start

    def result(self) -> dict[str, Any]:
        return {"peak_memory_mb": self.peak / 2**20, "memory_measure": self.kind}


def _reset_rss_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _proc_status_bytes(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024
    raise OSError(f"/proc/self/status has no {field}")


def _maxrss_bytes() -> int:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss if sys.platform == "darwin" else rss * 1024  # macOS reports bytes, Linux KiB


def environment(model: torch.nn.Module, threads: int) -> dict[str, Any]:
    device = next(model.parameters()).device
    return {
        "tinycats": tinycats.__version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "onnxruntime": onnxruntime.__version__,
        "numpy": np.__version__,
        "platform": platform.platform(),
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name(),
        "cpu_count": os.cpu_count(),
        "torch_threads": threads,
        "onnxruntime_threads": threads,
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }


def cpu_name() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def file_sizes(paths: Sequence[Path]) -> dict[str, int]:
    return {str(p): p.stat().st_size for p in paths}


def format_table(report: dict[str, Any]) -> str:
    """The report's rows as an aligned text table (times in ms), failures underneath."""
    head = ("backend", "B", "fwd median", "p95", "p99", "generation", "fwd/gen", "per image", "img/s", "peak MB")
    lines = []
    for r in report["results"]:
        fwd, gen = r["forward_ms"], r["generation"]
        lines.append(
            (
                r["backend"],
                str(r["batch_size"]),
                *(_short(fwd[k]) for k in ("median", "p95", "p99")),
                _short(gen["ms"]["median"]),
                str(gen["forwards"]),
                _short(gen["ms_per_image"]),
                _short(r["images_per_s"]) if "images_per_s" in r else "-",
                _short(r["peak_memory_mb"]),
            )
        )
    widths = [max(len(row[i]) for row in [head, *lines]) for i in range(len(head))]
    text = ["  ".join([row[0].ljust(widths[0]), *(c.rjust(w) for c, w in zip(row[1:], widths[1:]))]) for row in [head, *lines]]
    text += [f"{name}: not measured ({why})" for name, why in report["failures"].items()]
    return "\n".join(text)


def _short(value: float) -> str:
    return f"{value:.2f}" if value < 10 else f"{value:.1f}" if value < 100 else f"{value:.0f}"
