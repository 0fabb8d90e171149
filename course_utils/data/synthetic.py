"""A generated CIFAR-10 stand-in: 32x32 RGB images of ten shape and texture families.

Each class is one shape or texture family, drawn at a random position, size and
orientation, in a random colour over a random smooth background, with pixel noise.
Colours are drawn independently of the class, so only shape can tell classes apart,
and some pairs differ only in a detail: ring vs ring with a dot, disk vs square,
plus vs x, horizontal vs vertical stripes.
"""

from __future__ import annotations

import numpy as np
import torch

from course_utils import config
from course_utils.data.datasets import CIFAR10_CLASSES, ImageData

# The synthetic CIFAR-10 is a fixed dataset like the real one: run seeds change the
# split and the shuffling, never the images.
SYNTHETIC_SEED = 0

_SIZE = 32
_YS, _XS = np.mgrid[0:_SIZE, 0:_SIZE].astype(np.float32) + 0.5  # pixel centres


def _fill(distance: np.ndarray) -> np.ndarray:
    """Coverage in [0, 1] from a signed distance in pixels, anti-aliased over one pixel."""
    return np.clip(0.5 - distance, 0.0, 1.0)


def _disk(u: np.ndarray, v: np.ndarray, r: np.ndarray) -> np.ndarray:
    return _fill(np.hypot(u, v) - r)


def _square(u: np.ndarray, v: np.ndarray, r: np.ndarray) -> np.ndarray:
    return _fill(np.maximum(np.abs(u), np.abs(v)) - 0.85 * r)


def _ring(u: np.ndarray, v: np.ndarray, r: np.ndarray) -> np.ndarray:
    return _fill(np.abs(np.hypot(u, v) - 0.75 * r) - 0.2 * r)


def _ring_with_dot(u: np.ndarray, v: np.ndarray, r: np.ndarray) -> np.ndarray:
    return np.maximum(_ring(u, v, r), _disk(u, v, 0.25 * r))


def _cross(u: np.ndarray, v: np.ndarray, r: np.ndarray) -> np.ndarray:
    arm = 0.22 * r
    return np.maximum(_fill(np.maximum(np.abs(u) - r, np.abs(v) - arm)),
                      _fill(np.maximum(np.abs(v) - r, np.abs(u) - arm)))


def _triangle(u: np.ndarray, v: np.ndarray, r: np.ndarray) -> np.ndarray:
    # An equilateral triangle is the intersection of three half-planes 120 degrees apart.
    edges = [u * np.cos(a) + v * np.sin(a) for a in np.pi / 2 + np.arange(3) * 2 * np.pi / 3]
    return _fill(np.maximum.reduce(edges) - 0.5 * r)


def _checkerboard(u: np.ndarray, v: np.ndarray, r: np.ndarray) -> np.ndarray:
    cell = 0.5 * r
    pattern = np.clip(0.5 + 2.0 * np.sin(np.pi * u / cell) * np.sin(np.pi * v / cell), 0, 1)
    return _square(u, v, r) * pattern


def _stripes(u: np.ndarray, v: np.ndarray, r: np.ndarray) -> np.ndarray:
    period = 0.6 * r
    return _disk(u, v, r) * np.clip(0.5 + 2.0 * np.sin(2 * np.pi * u / period), 0, 1)


# One row per class, in CIFAR10_CLASSES order: (shape, base angle, angle jitter) in
# degrees. A jitter of 180 means any orientation.
_FAMILIES = [
    (_cross, 0, 15),            # airplane: a plus
    (_cross, 45, 15),           # automobile: the same cross turned into an x
    (_triangle, 0, 180),        # bird
    (_ring, 0, 180),            # cat
    (_disk, 0, 180),            # deer
    (_ring_with_dot, 0, 180),   # dog: cat's ring with a dot in the middle
    (_checkerboard, 0, 180),    # frog
    (_stripes, 90, 20),         # horse: horizontal stripes
    (_stripes, 0, 20),          # ship: vertical stripes
    (_square, 0, 180),          # truck: deer's disk with corners
]

# Difficulty, tuned so that a LeNet-style CNN trained for 5 epochs on 8,000 images
# reaches roughly 60-75 % test accuracy, and about 85 % after 15 epochs.
_CLUTTER = 0.45     # strength of the smooth colour clutter in the background (0: plain)
_NOISE = 0.14       # pixel noise is uniform in [-_NOISE, _NOISE] ([0, 1] units)
_CHUNK = 5_000      # images rendered at once: bounds the float32 working memory


def _smooth_field(n: int, rng: np.random.Generator, grid: int = 4) -> np.ndarray:
    """Random smooth colour fields ``(n, 3, 32, 32)``: a coarse grid, upsampled bilinearly."""
    coarse = rng.random((n, 3, grid, grid), dtype=np.float32)
    positions = np.linspace(0, grid - 1, _SIZE, dtype=np.float32)
    # weights[y, i]: how much coarse row i contributes to pixel row y (a tent function).
    weights = np.maximum(0, 1 - np.abs(positions[:, None] - np.arange(grid, dtype=np.float32)))
    return weights @ coarse @ weights.T


def _render(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Draw one image per label: uint8 ``(n, 3, 32, 32)``."""
    n = len(labels)
    centre = rng.uniform(10, 22, size=(n, 2)).astype(np.float32)
    radius = rng.uniform(5, 11, size=n).astype(np.float32)
    base = np.array([family[1] for family in _FAMILIES], dtype=np.float32)[labels]
    jitter = np.array([family[2] for family in _FAMILIES], dtype=np.float32)[labels]
    angle = np.deg2rad(base + jitter * rng.uniform(-1, 1, size=n).astype(np.float32))

    dx = _XS - centre[:, 0, None, None]
    dy = _YS - centre[:, 1, None, None]
    cos, sin = np.cos(angle)[:, None, None], np.sin(angle)[:, None, None]
    u, v = cos * dx + sin * dy, cos * dy - sin * dx  # coordinates in the shape's own frame
    coverage = np.empty((n, _SIZE, _SIZE), dtype=np.float32)
    for k, (shape, _, _) in enumerate(_FAMILIES):
        members = labels == k
        coverage[members] = shape(u[members], v[members], radius[members, None, None])

    background = rng.random((n, 3, 1, 1), dtype=np.float32)
    background = background + _CLUTTER * (_smooth_field(n, rng) - background)
    colour = rng.random((n, 3, 1, 1), dtype=np.float32)
    image = background + coverage[:, None] * (colour - background)
    # Uniform noise: three times cheaper to draw than Gaussian, and just as good here.
    image += _NOISE * (2 * rng.random(image.shape, dtype=np.float32) - 1)
    return (np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8)


def _generate(n: int, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    # Exactly balanced: every class appears n // 10 or n // 10 + 1 times.
    labels = rng.permutation(np.arange(n) % len(_FAMILIES))
    images = np.empty((n, 3, _SIZE, _SIZE), dtype=np.uint8)
    for start in range(0, n, _CHUNK):
        images[start:start + _CHUNK] = _render(labels[start:start + _CHUNK], rng)
    return torch.from_numpy(images), torch.from_numpy(labels.astype(np.int64))


def synthetic_cifar10(n_train: int = 50_000, n_test: int = 10_000,
                      seed: int = SYNTHETIC_SEED) -> ImageData:
    """Generate a CIFAR-10 stand-in: 32x32 RGB images of ten shape and texture families.

    The classes carry CIFAR-10's names, but the images are shapes, not photographs:
    airplane = plus, automobile = x, bird = triangle, cat = ring, deer = disk,
    dog = ring with a dot, frog = checkerboard, horse = horizontal stripes,
    ship = vertical stripes, truck = square. Position, size, orientation, colours,
    background and noise are random, so a linear model does poorly while a small CNN
    learns it well, though never perfectly. The same seed gives the same bytes.

    >>> data = synthetic_cifar10(n_train=100, n_test=50, seed=1)
    >>> data.train_images.dtype, tuple(data.train_images.shape)
    (torch.uint8, (100, 3, 32, 32))
    >>> torch.bincount(data.train_labels).tolist()
    [10, 10, 10, 10, 10, 10, 10, 10, 10, 10]
    """
    train_rng, test_rng = (np.random.default_rng([seed, part]) for part in (0, 1))
    train_images, train_labels = _generate(n_train, train_rng)
    test_images, test_labels = _generate(n_test, test_rng)
    return ImageData(train_images, train_labels, test_images, test_labels,
                     classes=list(CIFAR10_CLASSES), name="cifar10",
                     source=config.DataSource("embedded", f"synthetic shapes, seed {seed}"))

