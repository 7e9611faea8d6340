"""Device choice, mixed precision and stop signals: the parts of a run that depend on where it runs."""

from __future__ import annotations

import os
import shutil
import signal
import threading
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
