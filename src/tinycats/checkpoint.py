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


def ema_weights(state: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The weights that sampling uses: the EMA network's, from either kind of checkpoint."""
    return state["ema"]["model"] if state["format"] == TRAIN_FORMAT else state["model"]


def weights_sha256(state_dict: dict[str, torch.Tensor]) -> str:
    """The identity of a set of weights, whatever file holds them: sha256 over the tensors' names,
    dtypes, shapes and bytes in name order. A dit_step_N_ema.pt, the EMA half of dit_step_N.pt and
    the Hub folder's model.safetensors of the same network share it, so exports and reports can
    be matched to the weights they were made from even after the weights changed container."""
    digest = hashlib.sha256()
    for name in sorted(state_dict):
        tensor = state_dict[name].detach().cpu().contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def weights_file(checkpoint: str | Path) -> Path:
    """The file that holds a checkpoint's weights: the .pt itself, or a Hub folder's safetensors."""
    from tinycats.hub import layout, load

    if layout.is_ref(checkpoint):
        return load.local_folder(str(checkpoint)) / layout.WEIGHTS
    path = Path(checkpoint)
    return path / layout.WEIGHTS if path.is_dir() else path
