"""Training throughput and MFU of a TinyDiT preset.

    python benchmarks/train_throughput.py --model tinydit-128 --batch-size 8 --device cpu --steps 10 --json out.json

Times whole training steps (forward, backward, AdamW, EMA) on random data, counts their FLOPs with
PyTorch's FlopCounterMode, measures the device's matmul peak in the same run for the dtype the step
computes in, and reports MFU = achieved FLOP/s / peak FLOP/s. Prints a table; writes JSON with
img_per_s, flops_per_s, peak_flops_per_s and mfu.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
from pathlib import Path

import torch

from tinycats.config import DECODERS, EMBEDS, load_config
from tinycats.core import flow
from tinycats.core.ema import EMA
from tinycats.core.model import TinyDiT, count_parameters
from tinycats.perf import count_flops, peak_matmul_flops, time_per_call
from tinycats.runtime import autocast, pick_device
from tinycats.training.optim import build


def measure(
    preset: str,
    batch_size: int,
    device_name: str,
    steps: int,
    warmup: int,
    precision: str,
    compile_: bool,
    mode: str | None = None,
    changes: dict | None = None,
) -> dict:
    """`changes`: model settings over the preset (image_size, patch_size, embed, decoder)."""
    device = pick_device(device_name)
    model_settings = {"preset": preset, **(changes or {})}
    cfg = load_config(None, {"model": model_settings, "train": {"batch_size": batch_size, "precision": precision}})
    model = TinyDiT(cfg.model).to(device)
    ema = EMA(model, 0.9999)
    opt, sched = build(model, cfg.train)
    net = torch.compile(model, mode=mode) if compile_ else model
    amp = autocast(device, precision)
    g = torch.Generator(device=device).manual_seed(0)
    size = cfg.model.image_size
    x = torch.rand(batch_size, 3, size, size, device=device, generator=g) * 2 - 1
    noise = torch.randn(x.shape, device=device, generator=g)
    t = torch.rand(batch_size, device=device, generator=g)
    labels = torch.randint(0, cfg.model.num_classes + 1, (batch_size,), device=device, generator=g)

    def forward_backward() -> None:
        with amp:
            loss = flow.loss(net, cfg.model, x, labels, noise, t)
        loss.backward()

    def step() -> None:
        forward_backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        ema.update(model)

    flops = count_flops(forward_backward)
    opt.zero_grad(set_to_none=True)
    times = time_per_call(step, device, warmup, steps)
    seconds = statistics.median(times)
    dtype = torch.bfloat16 if amp.precision == "bf16" else torch.float32
    peak = peak_matmul_flops(device, dtype)
    return {
        "model": preset,
        "parameters": count_parameters(model),
        "image_size": size,
        "patch_size": cfg.model.patch_size,
        "embed": cfg.model.embed,
        "decoder": cfg.model.decoder,
        "batch_size": batch_size,
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
        "threads": torch.get_num_threads(),
        "precision": amp.precision,
        "compile": compile_,
        "compile_mode": mode if compile_ else None,
        "steps_timed": steps,
        "s_per_step": seconds,
        "img_per_s": batch_size / seconds,
        "flops_per_step": flops,
        "flops_per_s": flops / seconds,
        "peak_flops_per_s": peak,
        "mfu": flops / seconds / peak,
        "torch": torch.__version__,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="tinydit-128", help="architecture preset (default: tinydit-128)")
    parser.add_argument("--batch-size", type=int, default=8, help="images per step (default: 8)")
    parser.add_argument("--device", default="auto", help="cpu, cuda or auto (default: auto)")
    parser.add_argument("--steps", type=int, default=10, help="timed steps (default: 10)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first (default: 3)")
    parser.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16"), help="auto: bf16 on CUDA, fp32 on CPU")
    parser.add_argument("--compile", action="store_true", help="torch.compile the network")
    parser.add_argument(
        "--compile-mode",
        choices=("default", "reduce-overhead", "max-autotune"),
        help="torch.compile mode (reduce-overhead: CUDA graphs)",
    )
    parser.add_argument("--image-size", type=int, help="resolution over the preset's")
    parser.add_argument("--patch-size", type=int, help="patch size over the preset's")
    parser.add_argument("--embed", choices=EMBEDS, help="patch embedding over the preset's")
    parser.add_argument("--decoder", choices=DECODERS, help="patch decoder over the preset's")
    parser.add_argument("--json", type=Path, help="write the result here")
    args = parser.parse_args()
    changes = {k: getattr(args, k) for k in ("image_size", "patch_size", "embed", "decoder") if getattr(args, k) is not None}
    timing = (args.steps, args.warmup, args.precision, args.compile, args.compile_mode)
    r = measure(args.model, args.batch_size, args.device, *timing, changes)
    print("| model | batch | device | precision | s/step | img/s | GFLOP/s | peak GFLOP/s | MFU |")
    print("|---|---|---|---|---|---|---|---|---|")
    print(
        f"| {r['model']} ({r['parameters'] / 1e6:.2f}M, {r['image_size']}px/{r['patch_size']}, {r['embed']}/{r['decoder']}) "
        f"| {r['batch_size']} | {r['device']} "
        f"({r['threads']} threads) | {r['precision']} | {r['s_per_step']:.3f} | {r['img_per_s']:.1f} | "
        f"{r['flops_per_s'] / 1e9:.1f} | {r['peak_flops_per_s'] / 1e9:.1f} | {r['mfu']:.1%} |"
    )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(r, indent=2) + "\n")


if __name__ == "__main__":
    main()
