"""Datasets held in memory as uint8 tensors, their statistics, and their normalisation.

:class:`ImageData` keeps a whole dataset (train and test split) as uint8 tensors;
:class:`ImageDataset` is the ``torch.utils.data.Dataset`` view of one split that the
classic ``DataLoader`` path reads image by image.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

from course_utils import config

MNIST_CLASSES = [str(digit) for digit in range(10)]
CIFAR10_CLASSES = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
]

Transform = Callable[[torch.Tensor], torch.Tensor]


def _check_images(images: torch.Tensor, labels: torch.Tensor, what: str) -> None:
    """Raise a ValueError naming ``what`` unless images are uint8 NCHW with one int64 label each."""
    if images.dtype != torch.uint8 or images.dim() != 4:
        raise ValueError(
            f"{what}_images must be uint8 (N, C, H, W); "
            f"got {images.dtype} of shape {tuple(images.shape)}."
        )
    if labels.dtype != torch.int64 or labels.shape != images.shape[:1]:
        raise ValueError(
            f"{what}_labels must be int64 of shape ({len(images)},); "
            f"got {labels.dtype} of shape {tuple(labels.shape)}."
        )


@dataclass(eq=False)
class ImageData:
    """A dataset held in memory: uint8 images ``(N, C, H, W)`` and int64 labels ``(N,)``.

    >>> from course_utils.data import synthetic_cifar10
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
        _check_images(self.train_images, self.train_labels, "train")
        _check_images(self.test_images, self.test_labels, "test")

    def __repr__(self) -> str:
        # The default dataclass repr would print the tensors themselves.
        return (
            f"ImageData({self.name!r}, train={tuple(self.train_images.shape)}, "
            f"test={tuple(self.test_images.shape)}, {len(self.classes)} classes, "
            f"source={self.source})"
        )


class ImageDataset(Dataset):
    """A ``Dataset`` over uint8 images ``(N, C, H, W)``: item ``i`` is
    ``(transform(images[i]), labels[i])``.

    This is what a ``DataLoader`` reads in the classic path: it asks for one index at a
    time, and ``transform`` (for example :func:`course_utils.data.classic_transform`)
    turns each uint8 image into a normalised, possibly augmented, float image.
    Indexing does not copy the images, so several views with different transforms can
    share one tensor.

    >>> images = torch.full((4, 1, 2, 2), 255, dtype=torch.uint8)
    >>> dataset = ImageDataset(images, torch.arange(4), transform=lambda x: x.float() / 255)
    >>> image, label = dataset[3]
    >>> len(dataset), image.tolist(), label.item()
    (4, [[[1.0, 1.0], [1.0, 1.0]]], 3)
    """

    def __init__(
        self, images: torch.Tensor, labels: torch.Tensor, transform: Transform | None = None
    ) -> None:
        _check_images(images, labels, "dataset")
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image = self.images[index]
        if self.transform is not None:
            image = self.transform(image)
        return image, self.labels[index]


def _normalisation_constants(
    images: torch.Tensor | np.ndarray, chunk_size: int = 2048
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The loaders' ``mean`` and ``std`` for uint8 images ``(N, C, H, W)``, in [0, 1] units.

    Not exported: computing these statistics is a task of the course (a2_t1), checked
    by ``checks.check_channel_stats``. Works through the images in chunks, so 50,000
    CIFAR images need no big float copy.
    """
    images = torch.as_tensor(images)
    if images.dtype != torch.uint8 or images.dim() != 4:
        raise ValueError(
            f"the loaders normalise uint8 images (N, C, H, W); "
            f"got {images.dtype} of shape {tuple(images.shape)}."
        )
    total = torch.zeros(images.shape[1], dtype=torch.float64)
    squares = torch.zeros_like(total)
    for start in range(0, len(images), chunk_size):
        chunk = images[start : start + chunk_size].to(torch.float64) / 255
        total += chunk.sum(dim=(0, 2, 3))
        squares += chunk.square().sum(dim=(0, 2, 3))
    count = images.numel() // images.shape[1]
    mean = total / count
    std = (squares / count - mean.square()).clamp_min(0).sqrt()
    return tuple(mean.tolist()), tuple(std.tolist())


def normalize_images(
    images: torch.Tensor, mean: Sequence[float] | torch.Tensor, std: Sequence[float] | torch.Tensor
) -> torch.Tensor:
    """Images ``(N, C, H, W)`` with pixel values 0 to 255 (uint8, or float after
    augmentation) to float32: scaled to [0, 1], then per channel ``(x - mean) / std``.

    ``mean`` and ``std`` may be tensors already on the images' device, which spares a
    copy per batch. The input is never modified.

    >>> normalize_images(torch.full((1, 1, 2, 2), 255, dtype=torch.uint8), [0.5], [0.5])[0, 0, 0, 0]
    tensor(1.)
    """
    mean = torch.as_tensor(mean, dtype=torch.float32, device=images.device).view(-1, 1, 1)
    std = torch.as_tensor(std, dtype=torch.float32, device=images.device).view(-1, 1, 1)
    # copy=True: the in-place steps below must not change a float input.
    return images.to(torch.float32, copy=True).div_(255).sub_(mean).div_(std)
