"""Device choice, mixed precision and stop signals: the parts of a run that depend on where it runs."""

from __future__ import annotations

import os
import shutil
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType, TracebackType

import torch

from tinycats.errors import UsageError


def cache_dir() -> Path:
    """Where tinycats keeps what it fetched or measured on this machine ($XDG_CACHE_HOME/tinycats,
    by default ~/.cache/tinycats): deleting it loses nothing that cannot be fetched or measured again."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "tinycats"


def pick_device(name: str = "auto", local_rank: int = 0) -> torch.device:
    """ "auto" is the local GPU when there is one, else the CPU; "cuda" means this process's GPU."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UsageError(f"--device {name} was asked for but no CUDA GPU is visible; use --device cpu")
        return torch.device(name if ":" in name else f"cuda:{local_rank}")
    if name != "cpu":
        raise UsageError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:N")
    return torch.device("cpu")


def require_compiler(device: torch.device) -> None:
    """torch.compile on a CPU writes C++ and builds it: say so in one line before it fails deep inside."""
    if device.type == "cpu" and not any(shutil.which(cxx) for cxx in ("g++", "c++", "clang++")):
        raise UsageError("--compile on the CPU needs a C++ compiler (g++ or clang++): install one, or pass --no-compile")


@contextmanager
def repeatable(device: torch.device) -> Iterator[None]:
    """Deterministic algorithms for the length of a CPU run, then the caller's setting back.

    Without them two identical compiled runs part ways: inductor's CPU kernels add up
    scatter-type gradients (an embedding's backward) with atomic adds in parallel loops, and in
    the demo's configuration every weight differed after 60 steps (by up to 4.8e-3 in bf16,
    4.5e-6 in fp32), so no resume could be bitwise. With them inductor takes eager's
    deterministic kernels; measured ~1 % slower, and three runs agree bit for bit
    (docs/reliability.md). Not on CUDA, where cuBLAS would then demand CUBLAS_WORKSPACE_CONFIG and
    deterministic scatter costs more; GPU runs are not claimed bitwise."""
    before = torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()
    if device.type == "cpu":
        torch.use_deterministic_algorithms(True, warn_only=True)  # an op without such a kernel warns, never stops a run
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before[0], warn_only=before[1])


class Autocast:
    """A reusable autocast context. "auto" is bf16 on CUDA (no loss scaling needed, unlike fp16)
    and fp32 on the CPU: what inference uses. Training resolves "auto" per processor first
    (training/precision.py)."""

    def __init__(self, device: torch.device, precision: str) -> None:
        self.device = device
        self.precision = ("bf16" if device.type == "cuda" else "fp32") if precision == "auto" else precision
        self._ctx: torch.autocast | None = None

    def __enter__(self) -> None:
        if self.precision == "bf16":
            self._ctx = torch.autocast(self.device.type, dtype=torch.bfloat16)
            self._ctx.__enter__()

    def __exit__(self, *exc: object) -> None:
        if self._ctx is not None:
            self._ctx.__exit__(*exc)
            self._ctx = None


def autocast(device: torch.device, precision: str) -> Autocast:
    return Autocast(device, precision)


class StopSignals:
    """Turn SIGINT/SIGTERM into a request the training loop answers at the end of its step
    (saving a checkpoint first). A second Ctrl-C stops at once; checkpoints are written
    atomically, so that cannot corrupt one."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, object] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.signum = signum

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
