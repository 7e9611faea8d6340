"""Starting a run from a preset and flags: the settings it trains with and, when resuming, the state
it continues from. `tinycats train` and the Modal app both start runs through here, so they accept
exactly the same settings and resume the same way.

Flags are named as the config fields they set (`--warmup-steps` sets TrainConfig.warmup_steps);
the three model flags are the exceptions in MODEL_FLAGS. A flag that is None was not given and
leaves the preset's (or, on resume, the checkpoint's) value.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tinycats import checkpoint
from tinycats.config import RunConfig, TrainConfig, load_config, resume_config

# flag -> ModelConfig field
MODEL_FLAGS = {"model": "preset", "image_size": "image_size", "prediction": "prediction"}
TRAIN_FLAGS = tuple(f.name for f in dataclasses.fields(TrainConfig))


def overrides(flags: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """{"model": {...}, "train": {...}} from flag values (keys that are not settings are ignored)."""
    return {
        "model": {field: flags[flag] for flag, field in MODEL_FLAGS.items() if flag in flags},
        "train": {name: flags[name] for name in TRAIN_FLAGS if name in flags},
    }


def resolve(
    config: str | None, flags: Mapping[str, Any], resume: str | None, checkpoint_dir: str | Path
) -> tuple[RunConfig, dict[str, Any] | None]:
    """The run's settings and, when resuming, the loaded dit_step_N.pt (None for a new run).
    `resume`: None, "auto" (the latest in checkpoint_dir, if any) or a path."""
    state = None
    if resume == "auto":
        found = checkpoint.load_latest(checkpoint_dir, warn=lambda line: print(line, file=sys.stderr))
        if found is None:
            print(f"--resume auto: no usable checkpoint in {checkpoint_dir}, starting a new run", file=sys.stderr)
        else:
            state = found[1]
    elif resume:
        state = checkpoint.load_training_state(resume)
    changes = overrides(flags)
    return (resume_config(state["config"], changes), state) if state else (load_config(config, changes), None)
