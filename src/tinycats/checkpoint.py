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

import errno
import hashlib
import os
import pickle
import re
import shutil
import zipfile
from pathlib import Path
from typing import Any

import torch

from tinycats.config import RunConfig
from tinycats.errors import CheckpointError

CHECKSUM = "content_sha256"
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
    fingerprint: dict[str, Any],
    world_size: int,
) -> tuple[Path, Path]:
    """Write dit_step_N_ema.pt, then dit_step_N.pt (so `latest` never finds a state whose EMA
    file is missing); returns (training state, EMA) paths. When the second write fails, the first
    file goes too: a step has both files or neither."""
    plain = config.to_dict()
    ema_file = save_atomic(
        sealed({"format": EMA_FORMAT, "step": step, "model": ema.model.state_dict(), "config": plain, "data": data}),
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
        "data_fingerprint": fingerprint,
        "world_size": world_size,
    }
    try:
        return save_atomic(sealed(state), train_path(directory, step)), ema_file
    except CheckpointError:
        ema_file.unlink(missing_ok=True)
        raise


def prune(directory: str | Path, keep_last: int, keep_every: int = 0) -> list[Path]:
    """Delete the checkpoint pairs a run no longer needs: all but the newest `keep_last` steps,
    except steps that are multiples of `keep_every` (milestones). keep_last 0 keeps everything.
    Returns the deleted files."""
    if keep_last <= 0:
        return []
    steps = [step_of(path) for path in training_states(directory)]  # newest first
    doomed = [s for s in steps[keep_last:] if not (keep_every and s % keep_every == 0)]
    removed = []
    for step in doomed:
        for path in (train_path(directory, step), ema_path(directory, step)):
            if path.exists():
                path.unlink()
                removed.append(path)
    if removed:
        _fsync_dir(Path(directory))
    return removed


def _leaves(value: Any, where: str = "") -> Any:
    """(key path, value) of every tensor and plain value in a checkpoint, in a fixed order."""
    if isinstance(value, dict):
        for key in sorted(value, key=repr):
            yield from _leaves(value[key], f"{where}/{key!r}")
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            yield from _leaves(item, f"{where}[{i}]")
    else:
        yield where, value


def content_sha256(obj: Any) -> str:
    """sha256 of everything a checkpoint holds, in a fixed order: every tensor's dtype, shape and
    bytes, every other value's repr, under its key path. The file's own bytes are not used, so the
    digest can travel inside the file and be checked after loading."""
    digest = hashlib.sha256()
    for where, value in _leaves(obj):
        if isinstance(value, torch.Tensor):
            tensor = value.detach().cpu().contiguous()
            digest.update(f"{where}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
            digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
        else:
            digest.update(f"{where}={value!r};".encode())
    return digest.hexdigest()


def sealed(state: dict[str, Any]) -> dict[str, Any]:
    """The state with its content checksum, which `load` verifies."""
    return {**state, CHECKSUM: content_sha256(state)}


def save_atomic(obj: Any, path: str | Path) -> Path:
    """Write `obj` to a temporary name beside `path`, fsync it, rename it over `path`, fsync the
    folder. A failed write (no space, a file-size limit, no permission) removes the temporary file,
    leaves every existing file as it was, and raises a CheckpointError that says how much room the
    file needs."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _write_error(path, obj, exc) from exc
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    writer = None
    try:
        with open(tmp, "wb") as f:
            writer = _Writer(f)
            torch.save(obj, writer)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)  # the rename itself survives a power cut
    except (OSError, RuntimeError) as exc:  # torch's zip writer turns a failed write into a RuntimeError
        cause = writer.error if writer and writer.error else exc
        if not isinstance(cause, OSError):
            raise
        raise _write_error(path, obj, cause) from exc
    finally:
        tmp.unlink(missing_ok=True)
    return path


class _Writer:
    """The file torch.save writes through. It keeps the OSError a write raised (ENOSPC, EFBIG,
    ...), which torch's zip writer would otherwise replace with an opaque position mismatch."""

    def __init__(self, file: Any) -> None:
        self.file, self.error = file, None

    def write(self, data: bytes) -> int:
        try:
            return self.file.write(data)
        except OSError as exc:
            self.error = self.error or exc
            raise

    def flush(self) -> None:
        self.file.flush()


def _write_error(path: Path, obj: Any, exc: OSError) -> CheckpointError:
    needed = sum(v.numel() * v.element_size() for _, v in _leaves(obj) if isinstance(v, torch.Tensor))
    try:
        free = f"{shutil.disk_usage(path.parent).free / 1e6:.0f} MB free there"
    except OSError:
        free = "its free space unknown"
    if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        fix = "free some space (or raise the file-size limit), or give another --checkpoint-dir"
    else:
        fix = "make it writable, or give another --checkpoint-dir"
    return CheckpointError(
        f"cannot write {path.name} in {path.parent} ({exc.strerror or exc}): it needs about {needed / 1e6:.1f} MB, "
        f"{free}; {fix}. The checkpoints already there are untouched"
    )


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # not every platform opens folders
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class RunLock:
    """One writer per checkpoint folder: an exclusive flock on DIR/.tinycats.lock, which the kernel
    releases when the process ends however it ends, so a crash never leaves a lock that blocks the
    resume. The file names the holder, for the refusal."""

    NAME = ".tinycats.lock"

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.file: Any = None

    def __enter__(self) -> RunLock:
        import fcntl
        import socket
        import time

        self.directory.mkdir(parents=True, exist_ok=True)
        self.file = open(self.directory / self.NAME, "a+")
        try:
            fcntl.flock(self.file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.file.seek(0)
            holder = self.file.read().strip() or "another process"
            self.file.close()
            raise CheckpointError(
                f"{self.directory} is being written by {holder}: wait for it to end, or give this run another --checkpoint-dir"
            ) from None
        self.file.seek(0)
        self.file.truncate()
        self.file.write(
            f"tinycats train (pid {os.getpid()} on {socket.gethostname()}, since {time.strftime('%Y-%m-%d %H:%M:%S')})"
        )
        self.file.flush()
        return self

    def __exit__(self, *exc: object) -> None:
        import fcntl

        fcntl.flock(self.file, fcntl.LOCK_UN)
        self.file.close()


def remove_stale_temps(directory: str | Path) -> list[Path]:
    """Delete temporary files a killed writer left (.NAME.tmp-PID); the caller holds the run lock,
    so no live writer owns one."""
    stale = sorted(Path(directory).glob(".dit_step_*.pt.tmp-*")) if Path(directory).is_dir() else []
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


def load(path: str | Path) -> dict[str, Any]:
    """Read a tinycats checkpoint (either kind) onto the CPU, safely, and verify its checksum."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist: train one with `tinycats train` or `tinycats demo`")
    state = read_tensors(path, "checkpoint")
    if not isinstance(state, dict) or state.get("format") not in (TRAIN_FORMAT, EMA_FORMAT):
        raise CheckpointError(f"{path} is not a tinycats checkpoint (dit_step_N.pt or dit_step_N_ema.pt)")
    expected = state.pop(CHECKSUM, None)
    if expected is not None and content_sha256(state) != expected:
        raise CheckpointError(
            f"{path} is damaged: its content does not match the checksum written with it; use an earlier checkpoint"
        )
    return state


def read_tensors(path: str | Path, what: str) -> Any:
    """torch.load with weights_only=True, the one way tinycats reads a .pt file: only tensors,
    containers and plain values are rebuilt, so a pickle that would run code is refused before any
    of it runs. Any failure is one line that names the file and says what it was meant to be."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if not zipfile.is_zipfile(path):  # torch.save writes a zip: this is some other file (text, junk, legacy)
            raise CheckpointError(f"{path} is not a readable {what} (not a file written by torch.save)") from exc
        raise CheckpointError(
            f"{path} is not a plain tensor file: it holds what weights-only loading refuses (such as a pickle that "
            f"could run code), and none of it ran; give a {what} written by tinycats"
        ) from exc
    except Exception as exc:  # torch raises many types for corrupt or foreign files
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise CheckpointError(f"{path} is not a readable {what} ({type(exc).__name__}: {first})") from exc


def load_training_state(path: str | Path) -> dict[str, Any]:
    """A dit_step_N.pt, refused clearly when it is an EMA-only file."""
    state = load(path)
    if state["format"] != TRAIN_FORMAT:
        raise CheckpointError(f"{path} holds EMA weights only; resume needs the full state, dit_step_N.pt")
    return state


def run_config(state: dict[str, Any]) -> RunConfig:
    """The resolved settings a checkpoint was made with."""
    return RunConfig.from_dict(state["config"])


def training_states(directory: str | Path) -> list[Path]:
    """The dit_step_N.pt files in `directory`, newest (highest N) first."""
    found = [(int(m.group(1)), p) for p in Path(directory).glob("dit_step_*.pt") if (m := _STEP_FILE.search(p.name))]
    return [path for _, path in sorted(found, reverse=True)]


def latest(directory: str | Path) -> Path | None:
    """The training-state file with the highest step in `directory`, if any."""
    states = training_states(directory)
    return states[0] if states else None


def load_latest(directory: str | Path, warn: Any = print) -> tuple[Path, dict[str, Any]] | None:
    """The newest training state in `directory` that loads and verifies, with its path (None when
    there is none); each damaged newer one is named through `warn` and passed over. When every one
    is damaged, nothing is started over them: a CheckpointError says so."""
    states = training_states(directory)
    for path in states:
        try:
            return Path(path), load_training_state(path)
        except CheckpointError as exc:
            warn(f"warning: skipping {Path(path).name}: {exc}")
    if states:
        raise CheckpointError(
            f"no checkpoint in {directory} loads ({len(states)} damaged): resume from a copy, or start elsewhere"
        )
    return None


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
