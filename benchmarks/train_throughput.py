"""Training throughput and MFU of a TinyDiT preset, and of diffusers' DiT of the same shape.

    python benchmarks/train_throughput.py --model tinydit-128 --batch-size 8 --device cpu --steps 10 --json out.json
    python benchmarks/train_throughput.py --model tinydit-128 --batch-size 8 --peer diffusers --json peer.json

Times whole training steps (forward, backward, AdamW, EMA) on random data, counts their FLOPs with
PyTorch's FlopCounterMode, measures the device's matmul peak in the same run for the dtype the step
computes in, and reports MFU = achieved FLOP/s / peak FLOP/s. Prints a table; writes JSON with
img_per_s, flops_per_s, peak_flops_per_s and mfu.

Without --precision it measures what `tinycats train` would use by default here: "auto" resolved
by the same probe (training/precision.py), the reason in the JSON. `--peer diffusers` trains
diffusers' `DiTTransformer2DModel` of the preset's shape instead (same loss, optimiser and EMA), in
fp32 and in bf16 autocast, and reports the faster: the peer at its own best (`pip install diffusers`).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
from pathlib import Path

import torch

from tinycats.config import DECODERS, EMBEDS, PRECISIONS, load_config
from tinycats.core import flow
from tinycats.core.ema import EMA
from tinycats.core.model import TinyDiT, count_parameters
from tinycats.perf import count_flops, peak_matmul_flops, time_per_call
from tinycats.runtime import autocast, pick_device
from tinycats.training import precision as precision_lib
from tinycats.training.optim import build


class DiffusersDiT(torch.nn.Module):
    """diffusers' DiT with TinyDiT's call signature (x_t, t, labels), built to a ModelConfig's shape."""

    def __init__(self, m) -> None:
        super().__init__()
        from diffusers import DiTTransformer2DModel

        self.net = DiTTransformer2DModel(
            num_attention_heads=m.num_heads,
            attention_head_dim=m.hidden_size // m.num_heads,
            in_channels=m.in_channels,
            out_channels=m.in_channels,
            num_layers=m.depth,
            sample_size=m.image_size,
            patch_size=m.patch_size,
            num_embeds_ada_norm=m.num_classes + 1,
        )

    def forward(self, x: torch.Tensor, t: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.net(x, timestep=1000 * t, class_labels=labels).sample


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
    peer: str | None = None,
) -> dict:
    """`changes`: model settings over the preset (image_size, patch_size, embed, decoder); `peer`:
    "diffusers" to time diffusers' DiT of that shape instead of TinyDiT."""
    device = pick_device(device_name)
    model_settings = {"preset": preset, **(changes or {})}
    cfg = load_config(None, {"model": model_settings, "train": {"batch_size": batch_size}})
    model = (DiffusersDiT(cfg.model) if peer else TinyDiT(cfg.model)).to(device)
    chosen = precision_lib.choose(device, precision, precision_lib.trial(model, cfg.model, batch_size, device))
    ema = EMA(model, 0.9999)
    opt, sched = build(model, cfg.train)
    net = torch.compile(model, mode=mode) if compile_ else model
    amp = autocast(device, chosen.precision)
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
        "network": "diffusers DiTTransformer2DModel" if peer else "TinyDiT",
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
        "precision_reason": chosen.reason,
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
    parser.add_argument("--precision", default="auto", choices=PRECISIONS, help="auto (default): what tinycats train picks here")
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
    parser.add_argument("--peer", choices=("diffusers",), help="time diffusers' DiT of the preset's shape, at its best precision")
    parser.add_argument("--json", type=Path, help="write the result here")
    args = parser.parse_args()
    changes = {k: getattr(args, k) for k in ("image_size", "patch_size", "embed", "decoder") if getattr(args, k) is not None}
    # The peer at its own best: with no precision asked for, both are timed and the faster reported.
    precisions = [args.precision] if not args.peer or args.precision != "auto" else ["fp32", "bf16"]
    how = (args.compile, args.compile_mode, changes, args.peer)
    rows = [measure(args.model, args.batch_size, args.device, args.steps, args.warmup, p, *how) for p in precisions]
    r = max(rows, key=lambda row: row["img_per_s"])
    r["tried"] = {row["precision"]: row["img_per_s"] for row in rows}
    name = f"{r['model']}{' (diffusers DiT)' if args.peer else ''}"
    print("| model | batch | device | precision | s/step | img/s | GFLOP/s | peak GFLOP/s | MFU |")
    print("|---|---|---|---|---|---|---|---|---|")
    print(
        f"| {name} ({r['parameters'] / 1e6:.2f}M, {r['image_size']}px/{r['patch_size']}, {r['embed']}/{r['decoder']}) "
        f"| {r['batch_size']} | {r['device']} "
        f"({r['threads']} threads) | {r['precision']} | {r['s_per_step']:.3f} | {r['img_per_s']:.1f} | "
        f"{r['flops_per_s'] / 1e9:.1f} | {r['peak_flops_per_s'] / 1e9:.1f} | {r['mfu']:.1%} |"
    )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(r, indent=2) + "\n")


if __name__ == "__main__":
    main()
