"""Can the cached loader feed the GPU? Images/s the data path delivers vs images/s training eats.

    python benchmarks/data_throughput.py --model tinydit-128 --batch-size 256 --augmentation-level full --json out.json

Times `train.Batches` (index the uint8 cache, draw per-sample augmentation, label dropout, times and
noise, apply the augmentation) on a synthetic cache of --num-images images at the model's size,
then a few training steps of the same model on the same device (benchmarks/train_throughput.py),
and reports the ratio. Prints a table; writes JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import torch

from tinycats.config import load_config
from tinycats.perf import time_per_call
from tinycats.runtime import pick_device
from tinycats.training.distributed import Context
from tinycats.training.loop import Batches

try:
    from train_throughput import measure as measure_training
except ImportError:  # run as a module from the repository root
    from benchmarks.train_throughput import measure as measure_training


def measure_data(preset: str, batch_size: int, level: str, num_images: int, device: torch.device, runs: int) -> dict:
    cfg = load_config(None, {"model": {"preset": preset}, "train": {"batch_size": batch_size, "augmentation_level": level}})
    size = cfg.model.image_size
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (num_images, 3, size, size), dtype=torch.uint8, generator=g).to(device)
    labels = torch.randint(0, cfg.model.num_classes, (num_images,), generator=g).to(device)
    batches = Batches(cfg, images, labels, Context(), device)
    position = iter(range(0, 10**12, batch_size))
    seconds = statistics.median(time_per_call(lambda: batches(next(position)), device, warmup=2, runs=runs))
    return {"img_per_s": batch_size / seconds, "s_per_batch": seconds, "image_size": size, "batch_size": batch_size}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="tinydit-128", help="preset that sets the image size (default: tinydit-128)")
    parser.add_argument("--batch-size", type=int, default=256, help="data batch size (default: 256, the record's)")
    parser.add_argument("--train-batch-size", type=int, default=8, help="batch of the training steps timed for comparison")
    parser.add_argument("--augmentation-level", default="full", choices=("none", "basic", "full"), help="default: full")
    parser.add_argument("--num-images", type=int, default=2400, help="cache size (default: 2400, the cat images)")
    parser.add_argument("--device", default="auto", help="cpu, cuda or auto")
    parser.add_argument("--runs", type=int, default=20, help="timed data batches (default: 20)")
    parser.add_argument("--train-steps", type=int, default=5, help="timed training steps (default: 5)")
    parser.add_argument("--json", type=Path, help="write the result here")
    args = parser.parse_args()
    device = pick_device(args.device)
    data = measure_data(args.model, args.batch_size, args.augmentation_level, args.num_images, device, args.runs)
    training = measure_training(args.model, args.train_batch_size, args.device, args.train_steps, 2, "auto", False)
    ratio = data["img_per_s"] / training["img_per_s"]
    print("| model | device | augmentation | data img/s (batch) | training img/s (batch) | data / training |")
    print("|---|---|---|---|---|---|")
    print(
        f"| {args.model} ({data['image_size']}px) | {device} | {args.augmentation_level} | {data['img_per_s']:.0f} "
        f"({args.batch_size}) | {training['img_per_s']:.1f} ({args.train_batch_size}) | {ratio:.0f}x |"
    )
    if args.json:
        result = {"data": data, "training": training, "ratio": ratio, "augmentation_level": args.augmentation_level}
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
