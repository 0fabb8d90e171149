"""Binary segmentation data: Oxford-IIIT Pet masks via torchvision, or a generated set.

::

    from course_utils import config
    from course_utils.data import segmentation as seg_data
    run = config.start_run(dataset=seg_data.PETS, seed=0)
    pets = seg_data.load_segmentation(run, size=64)
    loaders = seg_data.make_segmentation_loaders(pets, run.profile, seed=run.seed)

``load_segmentation`` returns a :class:`SegmentationData` of uint8 images
``(N, 3, size, size)`` and masks ``(N, 1, size, size)`` with 1 for foreground:

- real: the Oxford-IIIT Pet dataset (7,349 photos of cats and dogs) with its trimaps,
  downloaded by ``torchvision.datasets.OxfordIIITPet`` into ``config.data_dir()``. A
  trimap marks each pixel as pet (1), background (2) or the unsure border between them
  (3); the pet and its border become foreground. Photos and masks are resized to a
  square ``size`` (bilinear for photos, nearest for masks, so masks stay binary).
- embedded (smoke profile, offline, ``COURSE_DATA=embedded``): generated images in which
  striped blobs are foreground and plain blobs are background clutter
  (:func:`synthetic_segmentation`), so colour alone does not find the foreground.

:mod:`course_utils.config` knows the Pet dataset's host and files, so that
``start_run(dataset=PETS)`` decides between real and embedded data and says so in the run
record, as for MNIST and CIFAR-10.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torchvision
from PIL import Image
from torch.utils.data import DataLoader, TensorDataset

from course_utils import config
from course_utils.data.datasets import _normalisation_constants, normalize_images
from course_utils.data.loaders import Loaders, split_for_profile
from course_utils.data.sources import DOWNLOAD_TIMEOUT, real_or_substitute, socket_timeout
from course_utils.data.synthetic import SYNTHETIC_SEED

PETS = "oxford_pet"
PET_FOLDER = "oxford-iiit-pet"
# Trimap values of OxfordIIITPet's "segmentation" target.
PET, BACKGROUND, BORDER = 1, 2, 3


@dataclass(eq=False)
class SegmentationData:
    """Images ``(N, C, H, W)`` and binary masks ``(N, 1, H, W)``, both uint8, per split.

    >>> data = synthetic_segmentation(n_train=4, n_test=2, size=32)
    >>> tuple(data.train_images.shape), tuple(data.train_masks.shape), data.test_masks.max().item()
    ((4, 3, 32, 32), (4, 1, 32, 32), 1)
    """

    train_images: torch.Tensor
    train_masks: torch.Tensor
    test_images: torch.Tensor
    test_masks: torch.Tensor
    source: config.DataSource
    name: str

    def __post_init__(self) -> None:
        for split in ("train", "test"):
            images, masks = getattr(self, f"{split}_images"), getattr(self, f"{split}_masks")
            if images.dtype != torch.uint8 or images.dim() != 4:
                raise ValueError(
                    f"{split}_images must be uint8 (N, C, H, W); got "
                    f"{images.dtype} of shape {tuple(images.shape)}."
                )
            expected = (len(images), 1, *images.shape[2:])
            if masks.dtype != torch.uint8 or tuple(masks.shape) != expected or masks.max() > 1:
                raise ValueError(
                    f"{split}_masks must be uint8 0/1 of shape {expected}; got "
                    f"{masks.dtype} of shape {tuple(masks.shape)}."
                )

    def __repr__(self) -> str:
        return (
            f"SegmentationData({self.name!r}, train={tuple(self.train_images.shape)}, "
            f"test={tuple(self.test_images.shape)}, source={self.source})"
        )


# --- the generated set -----------------------------------------------------------------


def _blob(size: int, rng: np.random.Generator) -> np.ndarray:
    """Coverage in [0, 1] of a random wobbly blob: a circle whose radius varies with angle."""
    centre = rng.uniform(0.2, 0.8, size=2) * size
    radius = rng.uniform(0.1, 0.22) * size
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    angle = np.arctan2(ys - centre[1], xs - centre[0])
    wobble = sum(
        rng.uniform(0, 0.25) * np.cos(k * angle + rng.uniform(0, 2 * np.pi)) for k in (2, 3, 5)
    )
    distance = np.hypot(xs - centre[0], ys - centre[1]) - radius * (1 + wobble)
    return np.clip(0.5 - distance, 0, 1)  # anti-aliased over one pixel


def _stripes(size: int, rng: np.random.Generator) -> np.ndarray:
    """A stripe pattern in [-1, 1] at a random angle, with a period of 3 to 6 pixels."""
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    theta = rng.uniform(0, np.pi)
    period = rng.uniform(3, 6)
    return np.sin(2 * np.pi * (xs * np.cos(theta) + ys * np.sin(theta)) / period)


def _render(size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One image ``(3, size, size)`` in [0, 1] and its mask ``(size, size)`` of 0/1."""
    image = np.empty((3, size, size), dtype=np.float32)
    image[:] = rng.random((3, 1, 1))
    # Smooth shading over the background, so that it is not one flat colour.
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32) / size
    image += 0.25 * (rng.random((3, 1, 1)) - 0.5) * (xs + ys)
    mask = np.zeros((size, size), dtype=np.float32)
    n_objects, n_clutter = rng.integers(1, 4), rng.integers(1, 3)
    # Drawn in a random order: a blob drawn later covers those below it, in the mask too.
    for is_object in rng.permutation([True] * n_objects + [False] * n_clutter):
        coverage = _blob(size, rng)
        # Foreground and clutter draw their colours alike: only the stripes tell them apart.
        colour = rng.random((3, 1, 1)).astype(np.float32)
        if is_object:
            stripes = rng.uniform(0.15, 0.4) * _stripes(size, rng)
            colour = (colour + stripes).astype(np.float32)
        image = image + coverage * (colour - image)
        mask = mask + coverage * (float(is_object) - mask)
    image += rng.uniform(-0.08, 0.08, size=image.shape)
    return np.clip(image, 0, 1), (mask >= 0.5).astype(np.uint8)


def _render_with_foreground(size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_render`, drawn again while clutter hides (almost) all of the foreground."""
    while True:
        image, mask = _render(size, rng)
        if mask.mean() >= 0.01:
            return image, mask


def _generate(n: int, size: int, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    pairs = [_render_with_foreground(size, rng) for _ in range(n)]
    images = np.stack([image for image, _ in pairs]) if pairs else np.zeros((0, 3, size, size))
    masks = np.stack([mask for _, mask in pairs]) if pairs else np.zeros((0, size, size))
    return (
        torch.from_numpy((images * 255 + 0.5).astype(np.uint8)),
        torch.from_numpy(masks.astype(np.uint8)).unsqueeze(1),
    )


@functools.cache
def synthetic_segmentation(
    n_train: int = 2_000, n_test: int = 500, size: int = 64, seed: int = SYNTHETIC_SEED
) -> SegmentationData:
    """Generate images of blobs on a shaded background; striped blobs are foreground.

    Each image has one to three striped blobs (foreground) and one or two plain blobs
    (background clutter), all in random colours, overlapping in a random order, with
    pixel noise. Stripes have a random angle and contrast, so finding the foreground
    takes a look at each pixel's neighbourhood, which is what a U-Net's convolutions do.
    The same arguments give the same bytes (and are cached: treat the tensors as
    read-only).

    >>> data = synthetic_segmentation(n_train=20, n_test=5, size=48, seed=1)
    >>> data.name, data.source.kind, tuple(data.train_images.shape)
    ('synthetic_blobs', 'embedded', (20, 3, 48, 48))
    >>> 0.05 < data.train_masks.float().mean().item() < 0.5
    True
    """
    train_rng, test_rng = (np.random.default_rng([seed, part]) for part in (0, 1))
    train_images, train_masks = _generate(n_train, size, train_rng)
    test_images, test_masks = _generate(n_test, size, test_rng)
    return SegmentationData(
        train_images,
        train_masks,
        test_images,
        test_masks,
        source=config.DataSource("embedded", f"generated blobs, seed {seed}"),
        name="synthetic_blobs",
    )


# --- Oxford-IIIT Pet --------------------------------------------------------------------


def pet_foreground(trimap: torch.Tensor | np.ndarray) -> torch.Tensor:
    """A binary uint8 mask from an Oxford-IIIT Pet trimap: pet and border are foreground.

    >>> pet_foreground(np.array([[PET, BACKGROUND, BORDER]])).tolist()
    [[1, 0, 1]]
    """
    trimap = torch.as_tensor(np.asarray(trimap))
    unknown = set(torch.unique(trimap).tolist()) - {PET, BACKGROUND, BORDER}
    if unknown:
        raise ValueError(
            f"A Pet trimap holds only {PET}, {BACKGROUND} and {BORDER}; found "
            f"{sorted(unknown)}. Was the mask resized with interpolation "
            "other than nearest?"
        )
    return (trimap != BACKGROUND).to(torch.uint8)


def _resize_pair(
    image: Image.Image, trimap: Image.Image, size: int
) -> tuple[np.ndarray, np.ndarray]:
    """Both to ``size`` x ``size``: bilinear for the photo, nearest for the trimap."""
    return (
        np.asarray(image.resize((size, size), Image.Resampling.BILINEAR)),
        np.asarray(trimap.resize((size, size), Image.Resampling.NEAREST)),
    )


def _pet_split(
    root: Path, split: str, size: int, download: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    dataset = torchvision.datasets.OxfordIIITPet(
        str(root),
        split=split,
        target_types="segmentation",
        download=download,
        transforms=functools.partial(_resize_pair, size=size),
    )
    pairs = [dataset[i] for i in range(len(dataset))]
    images = torch.from_numpy(np.stack([image for image, _ in pairs])).permute(0, 3, 1, 2)
    masks = pet_foreground(np.stack([trimap for _, trimap in pairs])).unsqueeze(1)
    return images.contiguous(), masks


def load_pets(root: Path | None = None, size: int = 64, download: bool = True) -> SegmentationData:
    """The Oxford-IIIT Pet photos and binary masks at ``size`` x ``size``, via torchvision.

    ``trainval`` (3,680 photos) is the training split, ``test`` (3,669) the test split.
    Files go to ``root/oxford-iiit-pet`` (``root`` defaults to ``config.data_dir()``);
    torchvision checks the archives' MD5 checksums. Raises ``RuntimeError`` or
    ``OSError`` when they are missing and cannot be downloaded.

    >>> load_pets(size=64).train_images.shape  # doctest: +SKIP
    torch.Size([3680, 3, 64, 64])
    """
    root = Path(root or config.data_dir())
    with socket_timeout(DOWNLOAD_TIMEOUT):
        train_images, train_masks = _pet_split(root, "trainval", size, download)
        test_images, test_masks = _pet_split(root, "test", size, download)
    return SegmentationData(
        train_images,
        train_masks,
        test_images,
        test_masks,
        source=config.DataSource("real", f"torchvision, {root}"),
        name=PETS,
    )


# --- choosing between them ---------------------------------------------------------------


def load_segmentation(
    run: config.Run, size: int = 64, n_train: int = 2_000, n_test: int = 500
) -> SegmentationData:
    """Oxford-IIIT Pet masks or the generated set, as ``run.data`` decided.

    ``n_train``/``n_test`` size the generated set only (the real one is what it is).
    If the real files are missing and cannot be downloaded, ``COURSE_DATA=real`` raises
    a ``FileNotFoundError`` naming the folder and files to provide; ``auto`` falls back to
    the generated set and says so loudly.

    >>> run = config.start_run(dataset=PETS, profile="smoke", quiet=True)
    >>> data = load_segmentation(run, size=32, n_train=8, n_test=4)
    >>> data.name, tuple(data.train_images.shape), data.source.kind
    ('synthetic_blobs', (8, 3, 32, 32), 'embedded')
    """
    return real_or_substitute(
        PETS,
        run,
        load=lambda root: load_pets(root, size),
        substitute=lambda: synthetic_segmentation(n_train, n_test, size),
        expected=lambda root: (
            f"OxfordIIITPet not found: expected {root / PET_FOLDER}/images/"
            f"*.jpg and {root / PET_FOLDER}/annotations/ (trimaps/*.png, "
            "trainval.txt, test.txt), as unpacked from images.tar.gz and "
            "annotations.tar.gz"
        ),
        substitute_name="the generated segmentation set",
    )


class _NormalisedBatch:
    """``collate_fn``: stack uint8 pairs into normalised float images and float masks."""

    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        self.mean, self.std = mean, std

    def __call__(
        self, pairs: list[tuple[torch.Tensor, torch.Tensor]]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        images = torch.stack([image for image, _ in pairs])
        masks = torch.stack([mask for _, mask in pairs])
        # Float masks: what nn.BCEWithLogitsLoss expects as targets.
        return normalize_images(images, self.mean, self.std), masks.float()


def make_segmentation_loaders(
    data: SegmentationData, profile: config.Profile, seed: int, batch_size: int | None = None
) -> Loaders:
    """Seeded train/validation/test ``DataLoader`` objects of (image, mask) batches.

    The same split rules as :func:`course_utils.data.make_loaders`: validation is a
    seeded random part of the training split, sized by ``profile``; the test loader
    takes the first ``profile.test_size`` test pairs. Images are normalised per channel
    with the training subset's statistics; masks come as float 0/1 ``(B, 1, H, W)``.
    Only the training loader shuffles.

    >>> data = synthetic_segmentation(n_train=40, n_test=10, size=32)
    >>> loaders = make_segmentation_loaders(data, config.PROFILES["smoke"], seed=0)
    >>> loaders.sizes
    {'train': 20, 'val': 20, 'test': 10}
    >>> images, masks = next(iter(loaders.train))
    >>> images.dtype, tuple(masks.shape), masks.dtype
    (torch.float32, (20, 1, 32, 32), torch.float32)
    """
    train_idx, val_idx = split_for_profile(len(data.train_images), profile, seed)
    train_images = data.train_images[train_idx]
    mean, std = _normalisation_constants(train_images)
    collate = _NormalisedBatch(mean, std)
    batch_size = batch_size or profile.batch_size

    def loader(images: torch.Tensor, masks: torch.Tensor, shuffle: bool = False) -> DataLoader:
        generator = torch.Generator().manual_seed(seed)
        return DataLoader(
            TensorDataset(images, masks),
            batch_size,
            shuffle=shuffle,
            generator=generator,
            collate_fn=collate,
        )

    test = slice(None, profile.test_size)
    return Loaders(
        loader(train_images, data.train_masks[train_idx], True),
        loader(data.train_images[val_idx], data.train_masks[val_idx]),
        loader(data.test_images[test], data.test_masks[test]),
        mean=mean,
        std=std,
    )
