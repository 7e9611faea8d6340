"""tinycats sample: pictures of every breed (or chosen ones) from a checkpoint, or from an exported
ONNX file with onnxruntime alone."""

from __future__ import annotations

import argparse

from tinycats.breeds import class_index
from tinycats.cli.common import add_device, add_sampler, output_path, sample_overrides
from tinycats.errors import UsageError
from tinycats.pictures import write_gallery


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sample",
        help="generate pictures per breed from a checkpoint",
        description="Write OUT/<Class>/<Class>_<i>.png, OUT/grids/<Class>.png and OUT/overview.png (a row per breed).",
    )
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--checkpoint", help="dit_step_N_ema.pt, dit_step_N.pt, a Hub folder or hf://OWNER/REPO")
    source.add_argument(
        "--onnx", metavar="PATH", help="a generator.onnx from `tinycats export-onnx`: sample with onnxruntime (CPU), no PyTorch"
    )
    which = p.add_mutually_exclusive_group()
    which.add_argument("--all-breeds", action="store_true", help="every class of the model (the default)")
    which.add_argument("--breed", action="append", metavar="NAME", help="a class name, e.g. Siamese; repeat for several")
    p.add_argument("--num-samples", type=int, default=8, help="pictures per breed (default: 8)")
    p.add_argument("--output-dir", default="samples", help="where to write (default: samples)")
    add_sampler(p)
    add_device(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.num_samples < 1:
        raise UsageError("--num-samples must be at least 1")
    overrides = sample_overrides(args)
    output_path("--output-dir", args.output_dir, folder=True)
    if args.onnx:  # imports nothing of PyTorch
        from tinycats.export.onnx_sampler import load, sample

        if args.device != "auto":
            raise UsageError("--device applies to --checkpoint; --onnx always runs on the CPU")
        model = load(args.onnx)
        names = model.class_names
    else:
        from tinycats.core.sampling import sample
        from tinycats.generator import load_generator

        model = load_generator(args.checkpoint, device=args.device)
        names = model.config.class_names
    breeds = [class_index(b, names) for b in args.breed] if args.breed else list(range(len(names)))
    settings = model.sample_config.override(**overrides)

    def draw(labels: list[int], indices: list[int]):
        return sample(model, labels, settings, seed=args.seed, batch_size=args.batch_size, indices=indices, progress=True)

    gallery = write_gallery(draw, names, breeds, args.num_samples, args.output_dir)
    total = sum(len(v) for v in gallery.files.values())
    print(
        f"wrote {total} pictures of {len(breeds)} breed(s) to {args.output_dir} ({settings.sampler}, {settings.steps} steps, "
        f"guidance {settings.cfg_scale}); overview: {gallery.overview}"
    )
    return 0
