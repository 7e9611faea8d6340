"""Flag helpers shared by several subcommands."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from tinycats.errors import UsageError


def positive_int(text: str) -> int:
    """An argparse type for counts that must be at least 1 (a batch of 0 images never ends)."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def add_device(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="auto", help="auto (a GPU when there is one), cpu, cuda or cuda:N (default: auto)")


def add_sampler_settings(parser: argparse.ArgumentParser) -> argparse._ArgumentGroup:
    """--steps, --sampler, --cfg-scale, --guidance-interval; unset ones keep what the checkpoint
    recommends (`SampleConfig.override` of `sample_overrides(args)`)."""
    from tinycats.config import SAMPLERS

    group = parser.add_argument_group("sampler (default: what the checkpoint recommends)")
    group.add_argument("--steps", type=int, help="ODE steps from noise to image")
    group.add_argument("--sampler", choices=SAMPLERS, help="euler: 1 network call per step; heun: 2 (2nd order)")
    group.add_argument("--cfg-scale", type=float, help="classifier-free guidance scale; 1 = no guidance")
    group.add_argument(
        "--guidance-interval",
        type=float,
        nargs=2,
        metavar=("LO", "HI"),
        help="guide only while LO <= t <= HI (t=0 noise, t=1 image)",
    )
    return group


def add_sampler(parser: argparse.ArgumentParser) -> None:
    """The sampler settings plus --seed and --batch-size, for commands that draw images."""
    group = add_sampler_settings(parser)
    group.add_argument("--seed", type=int, default=0, help="image i starts from the noise of (seed, i) (default: 0)")
    group.add_argument(
        "--batch-size", type=positive_int, default=64, help="images per forward pass; does not change the images (default: 64)"
    )


def sample_overrides(args: argparse.Namespace) -> dict:
    """The sampler flags (None where not given), checked before any model loads: a NaN scale or a
    reversed interval would otherwise draw NaN or unguided pictures without a word."""
    lo_hi = args.guidance_interval
    if args.steps is not None and args.steps < 1:
        raise UsageError(f"--steps {args.steps}: sampling needs at least 1 step")
    if args.cfg_scale is not None and not math.isfinite(args.cfg_scale):
        raise UsageError(f"--cfg-scale {args.cfg_scale} is not a finite number: use e.g. 2 (1 = no guidance)")
    if lo_hi is not None and not 0 <= lo_hi[0] <= lo_hi[1] <= 1:
        raise UsageError(f"--guidance-interval {lo_hi[0]:g} {lo_hi[1]:g}: need 0 <= LO <= HI <= 1, e.g. 0.1 0.9")
    return {
        "steps": args.steps,
        "sampler": args.sampler,
        "cfg_scale": args.cfg_scale,
        "guidance_interval": args.guidance_interval,
    }


def output_path(flag: str, path: str, folder: bool = False) -> Path:
    """`path` as an output (a folder with `folder`, else a file), refused before any work when its
    place is taken: a file where a folder must be (on its path), or a folder where the file goes."""
    path = Path(path)
    must_be_folders = [path, *path.parents] if folder else list(path.parents)
    blocker = next((p for p in must_be_folders if p.exists() and not p.is_dir()), None)
    if blocker is not None:
        raise UsageError(f"{flag} {path}: {blocker} is a file, not a folder: choose another {flag}")
    if not folder and path.is_dir():
        raise UsageError(f"{flag} {path} is a folder: give a file name")
    return path


def validate_repo_id(repo_id: str, flag: str) -> None:
    """OWNER/NAME, as the Hub accepts it, or a one-line HubError naming `flag`."""
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id as hub_validate

    from tinycats.errors import HubError

    try:
        hub_validate(repo_id)
        if repo_id.count("/") != 1:
            raise HFValidationError("expected OWNER/REPO")
    except HFValidationError as exc:
        raise HubError(f"{flag} {repo_id!r} is not a Hub repo id ({str(exc).splitlines()[0]}): write OWNER/REPO") from None
