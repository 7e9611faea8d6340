"""`tinycats evaluate` end to end on toy cats: a tiny trained checkpoint, a breed classifier trained
here, and a random-weight Inception-v3 that runs torch-fidelity's real code path."""

from __future__ import annotations

import hashlib
import json
import math
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from tinycats import checkpoint
from tinycats.breeds import CLASS_NAMES
from tinycats.cli import main
from tinycats.core.model import TinyDiT
from tinycats.data.synth import write_dataset
from tinycats.evaluate import report
from tinycats.evaluate.classifier import ClassifierSettings, train_from_folder
from tinycats.evaluate.run import METRIC_KEYS, EvalSettings, evaluate
from tinycats.evaluate.seams import seam_score
from tinycats.training.loop import train

from conftest import tiny_config

NAMES = list(CLASS_NAMES)
INCEPTION_KEYS = ("fid", "kid_mean", "kid_std", "is_mean", "is_std", "precision", "recall")


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> SimpleNamespace:
    """Toy cats at 16 px (40 train / 2 test per class), a TinyDiT trained for 4 steps (its run
    folder has checkpoints/ and outputs/metrics.jsonl), and a classifier trained on the same data."""
    root = tmp_path_factory.mktemp("evaluate")
    data = root / "cats"
    write_dataset(data, per_class=40, test_per_class=2, image_size=16, seed=0, progress=False)
    run = root / "run"
    result = train(tiny_config(steps=4, log_interval=1), data, run / "checkpoints", run / "outputs", device="cpu", progress=False)
    train_from_folder(data, ClassifierSettings(image_size=16, epochs=8, batch_size=32, device="cpu")).save(root / "judge.pt")
    return SimpleNamespace(data=data, ema=result.ema_checkpoint, classifier=root / "judge.pt")


@pytest.fixture(scope="module")
def random_inception(tmp_path_factory) -> Path:
    """A weights file for torch-fidelity's own FeatureExtractorInceptionV3, randomly initialised.

    torchvision's inception_v3 with 1008 classes and no auxiliary head has exactly the parameter
    names of the standard FID weights, so its random state dict loads strictly into the real
    extractor. Through ~95 layers random weights make activations vanish or explode, so the
    BatchNorm statistics are then calibrated on one batch (train mode, cumulative average): the
    features come out of order 1. The evaluation runs the production path unchanged: the same
    extractor class, resize, layers and torch-fidelity metrics, with only this file differing.
    """
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
    from torchvision.models import inception_v3

    path = tmp_path_factory.mktemp("inception") / "random-inception.pth"
    torch.manual_seed(0)
    torch.save(inception_v3(weights=None, aux_logits=False, num_classes=1008, init_weights=False).state_dict(), path)
    net = FeatureExtractorInceptionV3("inception-v3-compat", ["2048"], feature_extractor_weights_path=str(path))
    for bn in (m for m in net.modules() if isinstance(m, nn.BatchNorm2d)):
        bn.reset_running_stats()
        bn.momentum = None
    net.train()
    with torch.no_grad():
        net(torch.randint(0, 256, (4, 3, 16, 16), dtype=torch.uint8))
    torch.save(net.state_dict(), path)
    return path


def settings(world, tmp_path: Path, **changes) -> EvalSettings:
    base = dict(checkpoint=str(world.ema), real_dir=str(world.data), device="cpu", steps=2, report_path=str(tmp_path / "r.json"))
    return EvalSettings(**{**base, **changes})


def test_evaluate_end_to_end_through_the_cli(world, random_inception, tmp_path, capsys):
    out = tmp_path / "reports" / "evaluation_report.json"
    metrics_flags = ["--compute-fid", "--compute-kid", "--compute-is", "--compute-precision-recall", "--breed-accuracy"]
    args = ["evaluate", "--checkpoint", str(world.ema), "--real-dir", str(world.data), "--generate-samples"]
    args += ["--num-samples", "1", "--all-breeds", *metrics_flags, "--classifier", str(world.classifier)]
    args += ["--inception-weights", str(random_inception), "--steps", "2", "--device", "cpu", "--report-path", str(out)]
    assert main(args) == 0
    assert "fid" in capsys.readouterr().out
    r = json.loads(out.read_text())

    assert all(r["metrics"][k] is not None and math.isfinite(r["metrics"][k]) for k in METRIC_KEYS)
    assert r["skipped"] == {} and r["metrics"]["fid"] >= 0
    assert r["metrics"]["real_breed_accuracy"] > 0.6  # the judge is sound, so its verdicts mean something
    assert (r["data"]["n_real"], r["data"]["n_generated"], r["data"]["n_train"]) == (26, 13, 520)
    assert r["data"]["real_dir"] == str(world.data / "test")
    inc = r["inception"]
    assert (inc["kid_subset_size"], inc["isc_splits"], inc["standard_weights"]) == (13, 10, False)
    assert inc["sha256"] == hashlib.sha256(random_inception.read_bytes()).hexdigest()
    assert any("2048" in w for w in r["warnings"]) and any("not the standard" in w for w in r["warnings"])
    digest = hashlib.sha256(world.ema.read_bytes()).hexdigest()
    weights = checkpoint.weights_sha256(checkpoint.load(world.ema)["model"])
    assert r["checkpoint"] == {"path": str(world.ema), "sha256": digest, "step": 4, "weights_sha256": weights}
    assert r["sampler"]["steps"] == 2 and r["sampler"]["seed"] == 0
    assert r["model_config"]["preset"] == "tinydit-test"
    assert {"torch", "torchvision", "torch-fidelity", "tinycats"} <= set(r["versions"])
    assert [row["n_generated"] for row in r["per_breed"]] == [1] * 13 and [row["n_real"] for row in r["per_breed"]] == [2] * 13

    samples = out.parent / "evaluation_report_samples"
    assert all((samples / NAMES[i] / f"{NAMES[i]}_{i}.png").is_file() for i in range(13))  # image i: class i mod 13
    for picture in ("overview", "memorisation", "loss"):
        assert (out.parent / r["pictures"][picture]).is_file()
    md = out.with_suffix(".md").read_text()
    assert "evaluation_report_overview.png" in md and "evaluation_report_loss.png" in md and "FID" in md

    # Read the PNGs back, classifier metrics only, against the first report as the baseline.
    again = tmp_path / "again.json"
    args = ["evaluate", "--checkpoint", str(world.ema), "--real-dir", str(world.data / "test"), "--fake-dir", str(samples)]
    args += ["--breed-accuracy", "--classifier", str(world.classifier), "--device", "cpu"]
    assert main([*args, "--baseline", str(out), "--report-path", str(again)]) == 0
    a = json.loads(again.read_text())
    for key in ("breed_accuracy", "fd_classifier", "fd_classifier_train_vs_test", "memorised_fraction"):
        assert a["metrics"][key] == pytest.approx(r["metrics"][key], rel=1e-9, abs=1e-12)
    assert a["metrics"]["fid"] is None and "fid" not in a["skipped"] and a["inception"] is None  # not asked for
    assert a["sampler"] is None and a["data"]["generated_here"] is False
    changes = a["baseline"]["changes"]
    assert "fid" not in changes and changes["fd_classifier"]["change_pct"] == 0


@pytest.mark.parametrize("weights", ["initial", "random"])
def test_an_untrained_generator_scores_near_chance(world, tmp_path, weights):
    cfg = tiny_config()
    untrained = TinyDiT(cfg.model)
    if weights == "random":  # not only adaLN-Zero's constant output: every weight random
        torch.manual_seed(0)
        for p in untrained.parameters():
            nn.init.normal_(p, std=0.2)
    state = {"format": checkpoint.EMA_FORMAT, "step": 0, "model": untrained.state_dict(), "config": cfg.to_dict()}
    path = checkpoint.save_atomic(state, tmp_path / "dit_step_0_ema.pt")
    r = evaluate(
        settings(world, tmp_path, checkpoint=str(path), generate_samples=True, num_samples=39, classifier=str(world.classifier))
    )
    m = r["metrics"]
    assert m["real_breed_accuracy"] > 0.6  # first: the judge itself is far above chance (1/13)
    assert m["breed_accuracy"] < 0.25
    assert m["fd_classifier"] > 2 * m["fd_classifier_train_vs_test"]


def test_without_inception_weights_inception_metrics_are_skipped_with_the_reason(world, tmp_path):
    absent = tmp_path / "absent.pth"
    r = evaluate(
        settings(
            world,
            tmp_path,
            generate_samples=True,
            num_samples=13,
            classifier=str(world.classifier),
            inception_weights=str(absent),
        )
    )
    for key in INCEPTION_KEYS:
        assert r["metrics"][key] is None and str(absent) in r["skipped"][key]
    assert r["metrics"]["breed_accuracy"] is not None and r["metrics"]["memorised_fraction"] is not None
    assert "Not computed" in Path(tmp_path / "r.md").read_text()


def test_asking_for_what_cannot_be_computed_fails_before_sampling(world, tmp_path, capsys):
    base = ["evaluate", "--checkpoint", str(world.ema), "--real-dir", str(world.data), "--generate-samples"]
    base += ["--report-path", str(tmp_path / "r.json"), "--device", "cpu"]
    assert main([*base, "--compute-fid", "--inception-weights", str(tmp_path / "absent.pth")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "absent.pth" in err and "https://" in err
    assert main([*base, "--breed-accuracy"]) == 2
    assert "--classifier" in capsys.readouterr().err
    assert not (tmp_path / "r_samples").exists()


def test_the_memorisation_check_flags_copies_of_training_images(world, tmp_path):
    copies = tmp_path / "copies"
    for name in NAMES:
        (copies / name).mkdir(parents=True)
        for image in sorted((world.data / "train" / name).iterdir())[:3]:
            shutil.copy(image, copies / name / image.name)
    clf = str(world.classifier)
    r = evaluate(settings(world, tmp_path, fake_dir=str(copies), classifier=clf, metrics=("breed_accuracy",)))
    assert r["metrics"]["memorised_fraction"] == 1.0
    assert r["memorisation"]["fraction_generated_below_median_test"] == 1.0
    assert r["memorisation"]["closest"][0]["distance"] == pytest.approx(0, abs=1e-6)

    # Real test images as the "generated" set: no copying, and the same distances as the reference.
    r = evaluate(settings(world, tmp_path, fake_dir=str(world.data / "test"), classifier=clf, metrics=("breed_accuracy",)))
    m = r["metrics"]
    assert m["memorised_fraction"] == r["memorisation"]["fraction_test_below"] < 0.1
    assert r["memorisation"]["fraction_generated_below_median_test"] == pytest.approx(0.5, abs=0.1)
    assert m["fd_classifier"] == pytest.approx(0, abs=1e-6) and m["breed_accuracy"] == m["real_breed_accuracy"]
    # every real image lies in its own k-NN ball at distance 0: the set covers itself both ways
    assert m["classifier_precision"] == m["classifier_recall"] == 1.0
    assert m["sharpness_ratio"] == pytest.approx(1.0) and list(r["sharpness_per_breed"].values()) == [pytest.approx(1.0)] * 13


def test_num_samples_is_a_total_and_more_samples_keep_the_first_ones(world, tmp_path):
    quiet = dict(generate_samples=True, steps=1, inception_weights=str(tmp_path / "absent.pth"))
    five = evaluate(settings(world, tmp_path, num_samples=5, fake_dir=str(tmp_path / "five"), **quiet))
    seven = evaluate(settings(world, tmp_path, num_samples=7, fake_dir=str(tmp_path / "seven"), **quiet))
    assert (five["data"]["n_generated"], seven["data"]["n_generated"]) == (5, 7)
    for i in range(5):
        name = f"{NAMES[i]}/{NAMES[i]}_{i}.png"
        assert (tmp_path / "five" / name).read_bytes() == (tmp_path / "seven" / name).read_bytes()
    seams = ("seam_ratio", "real_seam_ratio", "sharpness_ratio")  # the measures that need no network: always there
    assert all(v is None for k, v in five["metrics"].items() if k not in seams)  # the rest skipped, none invented
    assert set(five["skipped"]) == set(METRIC_KEYS) - set(seams)
    pictures = sorted((tmp_path / "five").glob("*/*.png"))
    generated = torch.stack([torch.from_numpy(np.array(Image.open(p).convert("RGB"))).permute(2, 0, 1) for p in pictures])
    assert five["metrics"]["seam_ratio"] == pytest.approx(
        seam_score(generated, checkpoint.run_config(checkpoint.load(world.ema)).model.patch_size).ratio, rel=1e-6
    )
    assert five["metrics"]["real_seam_ratio"] > 0


def test_the_baseline_comparison_knows_which_way_is_better():
    new = {"fid": 10.0, "precision": 0.5, "kid_std": 1.0, "recall": None, "breed_accuracy": 0.5}
    old = {"metrics": {"fid": 20.0, "precision": 0.6, "kid_std": 2.0, "recall": 0.3, "breed_accuracy": 0.0}}
    changes = report.compare(new, old, "old.json")["changes"]
    assert changes["fid"] == {"old": 20.0, "new": 10.0, "change_pct": -50.0, "improved": True}
    assert changes["precision"]["change_pct"] == pytest.approx(-100 / 6) and changes["precision"]["improved"] is False
    assert changes["kid_std"]["improved"] is None and "recall" not in changes
    assert changes["breed_accuracy"]["change_pct"] is None and changes["breed_accuracy"]["improved"] is True


def test_the_loss_curve_takes_the_latest_line_for_a_step(tmp_path):
    lines = [{"step": s, "loss": 1.0 / s} for s in (1, 2, 3, 4)] + [{"step": 3, "loss": 9.0}, {"step": 5, "lr": 0.1}]
    jsonl = tmp_path / "outputs" / "metrics.jsonl"
    jsonl.parent.mkdir()
    jsonl.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    assert report.read_losses(jsonl) == {1: 1.0, 2: 0.5, 3: 9.0, 4: 0.25}
    ckpt = str(tmp_path / "checkpoints" / "dit_step_4_ema.pt")  # found through <checkpoint dir>/../outputs
    plot, why = report.loss_plot(ckpt, None, tmp_path / "loss.png")
    assert why is None and plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    jsonl.write_text("")
    assert report.loss_plot(ckpt, str(jsonl.parent), tmp_path / "none.png") == (
        None,
        f"{jsonl} holds no training losses: no loss plot",
    )
    assert report.loss_plot(ckpt, str(tmp_path / "elsewhere"), tmp_path / "none.png")[0] is None
