"""Decoding one image file into uint8 RGB, the only way tinycats reads a training or test image.

Images are centre-cropped to a square and then resized (never squashed), with PIL, which reads
everything the real data set contains: CMYK and greyscale JPEGs, PNGs saved under a .jpg name.

Hostile or broken files are refused, never half-read: only regular files are opened (a FIFO, device
or folder named *.jpg would hang or mislead the reader), only the formats of IMAGE_EXTENSIONS are
tried (whatever the name says, so PIL's other readers, EPS's Ghostscript among them, never run),
an image over PIL's Image.MAX_IMAGE_PIXELS is refused from its header before any pixel is decoded
(also between 1x and 2x the limit, where PIL itself only warns), and a truncated file is an error
(ImageFile.LOAD_TRUNCATED_IMAGES is kept off: a grey-filled half image would train as a cat).
"""

from __future__ import annotations

import os
import stat
import struct
import threading
import warnings
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from tinycats.errors import DataError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")
FORMATS = ("JPEG", "PNG", "GIF", "BMP", "WEBP", "TIFF")  # PIL's readers for IMAGE_EXTENSIONS (JPEG includes MPO)
# What a damaged or hostile file can make PIL raise; each marks that one file unreadable.
DECODE_ERRORS = (
    OSError,  # truncated, unidentified, decoder errors
    ValueError,  # DataError (our refusals) included
    SyntaxError,  # PIL's "not a valid file of this format"
    EOFError,
    struct.error,
    MemoryError,
    Image.DecompressionBombError,
)
BACKGROUND = 255  # transparent pixels are composited on white (see to_rgb)
_OPEN_LOCK = threading.Lock()  # warnings.catch_warnings is process-wide state: one open at a time
_FILE_KINDS = {
    stat.S_ISDIR: "a folder",
    stat.S_ISFIFO: "a named pipe (FIFO)",
    stat.S_ISCHR: "a character device",
    stat.S_ISBLK: "a block device",
    stat.S_ISSOCK: "a socket",
}


def load_image(path: str | Path, size: int) -> np.ndarray:
    """uint8 [size, size, 3]: upright (camera EXIF orientation applied, as viewers show photos),
    centre crop to a square, then a high-quality resize. A file that cannot be used raises a
    DataError naming it (see decode_image for what is refused)."""
    try:
        return decode_image(path, size)[0]
    except DECODE_ERRORS as exc:
        raise DataError(f"cannot read image {path} ({describe(exc)}): remove or replace it") from exc


def decode_image(path: str | Path, size: int) -> tuple[np.ndarray, tuple[int, int]]:
    """load_image's pixels and the stored (width, height), raising one of DECODE_ERRORS without
    the path (the caller names the file): a DataError for what tinycats refuses (not a regular
    file, empty, not an image, over the pixel limit, floating-point pixels), PIL's own error for
    a truncated or corrupt file. Animated GIF/PNG/WebP give their first frame."""
    ImageFile.LOAD_TRUNCATED_IMAGES = False  # another library may have turned it on: truncated must fail
    with open_image_file(path) as file, _open(file) as img:
        stored = img.size
        img.draft("RGB", (size * 2, size * 2))  # lets JPEG decode at a reduced scale: much faster
        rgb = to_rgb(ImageOps.exif_transpose(img))
    return np.asarray(ImageOps.fit(rgb, (size, size), Image.Resampling.BICUBIC, centering=(0.5, 0.5))), stored


def describe(exc: BaseException) -> str:
    """One line for a decode failure: our refusals as they are, PIL's errors with their type."""
    text = str(exc).replace("\n", " ")
    return text if isinstance(exc, DataError) else f"{type(exc).__name__}: {text}"


def open_image_file(path: str | Path) -> BinaryIO:
    """The file opened for reading, when it is a regular, non-empty file (following symlinks).
    Checked before opening and again on the open file, so a FIFO never blocks the reader."""
    kind = _special_kind(os.stat(path).st_mode)
    if kind:
        raise DataError(f"{kind}, not an image file")
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    try:
        info = os.fstat(fd)
        kind = _special_kind(info.st_mode)
        if kind:
            raise DataError(f"{kind}, not an image file")
        if info.st_size == 0:
            raise DataError("an empty file (0 bytes)")
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _special_kind(mode: int) -> str:
    return next((kind for test, kind in _FILE_KINDS.items() if test(mode)), "" if stat.S_ISREG(mode) else "not a regular file")


def _open(file: BinaryIO) -> Image.Image:
    """Image.open on the header only, restricted to FORMATS, refusing a decompression bomb."""
    try:
        with _OPEN_LOCK, warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(file, formats=FORMATS)
    except Image.DecompressionBombWarning as exc:  # between 1x and 2x the limit: PIL would decode it
        raise Image.DecompressionBombError(f"{exc} (not decoded)") from None
    except Image.DecompressionBombError as exc:
        raise Image.DecompressionBombError(f"{exc} (not decoded)") from None
    except UnidentifiedImageError:
        file.seek(0)
        head = file.read(512)
        if _looks_like_text(head):
            raise DataError("a text file, not an image") from None
        raise DataError(f"not a {', '.join(FORMATS[:-1])} or {FORMATS[-1]} image") from None
    limit = Image.MAX_IMAGE_PIXELS
    width, height = img.size
    if limit is not None and width * height > limit:  # PIL's own check, whatever warnings filters say
        img.close()
        raise Image.DecompressionBombError(f"{width}x{height} pixels is over the limit of {limit} (not decoded)")
    return img


def _looks_like_text(head: bytes) -> bool:
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:  # the cut may split a character: judge what precedes it
        text = head[:-4].decode("utf-8", errors="replace")
        if "\ufffd" in text:
            return False
    return all(c.isprintable() or c in "\t\r\n\f" for c in text)


def to_rgb(img: Image.Image) -> Image.Image:
    """8-bit RGB, faithfully for every mode PIL reads.

    - 16-bit greyscale (I;16*, and I, which PIL uses for it) is scaled, v * 255 / 65535 rounded
      (65535 -> 255, 32768 -> 128): PIL's own convert clips it, making nearly every pixel white.
      Floating-point greyscale (F) has no fixed scale and is refused.
    - Alpha (RGBA, LA, PA, or a palette or colour marked transparent) is composited on white,
      BACKGROUND. Dropping the alpha, as PIL's convert does, shows whatever colour the invisible
      pixels happen to hold (often black, sometimes garbage); white is what a viewer on a page
      shows and the usual backdrop of a cut-out photo.
    - Everything else (L, 1, P, CMYK, YCbCr, RGB) goes through PIL's convert.
    """
    if img.mode == "F":
        raise DataError("32-bit floating-point pixels (mode F) have no fixed 8-bit scale: save it as an 8- or 16-bit image")
    if img.mode == "I" or img.mode.startswith("I;16"):
        raw = np.asarray(img).astype(np.int64)
        grey = np.rint(np.clip(raw, 0, 65535) * (255 / 65535)).astype(np.uint8)
        transparent = img.info.get("transparency")
        if not isinstance(transparent, int):
            return Image.fromarray(np.repeat(grey[..., None], 3, axis=2))
        alpha = np.where(raw == transparent, 0, 255).astype(np.uint8)
        rgba = np.dstack([grey, grey, grey, alpha])
    elif img.has_transparency_data:
        rgba = np.asarray(img.convert("RGBA"))
    else:
        return img.convert("RGB")
    alpha = rgba[..., 3:].astype(np.float32) / 255
    rgb = rgba[..., :3].astype(np.float32) * alpha + BACKGROUND * (1 - alpha)
    return Image.fromarray(np.rint(rgb).astype(np.uint8))
