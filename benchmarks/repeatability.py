"""Do identical runs give identical weights? The same `tinycats train` run N times, compared tensor by tensor.

    python benchmarks/repeatability.py DATA_DIR --config cpu-demo --steps 60 --runs 3 --precision bf16 --compile \
        --json benchmarks/results/repeatability.json

Each run is its own process (as a resume is) with the same seed, data and settings; run i is
compared with run 1: how many weight tensors differ at all, and by how much at most. Prints a
table; writes JSON. Compiled CPU runs are repeatable only because training turns on
deterministic algorithms (runtime.repeatable); docs/reliability.md has the figures from before.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

from tinycats import checkpoint
from tinycats.training.precision import cpu_name


def run_once(args: argparse.Namespace, out: Path) -> dict:
    cmd = [sys.executable, "-m", "tinycats", "train", str(args.data_dir), "--config", args.config, "--steps", str(args.steps),
           "--checkpoint-interval", str(args.steps), "--sample-interval", "0", "--precision", args.precision,
           "--compile" if args.compile else "--no-compile", "--checkpoint-dir", str(out / "ck"), "--log-dir", str(out / "log"),
           "--no-progress"]  # fmt: skip
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    return checkpoint.load(checkpoint.train_path(out / "ck", args.steps))["model"]


def compare(first: dict, other: dict) -> dict:
    differing = [k for k in first if not torch.equal(first[k], other[k])]  # a NaN anywhere differs too
    gaps = [(first[k].float() - other[k].float()).abs().max().item() for k in first]
    return {"tensors": len(first), "differing": len(differing), "max_abs_difference": max(gaps)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("data_dir", type=Path)
    p.add_argument("--config", default="cpu-demo")
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--precision", default="bf16", choices=["fp32", "bf16"])
    p.add_argument("--compile", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        weights = [run_once(args, Path(tmp) / f"run{i}") for i in range(1, args.runs + 1)]
    rows = [{"run": i + 1, **compare(weights[0], w)} for i, w in enumerate(weights[1:], start=1)]
    print(f"{args.config}, {args.steps} steps, {args.precision}, {'compiled' if args.compile else 'eager'}; {cpu_name()}")
    print(f"{'run vs run 1':>12} {'tensors differing':>18} {'max |difference|':>17}")
    for r in rows:
        print(f"{r['run']:>12} {r['differing']:>10} / {r['tensors']:<5} {r['max_abs_difference']:>17.3g}")
    if args.json:
        settings = {**{k: v for k, v in vars(args).items() if k not in ("json", "data_dir")}, "data": args.data_dir.name}
        report = {"settings": settings, "cpu": cpu_name(), "torch": torch.__version__, "comparisons": rows}
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
