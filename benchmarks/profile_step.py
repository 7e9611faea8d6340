"""Where a training step's CPU time goes: torch.profiler over whole steps, self time by op, with the
forward, the backward and the optimiser (clip, AdamW, EMA) timed apart.

    python benchmarks/profile_step.py --model tinydit-xs --decoder conv --batch-size 64 --precision bf16 --kernels

--kernels then runs one more step in a child process with ONEDNN_VERBOSE=1 and MKL_VERBOSE=1 and
counts the library kernels that served it, by name: `brg_matmul:avx10_1_512_amx`,
`brg_matmul:avx512_core_bf16`, MKL SGEMM and so on. Random data, as train_throughput.py; --json
writes the phases, the op table and the kernel counts.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile, record_function

from tinycats.config import DECODERS, load_config
from tinycats.core import flow
from tinycats.core.ema import EMA
from tinycats.core.model import TinyDiT
from tinycats.runtime import autocast
from tinycats.training.optim import build

PHASES = ("forward", "backward", "optimiser")


def step_fn(preset: str, decoder: str | None, batch: int, precision: str):
    cfg = load_config(None, {"model": {"preset": preset, "decoder": decoder}, "train": {"batch_size": batch}})
    model = TinyDiT(cfg.model)
    ema, (opt, _) = EMA(model, 0.999), build(model, cfg.train)
    g = torch.Generator().manual_seed(0)
    size = cfg.model.image_size
    x = torch.rand(batch, 3, size, size, generator=g) * 2 - 1
    noise, t = torch.randn(x.shape, generator=g), torch.rand(batch, generator=g)
    labels = torch.randint(0, cfg.model.num_classes + 1, (batch,), generator=g)
    amp = autocast(torch.device("cpu"), precision)

    def step() -> None:
        with record_function("phase: forward"), amp:
            loss = flow.loss(model, cfg.model, x, labels, noise, t)
        with record_function("phase: backward"):
            loss.backward()
        with record_function("phase: optimiser"):
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            opt.zero_grad(set_to_none=True)
            ema.update(model)

    return step


def kernels(argv: list[str]) -> Counter:
    """Run this script's plain steps in a child with verbose GEMM libraries; count the kernels."""
    env = {**os.environ, "ONEDNN_VERBOSE": "1", "MKL_VERBOSE": "1"}
    out = subprocess.run([sys.executable, __file__, *argv, "--plain"], env=env, capture_output=True, text=True, check=True).stdout
    counts: Counter = Counter()
    for line in out.split("=== timed ===", 1)[-1].splitlines():
        if line.startswith("onednn_verbose") and ",exec," in line:
            fields = line.split(",")
            counts[f"oneDNN {fields[5]} {fields[6]}"] += 1
        elif m := re.match(r"MKL_VERBOSE (\w+)\(", line):
            counts[f"MKL {m[1]}"] += 1
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="tinydit-xs", help="architecture preset (default: tinydit-xs)")
    parser.add_argument("--decoder", choices=DECODERS, help="patch decoder over the preset's")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    parser.add_argument("--steps", type=int, default=5, help="profiled steps, after 3 untimed ones (default: 5)")
    parser.add_argument("--rows", type=int, default=20, help="ops to print (default: 20)")
    parser.add_argument("--kernels", action="store_true", help="also count the GEMM kernels that run (verbose child run)")
    parser.add_argument("--plain", action="store_true", help=argparse.SUPPRESS)  # the child of --kernels
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    step = step_fn(args.model, args.decoder, args.batch_size, args.precision)
    for _ in range(3):
        step()
    if args.plain:
        print("=== timed ===", flush=True)
        for _ in range(args.steps):
            step()
        return
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(args.steps):
            step()
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events)
    phases = {p: next(e.cpu_time_total for e in events if e.key == f"phase: {p}") / args.steps / 1e3 for p in PHASES}
    ops = sorted((e for e in events if not e.key.startswith("phase")), key=lambda e: -e.self_cpu_time_total)[: args.rows]
    split = ", ".join(f"{p} {v:.1f}" for p, v in phases.items())
    print(f"{args.model} batch {args.batch_size} {args.precision}: ms per step {split}")
    print("| op | self ms / step | share | calls / step |")
    print("|---|---|---|---|")
    table = []
    for e in ops:
        row = {"op": e.key, "self_ms": e.self_cpu_time_total / args.steps / 1e3, "share": e.self_cpu_time_total / total,
               "calls": e.count / args.steps}  # fmt: skip
        table.append(row)
        print(f"| {row['op']} | {row['self_ms']:.2f} | {row['share']:.1%} | {row['calls']:.0f} |")
    found = {}
    if args.kernels:
        argv = ["--model", args.model, "--batch-size", str(args.batch_size), "--precision", args.precision, "--steps", "1"]
        found = kernels(argv + (["--decoder", args.decoder] if args.decoder else []))
        print("\nGEMM and other library kernels in one step:")
        for name, n in found.most_common():
            print(f"  {n:6d}  {name}")
    if args.json:
        args.json.write_text(json.dumps({"phases_ms": phases, "ops": table, "kernels": dict(found)}, indent=1) + "\n")


if __name__ == "__main__":
    main()
