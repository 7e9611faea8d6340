"""Crash harness: real `python -m tinycats train --resume auto` processes to kill, stop, check and compare.

One copy for tests/test_crash.py (a scripted crash story) and benchmarks/crash_sweep.py (many random ones).
Its seam, a sitecustomize.py on the child's PYTHONPATH, holds the checkpoint writer inside one named file's
write, so "killed mid-write" is deterministic; nothing in src/ knows about it.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from PIL import Image

from tinycats import checkpoint

# checkpoint.save_atomic writes open(tmp, "wb") ... fsync ... os.replace(tmp, path). CRASH_HOLD="write:NAME" (NAME
# e.g. dit_step_3_ema.pt) holds it once 64 KiB of NAME's temp file reached the disk, "replace:NAME" once the file is
# complete but not renamed; held, it writes CRASH_MARKER and waits for CRASH_RELEASE (or 10 minutes).
SEAM = """\
import builtins, os, time

_SPEC = os.environ.get("CRASH_HOLD")


def _hold():
    with open(os.environ["CRASH_MARKER"], "w") as marker:
        marker.write(str(os.getpid()))
    release, until = os.environ.get("CRASH_RELEASE"), time.monotonic() + 600
    while time.monotonic() < until and not (release and os.path.exists(release)):
        time.sleep(0.01)


if _SPEC:
    _MODE, _NAME = _SPEC.split(":", 1)
    _TEMP = f".{_NAME}.tmp-"

    if _MODE == "replace":
        _replace = os.replace

        def replace(src, dst, *args, **kwargs):
            if os.path.basename(os.fspath(src)).startswith(_TEMP):
                _hold()
            return _replace(src, dst, *args, **kwargs)

        os.replace = replace

    elif _MODE == "write":
        _open = builtins.open

        class _PartWritten:
            def __init__(self, f):
                self._f, self._written, self._held = f, 0, False

            def write(self, data):
                n = self._f.write(data)
                self._written += n
                if not self._held and self._written >= 65536:
                    self._held = True
                    self._f.flush()
                    _hold()
                return n

            def __getattr__(self, name):
                return getattr(self._f, name)

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                return self._f.__exit__(*exc)

        def open(file, mode="r", *args, **kwargs):
            f = _open(file, mode, *args, **kwargs)
            if mode == "wb" and isinstance(file, (str, bytes, os.PathLike)):
                if os.path.basename(os.fsdecode(file)).startswith(_TEMP):
                    return _PartWritten(f)
            return f

        builtins.open = open
"""


def prepare(work: Path, steps: int, interval: int, seed: int) -> None:
    """Write what every Child in `work` runs on: data/ (3 classes of 6 noise images), run.yaml, the seam."""
    rng = np.random.default_rng(0)
    for name in ("Bengal", "Bombay", "Other"):
        folder = work / "data" / "train" / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(6):
            Image.fromarray(rng.integers(0, 256, (16, 20, 3), dtype=np.uint8)).save(folder / f"{name}_{i}.png")
    train = dict(steps=steps, batch_size=4, lr=1e-3, warmup_steps=10, ema_beta=0.99, seed=seed)
    train |= dict(checkpoint_interval=interval, sample_interval=0, log_interval=1)  # a log line every step
    config = {"model": {"preset": "tinydit-test"}, "train": train, "sample": {"steps": 2}}
    (work / "run.yaml").write_text(json.dumps(config, indent=2))  # JSON is YAML
    (work / "seam").mkdir(exist_ok=True)
    (work / "seam" / "sitecustomize.py").write_text(SEAM)


class Child:
    """`python -m tinycats train data --resume auto` in a prepared `work`, saving to work/ck, its output read by a
    thread (so the pipe never fills). `hold` arms the seam; `marker` appears once held; touching `release` goes on."""

    started_all: ClassVar[list[Child]] = []
    numbers: ClassVar[itertools.count] = itertools.count(1)

    def __init__(self, work: Path, ck: str, hold: str | None = None) -> None:
        n = next(Child.numbers)  # atomic: the sweep starts children from two threads
        Child.started_all.append(self)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CRASH_", "TINYCATS_DEBUG"))}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(work / "seam"), env.get("PYTHONPATH")]))
        env["PYTHONUNBUFFERED"] = "1"
        self.marker, self.release = work / f"held-{n}", work / f"release-{n}"
        if hold:
            env.update(CRASH_HOLD=hold, CRASH_MARKER=str(self.marker), CRASH_RELEASE=str(self.release))
        command = [sys.executable, "-m", "tinycats", "train", "data", "--config", "run.yaml", "--device", "cpu"]
        command += ["--no-progress", "--checkpoint-dir", ck, "--log-dir", f"{ck}_log", "--resume", "auto"]
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(command, cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines: list[str] = []
        self.training_at: float | None = None  # when it said it starts or resumes training
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            if self.training_at is None and re.match(r"(training|resuming at step \d+):", line):
                self.training_at = time.perf_counter()
            self.lines.append(line)

    def output(self) -> str:
        return "".join(self.lines)

    def wait_for(self, ready: Callable[[], bool], what: str, timeout: float = 300) -> bool:
        """True once `ready()`; False when the child ended first (the caller reports it)."""
        until = time.monotonic() + timeout
        while not ready():
            if self.proc.poll() is not None:
                return False
            if time.monotonic() > until:
                raise TimeoutError(f"no {what} after {timeout}s:\n{self.output()[-3000:]}")
            time.sleep(0.002)
        return True

    def last_step(self) -> int:
        """The last step whose log line the child printed (-1: none)."""
        steps = [int(m.group(1)) for line in self.lines[-6:] if (m := re.match(r"step (\d+)/", line))]
        return max(steps, default=-1)

    def wait_for_step(self, step: int) -> bool:
        return self.wait_for(lambda: self.last_step() >= step, f"step {step}")

    def end(self, timeout: float = 900) -> int:
        rc = self.proc.wait(timeout)
        self.reader.join(30)
        return rc

    def kill(self) -> int:
        """SIGKILL: no handler, no finally, no cleanup. Returns the exit status (-9 when it was running)."""
        self.proc.send_signal(signal.SIGKILL)
        return self.end()

    def started_from(self) -> int | None:
        """The step the child said it starts from (0: a new run; None: it did not get to say)."""
        out = self.output()
        if m := re.search(r"^resuming at step (\d+):", out, re.M):
            return int(m.group(1))
        return 0 if "starting a new run" in out else None

    def removed_temps(self) -> int:
        m = re.search(r"removed (\d+) temporary file\(s\)", self.output())
        return int(m.group(1)) if m else 0

    @classmethod
    def stop_all(cls) -> None:
        """Kill every child still running, so no failure leaves processes behind."""
        for child in cls.started_all:
            if child.proc.poll() is None:
                child.proc.kill()
                child.proc.wait()


def temps(ck: Path) -> list[str]:
    """The temporary files of unfinished checkpoint writes (`.dit_step_N[_ema].pt.tmp-PID`)."""
    return sorted(p.name for p in ck.glob(".dit_step_*.pt.tmp-*"))


def newest_loadable(ck: Path) -> int:
    """The step --resume auto should continue from: the newest training state that loads (0: none)."""
    found = checkpoint.load_latest(ck, warn=lambda line: None) if ck.is_dir() else None
    return int(found[1]["step"]) if found else 0


def check_all(ck: Path) -> tuple[list[str], list[str]]:
    """Load every dit_step_*.pt in `ck` (checkpoint.load verifies the checksum); (names checked, problems)."""
    names, problems = [], []
    for path in sorted(ck.glob("dit_step_*.pt")):
        names.append(path.name)
        try:
            state = checkpoint.load(path)
        except checkpoint.CheckpointError as exc:
            problems.append(f"{path.name} does not load: {exc}")
            continue
        if state["step"] != checkpoint.step_of(path):
            problems.append(f"{path.name} holds step {state['step']}")
    return names, problems


def differences(a: Any, b: Any, where: str = "") -> list[str]:
    """Where two loaded checkpoints differ, over every field: tensors by torch.equal (dtype too), the rest by ==."""
    if isinstance(a, torch.Tensor):
        same = isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
        return [] if same else [where]
    if isinstance(a, dict):
        if not isinstance(b, dict) or set(a) != set(b):
            return [where]
        return [d for key in a for d in differences(a[key], b[key], f"{where}/{key}")]
    if isinstance(a, (list, tuple)):
        if type(a) is not type(b) or len(a) != len(b):
            return [where]
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in differences(x, y, f"{where}[{i}]")]
    return [] if a == b else [where]


def compare(ref: Path, got: Path, steps: int) -> dict[str, Any]:
    """`got`'s checkpoints against the uninterrupted run's in `ref`: the final pair, and every shared name."""
    finals = [checkpoint.train_path(got, steps).name, checkpoint.ema_path(got, steps).name]
    shared = sorted({p.name for p in got.glob("dit_step_*.pt")} & {p.name for p in ref.glob("dit_step_*.pt")})
    unequal = {}
    for name in shared:
        if diff := differences(checkpoint.load(ref / name), checkpoint.load(got / name)):
            unequal[name] = diff[:5]
    entries = {}  # how many weights, optimizer states and EMA weights the final state holds
    if (got / finals[0]).is_file():
        state = checkpoint.load(got / finals[0])
        entries = {"model": len(state["model"]), "optimizer": len(state["optimizer"]["state"]), "ema": len(state["ema"]["model"])}
    return {
        "final_files": finals,
        "final_equal": all((got / n).is_file() and n not in unequal for n in finals),
        "checkpoints_compared": len(shared),
        "checkpoints_equal": len(shared) - len(unequal),
        "unequal": unequal,
        "final_state_entries": entries,
    }
