"""Vectorised drawing primitives behind the procedural toy cats (see ``synth.py``).

Every shape is a coverage mask computed with a handful of numpy operations on a pixel grid, so an
image costs milliseconds instead of a Python loop per pixel. Shapes are described by an approximate
signed distance whose edge gets a one-pixel linear ramp; the supersampled canvas is then shrunk
with a Lanczos filter, which turns those ramps into smooth anti-aliased edges even at 16 px.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from PIL import Image

Array = np.ndarray
RGB = tuple[float, float, float]


class Canvas:
    """A float RGB image plus its pixel grid in canvas and in head coordinates.

    Canvas coordinates ``(u, v)`` span [-1, 1] with ``v`` pointing down. Head coordinates ``(x, y)``
    put the head centre at the origin with a head radius of about 1 and undo the random shift, scale
    and tilt of the portrait, so the breed traits are written once, in head units, whatever the pose.
    """

    def __init__(self, size: int, supersample: int, centre: tuple[float, float], scale: float, tilt: float) -> None:
        self.size = size
        self.n = n = size * supersample
        self.scale = scale
        self.rgb = np.zeros((n, n, 3), np.float32)
        t = (np.arange(n, dtype=np.float32) + 0.5) * np.float32(2.0 / n) - np.float32(1.0)
        self.u, self.v = np.meshgrid(t, t)
        self._centre = centre
        self._cos, self._sin = math.cos(tilt), math.sin(tilt)
        du, dv = self.u - np.float32(centre[0]), self.v - np.float32(centre[1])
        self.x = (np.float32(self._cos) * du + np.float32(self._sin) * dv) / np.float32(scale)
        self.y = (np.float32(-self._sin) * du + np.float32(self._cos) * dv) / np.float32(scale)
        self.px = 2.0 / (n * scale)  # one canvas pixel in head units: the width of an edge ramp

    def region(self, cx: float, cy: float, radius: float) -> tuple[slice, slice]:
        """Pixel window covering a head-space disc, so small features only touch their own pixels.

        A disc entirely off the canvas gives an empty window, which every drawing call accepts.
        """
        pu = self._centre[0] + self.scale * (self._cos * cx - self._sin * cy)
        pv = self._centre[1] + self.scale * (self._sin * cx + self._cos * cy)
        half = radius * self.scale * self.n / 2 + 2
        col, row = (pu + 1) * self.n / 2, (pv + 1) * self.n / 2
        c0, c1 = max(int(col - half), 0), min(int(col + half) + 1, self.n)
        r0, r1 = max(int(row - half), 0), min(int(row + half) + 1, self.n)
        return slice(r0, max(r0, r1)), slice(c0, max(c0, c1))

    def cells(self, spacing: float) -> int:
        """Noise-grid resolution giving features about ``spacing`` head units apart at this scale."""
        return max(2, round(2.0 / (self.scale * spacing)))

    def paint(self, window: tuple[slice, slice], alpha: Array, colour: Array | RGB) -> None:
        """Alpha-blend ``colour`` (one RGB or a per-pixel field) into a window, in place."""
        dst = self.rgb[window]
        dst += (np.asarray(colour, np.float32) - dst) * alpha[..., None]

    def enlarged(self, n: int) -> Array:
        """The image bilinearly resized to n x n (for layers that may be painted at low resolution)."""
        channels = [Image.fromarray(self.rgb[..., k]).resize((n, n), Image.Resampling.BILINEAR) for k in range(3)]
        return np.stack([np.asarray(c) for c in channels], axis=-1)

    def to_image(self) -> Image.Image:
        """Quantise and shrink the supersampled canvas to the requested size."""
        arr = (np.clip(self.rgb, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
        return Image.fromarray(arr).resize((self.size, self.size), Image.Resampling.LANCZOS)


def local(x: Array, y: Array, cx: float, cy: float, angle: float = 0.0) -> tuple[Array, Array]:
    """Offsets from ``(cx, cy)`` in a frame rotated by ``angle``: shapes are then drawn axis-aligned."""
    dx, dy = x - np.float32(cx), y - np.float32(cy)
    if angle == 0.0:
        return dx, dy
    c, s = np.float32(math.cos(angle)), np.float32(math.sin(angle))
    return c * dx + s * dy, c * dy - s * dx


def cover(dist: Array, px: float) -> Array:
    """Coverage from a signed distance (negative inside) with a one-pixel anti-aliasing ramp."""
    return np.clip(0.5 - dist / np.float32(px), 0.0, 1.0)


def smoothstep(e0: float, e1: float, x: Array) -> Array:
    """Hermite ramp from 0 at ``e0`` to 1 at ``e1`` (either order): soft thresholds for patterns."""
    t = np.clip((x - np.float32(e0)) / np.float32(e1 - e0), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def mix(a: Array, b: Array | RGB, t: Array) -> Array:
    """Per-pixel linear blend of two colours or colour fields."""
    return a + (np.asarray(b, np.float32) - a) * t[..., None]


def polar(dx: Array, dy: Array, rx: Array | float, ry: float) -> tuple[Array, Array]:
    """Normalised ellipse radius (1 on the outline) and angle, for outlines that carry fur tufts."""
    ex, ey = dx / rx, dy / np.float32(ry)
    return np.sqrt(ex * ex + ey * ey), np.arctan2(ey, ex)


def ellipse(dx: Array, dy: Array, rx: float, ry: float) -> Array:
    """Approximate signed distance to an axis-aligned ellipse (exact for circles)."""
    return (polar(dx, dy, rx, ry)[0] - 1.0) * np.float32(min(rx, ry))


def fringe(theta: Array, amp: float, teeth: int, phase: float) -> Array:
    """Radial fur tufts: squared triangle waves around the outline give pointed locks of hair.

    Two waves with unrelated counts make locks of uneven length instead of a regular saw blade.
    """
    locks = np.zeros_like(theta)
    for count, weight in ((teeth, 0.6), (teeth * 2 - 5, 0.4)):
        saw = (theta * np.float32(count / (2 * math.pi)) + np.float32(phase * count)) % 1.0
        tri = 1.0 - np.abs(2.0 * saw - 1.0)
        locks += np.float32(weight) * tri * tri
    return np.float32(amp) * locks


def lens(dx: Array, dy: Array, hw: float, hh: float, p: float) -> Array:
    """Eye shape: ``p`` = 0.5 is an ellipse, ``p`` = 1 an almond with pointed corners."""
    t = np.clip(1.0 - (dx / np.float32(hw)) ** 2, 0.0, None)
    return np.maximum(np.abs(dy) - np.float32(hh) * t**p, np.abs(dx) - np.float32(hw))


def triangle(dx: Array, dy: Array, height: float, half_width: float, curve: float) -> Array:
    """Isosceles triangle with its base on the local x axis pointing to local -y (an ear).

    ``curve`` < 1 bows the sides outwards, which reads as a rounded rather than a paper ear.
    """
    t = -dy
    half = np.float32(half_width) * np.clip(1.0 - t / np.float32(height), 0.0, 1.0) ** curve
    return np.maximum(np.abs(dx) - half, np.maximum(-t, t - np.float32(height)))


def segment(x: Array, y: Array, a: tuple[float, float], b: tuple[float, float], width: float) -> Array:
    """Signed distance to a stroke of ``width`` from ``a`` to ``b`` (whiskers, mouth lines)."""
    ax, ay = a
    bx, by = b[0] - ax, b[1] - ay
    px, py = x - np.float32(ax), y - np.float32(ay)
    t = np.clip((px * bx + py * by) / np.float32(bx * bx + by * by), 0.0, 1.0)
    ex, ey = px - t * bx, py - t * by
    return np.sqrt(ex * ex + ey * ey) - np.float32(width / 2)


def value_noise(rng: np.random.Generator, cells: int, n: int) -> Array:
    """Smooth random field in about [0, 1]: a random grid upsampled bicubically (fast, seamless)."""
    grid = rng.random((cells, cells), dtype=np.float32)
    return np.asarray(Image.fromarray(grid).resize((n, n), Image.Resampling.BICUBIC))


def dots(rng: np.random.Generator, x: Array, y: Array, spacing: float, radius: tuple[float, float], keep: float) -> Array:
    """Signed distance (in cell units) to randomly sized round dots, one per cell of a jittered grid.

    Each pixel only looks at its own cell, which keeps this to a few array operations; dots are
    kept inside their cell so none is cut off. The grid gets a random offset and angle, and
    ``keep`` (the fraction of cells that get a dot) breaks up the lattice.
    """
    table = 16
    lo, hi = radius
    r = rng.uniform(lo, hi, (table, table)) * (rng.random((table, table)) < keep)
    ox, oy = (hi + rng.random((2, table, table)) * (1.0 - 2.0 * hi)).astype(np.float32)
    x, y = local(x, y, rng.random(), rng.random(), rng.uniform(0.0, 2 * math.pi))
    gx, gy = x / np.float32(spacing), y / np.float32(spacing)
    ix, iy = np.floor(gx), np.floor(gy)
    cell = iy.astype(np.intp) % table, ix.astype(np.intp) % table
    return np.hypot(gx - ix - ox[cell], gy - iy - oy[cell]) - r[cell].astype(np.float32)


# Coat patterns: each returns where (0..1) the pattern colour covers the coat. Sizes are in head
# units, so a pattern scales with the head and, being drawn in head coordinates, turns with it.


def ticked(cv: Canvas, rng: np.random.Generator) -> Array:
    """Agouti ticking: every hair is banded, so a pixel-fine grain with no larger structure."""
    return 0.4 * smoothstep(0.3, 0.8, value_noise(rng, 2 * cv.size, cv.n))


def rosettes(cv: Canvas, rng: np.random.Generator) -> Array:
    """Leopard rosettes: large dots with a dark rim around a half-dark centre."""
    d = dots(rng, cv.x, cv.y, 0.36, (0.24, 0.36), 0.85)
    return cover(d, 0.06) - 0.55 * cover(d + 0.1, 0.06)


def spots(cv: Canvas, rng: np.random.Generator) -> Array:
    """Small, round, solid spots."""
    return cover(dots(rng, cv.x, cv.y, 0.22, (0.15, 0.28), 0.65), 0.1)


def mackerel(cv: Canvas, rng: np.random.Generator) -> Array:
    """Tabby stripes radiating from the muzzle: upright on the forehead, sideways on the cheeks."""
    dx, dy = local(cv.x, cv.y, 0.0, 0.35)
    warp = value_noise(rng, cv.cells(0.9), cv.n)
    wave = np.sin(np.arctan2(dx, -dy) * rng.integers(13, 19) + 5.0 * warp + rng.uniform(0, 2 * math.pi))
    return smoothstep(0.4, 0.8, wave) * smoothstep(0.3, 0.6, np.hypot(dx, dy))


def wrinkles(cv: Canvas, rng: np.random.Generator) -> Array:
    """Hairless skin folds: thin wavy lines across the forehead and the neck."""
    warp = value_noise(rng, cv.cells(0.7), cv.n)
    lines = smoothstep(0.7, 0.97, np.sin(cv.y * rng.uniform(20, 26) + 3.0 * warp + rng.uniform(0, 2 * math.pi)))
    brow = smoothstep(-0.1, -0.35, cv.y) * smoothstep(0.7, 0.4, np.abs(cv.x))
    return lines * (brow + 0.6 * smoothstep(0.85, 1.0, cv.y) * smoothstep(1.5, 1.2, cv.y))


def patches(cv: Canvas, rng: np.random.Generator) -> Array:
    """Piebald dog coats: a few large blobs of the second colour, sometimes none."""
    t = rng.uniform(0.5, 0.75)
    return smoothstep(t, t + 0.04, value_noise(rng, cv.cells(1.1), cv.n))


PATTERNS: dict[str, Callable[[Canvas, np.random.Generator], Array]] = {
    "ticked": ticked,
    "rosettes": rosettes,
    "spots": spots,
    "mackerel": mackerel,
    "wrinkles": wrinkles,
    "patches": patches,
}
