"""`tinycats data validate` and the record's `CatsDataset` API."""

import io
import json
import math
import shutil
from collections import Counter

import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from tinycats.breeds import CLASS_NAMES
from tinycats.cli import main
from tinycats.data import CatsDataset, augment
from tinycats.data.decode import load_image
from tinycats.data.validate import format_report, validate

from conftest import make_folder


@pytest.fixture
def faulty(tmp_path):
    """make_folder's 3 x 6 images (20x24 px) in train, 2 per class in test, and one fault of each kind."""
    root = make_folder(tmp_path / "faulty")
    make_folder(tmp_path / "other", per_class=2, seed=1)
    shutil.copytree(tmp_path / "other" / "train", root / "test")
    bengal = root / "train" / "Bengal"
    jpeg = io.BytesIO()
    Image.open(bengal / "Bengal_1.png").save(jpeg, format="JPEG")
    (bengal / "cut.jpg").write_bytes(jpeg.getvalue()[:-200])
    Image.new("RGB", (8, 30), (200, 100, 0)).save(bengal / "tiny.png")
    shutil.copy(bengal / "Bengal_2.png", root / "train" / "Bombay" / "copy.png")  # a duplicate, under another class
    shutil.copy(bengal / "Bengal_3.png", root / "test" / "Bengal" / "leak.png")  # train and test share an image
    return root


def test_a_clean_folder_reports_counts_batches_and_warnings_only(image_folder):
    report = validate(image_folder, image_size=16, batch_size=4, progress=False)
    assert report.ok and report.class_names == list(CLASS_NAMES)
    assert report.counts["train"] == {name: (6 if name in ("Bengal", "Bombay", "Other") else 0) for name in CLASS_NAMES}
    assert report.batches_per_epoch == {"train": math.ceil(18 / 4)} and report.imbalance == {"train": 1.0}
    assert not (report.unreadable or report.small or report.duplicates or report.leaks)
    assert any("test: " in w and "no test/ folder" in w for w in report.warnings)
    assert any(w.startswith("train: no images of Abyssinian, Birman,") for w in report.warnings)
    text = format_report(report)
    assert "Total samples: 18\nBatches per epoch: 5 (batch size 4)\nBreed distribution: {1: 6, 3: 6, 12: 6}" in text


def test_every_fault_is_found_and_classified(faulty):
    report = validate(faulty, image_size=16, batch_size=32, workers=2, progress=False)
    assert [u["path"] for u in report.unreadable] == ["train/Bengal/cut.jpg"]
    assert "truncated" in report.unreadable[0]["error"].lower()
    assert report.small == [{"path": "train/Bengal/tiny.png", "width": 8, "height": 30}]
    assert report.duplicates == [["train/Bengal/Bengal_2.png", "train/Bombay/copy.png"]]
    assert report.leaks == [["train/Bengal/Bengal_3.png", "test/Bengal/leak.png"]]
    assert report.counts["train"]["Bengal"] == 8 and report.counts["test"]["Bengal"] == 3
    assert report.imbalance == {"train": 8 / 6, "test": 3 / 2}
    assert not report.ok and len(report.errors) == 2
    assert any("unreadable or truncated" in e for e in report.errors) and any("leaks" in e for e in report.errors)
    # at the record's 128 px every image is small, and a strict balance threshold warns
    strict = validate(faulty, image_size=128, imbalance_threshold=1.2, progress=False)
    assert len(strict.small) == (21 - 1) + 7  # every readable image: 21 in train (one unreadable), 7 in test
    assert any(w.startswith("train: largest class 1.33x the smallest") for w in strict.warnings)


def test_validate_cli_exit_codes_and_json(faulty, image_folder, capsys):
    assert main(["data", "validate", str(faulty), "--image-size", "16", "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert (
        report["ok"] is False
        and report["leaks"] == [["train/Bengal/Bengal_3.png", "test/Bengal/leak.png"]]
        and report["batches_per_epoch"]["train"] == 1
    )
    assert main(["data", "validate", str(image_folder), "--image-size", "16"]) == 0  # warnings only
    out = capsys.readouterr().out
    assert "Total samples: 18" in out and "warning: train: no images of Abyssinian" in out and "ERROR" not in out
    (image_folder / "empty").mkdir()
    assert main(["data", "validate", str(image_folder / "empty")]) == 1
    assert "ERROR: train: " in capsys.readouterr().out


def test_the_records_dataset_snippet(image_folder):
    dataset = CatsDataset(str(image_folder), image_size=16)
    loader = DataLoader(dataset, batch_size=32)
    assert len(dataset) == 18 and len(loader) == 1 and dataset.augmentation is None
    assert dict(Counter(dataset.samples[i][1] for i in range(len(dataset)))) == {1: 6, 3: 6, 12: 6}
    path, label = dataset.samples[7]
    image, got_label = dataset[7]
    expected = augment.to_float(torch.tensor(load_image(path, 16)).permute(2, 0, 1))
    assert got_label == label == 3 and image.dtype == torch.float32 and torch.equal(image, expected)
    images, labels = next(iter(DataLoader(dataset, batch_size=32)))
    assert images.shape == (18, 3, 16, 16) and labels.tolist() == [label for _, label in dataset.samples]


def test_augmented_dataset_draws_from_the_global_generator(image_folder):
    dataset = CatsDataset(image_folder, augmentation_level="full", image_size=16)
    assert dataset.augmentation is not None and CatsDataset(image_folder, augmentation_level="basic").augmentation
    pixels = torch.tensor(load_image(dataset.samples[0][0], 16)).permute(2, 0, 1)
    torch.manual_seed(5)
    image, _ = dataset[0]
    expected = augment.apply(pixels[None], augment.draw_params("full", 1, torch.Generator().manual_seed(5)))[0]
    assert torch.equal(image, expected) and not torch.equal(image, augment.to_float(pixels))
    assert image.min() >= -1 and image.max() <= 1
    assert not torch.equal(dataset[0][0], image)  # the next draw differs
    with pytest.raises(ValueError, match="unknown augmentation level 'strong'"):
        CatsDataset(image_folder, augmentation_level="strong")


def test_dataloader_workers_draw_different_augmentations(tmp_path):
    folder = tmp_path / "same" / "train" / "Bengal"
    folder.mkdir(parents=True)
    Image.effect_mandelbrot((24, 24), (-2, -1.5, 1, 1.5), 50).convert("RGB").save(folder / "a.png")
    for i in range(3):
        shutil.copy(folder / "a.png", folder / f"copy{i}.png")  # four identical images
    dataset = CatsDataset(tmp_path / "same", image_size=16, augmentation_level="full")
    batches = [images for images, _ in DataLoader(dataset, batch_size=2, num_workers=2)]  # one batch per worker
    assert len(batches) == 2 and batches[0].shape == (2, 3, 16, 16)
    assert not torch.allclose(batches[0], batches[1])  # each worker's generator is seeded differently
