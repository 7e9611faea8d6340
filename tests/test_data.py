import numpy as np
import pytest
import torch
from PIL import Image

from tinycats.data import augment
from tinycats.data.decode import load_image
from tinycats.data.folder import DataError, build_cache, scan
from tinycats.data.stream import IndexStream


def test_cat_folders_use_the_canonical_class_map(image_folder):
    images = scan(image_folder)
    assert images.class_names[12] == "Other" and len(images.class_names) == 13
    labels = {path.parent.name: label for path, label in images.samples}
    assert labels == {"Bengal": 1, "Bombay": 3, "Other": 12}


def test_any_image_folder_gets_its_own_sorted_classes(tmp_path):
    for name in ("zebra", "apple"):
        (tmp_path / name).mkdir()
        Image.new("RGB", (8, 8)).save(tmp_path / name / "a.png")
    (tmp_path / "apple" / "notes.txt").write_text("not an image")
    images = scan(tmp_path)  # flat layout, no train/
    assert images.class_names == ["apple", "zebra"] and len(images.samples) == 2


def test_missing_or_empty_folders_say_what_to_do(tmp_path):
    with pytest.raises(DataError, match="tinycats data synth"):
        scan(tmp_path / "nothing")
    (tmp_path / "train").mkdir()
    with pytest.raises(DataError, match="no class folders"):
        scan(tmp_path)


def test_centre_crop_then_resize_never_squashes(tmp_path):
    # 60x20: red | green | blue thirds. The centre square is the green third.
    pixels = np.zeros((20, 60, 3), np.uint8)
    pixels[:, :20, 0] = pixels[:, 20:40, 1] = pixels[:, 40:, 2] = 255
    Image.fromarray(pixels).save(tmp_path / "wide.png")
    out = load_image(tmp_path / "wide.png", 10)
    assert out.shape == (10, 10, 3)
    assert out[:, 2:8, 1].min() > 200 and out[:, 2:8, 0].max() < 30 and out[:, 2:8, 2].max() < 30


def test_camera_orientation_is_applied(tmp_path):
    # Stored top half red, bottom half blue, tagged "rotate 90° clockwise to view" (EXIF 6):
    # upright, red is on the right.
    pixels = np.zeros((40, 40, 3), np.uint8)
    pixels[:20, :, 0] = pixels[20:, :, 2] = 255
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(pixels).save(tmp_path / "phone.jpg", exif=exif, quality=95)
    out = load_image(tmp_path / "phone.jpg", 8).astype(int)
    assert out[:, 5:, 0].min() > 200 and out[:, :3, 2].min() > 200 and out[:, :3, 0].max() < 60


def test_reads_greyscale_cmyk_and_png_named_jpg(tmp_path):
    Image.new("L", (30, 30), 128).save(tmp_path / "grey.jpg")
    Image.new("CMYK", (30, 30), (0, 255, 255, 0)).save(tmp_path / "cmyk.jpg")
    Image.new("RGB", (30, 30), (0, 0, 255)).save(tmp_path / "png.jpg", format="PNG")
    assert np.abs(load_image(tmp_path / "grey.jpg", 8).astype(int) - 128).max() <= 2
    assert load_image(tmp_path / "cmyk.jpg", 8)[..., 0].min() > 200  # red
    assert load_image(tmp_path / "png.jpg", 8)[..., 2].min() == 255


def test_unreadable_images_are_listed_or_skipped(image_folder):
    bad = image_folder / "train" / "Bengal" / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 truncated")
    with pytest.raises(DataError, match=r"1 unreadable image.*broken.jpg.*--skip-bad-images"):
        build_cache(scan(image_folder), 8, progress=False)
    cache = build_cache(scan(image_folder), 8, skip_bad=True, progress=False)
    assert cache.skipped == [bad] and len(cache.labels) == 18
    assert cache.images.dtype == torch.uint8 and cache.images.shape == (18, 3, 8, 8)


def test_stream_visits_every_sample_once_per_epoch_and_depends_only_on_position():
    stream = IndexStream(10, seed=3)
    first_two_epochs = stream.indices(0, 20)
    assert sorted(first_two_epochs[:10].tolist()) == list(range(10))
    assert sorted(first_two_epochs[10:].tolist()) == list(range(10))
    assert not torch.equal(first_two_epochs[:10], first_two_epochs[10:])
    crossing = IndexStream(10, seed=3).indices(7, 6)  # a fresh stream, across the epoch boundary
    assert torch.equal(crossing, first_two_epochs[7:13])


def random_images(n=4, size=16):
    return torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))


def test_augmentation_levels():
    images = random_images()
    g = torch.Generator().manual_seed(0)
    plain = augment.apply(images, augment.draw_params("none", 4, g))
    assert torch.equal(plain, images.float() / 127.5 - 1)
    params = augment.draw_params("basic", 4, g)
    flipped = augment.apply(images, params)
    for i in range(4):
        expected = plain[i].flip(-1) if params["flip"][i] else plain[i]
        assert torch.equal(flipped[i], expected)
    with pytest.raises(ValueError, match="augmentation level"):
        augment.draw_params("heavy", 4, g)


def test_full_augmentation_is_mild_and_has_no_borders(monkeypatch):
    g = torch.Generator().manual_seed(1)
    params = augment.draw_params("full", 64, g)
    flat = torch.full((64, 3, 16, 16), 200, dtype=torch.uint8)
    # Every sampling point of the crop lies inside the image ([-1, 1] is its full extent with
    # align_corners=False); bilinear reads within half a pixel of the edge use the edge pixel.
    grids, grid_sample = [], augment.F.grid_sample
    monkeypatch.setattr(augment.F, "grid_sample", lambda x, grid, **k: grids.append(grid) or grid_sample(x, grid, **k))
    out = augment.apply(flat, params)
    assert len(grids) == 1 and grids[0].abs().max() <= 1
    assert grids[0].abs().amax(dim=(1, 2, 3)).min() > 0.8  # the crops do reach towards the edges
    # a flat image stays flat (no black borders from the crop), only its level jitters a little
    assert torch.allclose(out.amin(dim=(1, 2, 3)), out.amax(dim=(1, 2, 3)), atol=1e-5)
    level = (out[:, 0, 0, 0] + 1) * 127.5
    assert (level - 200).abs().max() < 0.11 * 200 + 1
    colour = torch.zeros(1, 3, 16, 16, dtype=torch.uint8)
    colour[:, 0] = 200  # pure red stays red: no hue shift
    red = augment.apply(colour.expand(64, -1, -1, -1), params)
    assert (red[:, 0] > red[:, 1] + 1).all() and torch.allclose(red[:, 1], red[:, 2])
    widths = params["box"][:, 0]
    assert widths.min() >= (0.8 * 0.9) ** 0.5 - 1e-6 and widths.max() <= 1


def test_full_augmentation_crops_and_flips_what_it_says():
    # An image whose left half is dark and right half bright: a flip swaps the halves.
    img = torch.zeros(1, 3, 32, 32, dtype=torch.uint8)
    img[..., 16:] = 255
    params = {"flip": torch.tensor([True]), "box": torch.tensor([[1.0, 1.0, 0.5, 0.5]]), "jitter": torch.ones(1, 3)}
    out = augment.apply(img, params)
    assert torch.allclose(out, augment.to_float(img).flip(-1), atol=1e-5)
    zoom = {"flip": torch.tensor([False]), "box": torch.tensor([[0.5, 0.5, 1.0, 0.5]]), "jitter": torch.ones(1, 3)}
    right_half = augment.apply(img, zoom)  # the box sits at the right edge: bright
    assert right_half[..., 1:].min() > 0.99  # column 0 straddles the edge (bilinear: half-bright)
