"""Checkpoint files, the one owner of their names, fields, writing and reading. Written atomically,
read with weights_only=True.

    dit_step_{N}.pt      full training state: model, EMA, optimizer, scheduler, step, data
                         position, RNG states, resolved config, data source. What --resume reads.
    dit_step_{N}_ema.pt  EMA weights + config + data source: what sampling, evaluation, export
                         and upload read.

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

from tinycats.config import RunConfig
from tinycats.errors import CheckpointError

TRAIN_FORMAT = "tinycats-train-v1"
EMA_FORMAT = "tinycats-ema-v1"
_STEP_FILE = re.compile(r"dit_step_(\d+)\.pt$")
_ANY_FILE = re.compile(r"dit_step_(\d+)(?:_ema)?\.pt$")


def train_path(directory: str | Path, step: int) -> Path:
    return Path(directory) / f"dit_step_{step}.pt"


def ema_path(directory: str | Path, step: int) -> Path:
    return Path(directory) / f"dit_step_{step}_ema.pt"


def step_of(path: str | Path) -> int | None:
    """N of a dit_step_N.pt or dit_step_N_ema.pt name; None for any other name."""
    match = _ANY_FILE.search(Path(str(path)).name)
    return int(match.group(1)) if match else None


def save(
    directory: str | Path,
    step: int,
    *,
    model: torch.nn.Module,
    ema: Any,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    data_position: int,
    config: RunConfig,
    data: dict[str, Any],
    world_size: int,
) -> tuple[Path, Path]:
    """Write dit_step_N_ema.pt, then dit_step_N.pt (so `latest` never finds a state whose EMA
    file is missing); returns (training state, EMA) paths."""
    plain = config.to_dict()
    ema_file = save_atomic(
        {"format": EMA_FORMAT, "step": step, "model": ema.model.state_dict(), "config": plain, "data": data},
        ema_path(directory, step),
    )
    state = {
        "format": TRAIN_FORMAT,
        "step": step,
        "data_position": data_position,
        "model": model.state_dict(),
        "ema": ema.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "rng": rng_state(),
        "config": plain,
        "data": data,
        "world_size": world_size,
    }
    return save_atomic(state, train_path(directory, step)), ema_file


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


def load_training_state(path: str | Path) -> dict[str, Any]:
    """A dit_step_N.pt, refused clearly when it is an EMA-only file."""
    state = load(path)
    if state["format"] != TRAIN_FORMAT:
        raise CheckpointError(f"{path} holds EMA weights only; resume needs the full state, dit_step_N.pt")
    return state


def run_config(state: dict[str, Any]) -> RunConfig:
    """The resolved settings a checkpoint was made with."""
    return RunConfig.from_dict(state["config"])


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
