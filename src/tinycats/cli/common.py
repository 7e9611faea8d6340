"""Flag helpers shared by several subcommands."""

from __future__ import annotations

import argparse


def add_device(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="auto", help="auto (a GPU when there is one), cpu, cuda or cuda:N (default: auto)")


def add_sampler(parser: argparse.ArgumentParser) -> None:
    """Sampler flags; unset ones fall back to what the checkpoint recommends."""
    group = parser.add_argument_group("sampler (default: what the checkpoint recommends)")
    group.add_argument("--steps", type=int, help="ODE steps from noise to image")
    group.add_argument("--sampler", choices=("euler", "heun"), help="euler: 1 network call per step; heun: 2 (2nd order)")
    group.add_argument("--cfg-scale", type=float, help="classifier-free guidance scale; 1 = no guidance")
    group.add_argument(
        "--guidance-interval",
        type=float,
        nargs=2,
        metavar=("LO", "HI"),
        help="guide only while LO <= t <= HI (t=0 noise, t=1 image)",
    )
    group.add_argument("--seed", type=int, default=0, help="image i starts from the noise of (seed, i) (default: 0)")
    group.add_argument(
        "--batch-size", type=int, default=64, help="images per forward pass; does not change the images (default: 64)"
    )


def sample_overrides(args: argparse.Namespace) -> dict:
    return {
        "steps": args.steps,
        "sampler": args.sampler,
        "cfg_scale": args.cfg_scale,
        "guidance_interval": args.guidance_interval,
    }
