"""Errors that end a run, kept free of torch so the CLI can name them without importing it."""

from __future__ import annotations

from pathlib import Path


class TrainingDiverged(RuntimeError):
    """The loss or the gradient became NaN/Inf; nothing from that step was saved."""


class TrainingInterrupted(RuntimeError):
    """SIGINT/SIGTERM stopped training after saving a checkpoint; exits with 128 + signal."""

    def __init__(self, signum: int, saved: Path | None) -> None:
        super().__init__(f"stopped by signal {signum}; state saved to {saved}; continue with --resume {saved}")
        self.signum, self.saved = signum, saved
        self.exit_code = 128 + signum


class HubError(ValueError):
    """A Hub repo folder, reference or upload that is wrong or failed, with what to do about it."""
