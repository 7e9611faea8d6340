"""Checkpoint files: written atomically, read with weights_only=True.

    dit_step_{N}.pt      full training state: model, EMA, optimizer, scheduler, step, data
                         position, RNG states, resolved config. What --resume reads.
    dit_step_{N}_ema.pt  EMA weights + config: what sampling, evaluation and export read.

A file is written to a temporary name in the same folder, flushed to disk and renamed over the
final name, so a crash or a signal mid-write never leaves a half-written checkpoint behind.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Any

import torch

TRAIN_FORMAT = "tinycats-train-v1"
EMA_FORMAT = "tinycats-ema-v1"
_STEP_FILE = re.compile(r"dit_step_(\d+)\.pt$")


class CheckpointError(ValueError):
    """A checkpoint that is missing, corrupt or of the wrong kind, with what to do about it."""


def train_path(directory: str | Path, step: int) -> Path:
    return Path(directory) / f"dit_step_{step}.pt"


def ema_path(directory: str | Path, step: int) -> Path:
    return Path(directory) / f"dit_step_{step}_ema.pt"


def save_atomic(obj: Any, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def load(path: str | Path) -> dict[str, Any]:
    """Read a tinycats checkpoint (either kind) onto the CPU, safely."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist: train one with `tinycats train` or `tinycats demo`")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for corrupt or foreign files
        raise CheckpointError(f"{path} is not a readable checkpoint ({type(exc).__name__}: {exc})") from exc
    if not isinstance(state, dict) or state.get("format") not in (TRAIN_FORMAT, EMA_FORMAT):
        raise CheckpointError(f"{path} is not a tinycats checkpoint (dit_step_N.pt or dit_step_N_ema.pt)")
    return state


def latest(directory: str | Path) -> Path | None:
    """The training-state file with the highest step in `directory`, if any."""
    found = [(int(m.group(1)), p) for p in Path(directory).glob("dit_step_*.pt") if (m := _STEP_FILE.search(p.name))]
    return max(found)[1] if found else None


def rng_state() -> dict[str, Any]:
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


def sha256(path: str | Path) -> str:
    """Hex digest of a file, read in 1 MiB blocks (checkpoints can be large)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def weights_file(checkpoint: str | Path) -> Path:
    """The file that holds a checkpoint's weights: the .pt itself, or a Hub folder's safetensors."""
    text = str(checkpoint)
    if text.startswith("hf://"):
        from huggingface_hub import hf_hub_download

        return Path(hf_hub_download(text.removeprefix("hf://"), "model.safetensors"))
    path = Path(text)
    return path / "model.safetensors" if path.is_dir() else path
