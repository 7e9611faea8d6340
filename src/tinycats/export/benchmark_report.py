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
import torch

import tinycats

ROW_PEAK = "vmhwm_per_row"
PROCESS_PEAK = "maxrss_since_process_start"


class PeakMemory:
    """Peak memory of one block (a benchmark row), in bytes; `result()` names the fields.

    peak_rss: the process's whole resident set at its highest during the block: weights,
    onnxruntime's arenas, PyTorch's caching allocator and activations, i.e. what a user means by
    peak memory. On Linux the high-water mark (VmHWM) is first reset to the current RSS through
    /proc/self/clear_refs, so it is the block's own peak (ROW_PEAK). Where that file is not
    writable only ru_maxrss is left: the peak since the process started, possibly an earlier
    row's (PROCESS_PEAK).
    rss_growth: how far the block raised it: the peak minus the RSS at the start (ROW_PEAK), or
    minus the process's peak at the start (PROCESS_PEAK). Rows measured one after another in one
    process keep what earlier rows allocated, so this alone understates what a row needs.
    cuda_peak_allocated: on CUDA, torch.cuda.max_memory_allocated since a reset at the start: the
    tensors PyTorch held at the block's peak, weights included (not the allocator's cache, not the
    CUDA context).
    """

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.kind = ROW_PEAK
        self.start = self.peak = 0
        self.cuda_peak: int | None = None

    def __enter__(self) -> PeakMemory:
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        if _reset_rss_peak():
            self.kind, self.start = ROW_PEAK, current_rss_bytes()
        else:
            self.kind, self.start = PROCESS_PEAK, _maxrss_bytes()
        return self

    def __exit__(self, *exc: object) -> None:
        self.peak = _proc_status_bytes("VmHWM") if self.kind == ROW_PEAK else _maxrss_bytes()
        if self.device.type == "cuda":
            self.cuda_peak = torch.cuda.max_memory_allocated(self.device)

    def result(self) -> dict[str, Any]:
        return {
            "peak_rss_mb": self.peak / 2**20,
            "rss_start_mb": self.start / 2**20,
            "rss_growth_mb": max(0, self.peak - self.start) / 2**20,
            "peak_rss_measure": self.kind,
            "cuda_peak_allocated_mb": None if self.cuda_peak is None else self.cuda_peak / 2**20,
        }


def current_rss_bytes() -> int:
    """The process's resident set now (Linux)."""
    return _proc_status_bytes("VmRSS")


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
        "onnxruntime": _version("onnxruntime"),
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
    """The report's rows as an aligned text table (times in ms, memory in MiB), notes and failures underneath."""
    rows = report["results"]
    cuda = any(r["cuda_peak_allocated_mb"] is not None for r in rows)
    head = ("backend", "B", "fwd median", "p95", "p99", "generation", "fwd/gen", "per image", "img/s", "peak RSS MB")
    head += ("CUDA peak MB",) if cuda else ()
    lines = []
    for r in rows:
        fwd, gen = r["forward_ms"], r["generation"]
        line = (
            r["backend"],
            str(r["batch_size"]),
            *(_short(fwd[k]) for k in ("median", "p95", "p99")),
            _short(gen["ms"]["median"]),
            str(gen["forwards"]),
            _short(gen["ms_per_image"]),
            _short(r["images_per_s"]) if "images_per_s" in r else "-",
            _short(r["peak_rss_mb"]),
        )
        cuda_mb = r["cuda_peak_allocated_mb"]
        lines.append(line + (("-" if cuda_mb is None else _short(cuda_mb),) if cuda else ()))
    widths = [max(len(row[i]) for row in [head, *lines]) for i in range(len(head))]
    text = ["  ".join([row[0].ljust(widths[0]), *(c.rjust(w) for c, w in zip(row[1:], widths[1:]))]) for row in [head, *lines]]
    if any(r["peak_rss_measure"] == PROCESS_PEAK for r in rows):
        text.append("peak RSS MB: the process's peak since it started (/proc/self/clear_refs not writable), not each row's own")
    text += [f"{name}: not measured ({why})" for name, why in report["failures"].items()]
    return "\n".join(text)


def _short(value: float) -> str:
    return f"{value:.2f}" if value < 10 else f"{value:.1f}" if value < 100 else f"{value:.0f}"


def _version(package: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:  # not installed: the report says so with null
        return None
