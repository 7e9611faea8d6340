"""Recipe study on toy cats at a fixed CPU budget: prediction target x vs v, logit-normal vs
uniform training times, Euler vs Heun at several step counts, the guidance scale, and the patch
embedding / decoder variants (the seam study), judged by breed accuracy (a small CNN trained on the
real toy cats), FD-classifier (Fréchet distance of that CNN's features, generated vs real test
images) and the seam ratio (evaluate/seams.py; the real test images' figure is printed first).

    python benchmarks/recipe_study.py --out study/ [--steps N] [--seeds 0 1] [--variants x-logit v-uniform ...]
        [--image-size 64 --patch-size 8]

Every variant trains the cpu-demo preset for the same number of steps (same data, batch, model,
learning rate) with DiT's linear patch embedding and decoder, changing only what it names;
x-logit-s trains the larger tinydit-s for the steps that the same CPU time buys. --image-size /
--patch-size render the toy cats and build the network at another geometry (the geometry study:
one --out folder per geometry, since the data and the judge are rendered and trained at that size).
Results are appended to study/results.json as they come (a rerun skips what is done) and printed
as Markdown tables; each run also leaves grid.png, a row per breed of its samples at full size.
The judge looks at --judge-size pixels (default 32, as the demo's: its cost grows with the pixels,
8 epochs take ~10 minutes at 64 px and would take longer than the training they judge at 128 px;
one size also keeps geometries comparable). The seam ratio is always measured at full size.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import torch

from tinycats.api import load_generator
from tinycats.config import SampleConfig, load_config
from tinycats.core.sampling import sample
from tinycats.data import augment
from tinycats.data.folder import build_cache, scan
from tinycats.data.synth import write_dataset
from tinycats.demo import JUDGE_SIZE
from tinycats.evaluate import classifier as clf_lib
from tinycats.evaluate.metrics import feature_frechet_distance, feature_precision_recall
from tinycats.evaluate.seams import seam_score
from tinycats.pictures import labelled_grid, to_pil
from tinycats.training.loop import train

X_LOGIT = {"prediction": "x", "time_sampling": "logit-normal"}
# The demo's network as cpu-demo trains it (conv decoder, bf16, compiled), and the demo's recipe on top.
DEMO = {**X_LOGIT, "decoder": "conv", "precision": "bf16", "compile": True}
RECIPE = {**DEMO, "activation": "swiglu", "lr": 4e-3}
VARIANTS = {
    "x-logit": X_LOGIT,
    "x-uniform": {"prediction": "x", "time_sampling": "uniform"},
    "v-logit": {"prediction": "v", "time_sampling": "logit-normal"},
    "v-uniform": {"prediction": "v", "time_sampling": "uniform"},
    # The same CPU time on a 5.8x larger network, from the Xeon's 154 vs 578 img/s: 4,000 x 154 / 578 ~ 1,070 steps.
    "x-logit-s": {**X_LOGIT, "preset": "tinydit-s", "steps": 1070},
    # The seam study (core/patches.py): patch embedding and decoder variants, all else as x-logit.
    "x-logit-conv": {**X_LOGIT, "decoder": "conv"},
    "x-logit-pixel": {**X_LOGIT, "decoder": "pixel"},
    "x-logit-convembed": {**X_LOGIT, "embed": "conv"},
    "x-logit-convembed-pixel": {**X_LOGIT, "embed": "conv", "decoder": "pixel"},
    "x-logit-pixel8": {**X_LOGIT, "decoder": "pixel", "pixel_features": 8},
    "x-logit-bottleneck": {**X_LOGIT, "embed": "bottleneck"},
    # The resolution time shift (core/solvers.shift_time): alpha = sqrt(pixels / 32 px's) at 64 tokens, 4 at 128 px.
    "x-logit-conv-shift2": {**X_LOGIT, "decoder": "conv", "time_shift": 2.0},
    "x-logit-conv-shift4": {**X_LOGIT, "decoder": "conv", "time_shift": 4.0},
    # The precision study (training/precision.py): the demo's own network both ways, compiled as the demo trains.
    "demo-fp32": {**DEMO, "precision": "fp32"},
    "demo-bf16": DEMO,
    # The learning rate at the demo's budget: demo-bf16 with one setting changed.
    "demo-lr2e-3": {**DEMO, "lr": 2e-3},
    "demo-lr4e-3": {**DEMO, "lr": 4e-3},
    # The block (core/model.py) at a higher learning rate: QK-norm (SD3, JiT), SwiGLU (LightningDiT).
    "demo-qknorm-lr4e-3": {**DEMO, "qk_norm": True, "lr": 4e-3},
    "demo-qknorm-lr8e-3": {**DEMO, "qk_norm": True, "lr": 8e-3},
    "demo-swiglu-lr4e-3": RECIPE,
    # Averaging and optimiser on the demo's recipe: EDM2's power-function EMA (core/ema.py) instead of 0.999 with
    # DiT's warm-up; AdamW beta2 0.95 (a shorter memory of gradient scale).
    "demo-swiglu-lr4e-3-phema0.1": {**RECIPE, "ema_sigma_rel": 0.1},
    "demo-swiglu-lr4e-3-beta2-0.95": {**RECIPE, "adam_betas": [0.9, 0.95]},
    # The demo's recipe at the record's geometry (--image-size 128 --patch-size 16): with the resolution shift, with
    # the pixel decoder, and each for ~15 minutes of AMX Xeon training (item 4 of the quality work allows 30).
    "demo-swiglu-lr4e-3-shift4": {**RECIPE, "time_shift": 4.0},
    "demo-swiglu-lr4e-3-shift4-long": {**RECIPE, "time_shift": 4.0, "steps": 7000},
    "demo-swiglu-lr4e-3-pixel8": {**RECIPE, "decoder": "pixel", "pixel_features": 8},
    "demo-swiglu-lr4e-3-pixel8-long": {**RECIPE, "decoder": "pixel", "pixel_features": 8, "steps": 7000},
}
MODEL_KEYS = ("preset", "embed", "decoder", "pixel_features", "time_shift", "qk_norm", "activation")
TRAIN_KEYS = ("steps", "precision", "compile", "lr", "ema_sigma_rel", "adam_betas")
# What a variant does not name is what it was defined with, whatever the cpu-demo preset now uses,
# so a variant means the same run in every study: tinydit-xs at 32 px unless --image-size says
# otherwise (cpu-demo moved to 64 px later), DiT's patches (cpu-demo took the conv decoder, then
# the pixel decoder), the exact GELU and lr 1e-3 (cpu-demo took SwiGLU and 4e-3 after the lr /
# block study).
PINNED_MODEL = {"preset": "tinydit-xs", "embed": "linear", "decoder": "linear", "activation": "gelu", "pixel_features": 16}
PINNED_TRAIN = {"lr": 1e-3}
DEFAULT_SAMPLER = ("euler", 25, 2.0)
SAMPLERS = [("euler", n, 2.0) for n in (10, 25, 50)] + [("heun", n, 2.0) for n in (5, 13, 25)]
GUIDANCE = [("euler", 25, s) for s in (1.0, 1.5, 2.0, 3.0, 4.0)]
# The guidance interval (Kynkäänniemi et al. 2024: no guidance at the noisiest times) with the demo's sampler.
INTERVALS = [("euler", 10, s, (lo, 1.0)) for s in (2.0, 3.0, 4.0) for lo in (0.0, 0.2, 0.35)]
FULL = (0.0, 1.0)


def judge(model, clf: clf_lib.Classifier, real_features: torch.Tensor, setting: tuple, per_class: int, seed: int) -> dict:
    sampler, steps, cfg_scale, interval = unpack(setting)
    labels = [c for c in range(model.config.num_classes) for _ in range(per_class)]
    images = sample(model, labels, SampleConfig(sampler, steps, cfg_scale, interval), seed=seed, batch_size=128)
    acc, _ = clf_lib.accuracy(clf, images, torch.tensor(labels))
    features = clf.features(images)
    precision, recall = feature_precision_recall(features, real_features)
    return {
        "breed_accuracy": acc,
        "fd_classifier": feature_frechet_distance(features, real_features),
        "classifier_precision": precision,
        "classifier_recall": recall,
        "seam_ratio": seam_score(images, model.config.patch_size).ratio,
    }


def unpack(setting: tuple) -> tuple[str, int, float, tuple[float, float]]:
    """(sampler, steps, guidance[, interval]): a setting without an interval guides at every step."""
    sampler, steps, cfg_scale, *interval = setting
    return sampler, steps, cfg_scale, tuple(interval[0]) if interval else FULL


def write_grid(model, path: Path, per_class: int = 8) -> None:
    """A row per breed, `per_class` noise seeds, at full size, with the study's default sampler."""
    classes = range(model.config.num_classes)
    images = to_pil(sample(model, [c for c in classes for _ in range(per_class)], SampleConfig(*DEFAULT_SAMPLER), seed=7))
    rows = [(model.config.class_names[c], images[c * per_class : (c + 1) * per_class]) for c in classes]
    labelled_grid(rows, cell=max(64, model.config.image_size)).save(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("study"), help="working folder (default: study)")
    parser.add_argument(
        "--steps", type=int, default=4000, help="training steps per variant (default: 4000, the budget the study was designed at)"
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="training seeds (default: 0)")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS), help="variants to train")
    parser.add_argument(
        "--grid-variant", default="x-logit", choices=[*VARIANTS, "none"], help="variant for the sampler grids (none: skip them)"
    )
    parser.add_argument("--per-class", type=int, default=20, help="generated images per class per judgement (default: 20)")
    parser.add_argument("--image-size", type=int, help="render and train at this resolution (default: the preset's)")
    parser.add_argument("--patch-size", type=int, help="patch size at that resolution (default: the preset's)")
    parser.add_argument(
        "--judge-size", type=int, default=JUDGE_SIZE, help=f"resolution the judge CNN sees (default: {JUDGE_SIZE}, the demo's)"
    )
    args = parser.parse_args()

    geometry = {"image_size": args.image_size, "patch_size": args.patch_size}
    base = load_config(
        "cpu-demo",
        {
            "model": {"preset": "tinydit-xs", **geometry},
            "train": {"steps": args.steps, "checkpoint_interval": 0, "sample_interval": 0},
        },
    )
    data = args.out / "data"
    if not (data / "test").is_dir():
        write_dataset(data, 300, 40, base.model.image_size, seed=0)
    clf_path = args.out / "classifier.pt"
    if not clf_path.is_file():
        settings = clf_lib.ClassifierSettings(backbone="small-cnn", epochs=8, image_size=args.judge_size)
        clf_lib.train_from_folder(str(data), settings).save(clf_path)
    clf = clf_lib.load(clf_path)
    test = build_cache(scan(data, "test"), base.model.image_size, progress=False)
    real_features = clf.features(augment.to_float(test.images))
    real_seams = seam_score(test.images, base.model.patch_size).ratio
    print(f"seam ratio of the real test images at patch {base.model.patch_size}: {real_seams:.3f}")
    results_path = args.out / "results.json"
    results = json.loads(results_path.read_text()) if results_path.is_file() else []

    def record(kind: str, variant: str, seed: int, setting: tuple, run_dir: Path) -> None:
        sampler, steps, cfg_scale, interval = unpack(setting)
        key = {"kind": kind, "variant": variant, "seed": seed, "sampler": sampler, "steps": steps, "cfg_scale": cfg_scale}
        key["guidance_interval"] = list(interval)
        if any(all(r.get(k, list(FULL)) == v for k, v in key.items()) for r in results):  # older rows: no interval
            return
        model = load_generator(next(run_dir.glob("dit_step_*_ema.pt")), device="cpu")
        row = {**key, **judge(model, clf, real_features, setting, args.per_class, seed=1000 + seed)}
        row["train_seconds"] = json.loads((run_dir / "result.json").read_text())["seconds"]
        results.append(row)
        results_path.write_text(json.dumps(results, indent=1))
        print(json.dumps(row), flush=True)

    for variant in args.variants:
        for seed in args.seeds:
            run_dir = args.out / f"{variant}-seed{seed}"
            if not (run_dir / "result.json").is_file():
                v = VARIANTS[variant]
                named = {k: v[k] for k in MODEL_KEYS if k in v}
                train_named = {"steps": base.train.steps, **PINNED_TRAIN, **{k: v[k] for k in TRAIN_KEYS if k in v}}
                cfg = load_config(
                    "cpu-demo",
                    {
                        "model": {"prediction": v["prediction"], **geometry, **PINNED_MODEL, **named},
                        "train": {**train_named, "time_sampling": v["time_sampling"], "seed": seed,
                                  "checkpoint_interval": 0, "sample_interval": 0},
                    },
                )  # fmt: skip
                result = train(cfg, data, run_dir, run_dir / "logs", progress=False)
                (run_dir / "result.json").write_text(json.dumps({"seconds": result.seconds, "loss": result.loss}))
            if not (run_dir / "grid.png").is_file():
                write_grid(load_generator(next(run_dir.glob("dit_step_*_ema.pt")), device="cpu"), run_dir / "grid.png")
            for setting in (DEFAULT_SAMPLER, ("euler", 25, 1.0)):
                record("objective", variant, seed, setting, run_dir)
    for seed in args.seeds if args.grid_variant != "none" else []:
        for setting in SAMPLERS + GUIDANCE + INTERVALS:
            record("grid", args.grid_variant, seed, setting, args.out / f"{args.grid_variant}-seed{seed}")
    print_tables(results)


def print_tables(results: list[dict]) -> None:
    def summary(rows: list[dict], key: str) -> str:
        if not all(key in r for r in rows):  # rows from before the figure was measured
            return "—"
        values = [r[key] for r in rows]
        spread = f" ± {statistics.stdev(values):.3g}" if len(values) > 1 else ""
        return f"{statistics.mean(values):.3g}{spread}"

    groups: dict[tuple, list[dict]] = {}
    for r in results:
        interval = tuple(r.get("guidance_interval", FULL))
        groups.setdefault((r["kind"], r["variant"], r["sampler"], r["steps"], r["cfg_scale"], interval), []).append(r)
    figures = ("breed_accuracy", "fd_classifier", "classifier_precision", "classifier_recall", "seam_ratio", "train_seconds")
    print("\n| kind | variant | sampler | steps | guidance | interval | seeds | breed accuracy | FD-classifier | precision | "
          "recall | seam ratio | train s |")  # fmt: skip
    print("|---" * 13 + "|")
    for (kind, variant, sampler, steps, cfg, interval), rows in sorted(groups.items()):
        cells = " | ".join(summary(rows, key) for key in figures)
        print(f"| {kind} | {variant} | {sampler} | {steps} | {cfg} | {interval[0]:g}-{interval[1]:g} | {len(rows)} | {cells} |")


if __name__ == "__main__":
    main()
