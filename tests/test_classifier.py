"""The breed classifier: it learns toy cats, saves and loads exactly, and the CLI drives it."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tinycats.cli import main
from tinycats.data.augment import to_float
from tinycats.data.folder import build_cache, scan
from tinycats.data.synth import write_dataset
from tinycats.errors import CheckpointError
from tinycats.evaluate import classifier as clf_lib

SETTINGS = clf_lib.ClassifierSettings(image_size=16, epochs=8, batch_size=32, device="cpu")


@pytest.fixture(scope="module")
def toy(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("toy") / "cats"
    write_dataset(root, per_class=40, test_per_class=4, image_size=16, seed=0, progress=False)
    return root


@pytest.fixture(scope="module")
def trained(toy) -> clf_lib.Classifier:
    return clf_lib.train_from_folder(toy, SETTINGS)


def test_the_classifier_learns_the_breeds_far_above_chance(trained):
    assert len(trained.class_names) == 13
    assert trained.test_accuracy > 0.6  # chance is 1/13
    assert trained.info["test_images"] == 52 and len(trained.info["test_per_class"]) == 13


def test_save_and_load_give_the_same_predictions(trained, toy, tmp_path):
    test = build_cache(scan(toy, "test"), 16, progress=False)
    images = to_float(test.images)
    loaded = clf_lib.load(trained.save(tmp_path / "clf.pt"))
    assert loaded.test_accuracy == trained.test_accuracy and loaded.info == trained.info
    assert torch.equal(loaded.probabilities(images), trained.probabilities(images))
    assert torch.equal(loaded.features(images), trained.features(images))
    accuracy, predicted = clf_lib.accuracy(loaded, images, test.labels)
    assert accuracy == pytest.approx(trained.test_accuracy)
    assert clf_lib.per_class_accuracy(predicted, test.labels, loaded.class_names) == pytest.approx(trained.info["test_per_class"])


def test_training_depends_on_the_seed_only_and_leaves_the_global_rng_alone(toy):
    data = build_cache(scan(toy, "train"), 16, progress=False)
    images, labels = data.images[::4], data.labels[::4]
    one = clf_lib.ClassifierSettings(image_size=16, epochs=1, batch_size=32, device="cpu")
    state = torch.get_rng_state()
    a = clf_lib.train_classifier(images, labels, data.class_names, one).net.state_dict()
    assert torch.equal(torch.get_rng_state(), state)
    b = clf_lib.train_classifier(images, labels, data.class_names, one).net.state_dict()
    other = clf_lib.ClassifierSettings(image_size=16, epochs=1, batch_size=32, device="cpu", seed=1)
    c = clf_lib.train_classifier(images, labels, data.class_names, other).net.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_train_classifier_and_classify_through_the_cli(toy, tmp_path, capsys):
    out = tmp_path / "judge.pt"
    args = ["train-classifier", str(toy), "--epochs", "2", "--image-size", "16", "--batch-size", "32", "--device", "cpu"]
    assert main([*args, "--output", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "epoch 1/2" in printed and "epoch 2/2" in printed and "test accuracy" in printed
    saved = clf_lib.load(out)
    assert saved.test_accuracy is not None and saved.image_size == 16 and saved.info["epochs"] == 2

    images = [sorted((toy / "test" / breed).iterdir())[0] for breed in ("Siamese", "Bombay")]
    assert main(["classify", "--checkpoint", str(out), *map(str, images)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2
    for line, image in zip(lines, images):
        path, ranking = line.split(": ", 1)
        assert path == str(image)
        top = [(name, float(p)) for name, p in (item.rsplit(" ", 1) for item in ranking.split(", "))]
        assert len(top) == 3 and all(name in saved.class_names for name, _ in top)
        probabilities = [p for _, p in top]
        assert probabilities == sorted(probabilities, reverse=True) and sum(probabilities) <= 1.001


def test_classify_matches_the_library(trained, toy, tmp_path):
    paths = [str(p) for p in sorted((toy / "test" / "Persian").iterdir())]
    ranked = clf_lib.classify_files(trained, paths)
    test = build_cache(scan(toy, "test"), 16, progress=False)
    persian = test.labels == trained.class_names.index("Persian")
    expected = trained.probabilities(to_float(test.images[persian])).max(1).values
    assert [top[0][1] for _, top in ranked] == pytest.approx(expected.tolist(), rel=1e-5)


def test_resnet18_weights_are_loaded_and_foreign_files_refused(tmp_path):
    from torchvision.models import resnet18

    torch.save(resnet18().state_dict(), tmp_path / "imagenet.pth")
    net = clf_lib.build("resnet18", 13)
    clf_lib.load_pretrained_backbone(net, tmp_path / "imagenet.pth")
    saved = torch.load(tmp_path / "imagenet.pth", weights_only=True)
    assert all(torch.equal(v, saved[k]) for k, v in net.body.state_dict().items())

    torch.save(clf_lib.build("small-cnn", 13).state_dict(), tmp_path / "foreign.pth")
    with pytest.raises(ValueError, match="does not hold resnet18 weights"):
        clf_lib.load_pretrained_backbone(clf_lib.build("resnet18", 13), tmp_path / "foreign.pth")
    with pytest.raises(ValueError, match="--backbone resnet18"):
        clf_lib.ClassifierSettings(backbone="small-cnn", pretrained_weights=str(tmp_path / "imagenet.pth"))


def test_loading_something_else_fails_clearly(tmp_path):
    with pytest.raises(CheckpointError, match="train-classifier"):
        clf_lib.load(tmp_path / "missing.pt")
    torch.save({"format": "something"}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a tinycats classifier"):
        clf_lib.load(tmp_path / "other.pt")
