"""Image files against the one decoder: bombs, truncated files, special files and awkward modes
(16-bit, palette, alpha, CMYK, animation). Each decodes to the right pixels, checked against an
independent computation, or is refused by name without a crash or a hang."""

import io
import os
import struct
import threading
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile

from tinycats.cli import main
from tinycats.data.decode import decode_image, load_image
from tinycats.data.folder import DataError, build_cache, scan
from tinycats.data.validate import validate

from conftest import make_folder

# --- image files -------------------------------------------------------------------------------------


def png(width: int, height: int, bit_depth: int = 8, colour_type: int = 2, idat: bytes = b"\0" * 16) -> bytes:
    """A PNG built by hand: any header, whatever the pixel data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(idat)) + chunk(b"IEND", b"")


@pytest.fixture
def decodes(monkeypatch):
    """Counts PIL's pixel decodes (ImageFile.load), to show a refused bomb was never decoded."""
    calls = []
    real = ImageFile.ImageFile.load
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda self: calls.append(self.size) or real(self))
    return calls


def refusal(path: Path, size: int = 4) -> str:
    with pytest.raises(DataError) as info:
        load_image(path, size)
    message = str(info.value)
    assert message.startswith(f"cannot read image {path} (") and "\n" not in message
    return message


def test_16_bit_greyscale_is_scaled_not_clipped(tmp_path):
    values = np.array([[0, 1, 128, 129], [257, 1000, 32767, 32768], [40000, 50000, 65279, 65280], [65534, 65535, 300, 12345]])
    Image.fromarray(values.astype(np.uint16)).save(tmp_path / "deep.png")
    assert Image.open(tmp_path / "deep.png").mode.startswith("I;16")
    out = load_image(tmp_path / "deep.png", 4)
    expected = (values * 255 + 32767) // 65535  # round(v * 255 / 65535), in integers
    assert np.array_equal(out, np.repeat(expected[..., None], 3, axis=2))
    assert out[1, 3, 0] == 128 and out[3, 1, 0] == 255 and out[0, 0, 0] == 0 and len(np.unique(out)) > 8


def test_palette_images_with_and_without_transparency(tmp_path):
    palette = np.array([[0, 255, 0], [200, 10, 30], [12, 34, 56], [250, 240, 5]], np.uint8)
    indices = np.array([[0, 1, 2, 3], [3, 2, 1, 0], [1, 1, 2, 2], [0, 3, 0, 3]], np.uint8)
    img = Image.fromarray(indices, "P")
    img.putpalette(palette.flatten().tolist())
    img.save(tmp_path / "palette.png")
    assert np.array_equal(load_image(tmp_path / "palette.png", 4), palette[indices])
    img.save(tmp_path / "clear.png", transparency=0)  # index 0 (pure green) invisible
    img.save(tmp_path / "clear.gif", transparency=0)
    expected = palette[indices].copy()
    expected[indices == 0] = 255  # on white, not the green the invisible pixels hold
    for name in ("clear.png", "clear.gif"):
        assert Image.open(tmp_path / name).mode == "P"
        assert np.array_equal(load_image(tmp_path / name, 4), expected), name


@pytest.mark.parametrize("mode", ["RGBA", "LA"])
def test_alpha_is_composited_on_white(tmp_path, mode):
    rng = np.random.default_rng(0)
    channels = 4 if mode == "RGBA" else 2
    pixels = rng.integers(0, 256, (4, 4, channels), dtype=np.uint8)
    pixels[0, :, -1] = 0  # invisible, holding colours
    pixels[1, :, -1] = 255
    pixels[2, :, -1] = 128
    Image.fromarray(pixels, mode).save(tmp_path / "alpha.png")
    colour = pixels[..., :3] if mode == "RGBA" else np.repeat(pixels[..., :1], 3, axis=2)
    alpha = pixels[..., -1:] / 255
    expected = colour * alpha + 255 * (1 - alpha)
    out = load_image(tmp_path / "alpha.png", 4)
    assert np.abs(out - expected).max() <= 0.5 + 1e-9  # rounded, nothing more
    assert (out[0] == 255).all() and np.array_equal(out[1], colour[1])


def test_cmyk_jpeg(tmp_path):
    c, m, y, k = 51, 102, 0, 51
    Image.new("CMYK", (8, 8), (c, m, y, k)).save(tmp_path / "print.jpg", quality=100)
    expected = [(255 - k) * (1 - v / 255) for v in (c, m, y)]  # 163.2, 122.4, 204
    assert np.abs(load_image(tmp_path / "print.jpg", 4).astype(float) - expected).max() <= 3


@pytest.mark.parametrize("fmt", ["GIF", "PNG"])
def test_animated_images_give_their_first_frame(tmp_path, fmt):
    frames = [Image.new("RGB", (4, 4), colour) for colour in ((255, 0, 0), (0, 0, 255), (0, 255, 0))]
    path = tmp_path / f"moving.{fmt.lower()}"
    frames[0].save(path, format=fmt, save_all=True, append_images=frames[1:], duration=50, loop=0)
    with Image.open(path) as img:
        assert img.n_frames == 3
    assert (load_image(path, 4) == (255, 0, 0)).all()


def test_declared_absurd_size_is_refused_from_the_header(tmp_path, decodes):
    (tmp_path / "huge.png").write_bytes(png(100_000, 100_000))
    message = refusal(tmp_path / "huge.png")
    assert "DecompressionBombError" in message and "10000000000 pixels" in message and "not decoded" in message
    assert decodes == []


def test_bombs_are_refused_between_one_and_two_times_the_limit_too(tmp_path, monkeypatch, decodes):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    for side in (30, 40, 50):  # 900 (fine), 1600 (PIL only warns), 2500 (PIL raises)
        Image.new("RGB", (side, side), (1, 2, 3)).save(tmp_path / f"{side}.png")
    assert (load_image(tmp_path / "30.png", 4) == (1, 2, 3)).all() and set(decodes) == {(30, 30)}  # the spy sees decodes
    for side in (40, 50):
        message = refusal(tmp_path / f"{side}.png")
        assert f"Image size ({side * side} pixels) exceeds limit" in message and "not decoded" in message
    assert set(decodes) == {(30, 30)}


def test_truncated_files_are_refused_even_if_someone_allowed_them(tmp_path, monkeypatch):
    pixels = np.random.default_rng(1).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    for fmt in ("JPEG", "PNG"):
        data = io.BytesIO()
        Image.fromarray(pixels).save(data, format=fmt)
        (tmp_path / f"cut.{fmt.lower()}").write_bytes(data.getvalue()[: len(data.getvalue()) * 2 // 3])
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)  # as some other library might
    for name in ("cut.jpeg", "cut.png"):
        assert "truncated" in refusal(tmp_path / name)


def special_files(root: Path) -> dict[str, str]:
    """name -> what the refusal says, for every file that is not an image."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "empty.jpg").write_bytes(b"")
    (root / "notes.png").write_text("these are my notes, not a cat\n")
    (root / "noise.jpg").write_bytes(bytes(range(256)) * 4)
    (root / "page.jpg").write_text("%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 4 4\n0 0 moveto\n")  # EPS: never run
    (root / "folder.jpg").mkdir()
    os.mkfifo(root / "pipe.jpg")
    (root / "zero.png").symlink_to("/dev/zero")
    (root / "gone.jpg").symlink_to(root / "missing.jpg")
    Image.fromarray(np.full((4, 4), 0.5, np.float32)).save(root / "float.tif")
    (root / "huge.png").write_bytes(png(100_000, 100_000))
    return {
        "empty.jpg": "an empty file (0 bytes)",
        "notes.png": "a text file, not an image",
        "noise.jpg": "not a JPEG, PNG, GIF, BMP, WEBP or TIFF image",
        "page.jpg": "a text file, not an image",
        "folder.jpg": "a folder, not an image file",
        "pipe.jpg": "a named pipe (FIFO), not an image file",
        "zero.png": "a character device, not an image file",
        "gone.jpg": "FileNotFoundError",
        "float.tif": "floating-point pixels (mode F)",
        "huge.png": "DecompressionBombError",
    }


def test_files_that_are_not_images_are_refused_by_name_without_hanging(tmp_path):
    expected = special_files(tmp_path)
    with Image.open(tmp_path / "page.jpg") as img:
        assert img.format == "EPS"  # what PIL would have taken it for, unrestricted
    messages = {}

    def read_all():
        for name in expected:
            messages[name] = refusal(tmp_path / name)

    reader = threading.Thread(target=read_all, daemon=True)
    reader.start()
    reader.join(10)
    assert not reader.is_alive(), "a decode hung"
    for name, reason in expected.items():
        assert reason in messages[name], (name, messages[name])


def test_the_cache_lists_every_refused_file_or_skips_them(tmp_path):
    root = make_folder(tmp_path / "data", per_class=2, size=8)
    bengal = root / "train" / "Bengal"
    expected = special_files(bengal)
    images = scan(root)
    with pytest.raises(DataError) as info:
        build_cache(images, 4, workers=2, progress=False)
    message = str(info.value)
    assert message.startswith(f"{len(expected)} unreadable image(s): ") and "\n" not in message
    for name, reason in expected.items():
        assert f"{bengal / name} (" in message and reason in message, name
    cache = build_cache(images, 4, skip_bad=True, workers=2, progress=False)
    assert sorted(p.name for p in cache.skipped) == sorted(expected) and len(cache.labels) == 6


def test_validate_reports_every_refused_file_without_a_traceback(tmp_path, capsys):
    root = make_folder(tmp_path / "data", per_class=2, size=8)
    expected = special_files(root / "train" / "Bengal")
    report = validate(root, image_size=4, workers=2, progress=False)
    found = {Path(u["path"]).name: u["error"] for u in report.unreadable}
    assert set(found) == set(expected) and all(reason in found[name] for name, reason in expected.items())
    assert not report.ok
    assert main(["data", "validate", str(root), "--image-size", "4", "--workers", "2"]) == 1
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err and f"unreadable or truncated:      {len(expected)}" in captured.out


def test_decode_reports_the_stored_size(tmp_path):
    Image.new("RGB", (9, 5), (7, 8, 9)).save(tmp_path / "wide.png")
    pixels, stored = decode_image(tmp_path / "wide.png", 4)
    assert stored == (9, 5) and pixels.shape == (4, 4, 3) and (pixels == (7, 8, 9)).all()
