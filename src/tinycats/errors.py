"""Every error a user can fix, under one base, kept free of torch so the CLI can name them
without importing it.

A `TinycatsError` is the user's to fix: the CLI prints its message on one line and exits non-zero
(2, or the error's `exit_code`), and the Modal app treats it as final (retrying would fail the same
way). Anything else is a bug or an environment failure and shows its traceback (the CLI) or is
retried (Modal). Subclasses also derive from the built-in type they replace, so callers that
catch ValueError or OSError keep working.
"""

from __future__ import annotations

from pathlib import Path


class TinycatsError(Exception):
    """A problem the user can fix, with a message that says how."""

    exit_code = 2


class UsageError(TinycatsError, ValueError):
    """A flag, setting or argument out of range or contradicting another."""


class ConfigError(UsageError):
    """A preset, YAML file or setting that does not exist or does not fit."""


class DataError(TinycatsError, ValueError):
    """A problem with the user's data folder or images."""


class DownloadError(TinycatsError, OSError):
    """A download that failed or does not match its checksum."""


class Unreachable(DownloadError):
    """The server cannot be reached (offline, DNS, firewall)."""


class CheckpointError(TinycatsError, ValueError):
    """A checkpoint that is missing, corrupt or of the wrong kind."""


class ExportError(TinycatsError, ValueError):
    """An ONNX export that cannot be made or did not check out."""


class OnnxModelError(TinycatsError, ValueError):
    """An ONNX file that is missing or is not a tinycats generator."""


class HubError(TinycatsError, ValueError):
    """A Hub repo folder, reference or upload that is wrong or failed."""


class InceptionUnavailable(TinycatsError, OSError):
    """The Inception weights for FID/KID/IS are not on this machine."""


class TrainingDiverged(TinycatsError, RuntimeError):
    """The loss or the gradient became NaN/Inf; nothing from that step was saved."""


class TrainingInterrupted(TinycatsError, RuntimeError):
    """SIGINT/SIGTERM stopped training after saving a checkpoint; exits with 128 + signal."""

    def __init__(self, signum: int, saved: Path | None) -> None:
        super().__init__(f"stopped by signal {signum}; state saved to {saved}; continue with --resume {saved}")
        self.signum, self.saved = signum, saved
        self.exit_code = 128 + signum
