"""A generated CIFAR-10 stand-in: 32x32 RGB pictures of ten kinds of object in a scene.

Real CIFAR-10 is hard for a small network because a class varies a lot (pose, size,
position, colour, background) while some classes look alike (cat and dog, automobile and
truck, deer and horse, airplane and bird). The stand-in copies those properties with
drawn silhouettes rather than photographs:

- each class is an object built from parts (a car is a body, a cabin and two wheels; a
  deer is a body, four legs, a neck, a head and antlers), seen at a random position,
  size, aspect, tilt and facing left or right, partly outside the frame at times;
- look-alike pairs share most parts and differ in a detail: pointed or floppy ears,
  antlers or a mane, a cabin or a cargo box;
- colours, surface textures (plain, stripes, spots, mottling) and scenes (sky, grass,
  road, water, forest, indoors) depend on the class only through overlapping odds, as
  in photographs (ships are often on water, but so are birds and frogs): a cue that
  helps, and misleads as often;
- clutter blobs in the background, shading across the object, and pixel noise.

So no single statistic gives the class away (mean colour picks it about a fifth of the
time), texture and shape cues disagree, and a network has to find the parts.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from course_utils import config
from course_utils.data.datasets import CIFAR10_CLASSES, ImageData

__all__ = ["SYNTHETIC_SEED", "synthetic_cifar10"]

# The synthetic CIFAR-10 is a fixed dataset like the real one: run seeds change the
# split and the shuffling, never the images.
SYNTHETIC_SEED = 0

_SIZE = 32
_YS, _XS = np.mgrid[0:_SIZE, 0:_SIZE].astype(np.float32) + 0.5  # pixel centres
_CHUNK = 4_000  # images rendered at once: bounds the float32 working memory

Array = np.ndarray
Param = float | Array  # a number, or one value per image, shaped (n, 1, 1)


# --- signed distances of the parts ------------------------------------------------------
# In an object's own frame (units of its size, x forward, y down); negative inside.

def _ellipse(u: Array, v: Array, cx: Param, cy: Param, a: Param, b: Param) -> Array:
    # Scaled by the smaller half-axis: exact for circles, close enough for the rest.
    return (np.hypot((u - cx) / a, (v - cy) / b) - 1) * np.minimum(a, b)


def _box(u: Array, v: Array, cx: Param, cy: Param, half_w: Param, half_h: Param) -> Array:
    return np.maximum(np.abs(u - cx) - half_w, np.abs(v - cy) - half_h)


def _segment(u: Array, v: Array, start: tuple[Param, Param], end: tuple[Param, Param],
             half_width: Param) -> Array:
    """A limb: every point within ``half_width`` of the segment from start to end."""
    (x0, y0), (x1, y1) = start, end
    dx, dy = x1 - x0, y1 - y0
    along = np.clip(((u - x0) * dx + (v - y0) * dy) / (dx * dx + dy * dy), 0, 1)
    return np.hypot(u - x0 - along * dx, v - y0 - along * dy) - half_width


def _polygon(u: Array, v: Array, corners: Sequence[tuple[Param, Param]]) -> Array:
    """A convex polygon, its corners in either order around it."""
    edges = list(zip(corners, [*corners[1:], corners[0]], strict=True))
    # Twice the signed area: its sign says which side of each edge is outside.
    turn = np.sign(sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in edges))
    sides = [turn * ((u - x0) * (y1 - y0) - (v - y0) * (x1 - x0)) / np.hypot(x1 - x0, y1 - y0)
             for (x0, y0), (x1, y1) in edges]
    return np.maximum.reduce(sides)


def _union(*parts: Array) -> Array:
    return np.minimum.reduce(parts)


# --- the ten objects --------------------------------------------------------------------
# Each returns (body, details): signed distances of the silhouette and of the darker
# details (wheels, eyes, windows). ``s`` holds three numbers in [-1, 1] per image that
# vary the proportions (leg length, wing beat, neck angle), so no two of a class match.

Shape = Callable[[Array, Array, Array], tuple[Array, Array]]


def _airplane(u: Array, v: Array, s: Array) -> tuple[Array, Array]:
    sweep = 0.2 * s[0]
    body = _union(
        _ellipse(u, v, 0, 0, 1.25, 0.17),
        _polygon(u, v, [(0.25, 0), (-0.55 + sweep, -1.05), (-0.8 + sweep, -1.05), (-0.3, 0)]),
        _polygon(u, v, [(0.25, 0), (-0.3, 0), (-0.8 + sweep, 1.05), (-0.55 + sweep, 1.05)]),
        _polygon(u, v, [(-0.9, 0), (-1.25, -0.5), (-1.4, -0.5), (-1.15, 0)]),
        _polygon(u, v, [(-0.9, 0), (-1.15, 0), (-1.4, 0.5), (-1.25, 0.5)]))
    windows = _ellipse(u, v, 0.95, 0, 0.15, 0.08)
    return body, windows


def _bird(u: Array, v: Array, s: Array) -> tuple[Array, Array]:
    beat = 0.35 * s[0]  # wings up or down
    body = _union(
        _ellipse(u, v, 0, 0.1, 0.6, 0.3),
        _ellipse(u, v, 0.6, -0.2, 0.25, 0.23),
        _polygon(u, v, [(0.8, -0.28), (1.05, -0.16), (0.8, -0.1)]),
        _polygon(u, v, [(-0.2, 0), (-0.55, -0.85 + beat), (-0.3, -0.9 + beat), (0.3, 0)]),
        _polygon(u, v, [(-0.45, 0.05), (-1.05, -0.15 - 0.2 * s[1]), (-1.05, 0.35)]))
    eye = _ellipse(u, v, 0.66, -0.25, 0.07, 0.07)
    return body, eye


def _ship(u: Array, v: Array, s: Array) -> tuple[Array, Array]:
    body = _union(
        _polygon(u, v, [(-1.2, 0.05), (1.3, 0.05), (0.95, 0.5), (-1.0, 0.5)]),
        _box(u, v, -0.2 + 0.2 * s[0], -0.18, 0.5, 0.24),
        _box(u, v, 0.05 + 0.3 * s[1], -0.6, 0.09, 0.22))
    windows = _box(u, v, -0.2 + 0.2 * s[0], -0.2, 0.38, 0.06)
    return body, windows


def _car(u: Array, v: Array, s: Array) -> tuple[Array, Array]:
    roof = -0.5 - 0.1 * s[0]
    body = _union(
        _box(u, v, 0, 0.1, 1.05, 0.25),
        _polygon(u, v, [(-0.6, -0.15), (-0.35, roof), (0.3, roof), (0.55, -0.15)]))
    details = _union(_ellipse(u, v, -0.62, 0.38, 0.23, 0.23),
                     _ellipse(u, v, 0.62, 0.38, 0.23, 0.23),
                     _polygon(u, v, [(-0.45, -0.17), (-0.3, roof + 0.08), (0.25, roof + 0.08),
                                     (0.42, -0.17)]))
    return body, details


def _truck(u: Array, v: Array, s: Array) -> tuple[Array, Array]:
    height = 0.55 + 0.1 * s[0]
    body = _union(
        _box(u, v, -0.3, 0.3 - height, 0.8, height),
        _box(u, v, 0.8, -0.05, 0.3, 0.35),
        _box(u, v, 0, 0.27, 1.1, 0.08))
    details = _union(_ellipse(u, v, -0.75, 0.42, 0.2, 0.2),
                     _ellipse(u, v, -0.3, 0.42, 0.2, 0.2),
                     _ellipse(u, v, 0.75, 0.42, 0.2, 0.2),
                     _box(u, v, 0.85, -0.2, 0.15, 0.12))
    return body, details


def _cat(u: Array, v: Array, s: Array) -> tuple[Array, Array]:
    tail = -0.45 + 0.35 * s[0]
    body = _union(
        _ellipse(u, v, -0.25, 0.25, 0.7, 0.33),
        _ellipse(u, v, 0.62, -0.2, 0.34, 0.32),
        _polygon(u, v, [(0.36, -0.38), (0.44, -0.85), (0.6, -0.45)]),   # pointed ears
        _polygon(u, v, [(0.66, -0.45), (0.86, -0.85), (0.9, -0.35)]),
        _segment(u, v, (-0.85, 0.2), (-1.2, tail), 0.08),
        _segment(u, v, (-0.6, 0.4), (-0.65, 0.85), 0.08),
        _segment(u, v, (0.25, 0.4), (0.3, 0.85), 0.08))
    eyes = _union(_ellipse(u, v, 0.55, -0.25, 0.07, 0.05),
                  _ellipse(u, v, 0.78, -0.25, 0.07, 0.05))
    return body, eyes


def _dog(u: Array, v: Array, s: Array) -> tuple[Array, Array]:
    body = _union(
        _ellipse(u, v, -0.25, 0.2, 0.75, 0.36),
        _ellipse(u, v, 0.6, -0.25, 0.33, 0.3),
        _ellipse(u, v, 0.98, -0.15, 0.24, 0.14),                       # snout
        _ellipse(u, v, 0.42, -0.05, 0.11, 0.3),                        # floppy ear
        _segment(u, v, (-0.9, 0.05), (-1.2, -0.3 + 0.3 * s[0]), 0.07),
        _segment(u, v, (-0.65, 0.4), (-0.65, 0.9), 0.1),
        _segment(u, v, (0.25, 0.4), (0.25, 0.9), 0.1))
    details = _union(_ellipse(u, v, 0.68, -0.32, 0.06, 0.06),
                     _ellipse(u, v, 1.18, -0.18, 0.07, 0.06))          # eye, nose
    return body, details


def _legs(u: Array, v: Array, reach: Param, half_width: float) -> list[Array]:
    return [_segment(u, v, (x, 0.1), (x + 0.05, reach), half_width)
            for x in (-0.6, -0.4, 0.3, 0.5)]


def _deer(u: Array, v: Array, s: Array) -> tuple[Array, Array]:
    reach = 0.95 + 0.15 * s[0]
    head = (0.8 + 0.1 * s[1], -0.75)
    body = _union(
        _ellipse(u, v, -0.1, 0, 0.72, 0.28),
        _segment(u, v, (0.45, -0.1), head, 0.1),
        _ellipse(u, v, head[0] + 0.12, head[1], 0.24, 0.13),
        *_legs(u, v, reach, 0.05),
        _segment(u, v, (head[0], head[1] - 0.1), (head[0] - 0.2, head[1] - 0.55), 0.04),
        _segment(u, v, (head[0] - 0.1, head[1] - 0.35), (head[0] - 0.4, head[1] - 0.5), 0.04),
        _segment(u, v, (head[0] + 0.05, head[1] - 0.1), (head[0] + 0.3, head[1] - 0.55), 0.04))
    eye = _ellipse(u, v, head[0] + 0.15, head[1] - 0.03, 0.05, 0.05)
    return body, eye


def _horse(u: Array, v: Array, s: Array) -> tuple[Array, Array]:
    reach = 0.95 + 0.15 * s[0]
    head = (0.85, -0.6 - 0.1 * s[1])
    body = _union(
        _ellipse(u, v, -0.1, 0, 0.78, 0.32),
        _segment(u, v, (0.4, -0.05), head, 0.16),
        _segment(u, v, head, (head[0] + 0.35, head[1] + 0.2), 0.12),
        *_legs(u, v, reach, 0.08),
        _segment(u, v, (-0.85, -0.05), (-1.1, 0.5 + 0.2 * s[2]), 0.08))
    mane = _segment(u, v, (0.35, -0.2), (head[0] - 0.05, head[1] - 0.1), 0.06)
    return body, mane


def _frog(u: Array, v: Array, s: Array) -> tuple[Array, Array]:
    spread = 0.8 + 0.1 * s[0]
    body = _union(
        _ellipse(u, v, 0, 0.15, 0.8, 0.42),
        _ellipse(u, v, -0.38, -0.25, 0.19, 0.18),
        _ellipse(u, v, 0.38, -0.25, 0.19, 0.18),
        _ellipse(u, v, -spread, 0.48, 0.32, 0.12),
        _ellipse(u, v, spread, 0.48, 0.32, 0.12))
    eyes = _union(_ellipse(u, v, -0.38, -0.27, 0.08, 0.08),
                  _ellipse(u, v, 0.38, -0.27, 0.08, 0.08))
    return body, eyes


# CIFAR10_CLASSES order.
_SHAPES: list[Shape] = [_airplane, _car, _bird, _cat, _deer, _dog, _frog, _horse, _ship, _truck]

# How far each class tilts (degrees either way): planes and birds turn in the air,
# animals and vehicles stand on the ground.
_TILT = np.array([40, 12, 35, 15, 12, 15, 20, 12, 10, 10], dtype=np.float32)


# --- colours, textures and scenes -------------------------------------------------------

_COLOURS = np.array([
    [0.92, 0.92, 0.90],  # white
    [0.55, 0.56, 0.58],  # grey
    [0.12, 0.12, 0.13],  # black
    [0.45, 0.28, 0.15],  # brown
    [0.78, 0.62, 0.42],  # tan
    [0.80, 0.15, 0.12],  # red
    [0.15, 0.30, 0.70],  # blue
    [0.25, 0.55, 0.20],  # green
    [0.90, 0.80, 0.20],  # yellow
    [0.90, 0.50, 0.15],  # orange
], dtype=np.float32)

# Odds of each colour (columns, as in _COLOURS) per class (rows): overlapping on purpose.
_COLOUR_ODDS = np.array([
    # wh   gr   bl   br   tan  red  blu  grn  yel  ora
    [.30, .30, .05, .00, .05, .10, .10, .00, .05, .05],  # airplane
    [.15, .10, .15, .00, .05, .20, .15, .05, .10, .05],  # automobile
    [.10, .10, .15, .25, .05, .10, .10, .05, .05, .05],  # bird
    [.10, .20, .20, .15, .10, .00, .00, .00, .00, .25],  # cat
    [.00, .10, .00, .45, .40, .00, .00, .00, .00, .05],  # deer
    [.15, .10, .20, .30, .20, .00, .00, .00, .00, .05],  # dog
    [.00, .05, .00, .25, .10, .00, .00, .45, .10, .05],  # frog
    [.15, .05, .20, .40, .15, .00, .00, .00, .00, .05],  # horse
    [.30, .25, .10, .05, .00, .15, .10, .00, .00, .05],  # ship
    [.20, .15, .10, .00, .00, .20, .15, .05, .10, .05],  # truck
], dtype=np.float32)

_TEXTURE_NAMES = ("plain", "stripes", "spots", "mottled")
_TEXTURE_ODDS = np.array([
    [.70, .15, .05, .10],  # airplane
    [.70, .15, .05, .10],  # automobile
    [.35, .20, .15, .30],  # bird
    [.30, .35, .10, .25],  # cat
    [.45, .10, .25, .20],  # deer
    [.35, .10, .25, .30],  # dog
    [.15, .10, .45, .30],  # frog
    [.55, .15, .10, .20],  # horse
    [.60, .20, .05, .15],  # ship
    [.60, .20, .05, .15],  # truck
], dtype=np.float32)

# Scenes: sky above the horizon, ground below it (top colour, bottom colour).
_SCENES = np.array([
    [[0.45, 0.65, 0.90], [0.70, 0.80, 0.95]],  # sky: blue into haze
    [[0.55, 0.70, 0.85], [0.35, 0.55, 0.25]],  # grass under sky
    [[0.60, 0.65, 0.72], [0.40, 0.40, 0.42]],  # road under an overcast sky
    [[0.60, 0.72, 0.85], [0.15, 0.35, 0.50]],  # water under sky
    [[0.20, 0.35, 0.20], [0.30, 0.25, 0.15]],  # forest
    [[0.80, 0.75, 0.65], [0.50, 0.38, 0.28]],  # indoors: wall and floor
], dtype=np.float32)
_SCENE_ODDS = np.array([
    # sky  grass road water forest indoor
    [.55, .15, .20, .10, .00, .00],  # airplane
    [.10, .15, .55, .05, .05, .10],  # automobile
    [.35, .25, .00, .10, .25, .05],  # bird
    [.00, .25, .15, .00, .10, .50],  # cat
    [.05, .45, .05, .00, .45, .00],  # deer
    [.00, .40, .15, .00, .10, .35],  # dog
    [.00, .35, .00, .25, .30, .10],  # frog
    [.10, .55, .05, .00, .25, .05],  # horse
    [.20, .00, .05, .70, .00, .05],  # ship
    [.10, .15, .60, .00, .10, .05],  # truck
], dtype=np.float32)

_COLOUR_JITTER = 0.10  # per-channel spread around an object's or scene's base colour
_CAMOUFLAGE = 0.5      # an object mixes up to this much of the scene's mean colour in
_CLUTTER = 4            # up to this many blobs and strokes behind the object
_OCCLUSION = 0.4        # the chance of a blob or stroke in front of it
_NOISE = 0.10           # pixel noise is uniform in [-_NOISE, _NOISE] ([0, 1] units)


def _pick(odds: Array, labels: Array, rng: np.random.Generator) -> Array:
    """One index per label, drawn with the odds of its row."""
    cumulative = np.cumsum(odds / odds.sum(axis=1, keepdims=True), axis=1)[labels]
    return (rng.random((len(labels), 1)) > cumulative).sum(axis=1).clip(0, odds.shape[1] - 1)


def _smooth_field(n: int, rng: np.random.Generator, grid: int) -> Array:
    """Random smooth fields ``(n, 32, 32)`` in [0, 1]: a coarse grid, upsampled bilinearly."""
    coarse = rng.random((n, grid, grid), dtype=np.float32)
    positions = np.linspace(0, grid - 1, _SIZE, dtype=np.float32)
    # weights[y, i]: how much coarse row i contributes to pixel row y (a tent function).
    weights = np.maximum(0, 1 - np.abs(positions[:, None] - np.arange(grid, dtype=np.float32)))
    return weights @ coarse @ weights.T


def _fill(distance: Array) -> Array:
    """Coverage in [0, 1] from a signed distance in pixels, anti-aliased over one pixel."""
    return np.clip(0.5 - distance, 0.0, 1.0)


def _scenes(labels: Array, rng: np.random.Generator) -> Array:
    """Backgrounds ``(n, 3, 32, 32)``: a horizon between two jittered colours, textured."""
    n = len(labels)
    pair = _SCENES[_pick(_SCENE_ODDS, labels, rng)]  # (n, 2, 3)
    pair = pair + _COLOUR_JITTER * rng.standard_normal(pair.shape, dtype=np.float32)
    horizon = rng.uniform(6, 26, size=(n, 1, 1)).astype(np.float32)
    softness = rng.uniform(1, 5, size=(n, 1, 1)).astype(np.float32)
    below = 1 / (1 + np.exp((horizon - _YS) / softness))  # 0 above the horizon, 1 below
    image = pair[:, 0, :, None, None] + below[:, None] * (pair[:, 1] - pair[:, 0])[..., None, None]
    texture = _smooth_field(n, rng, grid=rng.choice([4, 8])) - 0.5
    strength = rng.uniform(0.1, 0.5, size=(n, 1, 1, 1)).astype(np.float32)
    return image + strength * texture[:, None]


def _surface(labels: Array, u: Array, v: Array, rng: np.random.Generator) -> Array:
    """Brightness ``(n, 32, 32)`` of an object's surface: its texture and shading."""
    n = len(labels)
    kind = _pick(_TEXTURE_ODDS, labels, rng)[:, None, None]
    period = rng.uniform(0.25, 0.5, size=(n, 1, 1)).astype(np.float32)
    stripes = 0.5 + 0.5 * np.sin(2 * np.pi * (u + 0.4 * v) / period)
    blobs = _smooth_field(n, rng, grid=8)
    spots = (blobs > 0.62).astype(np.float32)
    pattern = np.select([kind == 1, kind == 2, kind == 3], [stripes, spots, blobs], 0.0)
    depth = rng.uniform(0.3, 0.6, size=(n, 1, 1)).astype(np.float32)
    shading = 1.1 - 0.25 * (v + 1)  # lit from above
    return shading * (1 - depth * pattern)


def _clutter(image: Array, rng: np.random.Generator, colour: Array, count: int,
             chance: float) -> None:
    """Paint up to ``count`` blobs and limb-like strokes onto ``image`` (in place).

    Some take the object's ``colour`` ``(n, 3, 1, 1)``, so that colour does not find it.
    """
    n = len(image)
    for _ in range(count):
        ends = rng.uniform(-2, _SIZE + 2, size=(4, n, 1, 1)).astype(np.float32)
        width = rng.uniform(0.6, 3.5, size=(2, n, 1, 1)).astype(np.float32)
        blob = _ellipse(_XS, _YS, ends[0], ends[1], width[0] + 1, width[1] + 1)
        # A stroke runs 40 % of the way from one random point towards another.
        tip = (ends[0] + 0.4 * (ends[2] - ends[0]), ends[1] + 0.4 * (ends[3] - ends[1]))
        stroke = _segment(_XS, _YS, (ends[0], ends[1]), tip, 0.5 * width[0])
        shape = np.where(rng.random((n, 1, 1)) < 0.5, blob, stroke)
        present = rng.random((n, 1, 1)) < chance
        paint = np.where(rng.random((n, 1, 1, 1)) < 0.3, colour,
                         rng.random((n, 3, 1, 1), dtype=np.float32))
        image += (present * _fill(shape))[:, None] * (paint - image)


def _render(labels: Array, rng: np.random.Generator) -> Array:
    """Draw one picture per label: uint8 ``(n, 3, 32, 32)``."""
    n = len(labels)
    image = _scenes(labels, rng)
    base = _COLOURS[_pick(_COLOUR_ODDS, labels, rng)]
    colour = base + _COLOUR_JITTER * rng.standard_normal(base.shape, dtype=np.float32)
    # Camouflage: the object takes on some of the scene's colour.
    blend = rng.uniform(0, _CAMOUFLAGE, size=(n, 1)).astype(np.float32)
    colour = (colour + blend * (image.mean(axis=(2, 3)) - colour))[..., None, None]
    _clutter(image, rng, colour, count=_CLUTTER, chance=0.6)

    # The object's pose: where, how big, how stretched, sheared and tilted, which way.
    centre = rng.uniform(10, 22, size=(2, n, 1, 1)).astype(np.float32)
    scale = rng.uniform(5, 11, size=(n, 1, 1)).astype(np.float32)  # pixels per unit
    aspect = np.exp(rng.uniform(-0.25, 0.25, size=(n, 1, 1))).astype(np.float32)
    shear = rng.uniform(-0.3, 0.3, size=(n, 1, 1)).astype(np.float32)
    tilt = np.deg2rad(_TILT[labels] * rng.uniform(-1, 1, size=n)).astype(np.float32)
    facing = np.where(rng.random(n) < 0.5, -1, 1).astype(np.float32)[:, None, None]
    dx, dy = _XS - centre[0], _YS - centre[1]
    cos, sin = np.cos(tilt)[:, None, None], np.sin(tilt)[:, None, None]
    v = (cos * dy - sin * dx) * aspect / scale
    u = facing * ((cos * dx + sin * dy) / (scale * aspect) + shear * v)
    proportions = rng.uniform(-1, 1, size=(3, n, 1, 1)).astype(np.float32)

    body = np.empty((n, _SIZE, _SIZE), dtype=np.float32)
    details = np.empty((n, _SIZE, _SIZE), dtype=np.float32)
    for k, shape in enumerate(_SHAPES):
        members = labels == k
        if members.any():
            outline, inner = shape(u[members], v[members], proportions[:, members])
            body[members] = _fill(outline * scale[members])
            details[members] = _fill(inner * scale[members])
    details *= body  # details never stick out of the silhouette

    surface = colour * _surface(labels, u, v, rng)[:, None]
    image += body[:, None] * (surface - image)
    image += details[:, None] * (0.35 * surface - image)  # details are darker
    _clutter(image, rng, colour, count=1, chance=_OCCLUSION)  # in front: occluders
    # Uniform noise: three times cheaper to draw than Gaussian, and just as good here.
    image += _NOISE * (2 * rng.random(image.shape, dtype=np.float32) - 1)
    return (np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8)


def _generate(n: int, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    # Exactly balanced: every class appears n // 10 or n // 10 + 1 times.
    labels = rng.permutation(np.arange(n) % len(_SHAPES))
    images = np.empty((n, 3, _SIZE, _SIZE), dtype=np.uint8)
    for start in range(0, n, _CHUNK):
        images[start:start + _CHUNK] = _render(labels[start:start + _CHUNK], rng)
    return torch.from_numpy(images), torch.from_numpy(labels.astype(np.int64))


def synthetic_cifar10(n_train: int = 50_000, n_test: int = 10_000,
                      seed: int = SYNTHETIC_SEED) -> ImageData:
    """Generate a CIFAR-10 stand-in: 32x32 RGB pictures of ten kinds of object in a scene.

    Each class is a silhouette built from parts (an airplane's wings and tail, a car's
    cabin and wheels, a cat's pointed ears, a deer's antlers), drawn at a random
    position, size, aspect, tilt and facing, in a colour and surface texture and over a
    scene that depend on the class only through overlapping odds, with background
    clutter and pixel noise. Look-alike pairs (cat/dog, automobile/truck, deer/horse,
    airplane/bird) differ in details, as in CIFAR-10. The same seed gives the same bytes.

    >>> data = synthetic_cifar10(n_train=100, n_test=50, seed=1)
    >>> data.train_images.dtype, tuple(data.train_images.shape)
    (torch.uint8, (100, 3, 32, 32))
    >>> torch.bincount(data.train_labels).tolist()
    [10, 10, 10, 10, 10, 10, 10, 10, 10, 10]
    >>> torch.equal(synthetic_cifar10(20, 10, seed=1).train_images, data.train_images[:20])
    False
    """
    if n_train < 0 or n_test < 0:
        raise ValueError(f"n_train and n_test count images and must be >= 0, "
                         f"got {n_train} and {n_test}.")
    train_rng, test_rng = (np.random.default_rng([seed, part]) for part in (0, 1))
    train_images, train_labels = _generate(n_train, train_rng)
    test_images, test_labels = _generate(n_test, test_rng)
    return ImageData(train_images, train_labels, test_images, test_labels,
                     classes=list(CIFAR10_CLASSES), name="cifar10",
                     source=config.DataSource("embedded", f"generated objects in scenes, "
                                                          f"seed {seed}"))
