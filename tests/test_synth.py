"""Tests for the procedural toy-cat renderer and dataset writer."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFilter

from tinycats.breeds import CLASS_NAMES
from tinycats.data.source import describe
from tinycats.data.synth import preview_grid, render_cat, write_dataset


def _render(class_index: int, size: int, *seed: int) -> np.ndarray:
    return np.asarray(render_cat(class_index, size, np.random.default_rng(list(seed))), dtype=np.float32)


def test_render_is_deterministic_and_varies_with_seed() -> None:
    base = _render(3, 32, 0, 0, 3, 7)
    assert np.array_equal(base, _render(3, 32, 0, 0, 3, 7))
    assert not np.array_equal(base, _render(3, 32, 0, 0, 3, 8)), "another index must give another image"
    assert not np.array_equal(base, _render(3, 32, 1, 0, 3, 7)), "another seed must give another image"


@pytest.mark.parametrize("size", [16, 32, 256])
def test_every_size_keeps_the_breeds_apart(size: int) -> None:
    """At every size the face (the centre) of a black Bombay is darker than a white Persian's, and
    a pink Sphynx's is redder than a blue-grey Russian Blue's: the traits survive the resolution."""

    def face(c: int) -> np.ndarray:
        image = np.asarray(render_cat(c, size, np.random.default_rng(0)), dtype=float)
        lo, hi = int(size * 0.35), int(size * 0.65)
        return image[lo:hi, lo:hi].reshape(-1, 3).mean(0)

    assert render_cat(0, size, np.random.default_rng(0)).size == (size, size)
    bombay, persian, russian_blue, sphynx = face(3), face(7), face(9), face(11)
    assert bombay.sum() + 300 < persian.sum()
    assert sphynx[0] - sphynx[2] > 30 > russian_blue[0] - russian_blue[2]


@pytest.mark.parametrize("size", [8, 15, 257, 300])
def test_bad_size_is_rejected(size: int) -> None:
    with pytest.raises(ValueError, match="between 16 and 256"):
        render_cat(0, size, np.random.default_rng(0))
    with pytest.raises(ValueError, match="between 16 and 256"):
        write_dataset("unused", image_size=size, progress=False)


def test_bad_class_is_rejected() -> None:
    with pytest.raises(ValueError, match="class index"):
        render_cat(len(CLASS_NAMES), 32, np.random.default_rng(0))


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_write_dataset_layout_and_reproducibility(tmp_path: Path) -> None:
    counts = write_dataset(tmp_path / "a", per_class=2, test_per_class=1, image_size=16, seed=3, workers=1, progress=False)
    assert counts == {"train": dict.fromkeys(CLASS_NAMES, 2), "test": dict.fromkeys(CLASS_NAMES, 1)}
    first = _tree(tmp_path / "a")
    expected = {
        f"{split}/{name}/{name}_{i:05d}.png" for split, n in (("train", 2), ("test", 1)) for name in CLASS_NAMES for i in range(n)
    }
    assert set(first) == expected | {"toy-cats.json"}  # no stray temp files either
    marker = json.loads(first["toy-cats.json"])
    assert (marker["seed"], marker["image_size"], marker["per_class"], marker["test_per_class"]) == (3, 16, 2, 1)
    assert describe(tmp_path / "a")["source"] == "toy-cats"
    for split in ("train", "test"):
        assert sorted(p.name for p in (tmp_path / "a" / split).iterdir()) == sorted(CLASS_NAMES)
    with Image.open(tmp_path / "a" / "train" / "Bombay" / "Bombay_00001.png") as image:
        assert (image.format, image.mode, image.size) == ("PNG", "RGB", (16, 16))
    assert first["train/Bombay/Bombay_00000.png"] != first["test/Bombay/Bombay_00000.png"]

    write_dataset(tmp_path / "a", per_class=2, test_per_class=1, image_size=16, seed=3, workers=1, progress=False)
    assert _tree(tmp_path / "a") == first, "a re-run must overwrite with byte-identical files"
    write_dataset(tmp_path / "b", per_class=2, test_per_class=1, image_size=16, seed=3, workers=2, progress=False)
    assert _tree(tmp_path / "b") == first, "the worker count must not change the output"


def _features(image: np.ndarray) -> np.ndarray:
    """Colour histogram of the centre, where the animal is; the background is random by design."""
    centre = image[8:28, 6:26].reshape(-1, 3) // 64  # 4 levels per channel
    codes = (centre[:, 0] * 16 + centre[:, 1] * 4 + centre[:, 2]).astype(np.intp)
    return np.bincount(codes, minlength=64) / len(codes)


def test_classes_are_distinct_and_varied() -> None:
    train, test = 20, 12
    feats = np.array([[_features(_render(c, 32, 11, c, j)) for j in range(train + test)] for c in range(len(CLASS_NAMES))])
    means = feats[:, :train].mean(axis=1)
    held_out = feats[:, train:].reshape(-1, means.shape[1])
    labels = np.repeat(np.arange(len(CLASS_NAMES)), test)
    predicted = np.linalg.norm(held_out[:, None] - means[None], axis=2).argmin(axis=1)
    accuracy = float((predicted == labels).mean())
    assert accuracy > 0.6, f"nearest-class-mean accuracy {accuracy:.2f} (chance is {1 / len(CLASS_NAMES):.2f})"

    siamese = np.stack([_render(CLASS_NAMES.index("Siamese"), 32, 12, j) for j in range(12)])
    assert siamese.std(axis=0).mean() > 20, "renders of one class must really differ"


def test_preview_grid_shape() -> None:
    grid = preview_grid(size=16, per_class=2, zoom=2)
    assert grid.height == len(CLASS_NAMES) * 32
    assert grid.width > 2 * 32


def _body_detail(image: Image.Image) -> float:
    """Mean |image - blurred image| over the shoulders (bottom centre): how much fine texture there is."""
    sharp = np.asarray(image, dtype=float)
    blurred = np.asarray(image.filter(ImageFilter.GaussianBlur(1.0)), dtype=float)
    s = image.width
    return float(np.abs(sharp - blurred)[int(s * 0.78) : int(s * 0.97), int(s * 0.34) : int(s * 0.66)].mean())


def test_128px_renders_draw_fur_that_a_hairless_cat_and_an_enlarged_64px_render_lack() -> None:
    """A sharper generator must have something to be sharp about: at 128 px the coats carry texture
    (Abyssinian grain, Russian Blue shimmer, Persian fur) that the hairless Sphynx does not, and it
    is drawn at that size, not the 64 px picture enlarged."""

    def detail(name: str, size: int, enlarge: bool = False) -> float:
        c = CLASS_NAMES.index(name)
        images = [render_cat(c, size, np.random.default_rng([5, c, i])) for i in range(4)]
        return float(np.mean([_body_detail(im.resize((128, 128), Image.Resampling.BICUBIC) if enlarge else im) for im in images]))

    sphynx = detail("Sphynx", 128)
    for furry in ("Abyssinian", "Russian_Blue", "Persian"):
        fur = detail(furry, 128)
        assert fur > 2 * sphynx, f"{furry}: fur detail {fur:.2f} vs Sphynx {sphynx:.2f}"
        assert fur > 1.5 * detail(furry, 64, enlarge=True), f"{furry}: the 128 px render adds no detail to the 64 px one"
