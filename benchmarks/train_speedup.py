"""Before and after, back to back on one machine: the training step of a base revision against this
checkout's, for the demo preset's network and tinydit-128, with diffusers' DiT of tinydit-128's
shape beside them.

    python benchmarks/train_speedup.py --base origin/main --out benchmarks/results/train_speedup.json

The base revision is checked out into a temporary git worktree and its own benchmarks/
train_throughput.py runs on its own source, with its defaults (what `tinycats train` did there);
this checkout's runs with its defaults, and compiled where the preset compiles. Every row is run
--rounds times in turns (base, new, ..., base, new, ...), so a slow spell of a shared machine hits
each, and the median is reported. Writes one JSON with every run and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEMO = ["--model", "tinydit-xs", "--decoder", "conv", "--batch-size", "64", "--steps", "20"]
RECORD = ["--model", "tinydit-128", "--batch-size", "8", "--steps", "8"]
# (row, which source, arguments): base rows run the base revision's script, the others this checkout's.
ROWS = [
    ("demo network, base", "base", DEMO),
    ("demo network", "new", DEMO),
    ("demo network, compiled", "new", [*DEMO, "--compile"]),
    ("tinydit-128, base", "base", RECORD),
    ("tinydit-128", "new", RECORD),
    ("tinydit-128, compiled", "new", [*RECORD, "--compile"]),
    ("diffusers DiT (tinydit-128 shape), best of fp32 / bf16", "new", [*RECORD, "--peer", "diffusers"]),
]


def run(source: Path, args: list[str], out: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(source / "src")}
    script = source / "benchmarks" / "train_throughput.py"
    subprocess.run([sys.executable, str(script), *args, "--device", "cpu", "--json", str(out)], env=env, check=True)
    return json.loads(out.read_text())


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").is_file() else []:
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", default="origin/main", help="git revision to compare against (default: origin/main)")
    parser.add_argument("--rounds", type=int, default=2, help="times each row runs, in turns (default: 2)")
    parser.add_argument("--out", type=Path, required=True, help="JSON file to write")
    args = parser.parse_args()
    git = {"cwd": ROOT, "check": True, "capture_output": True, "text": True}
    base_rev = subprocess.run(["git", "rev-parse", args.base], **git).stdout.strip()
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "base"
        subprocess.run(["git", "worktree", "add", "--detach", str(base), base_rev], **git)
        try:
            runs: dict[str, list[dict]] = {name: [] for name, _, _ in ROWS}
            for round_ in range(args.rounds):
                for i, (name, which, row_args) in enumerate(ROWS):
                    source = base if which == "base" else ROOT
                    runs[name].append(run(source, row_args, Path(tmp) / f"{round_}-{i}.json"))
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(base)], **git)
    rows = {name: {"median_img_per_s": statistics.median(r["img_per_s"] for r in rs), "runs": rs} for name, rs in runs.items()}
    result = {"cpu": cpu_name(), "threads": runs[ROWS[0][0]][0]["threads"], "base": base_rev, "rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")

    print(f"{result['cpu']}, {result['threads']} threads; base {base_rev[:10]}")
    print("| row | precision | img/s (median) | vs base | MFU (peak of its dtype) |")
    print("|---|---|---|---|---|")
    for name, row in rows.items():
        first = row["runs"][0]
        base_name = "demo network, base" if name.startswith("demo") else "tinydit-128, base"
        ratio = row["median_img_per_s"] / rows[base_name]["median_img_per_s"]
        mfu = statistics.median(r["mfu"] for r in row["runs"])
        print(f"| {name} | {first['precision']} | {row['median_img_per_s']:.1f} | {ratio:.2f}x | {mfu:.1%} |")


if __name__ == "__main__":
    main()
