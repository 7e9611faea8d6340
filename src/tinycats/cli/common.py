"""Flag helpers shared by several subcommands."""

from __future__ import annotations

import argparse


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
        "--batch-size", type=int, default=64, help="images per forward pass; does not change the images (default: 64)"
    )


def sample_overrides(args: argparse.Namespace) -> dict:
    return {
        "steps": args.steps,
        "sampler": args.sampler,
        "cfg_scale": args.cfg_scale,
        "guidance_interval": args.guidance_interval,
    }
