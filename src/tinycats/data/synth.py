"""Procedural "toy cats": an offline stand-in for the Oxford-IIIT Pet photos.

The diffusion model must learn a distribution per class and a separate classifier must tell the
classes apart, so each class gets a fixed identity (coat, pattern, eyes, ears, fur, face shape,
written as one row of a trait table) and every image draws its own pose, background, lighting,
colour jitter and pattern phase from a per-image random generator. A single shared painter reads
the traits; there is no per-breed drawing code. "Other" is a dog face, as in the real data.
"""

from __future__ import annotations

import colorsys
import math
import multiprocessing
import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from tqdm import tqdm

from tinycats.breeds import CLASS_NAMES
from tinycats.data.source import write_toy_cats_marker
from tinycats.data.synth_breeds import BREEDS, WHITE, Breed
from tinycats.data.synth_draw import (
    PATTERNS,
    RGB,
    Array,
    Canvas,
    cover,
    ellipse,
    fringe,
    lens,
    local,
    mix,
    polar,
    segment,
    smoothstep,
    triangle,
    value_noise,
)
from tinycats.errors import UsageError

MIN_SIZE, MAX_SIZE = 16, 256
SPLITS = ("train", "test")  # the position is the split id mixed into every image's seed
DARK: RGB = (0.07, 0.05, 0.05)
PINK = np.array((0.93, 0.6, 0.62), np.float32)


TRAITS: tuple[Breed, ...] = tuple(BREEDS[name] for name in CLASS_NAMES)  # a KeyError here = table out of sync


def _tint(rng: np.random.Generator, sd: float) -> Array:
    """A random exposure and colour cast, applied by multiplication so black stays black."""
    return (rng.uniform(0.88, 1.12) * (1.0 + rng.normal(0.0, sd, 3))).astype(np.float32)


def _jitter(rng: np.random.Generator, colour: RGB, sd: float) -> Array:
    """A colour varied within its breed's range."""
    return np.clip(np.asarray(colour, np.float32) * _tint(rng, sd), 0.0, 1.0)


def _far_colour(rng: np.random.Generator, avoid: Array, lo: float = 0.25, hi: float = 0.95) -> Array:
    """A muted scene colour that is not the coat colour, so the background never carries the label."""
    for _ in range(64):
        c = np.array(colorsys.hsv_to_rgb(rng.random(), rng.uniform(0.08, 0.55), rng.uniform(lo, hi)), np.float32)
        if np.linalg.norm(c - avoid) > 0.3:
            return c
    return 1.0 - avoid


def _background(cv: Canvas, rng: np.random.Generator, avoid: Array) -> None:
    """A soft gradient, sometimes a room (floor and bright window), plus out-of-focus blobs.

    It is painted at the output resolution and enlarged: a ninth of the work, and the slight blur
    reads as a shallow depth of field behind the sharp animal.
    """
    bg = Canvas(cv.size, 1, (0.0, 0.0), 1.0, 0.0)
    near, far = _far_colour(rng, avoid), _far_colour(rng, avoid)
    a = rng.uniform(0.0, 2 * math.pi)
    t = np.clip(0.5 + 0.5 * (math.cos(a) * bg.u + math.sin(a) * bg.v), 0.0, 1.0)
    bg.rgb[:] = near + (far - near) * t[..., None]
    full = (slice(None), slice(None))
    if rng.random() < 0.5:
        horizon = rng.uniform(0.1, 0.7)
        bg.paint(full, smoothstep(horizon - 0.02, horizon + 0.02, bg.v), _far_colour(rng, avoid, 0.2, 0.6))
        wu, wv, hw, hh = rng.uniform(-0.6, 0.6), rng.uniform(-0.7, -0.2), rng.uniform(0.1, 0.3), rng.uniform(0.15, 0.35)
        box = np.maximum(np.abs(bg.u - wu) - hw, np.abs(bg.v - wv) - hh)
        bg.paint(full, 0.85 * cover(box, 2.0 / bg.n), _far_colour(rng, avoid, 0.8, 1.0))
    for _ in range(rng.integers(0, 4)):
        d = np.hypot(bg.u - rng.uniform(-1, 1), bg.v - rng.uniform(-1, 1)) - rng.uniform(0.15, 0.45)
        bg.paint(full, rng.uniform(0.3, 0.6) * smoothstep(0.15, -0.15, d), _far_colour(rng, avoid))
    cv.rgb[:] = bg.enlarged(cv.n)


def _coat_field(cv: Canvas, breed: Breed, rng: np.random.Generator, main: Array, second: Array, points: Array | None) -> Array:
    """Per-pixel coat colour shared by body, ruff, ears and head, so markings run across them."""
    field = np.empty((cv.n, cv.n, 3), np.float32)
    field[:] = main
    if breed.pattern:
        colour = second if breed.pattern_colour is None else _jitter(rng, breed.pattern_colour, 0.03)
        field = mix(field, colour, PATTERNS[breed.pattern](cv, rng))
    if points is not None:
        mask = ellipse(*local(cv.x, cv.y, 0.0, 0.3), 0.85 * breed.point_size, breed.point_size)
        field = mix(field, points, 0.95 * smoothstep(0.25, -0.25, mask))
    grain = 0.04 + 2.0 * min(breed.fur, 0.05)  # hairless skin is smooth, fur is grainy
    field *= (1.0 - grain + 2.0 * grain * value_noise(rng, cv.size, cv.n))[..., None]
    return field


Fur = tuple[float, int, float]  # tuft length, tuft count, phase


def _at(colour: Array, window: tuple[slice, slice]) -> Array:
    """The part of a colour field under a window (a single colour passes through)."""
    return colour[window] if colour.ndim == 3 else colour


def _furry(dx: Array, dy: Array, rx: Array | float, ry: float, fur: Fur) -> tuple[Array, Array]:
    """Distance to a tufted ellipse outline (tufts longest on the cheeks and below) and its radius."""
    rho, theta = polar(dx, dy, rx, ry)
    tufts = fringe(theta, *fur) * (0.45 + 0.55 * smoothstep(-0.8, 0.6, np.sin(theta)))
    return (rho - 1.0 - tufts) * np.float32(ry), rho


def _blob(cv: Canvas, colour: Array, centre: tuple[float, float], rx: float, ry: float, fur: Fur) -> None:
    """A furry ellipse: shoulders, ruff and chest."""
    window = cv.region(*centre, max(rx, ry) * (1.0 + fur[0]) + 0.05)
    dist, _ = _furry(*local(cv.x[window], cv.y[window], *centre), rx, ry, fur)
    cv.paint(window, cover(dist, cv.px), _at(colour, window))


def _upright_ears(cv: Canvas, breed: Breed, rng: np.random.Generator, coat: Array, points: Array | None) -> None:
    """Cat ears: triangles with a pink inside, optionally lynx tips; drawn before the head hides their base."""
    for side in (-1, 1):
        h, w = breed.ear_height * rng.uniform(0.9, 1.1), breed.ear_width * rng.uniform(0.92, 1.08)
        spread = math.radians(breed.ear_spread + rng.uniform(-6, 6))
        bx, by = side * math.sin(spread) * breed.head_w * 0.85, -math.cos(spread) * breed.head_h * 0.85
        angle = side * (0.85 * spread + math.radians(rng.uniform(-8, 8)))
        reach = 0.5 * h * (1.6 if breed.tufts else 1.0)
        window = cv.region(bx + math.sin(angle) * reach, by - math.cos(angle) * reach, reach + w)
        dx, dy = local(cv.x[window], cv.y[window], bx, by, angle)
        outer = coat[window] if points is None else points
        cv.paint(window, cover(triangle(dx, dy, h, w, 0.8), cv.px), outer)
        cv.paint(window, cover(triangle(dx, dy + 0.1, 0.75 * h, 0.58 * w, 0.9), cv.px), 0.35 * outer + 0.55 * PINK)
        if breed.tufts:
            cv.paint(window, cover(triangle(dx, dy + 0.85 * h, 0.4 * h, 0.06, 1.0), cv.px), (0.15, 0.1, 0.07))


def _floppy_ears(cv: Canvas, breed: Breed, rng: np.random.Generator, coat: Array) -> None:
    """Dog ears: darker ellipses hanging over the sides of the head; drawn after the head."""
    for side in (-1, 1):
        h, w = breed.ear_height * rng.uniform(0.9, 1.1), breed.ear_width * rng.uniform(0.92, 1.08)
        cx, cy = side * breed.head_w * 0.88, 0.12 + rng.uniform(-0.08, 0.08)
        window = cv.region(cx, cy, h + w)
        dx, dy = local(cv.x[window], cv.y[window], cx, cy, -side * math.radians(rng.uniform(5, 25)))
        cv.paint(window, cover(ellipse(dx, dy, w, h), cv.px), coat[window] * 0.7)


def _head(cv: Canvas, breed: Breed, coat: Array, fur: Fur) -> tuple[tuple[slice, slice], Array]:
    """The face disc, narrowed towards the chin (wedge) or widened at the jowls (cheeks)."""
    ry = breed.head_h
    window = cv.region(0.0, 0.0, max(breed.head_w * (1 + breed.cheeks), ry) * (1.0 + fur[0]) + 0.05)
    x, y = cv.x[window], cv.y[window]
    jowls = breed.cheeks * np.exp(-(((y - 0.3) / 0.3) ** 2))
    rx = breed.head_w * (1.0 - breed.wedge * np.clip(y / ry, 0.0, 1.0) + jowls)
    dist, rho = _furry(x, y, rx, ry, fur)
    alpha = cover(dist, cv.px)
    cv.paint(window, alpha, coat[window] * np.clip(1.1 - 0.28 * rho * rho, 0.6, 1.1)[..., None])
    return window, alpha


def _markings(
    cv: Canvas, breed: Breed, rng: np.random.Generator, second: Array, window: tuple[slice, slice], head: Array
) -> None:
    """Second-colour chin, whisker pads and blaze, and the gloss of a shiny coat, kept on the face."""
    x, y = cv.x[window], cv.y[window]
    soft = 3.0 * cv.px
    patch = np.zeros_like(x)
    if breed.chin:
        patch = np.maximum(patch, cover(ellipse(x, y - breed.head_h * 0.72, 0.26, 0.18), soft))
    if breed.pads:
        patch = np.maximum(patch, cover(ellipse(np.abs(x) - 0.13, y - breed.nose_y - 0.12, 0.16, 0.11), soft))
    if rng.random() < breed.blaze:
        patch = np.maximum(patch, cover(np.maximum(np.abs(x) - 0.03 - 0.45 * (y + 0.3), -0.3 - y), soft))
    cv.paint(window, patch * head, second)
    if breed.gloss:
        shine = np.exp(-(((x + 0.25) / 0.35) ** 2 + ((y + 0.5) / 0.18) ** 2))
        cv.paint(window, breed.gloss * shine * head, WHITE)


def _eyes(cv: Canvas, breed: Breed, rng: np.random.Generator) -> None:
    """Dark-rimmed almond-to-round eyes: shaded iris, slit or round pupil with a gaze, a glint."""
    size = breed.eye_size * rng.uniform(0.88, 1.12)
    hh, p = size * (0.55 + 0.4 * breed.eye_round), 1.0 - 0.5 * breed.eye_round
    tilt = math.radians(breed.eye_tilt + rng.uniform(-4, 4))
    iris = _jitter(rng, breed.eye, 0.04)
    gx, gy = rng.uniform(-0.35, 0.35) * size, rng.uniform(-0.15, 0.15) * hh
    pupil = (size * rng.uniform(0.08, 0.3), 0.92 * hh) if breed.slit else (hh * rng.uniform(0.5, 0.7),) * 2
    for side in (-1, 1):
        ex, ey = side * breed.eye_gap * breed.head_w, -0.04 - 0.1 * breed.snout
        window = cv.region(ex, ey, size + 0.06)
        dx, dy = local(cv.x[window], cv.y[window], ex, ey, -side * tilt)
        cv.paint(window, cover(lens(dx, dy, size + 0.03, hh + 0.03, p), cv.px), DARK)
        inside = cover(lens(dx, dy, size, hh, p), cv.px)
        rim = 1.05 - 0.4 * np.sqrt(dx * dx + dy * dy) / size
        shade = rim * (0.75 + 0.25 * smoothstep(-hh, 0.2 * hh, dy))  # darker rim and upper-lid shadow
        cv.paint(window, inside, iris * shade[..., None])
        cv.paint(window, inside * cover(ellipse(dx - gx, dy - gy, *pupil), cv.px), (0.02, 0.02, 0.02))
        glint = cover(ellipse(dx - gx + 0.35 * size, dy + 0.35 * hh, 0.25 * hh, 0.25 * hh), cv.px)
        cv.paint(window, 0.9 * inside * glint, WHITE)


def _nose_mouth(cv: Canvas, breed: Breed, rng: np.random.Generator) -> None:
    """Nose, mouth lines, whiskers, and for dogs sometimes a tongue."""
    ns = breed.nose_size * rng.uniform(0.9, 1.1)
    top = breed.nose_y - 0.45 * ns
    bottom, drop = top + 0.9 * ns, 0.08 + 0.1 * breed.snout
    window = cv.region(0.0, bottom + drop, 2 * drop + ns + 0.1)
    x, y = cv.x[window], cv.y[window]
    if breed.snout and rng.random() < 0.5:
        tongue = ellipse(x, y - bottom - 1.4 * drop - 0.08, 0.12, 0.15)
        cv.paint(window, cover(tongue, cv.px), (0.92, 0.42, 0.48))
    dx, dy = local(x, y, 0.0, top, math.pi)
    cv.paint(window, cover(triangle(dx, dy, 0.9 * ns, 0.75 * ns, 0.6), cv.px), _jitter(rng, breed.nose, 0.03))
    glint = ellipse(x + 0.25 * ns, y - top - 0.2 * ns, 0.15 * ns, 0.1 * ns)
    cv.paint(window, 0.4 * cover(glint, cv.px), WHITE)
    lip = (0.0, bottom + drop)
    strokes = [segment(x, y, (0.0, bottom), lip, 0.025)]
    strokes += [segment(x, y, lip, (side * (0.7 * drop + 0.05), lip[1] + 0.5 * drop), 0.025) for side in (-1, 1)]
    cv.paint(window, 0.7 * cover(np.minimum.reduce(strokes), cv.px), DARK)
    if breed.whiskers:
        for side in (-1, 1):
            for k in range(3):
                a = (side * 0.16, bottom + 0.03 * k)
                b = (side * rng.uniform(0.85, 1.15), bottom - 0.12 + 0.14 * k + rng.uniform(-0.05, 0.05))
                window = cv.region((a[0] + b[0]) / 2, (a[1] + b[1]) / 2, 0.6)
                whisker = segment(cv.x[window], cv.y[window], a, b, 0.02)
                cv.paint(window, 0.55 * cover(whisker, cv.px), (0.96, 0.95, 0.92))


def _light(cv: Canvas, rng: np.random.Generator) -> None:
    """Scene lighting: an overall exposure and a brightness gradient from a random direction."""
    a = rng.uniform(0.0, 2 * math.pi)
    gain = rng.uniform(0.88, 1.08) + rng.uniform(0.05, 0.3) * (math.cos(a) * cv.u + math.sin(a) * cv.v)
    cv.rgb *= gain[..., None]


def _check_size(size: int) -> None:
    if not MIN_SIZE <= size <= MAX_SIZE:
        raise UsageError(f"image size must be between {MIN_SIZE} and {MAX_SIZE} px, got {size}")


def render_cat(class_index: int, size: int, rng: np.random.Generator) -> Image.Image:
    """One random portrait of class ``class_index`` (an index into CLASS_NAMES), RGB, size x size.

    Everything random comes from ``rng``, so a seeded generator reproduces the image exactly. The
    drawing is done at 2-4x the size and shrunk with Lanczos, which keeps small sizes smooth. Fur
    grain is drawn per output pixel, so one seed at two sizes gives two different animals.
    """
    _check_size(size)
    if not 0 <= class_index < len(TRAITS):
        raise UsageError(f"class index must be in [0, {len(TRAITS)}), got {class_index}")
    breed = TRAITS[class_index]
    supersample = 4 if size <= 32 else 3 if size <= 96 else 2
    cv = Canvas(
        size,
        supersample,
        centre=(rng.uniform(-0.12, 0.12), rng.uniform(0.0, 0.12)),
        scale=rng.uniform(0.38, 0.46),
        tilt=math.radians(rng.uniform(-15, 15)),
    )
    tint = _tint(rng, 0.04)  # shared by both coat colours so their contrast and hue stay the breed's
    coat_pair = breed.coats[rng.integers(len(breed.coats))]
    main, second = (np.clip(np.asarray(c, np.float32) * tint, 0.0, 1.0) for c in coat_pair)
    _background(cv, rng, main)
    points = None if breed.points is None else _jitter(rng, breed.points, 0.04)
    coat = _coat_field(cv, breed, rng, main, second, points)
    fur = (breed.fur * rng.uniform(0.7, 1.3), int(rng.integers(18, 32)), rng.uniform(0.0, 1.0))
    _blob(cv, coat, (0.0, 2.15), 1.35, 1.3, fur)
    if breed.ruff:
        ruff = breed.ruff * rng.uniform(0.92, 1.08)
        _blob(cv, coat, (0.0, 0.5), breed.head_w * ruff, ruff, (2.0 * fur[0], fur[1], fur[2]))
    _blob(cv, second, (0.0, 1.25), 0.3 + 0.3 * breed.ruff, 0.4, fur)
    if not breed.floppy:
        _upright_ears(cv, breed, rng, coat, points)
    window, head = _head(cv, breed, coat, fur)
    _markings(cv, breed, rng, second, window, head)
    if breed.snout:
        muzzle = 0.52 * breed.snout * rng.uniform(0.9, 1.1)
        _blob(cv, second * np.float32(0.95), (0.0, 0.42), 0.4, muzzle, (0.0, 1, 0.0))
    if breed.floppy:
        _floppy_ears(cv, breed, rng, coat)
    _eyes(cv, breed, rng)
    _nose_mouth(cv, breed, rng)
    _light(cv, rng)
    return cv.to_image()


def _write_one(job: tuple[str, int, int, int, int, int]) -> None:
    """Render and save one image; the temp name + os.replace means no half-written PNG is ever final."""
    path, seed, split_id, class_index, index, size = job
    image = render_cat(class_index, size, np.random.default_rng([seed, split_id, class_index, index]))
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        image.save(tmp, format="PNG")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_dataset(
    out: str | Path,
    per_class: int = 200,
    test_per_class: int = 40,
    image_size: int = 64,
    seed: int = 0,
    workers: int | None = None,
    progress: bool = True,
) -> dict[str, dict[str, int]]:
    """Write an ImageFolder tree ``out/{train,test}/<Class>/<Class>_<i:05d>.png``.

    Image i of class c in split s is seeded with ``[seed, s, c, i]``, so the output is byte-identical
    for any worker count and order, and train and test never share an image. Re-running over an
    existing folder overwrites the files it names (and leaves any extra, older files alone).
    Returns the number of images written per split and class.
    """
    _check_size(image_size)
    if per_class < 0 or test_per_class < 0:
        raise UsageError(f"image counts must be >= 0, got {per_class} and {test_per_class}")
    root = Path(out)
    counts: dict[str, dict[str, int]] = {}
    jobs = []
    for split_id, (split, count) in enumerate(zip(SPLITS, (per_class, test_per_class), strict=True)):
        counts[split] = dict.fromkeys(CLASS_NAMES, count)
        for c, name in enumerate(CLASS_NAMES):
            folder = root / split / name
            if count:
                folder.mkdir(parents=True, exist_ok=True)
            jobs += [(str(folder / f"{name}_{i:05d}.png"), seed, split_id, c, i, image_size) for i in range(count)]
    workers = max(1, min(workers or os.cpu_count() or 1, len(jobs)))
    with tqdm(total=len(jobs), disable=not progress, desc="toy cats", unit="img") as bar:
        if workers == 1:
            for job in jobs:
                _write_one(job)
                bar.update()
        else:
            chunk = max(1, min(32, len(jobs) // (8 * workers)))  # few round trips, still balanced at the end
            with multiprocessing.Pool(workers) as pool:
                for _ in pool.imap_unordered(_write_one, jobs, chunksize=chunk):
                    bar.update()
    root.mkdir(parents=True, exist_ok=True)
    write_toy_cats_marker(
        root, {"seed": seed, "image_size": image_size, "per_class": per_class, "test_per_class": test_per_class}
    )
    return counts


def preview_grid(size: int = 64, per_class: int = 8, seed: int = 0, zoom: int = 2) -> Image.Image:
    """One labelled row per class showing the first ``per_class`` training images of ``seed``.

    Images are enlarged with nearest-neighbour so the picture shows the real pixels the model sees.
    """
    cell = size * zoom
    font = ImageFont.load_default(size=14)
    label_w = 18 + max(int(font.getlength(name)) for name in CLASS_NAMES)
    grid = Image.new("RGB", (label_w + per_class * cell, len(CLASS_NAMES) * cell), "white")
    draw = ImageDraw.Draw(grid)
    for c, name in enumerate(CLASS_NAMES):
        draw.text((6, c * cell + cell // 2), name, fill="black", font=font, anchor="lm")
        for i in range(per_class):
            image = render_cat(c, size, np.random.default_rng([seed, SPLITS.index("train"), c, i]))
            grid.paste(image.resize((cell, cell), Image.Resampling.NEAREST), (label_w + i * cell, c * cell))
    return grid
