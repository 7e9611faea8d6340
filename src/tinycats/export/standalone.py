"""Sample a published tinycats generator with onnxruntime, numpy and Pillow alone.

    pip install onnxruntime numpy pillow
    python onnx/sample.py --breed Siamese --seed 0 --output siamese.png

This is onnx/sample.py of a tinycats Hub repo: it reads onnx/generator.json beside it (class names,
image size, the recommended sampler, steps, guidance and interval, the files), runs the guided ONNX
step with onnxruntime and integrates it from noise to image, so the PNG equals `tinycats sample
--onnx onnx/generator.onnx --breed NAME --seed N` image 0, pixel for pixel. The initial noise and
the solvers above are tinycats' own (core/noise.py, core/solvers.py), copied in when the repo was
staged (hub/stage.py), not written again.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from tinycats.core.noise import initial_noise
from tinycats.core.solvers import SOLVERS


def load_session(folder: Path, meta: dict, precision: str):
    """An onnxruntime session of the sidecar's `precision` file in `folder`."""
    import onnxruntime as ort

    return ort.InferenceSession(str(folder / meta["files"][precision]["path"]), providers=["CPUExecutionProvider"])


def generate(meta: dict, session, label: int, seed: int, sampler: str, steps: int, cfg: float, interval) -> np.ndarray:
    """One image, uint8 HWC, from the noise of (seed, 0)."""
    c, s = int(meta["channels"]), int(meta["image_size"])
    labels = np.asarray([label], dtype=np.int64)
    guide, plain = np.full(1, cfg, dtype=np.float32), np.ones(1, dtype=np.float32)

    def velocity(x: np.ndarray, t: float) -> np.ndarray:
        scale = guide if interval[0] <= t <= interval[1] else plain  # guidance happens in the graph
        feed = {"x": x, "t": np.full(1, t, dtype=np.float32), "label": labels, "cfg_scale": scale}
        return session.run(None, feed)[0]

    x = SOLVERS[sampler](velocity, initial_noise(seed, [0], (c, s, s)), steps, float(meta.get("time_shift", 1.0)))
    return ((np.clip(x, -1, 1) + 1) * 127.5).round().astype(np.uint8)[0].transpose(1, 2, 0)


def main(argv: list[str] | None = None) -> int:
    here = Path(__file__).resolve().parent
    meta = json.loads((here / "generator.json").read_text())
    names = list(meta["class_names"])
    p = argparse.ArgumentParser(
        description="Draw one cat of a breed with this repo's ONNX generator (onnxruntime, numpy, Pillow)."
    )
    # every sampler setting defaults to what the model recommends (its sidecar)
    p.add_argument("--breed", required=True, help=f"one of: {', '.join(names)}")
    p.add_argument("--seed", type=int, default=0, help="the noise seed (default: 0)")
    p.add_argument("--output", required=True, help="the PNG to write")
    p.add_argument("--sampler", choices=sorted(SOLVERS), default=meta["recommended_sampler"])
    p.add_argument("--steps", type=int, default=meta["recommended_steps"])
    p.add_argument("--cfg-scale", type=float, default=meta["recommended_cfg_scale"])
    p.add_argument("--guidance-interval", type=float, nargs=2, default=meta["recommended_guidance_interval"])
    p.add_argument("--precision", choices=sorted(meta["files"]), default="fp32")
    args = p.parse_args(argv)
    wanted = args.breed.lower().replace(" ", "_")
    matches = [i for i, name in enumerate(names) if name.lower() == wanted]
    if not matches:
        p.error(f"unknown breed {args.breed!r}; this model has: {', '.join(names)}")
    session = load_session(here, meta, args.precision)
    image = generate(meta, session, matches[0], args.seed, args.sampler, args.steps, args.cfg_scale, args.guidance_interval)
    from PIL import Image

    Image.fromarray(image).save(args.output)
    print(f"wrote {args.output}: {names[matches[0]]}, seed {args.seed}, {args.sampler} {args.steps} steps, cfg {args.cfg_scale}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
