"""Where training reports go: outputs/training.log for people, outputs/metrics.jsonl for
programs, sample grids in outputs/samples/, TensorBoard when it is installed, and a progress bar
on a terminal.

Only the main process logs; the others get a logger that does nothing. The files are appended to,
so a resumed run continues the same log.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm


class TrainLogger:
    def __init__(self, log_dir: str | Path, total: int, initial: int, enabled: bool = True, progress: bool | None = None):
        self.enabled = enabled
        if not enabled:
            return
        self.dir = Path(log_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.text = open(self.dir / "training.log", "a", buffering=1)
        self.jsonl = open(self.dir / "metrics.jsonl", "a", buffering=1)
        self.tb = _tensorboard(self.dir / "tensorboard")
        # progress=None: a bar only when stderr is a terminal; log lines go to the console otherwise.
        show = sys.stderr.isatty() if progress is None else progress
        self.bar = tqdm(total=total, initial=initial, unit="step", dynamic_ncols=True, disable=not show)

    def info(self, message: str) -> None:
        if not self.enabled:
            return
        self.text.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {message}\n")
        tqdm.write(message, file=sys.stderr)

    def metrics(self, step: int, values: dict[str, float]) -> None:
        if not self.enabled:
            return
        self.jsonl.write(json.dumps({"step": step, **{k: _round(v) for k, v in values.items()}}) + "\n")
        line = " ".join(f"{k}={_fmt(v)}" for k, v in values.items())
        self.text.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} step {step} {line}\n")
        if self.bar.disable:
            tqdm.write(f"step {step}/{self.bar.total} {line}", file=sys.stderr)
        else:
            self.bar.set_postfix(loss=_fmt(values["loss"]), img_s=_fmt(values["img_per_s"]), refresh=False)
        if self.tb:
            for key, value in values.items():
                self.tb.add_scalar(f"train/{key}", value, step)

    def advance(self, steps: int = 1) -> None:
        if self.enabled:
            self.bar.update(steps)

    def samples(self, model: Any, settings: Any, step: int, per_class: int = 4, seed: int = 0) -> None:
        """A grid of `per_class` samples of every class to samples/step_N.png and TensorBoard.
        The same seed at every step, so successive grids show the model improving, not new noise."""
        if not self.enabled:
            return
        from tinycats.core.sampling import sample
        from tinycats.pictures import labelled_grid, to_pil

        names = model.config.class_names
        pictures = to_pil(sample(model, [c for c in range(len(names)) for _ in range(per_class)], settings, seed=seed))
        grid = labelled_grid([(name, pictures[i * per_class : (i + 1) * per_class]) for i, name in enumerate(names)])
        (self.dir / "samples").mkdir(exist_ok=True)
        grid.save(self.dir / "samples" / f"step_{step:07d}.png")
        if self.tb:
            self.tb.add_image("samples", np.asarray(grid), step, dataformats="HWC")

    def close(self) -> None:
        if not self.enabled:
            return
        self.bar.close()
        self.text.close()
        self.jsonl.close()
        if self.tb:
            self.tb.close()


def _tensorboard(path: Path) -> Any:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is optional
        return None
    return SummaryWriter(str(path))


def _round(value: float) -> float:
    return float(f"{value:.6g}")


def _fmt(value: float) -> str:
    return f"{value:.4g}"
