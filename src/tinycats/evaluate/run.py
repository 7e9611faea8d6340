"""`tinycats evaluate`: a checkpoint against real images, measured every way we trust.

    settings = EvalSettings(checkpoint="checkpoints/dit_step_400000_ema.pt", real_dir="data/cats/test",
                            generate_samples=True, num_samples=500, classifier="classifier.pt")
    report = evaluate(settings)   # also writes evaluation_report.json / .md and the pictures

Generated image i is of class i mod C and starts from the noise of (seed, i): the set is
class-balanced, every image has its own noise (FID assumes independent samples), and asking for
more images keeps the first ones. Real images go through the training pipeline (centre crop,
resize to the model's resolution); generated ones are read back at that resolution; both then
reach torch-fidelity as uint8 tensors of the same size.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from tinycats.checkpoint import sha256
from tinycats.core.sampling import sample
from tinycats.errors import UsageError
from tinycats.evaluate import classifier as classifier_lib
from tinycats.evaluate import memorization, metrics, report, sharpness
from tinycats.evaluate.samples import ImageSet, overview_grid, read_folder, read_generated, write_generated
from tinycats.evaluate.seams import seam_score
from tinycats.generator import load_generator
from tinycats.runtime import pick_device

CLASSIFIER_METRICS = ("breed_accuracy",)
CLASSIFIER_KEYS = (
    "breed_accuracy", "real_breed_accuracy", "fd_classifier", "fd_classifier_train_vs_test", "memorised_fraction",
    "classifier_precision", "classifier_recall", "classifier_precision_train_vs_test", "classifier_recall_train_vs_test",
)  # fmt: skip
ALL_METRICS = (*metrics.INCEPTION_METRICS, *CLASSIFIER_METRICS)


@dataclass
class EvalSettings:
    checkpoint: str
    real_dir: str  # an ImageFolder split (data/cats/test) or a data set root (data/cats: its test split)
    generate_samples: bool = False
    num_samples: int = 500  # in total (class-balanced), or per breed with per_breed
    per_breed: bool = False
    fake_dir: str | None = None  # default: <report stem>_samples next to the report
    metrics: tuple[str, ...] | None = None  # subset of ALL_METRICS; None: everything possible, the rest skipped with a reason
    classifier: str | None = None  # also gives FD-classifier and the memorisation check
    train_dir: str | None = None  # default: the real split's sibling train/
    sampler: str | None = None  # None: what the checkpoint recommends
    steps: int | None = None
    cfg_scale: float | None = None
    guidance_interval: tuple[float, float] | None = None
    seed: int = 0
    batch_size: int = 64
    device: str = "auto"
    report_path: str = "evaluation_report.json"
    baseline: str | None = None
    inception_weights: str | None = None
    log_dir: str | None = None
    progress: bool = False

    def __post_init__(self) -> None:
        if self.metrics is not None:
            unknown = sorted(set(self.metrics) - set(ALL_METRICS))
            if unknown:
                raise UsageError(f"unknown metric {unknown[0]!r}; choose from {', '.join(ALL_METRICS)}")
        if self.num_samples < 1:
            raise UsageError("--num-samples must be at least 1")
        if "breed_accuracy" in (self.metrics or ()) and not self.classifier:
            raise UsageError(
                "--breed-accuracy needs a breed classifier: pass --classifier (train one with `tinycats train-classifier`)"
            )


METRIC_KEYS = (
    "fid", "kid_mean", "kid_std", "is_mean", "is_std", "precision", "recall",
    "fd_classifier", "fd_classifier_train_vs_test", "breed_accuracy", "real_breed_accuracy", "memorised_fraction",
    "classifier_precision", "classifier_recall", "classifier_precision_train_vs_test", "classifier_recall_train_vs_test",
    "seam_ratio", "real_seam_ratio", "sharpness_ratio",
)  # fmt: skip
_INCEPTION_KEYS = {"fid": ("fid",), "kid": ("kid_mean", "kid_std"), "is": ("is_mean", "is_std"), "prc": ("precision", "recall")}


@dataclass
class Findings:
    """What an evaluation found: every metric (None until computed), why some were not, warnings."""

    values: dict[str, float | None] = field(default_factory=lambda: dict.fromkeys(METRIC_KEYS))
    skipped: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    notes: dict[str, str] = field(default_factory=dict)

    def skip(self, keys: tuple[str, ...], reason: str) -> None:
        self.skipped.update(dict.fromkeys(keys, reason))

    def drop_non_finite(self) -> None:
        """A NaN or infinite value is not a measurement: null, with the reason."""
        for key, value in self.values.items():
            if value is not None and not math.isfinite(value):
                self.values[key] = None
                self.skip((key,), f"computed as {value}, which is not a number")


@dataclass
class Judgement:
    """What the breed classifier measured, beyond the metric values."""

    classifier: dict[str, Any]
    per_breed: list[dict[str, Any]]
    memorisation: dict[str, Any] | None = None
    data: dict[str, Any] = field(default_factory=dict)
    picture: str | None = None


def evaluate(s: EvalSettings) -> dict[str, Any]:
    """Run the evaluation, write the report files (JSON, Markdown, pictures), return the report."""
    started = time.perf_counter()
    timings: dict[str, float] = {}
    device = pick_device(s.device)
    report_path = Path(s.report_path)
    stem = report_path.with_suffix("")
    fake_dir = Path(s.fake_dir) if s.fake_dir else stem.parent / f"{stem.name}_samples"
    baseline = report.read_baseline(s.baseline) if s.baseline else None
    model = load_generator(s.checkpoint, device=str(device))
    names, size = list(model.config.class_names), model.config.image_size
    found = Findings()
    # Everything that can fail is checked before sampling: a missing file fails in a second, not an hour.
    wanted, weights = _inception_weights(s, found)
    clf = _load_classifier(s.classifier, names, device) if s.classifier else None

    clock = time.perf_counter()
    real_root = _real_split(Path(s.real_dir))
    real = read_folder(real_root, names, size)
    train = _training_images(s, real_root, names, size, found) if clf else None
    if not clf:
        found.skip(CLASSIFIER_KEYS, "no --classifier given (train one with `tinycats train-classifier DATA_DIR`)")
    timings["read_real_images"] = time.perf_counter() - clock

    clock = time.perf_counter()
    settings = None
    if s.generate_samples:
        settings = model.sample_config.override(
            sampler=s.sampler, steps=s.steps, cfg_scale=s.cfg_scale, guidance_interval=s.guidance_interval
        )
        count = s.num_samples * len(names) if s.per_breed else s.num_samples
        labels = [i % len(names) for i in range(count)]
        images = sample(model, labels, settings, seed=s.seed, batch_size=s.batch_size, progress=s.progress)
        fake = write_generated(images, labels, names, fake_dir)
        timings["sampling"] = time.perf_counter() - clock
    else:
        fake = read_generated(fake_dir, names, size)
        if fake.ignored:
            found.notes["fake_dir"] = f"ignored folders that are not classes of the model: {', '.join(fake.ignored)}"
        timings["read_generated_images"] = time.perf_counter() - clock
    stem.parent.mkdir(parents=True, exist_ok=True)  # only now: a refused evaluation leaves no empty folder

    _seams(fake, real, model.config.patch_size, found)
    found.values["sharpness_ratio"] = sharpness.sharpness_ratio(fake.images, real.images)
    sharpness_per_breed = sharpness.per_class(fake.images, fake.labels, real.images, real.labels, names)
    clock = time.perf_counter()
    inception = _inception(s, wanted, weights, fake, real, device, found) if weights else None
    timings["inception_metrics"] = time.perf_counter() - clock

    clock = time.perf_counter()
    judged = _judge(s, clf, fake, real, train, found, stem) if clf else None
    timings["classifier_metrics"] = time.perf_counter() - clock

    loss, why = report.loss_plot(s.checkpoint, s.log_dir, stem.parent / f"{stem.name}_loss.png")
    if why:
        found.notes["loss"] = why
    pictures = {
        "overview": _save(overview_grid(fake), stem, "overview"),
        "memorisation": judged.picture if judged else None,
        "loss": loss.name if loss else None,
    }

    found.drop_non_finite()
    result: dict[str, Any] = {
        "format": report.FORMAT,
        "checkpoint": report.checkpoint_identity(s.checkpoint, model),
        "model_config": dataclasses.asdict(model.config),
        "sampler": {**dataclasses.asdict(settings), "seed": s.seed} if settings else None,
        "data": {
            "real_dir": str(real_root),
            "fake_dir": str(fake_dir),
            "n_real": len(real.labels),
            "n_generated": len(fake.labels),
            "image_size": size,
            "generated_here": s.generate_samples,
            **(judged.data if judged else {}),
        },
        "metrics": found.values,
        "skipped": {k: v for k, v in found.skipped.items() if found.values.get(k) is None},
        "warnings": found.warnings,
        "inception": inception,
        "classifier": judged.classifier if judged else None,
        "per_breed": judged.per_breed if judged else None,
        "sharpness_per_breed": sharpness_per_breed,
        "memorisation": judged.memorisation if judged else None,
        "pictures": pictures,
        "notes": found.notes,
        "versions": report.versions(),
        "timings_s": {k: round(v, 3) for k, v in timings.items()},
    }
    if baseline is not None:
        result["baseline"] = report.compare(found.values, baseline, str(s.baseline))
    result["wall_time_s"] = round(time.perf_counter() - started, 3)
    report.write(result, report_path)
    return result


def _seams(fake: ImageSet, real: ImageSet, patch_size: int, found: Findings) -> None:
    """The seam metric of both sets at the model's patch grid (see seams.py): a generated figure
    well above the real one is a visible grid."""
    for key, images in (("seam_ratio", fake.images), ("real_seam_ratio", real.images)):
        try:
            score = seam_score(images, patch_size)
        except ValueError as exc:  # patch 1, or images no larger than a patch
            found.skip((key,), str(exc))
            continue
        found.values[key] = score.ratio
        if score.flat:
            found.notes[key] = f"{score.flat} image(s) with no detail inside patches left out"


def _real_split(path: Path) -> Path:
    """data/cats -> data/cats/test; data/cats/test stays."""
    return path / "test" if (path / "test").is_dir() else path


def _inception_weights(s: EvalSettings, found: Findings) -> tuple[list[str], Path | None]:
    """The Inception metrics to compute and the weights file, checked before any sampling. Asked
    for by flag without the file: an error. Asked for implicitly (settings.metrics None): skipped,
    with the reason."""
    wanted = [m for m in metrics.INCEPTION_METRICS if s.metrics is None or m in s.metrics]
    if not wanted:
        return [], None
    try:
        weights = metrics.resolve_inception_weights(s.inception_weights)
    except metrics.InceptionUnavailable as exc:
        if s.metrics is not None:
            raise
        for m in wanted:
            found.skip(_INCEPTION_KEYS[m], str(exc))
        return [], None
    return wanted, weights


def _inception(
    s: EvalSettings, wanted: list[str], weights: Path, fake: ImageSet, real: ImageSet, device, found: Findings
) -> dict:
    """FID / KID / IS / precision-recall, and which weights produced them."""
    out = metrics.fidelity_metrics(fake.images, real.images, wanted, weights, device, s.batch_size, progress=s.progress)
    found.values.update(out["values"])
    found.warnings.extend(out["warnings"])
    digest = sha256(weights)
    standard = digest.startswith(metrics.standard_sha256_prefix())
    if not standard:
        found.warnings.append(
            f"Inception weights {weights} are not the standard FID weights (sha256 {digest[:8]}…): "
            "these Inception metrics are not comparable with published ones"
        )
    return {"weights": str(weights), "sha256": digest, "standard_weights": standard, **out["settings"]}


def _training_images(s: EvalSettings, real_root: Path, names: list[str], size: int, found: Findings) -> ImageSet | None:
    """The training split (for memorisation and the FD reference): --train-dir, else the real
    split's sibling train/. None, with the reason, when there is none to use."""
    root = Path(s.train_dir) if s.train_dir else real_root.parent / "train"
    needs = ("memorised_fraction", "fd_classifier_train_vs_test")
    needs += ("classifier_precision_train_vs_test", "classifier_recall_train_vs_test")
    if not root.is_dir():
        found.skip(needs, f"no training images at {root} (pass --train-dir)")
    elif root.resolve() == real_root.resolve():
        found.skip(needs, "--real-dir is the train split: nothing held out to compare with")
    else:
        return read_folder(root, names, size)
    return None


def _load_classifier(path: str, names: list[str], device: torch.device) -> classifier_lib.Classifier:
    clf = classifier_lib.load(path, device)
    missing = [n for n in names if n not in clf.class_names]
    if missing:
        raise UsageError(f"the classifier {path} does not know the model's class(es) {missing}: train it on the same data set")
    return clf


def _judge(
    s: EvalSettings,
    clf: classifier_lib.Classifier,
    fake: ImageSet,
    real: ImageSet,
    train: ImageSet | None,
    found: Findings,
    stem: Path,
) -> Judgement:
    """Everything the breed classifier measures: breed accuracy, FD-classifier, precision/recall on
    its features, memorisation; the real-vs-real references where the training images are known."""
    names = fake.names
    to_clf = torch.tensor([clf.class_names.index(n) for n in names])
    fake_y, real_y = to_clf[fake.labels], to_clf[real.labels]
    found.values["breed_accuracy"], fake_pred = classifier_lib.accuracy(clf, fake.images, fake_y)
    found.values["real_breed_accuracy"], real_pred = classifier_lib.accuracy(clf, real.images, real_y)
    fake_acc = classifier_lib.per_class_accuracy(fake_pred, fake_y, clf.class_names)
    real_acc = classifier_lib.per_class_accuracy(real_pred, real_y, clf.class_names)
    per_breed = [
        {
            "breed": n,
            "n_generated": int((fake.labels == i).sum()),
            "accuracy_generated": fake_acc.get(n),
            "n_real": int((real.labels == i).sum()),
            "accuracy_real": real_acc.get(n),
        }
        for i, n in enumerate(names)
    ]
    fake_f, real_f = clf.features(fake.images), clf.features(real.images)
    found.values["fd_classifier"] = metrics.feature_frechet_distance(real_f, fake_f)
    found.values["classifier_precision"], found.values["classifier_recall"] = metrics.feature_precision_recall(fake_f, real_f)
    info = {"path": str(s.classifier), "backbone": clf.backbone, "image_size": clf.image_size, "test_accuracy": clf.test_accuracy}
    judged = Judgement({**info, "trained": clf.info}, per_breed)
    if train is None:
        return judged
    train_f = clf.features(train.images)
    # As many training images as generated ones, so that both FDs carry the same small-sample bias.
    pick = torch.from_numpy(np.random.default_rng(s.seed).permutation(len(train_f))[: len(fake_f)])
    found.values["fd_classifier_train_vs_test"] = metrics.feature_frechet_distance(real_f, train_f[pick])
    reference = metrics.feature_precision_recall(train_f[pick], real_f)  # real train images in the generated role
    found.values["classifier_precision_train_vs_test"], found.values["classifier_recall_train_vs_test"] = reference
    mem = memorization.check(fake_f, real_f, train_f)
    found.values["memorised_fraction"] = mem["fraction_generated_below"]
    pairs = memorization.closest_pairs(mem)
    judged.memorisation = {k: v for k, v in mem.items() if not isinstance(v, np.ndarray)} | {
        "closest": [
            {"generated": str(fake.paths[g]), "train": str(train.paths[t]), "distance": d, "breed": names[fake.labels[g]]}
            for g, t, d in pairs
        ]
    }
    judged.data = {"train_dir": str(train.root), "n_train": len(train.labels)}
    grid = memorization.pairs_grid(pairs, fake.images, train.images, [names[y] for y in fake.labels])
    judged.picture = _save(grid, stem, "memorisation")
    return judged


def _save(picture: Image.Image, stem: Path, name: str) -> str:
    """Save beside the report as <stem>_<name>.png; the file name, for the Markdown report."""
    path = stem.parent / f"{stem.name}_{name}.png"
    picture.save(path)
    return path.name
