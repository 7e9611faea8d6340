"""`tinycats demo`: the main job end to end on the embedded toy-cats data, offline, on a CPU.

Render toy cats -> train the cpu-demo preset -> sample every breed -> summary.md. Running it again
reuses what is already there: an interrupted training run resumes, a finished one is not redone.
"""

from __future__ import annotations

import time
from pathlib import Path

from tinycats import checkpoint
from tinycats.api import load_generator
from tinycats.config import RunConfig, load_config
from tinycats.data.synth import write_dataset
from tinycats.gallery import write_gallery
from tinycats.model import count_parameters
from tinycats.train import train

TRAIN_PER_CLASS, TEST_PER_CLASS, SAMPLES_PER_BREED = 300, 40, 8


def run_demo(out: str | Path, config: str = "cpu-demo", steps: int | None = None, device: str = "cpu") -> Path:
    out = Path(out)
    cfg = load_config(config, {"train": {"steps": steps}})
    timings: dict[str, float] = {}

    start = time.perf_counter()
    data = out / "data"
    write_dataset(data, TRAIN_PER_CLASS, TEST_PER_CLASS, cfg.model.image_size, seed=cfg.train.seed)
    timings["render toy cats"] = time.perf_counter() - start

    start = time.perf_counter()
    ckpt_dir = out / "checkpoints"
    state = _reusable_state(ckpt_dir, cfg)
    if state is not None and state["step"] >= cfg.train.steps:
        ema_file = checkpoint.ema_path(ckpt_dir, state["step"])
        print(f"already trained: reusing {ema_file}")
    else:
        ema_file = train(cfg, data, ckpt_dir, out / "outputs", resume=state, device=device).ema_checkpoint
    timings["train"] = time.perf_counter() - start

    start = time.perf_counter()
    model = load_generator(ema_file, device=device)
    gallery = write_gallery(
        model, list(range(model.config.num_classes)), SAMPLES_PER_BREED, out / "samples", model.sample_config, progress=True
    )
    timings["sample"] = time.perf_counter() - start

    summary = out / "summary.md"
    summary.write_text(_summary(cfg, model, ema_file, gallery.overview.relative_to(out), timings))
    return summary


def _reusable_state(ckpt_dir: Path, cfg: RunConfig) -> dict | None:
    """The latest training state in `ckpt_dir` if it was made with these settings."""
    latest = checkpoint.latest(ckpt_dir)
    if latest is None:
        return None
    state = checkpoint.load(latest)
    saved = RunConfig.from_dict(state["config"])
    return state if (saved.model, saved.train) == (cfg.model, cfg.train) else None


def _summary(cfg: RunConfig, model, ema_file: Path, overview: Path, timings: dict[str, float]) -> str:
    s = model.sample_config
    rows = "\n".join(f"| {name} | {seconds:.0f} s |" for name, seconds in timings.items())
    return f"""# tinycats demo

Toy cats ({TRAIN_PER_CLASS} training images per class, {cfg.model.image_size} px) -> `{cfg.model.preset}`
({count_parameters(model) / 1e6:.2f}M parameters, prediction `{cfg.model.prediction}`), {cfg.train.steps} steps of
{cfg.train.batch_size} images -> {SAMPLES_PER_BREED} samples per breed with {s.sampler} ({s.steps} steps, guidance {s.cfg_scale}).

![samples, one row per breed]({overview})

| stage | wall time |
|---|---|
{rows}
| **total** | **{sum(timings.values()):.0f} s** |

Weights: `{ema_file}`. Sample again with
`tinycats sample --checkpoint {ema_file} --all-breeds --num-samples 16`.
"""
