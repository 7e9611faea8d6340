"""One picture comparing recipe-study runs: for each study folder, a row of real test images (the
first of each breed), then a row of samples per run in it, the same breeds and noise seed for every
run, all shown at the largest run's resolution (nearest-neighbour, so grids stay visible).

    python benchmarks/study_picture.py --out docs/geometry-study.png study-32/x-logit-seed0 study-128/x-logit-seed0

Each run folder is `STUDY/VARIANT-seedN` as benchmarks/recipe_study.py leaves it; its real images
come from STUDY/data/test. Rows are labelled with the run's geometry and decoder.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from PIL import Image

from tinycats.api import load_generator
from tinycats.config import SampleConfig
from tinycats.core.sampling import sample
from tinycats.pictures import labelled_grid, to_pil


def rows_for(run: Path, seed: int) -> tuple[tuple[str, list[Image.Image]], tuple[str, list[Image.Image]]]:
    """(the real images' row, the run's samples' row)."""
    model = load_generator(next(run.glob("dit_step_*_ema.pt")), device="cpu")
    cfg = model.config
    breeds = list(range(cfg.num_classes))
    real = [Image.open(sorted((run.parent / "data" / "test" / name).iterdir())[0]).convert("RGB") for name in cfg.class_names]
    fake = to_pil(sample(model, breeds, SampleConfig("euler", 25, 2.0), seed=seed))
    geometry = f"{cfg.image_size}px/{cfg.patch_size} {cfg.embed}/{cfg.decoder}"
    return (f"real {cfg.image_size}px", real), (geometry, fake)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path, help="run folders (STUDY/VARIANT-seedN)")
    parser.add_argument("--out", type=Path, required=True, help="PNG to write")
    parser.add_argument("--seed", type=int, default=7, help="noise seed of the samples (default: 7)")
    args = parser.parse_args()
    rows = []
    for i, run in enumerate(args.runs):
        real, fake = rows_for(run, args.seed)
        rows += [real, fake] if i == 0 or run.parent != args.runs[i - 1].parent else [fake]
    cell = max(img.width for _, imgs in rows for img in imgs)
    labelled_grid(rows, cell=cell).save(args.out, optimize=True)
    print(f"wrote {args.out} ({len(rows)} rows, {cell} px cells)")


if __name__ == "__main__":
    main()
