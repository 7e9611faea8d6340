"""Does every damaged checkpoint fail its load? Flip bytes, cut files short, pass foreign files.

    python benchmarks/corruption_sweep.py --flips 2000 --cuts 200 --json benchmarks/results/corruption_sweep.json

Writes one real training state (a few steps of tinydit-test on a tiny image folder, so the
optimiser, scheduler, RNG and data fingerprint are all in it), then loads copies of it that are
damaged at seeded random places: each byte flip and each truncation must end as a CheckpointError
(detected) or load with exactly the original content (harmless: the byte was zip padding that
carries nothing). A load that succeeds with other content is undetected damage, which must be 0.
Prints a table; writes JSON.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from tinycats import checkpoint
from tinycats.config import load_config
from tinycats.errors import CheckpointError
from tinycats.training.loop import train


def training_state(root: Path) -> Path:
    for index, name in enumerate(("Bengal", "Bombay", "Other")):
        folder = root / "data" / "train" / name
        folder.mkdir(parents=True)
        for i in range(4):
            pixels = np.full((16, 16, 3), 60 * index + 10 * i, dtype=np.uint8)
            Image.fromarray(pixels).save(folder / f"{i}.png")
    cfg = load_config(None, {"model": {"preset": "tinydit-test"}, "train": {"steps": 3, "batch_size": 4}})
    return train(cfg, root / "data", root / "ck", root / "out", progress=False).checkpoint


def verdict(path: Path, original: str) -> str:
    try:
        state = checkpoint.load(path)
    except CheckpointError:
        return "detected"
    return "harmless" if checkpoint.content_sha256(state) == original else "undetected"


def foreign_files(root: Path, good: Path) -> dict[str, Path]:
    import safetensors.torch

    files = {
        "text": "notes.pt",
        "empty": "empty.pt",
        "state dict of another program": "other.pt",
        "safetensors": "weights.pt",
        "EMA file renamed as a training state": "dit_step_1.pt",
    }
    paths = {kind: root / name for kind, name in files.items()}
    paths["text"].write_text("not a checkpoint\n")
    paths["empty"].write_bytes(b"")
    torch.save({"state_dict": {"fc.weight": torch.zeros(3)}, "epoch": 3}, paths["state dict of another program"])
    safetensors.torch.save_file({"w": torch.zeros(3)}, paths["safetensors"])
    paths["EMA file renamed as a training state"].write_bytes(Path(str(good).replace(".pt", "_ema.pt")).read_bytes())
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--flips", type=int, default=2000, help="single-byte flips at random offsets")
    parser.add_argument("--cuts", type=int, default=200, help="truncations at random lengths")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()

    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        good = training_state(root)
        data = good.read_bytes()
        original = checkpoint.content_sha256(checkpoint.load(good))  # load takes the stored checksum out
        rng = random.Random(args.seed)
        damaged = root / "damaged.pt"
        counts = {"flip": dict.fromkeys(("detected", "harmless", "undetected"), 0)}
        counts["cut"] = dict(counts["flip"])
        for _ in range(args.flips):
            at = rng.randrange(len(data))
            damaged.write_bytes(data[:at] + bytes([data[at] ^ (1 << rng.randrange(8))]) + data[at + 1 :])
            counts["flip"][verdict(damaged, original)] += 1
        for _ in range(args.cuts):
            damaged.write_bytes(data[: rng.randrange(len(data))])
            counts["cut"][verdict(damaged, original)] += 1
        foreign = {}
        for kind, path in foreign_files(root, good).items():
            try:
                checkpoint.load_training_state(path)
                foreign[kind] = "loaded"
            except CheckpointError:
                foreign[kind] = "refused"
    result = {
        "checkpoint_bytes": len(data),
        "seed": args.seed,
        "byte_flips": counts["flip"],
        "truncations": counts["cut"],
        "foreign_files": foreign,
        "undetected_damage": counts["flip"]["undetected"] + counts["cut"]["undetected"],
        "seconds": round(time.perf_counter() - started, 1),
    }
    print(f"checkpoint of {len(data)} bytes (tinydit-test training state, step 3)\n")
    print(f"{'damage':<40} {'tried':>6} {'detected':>9} {'harmless':>9} {'undetected':>11}")
    for name, key in (("one flipped bit at a random byte", "flip"), ("cut short at a random length", "cut")):
        c = counts[key]
        print(f"{name:<40} {sum(c.values()):>6} {c['detected']:>9} {c['harmless']:>9} {c['undetected']:>11}")
    for kind, outcome in foreign.items():
        print(f"foreign file: {kind:<40} {outcome}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
