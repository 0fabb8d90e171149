"""The fast path: a dataset held in one uint8 tensor on the training device, batched,
augmented and normalised there with tensor operations.

A ``DataLoader`` asks its ``Dataset`` for one image at a time, transforms each in
Python and stacks them into a batch, on the CPU. With small images and a GPU that is
often slower than the training step itself. :class:`TensorLoader` instead picks a
whole batch out of the tensor with one indexing operation and augments it with batched
tensor operations (:func:`course_utils.data.augment_batch`), so that a batch costs a
handful of kernel launches, wherever the data lives.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator, Sequence

import numpy as np
import torch

from course_utils import config
from course_utils.data.augment import augment_batch, augmentation_steps
from course_utils.data.datasets import ImageDataset, normalize_images

Batch = tuple[torch.Tensor, torch.Tensor]


def _epoch_seed(seed: int, epoch: int) -> int:
    """A seed for one pass: SeedSequence mixes (seed, epoch) so that no two pairs share
    a random stream (seed 0 epoch 1 and seed 1 epoch 0 are unrelated)."""
    return int(np.random.SeedSequence([seed, epoch]).generate_state(1)[0])


class TensorLoader:
    """Batches ``(images, labels)`` of normalised, optionally augmented, images from
    uint8 images ``(N, C, H, W)`` held in one tensor on ``device``.

    It stands in for a ``DataLoader``: ``for x, y in loader`` yields float32 batches
    and int64 labels on ``device``, ``len(loader)`` counts batches,
    ``len(loader.dataset)`` counts images, and ``loader.dataset[i]`` is image ``i``
    normalised but not augmented. ``shuffle`` draws a new order on every pass,
    ``augment`` names a preset of :mod:`course_utils.data.augment` applied to each batch,
    ``drop_last`` skips a last, smaller batch. ``device`` defaults to
    :func:`course_utils.config.pick_device`.

    Pass ``k`` (counted by ``loader.epoch``, from 0) draws its order and augmentation
    from a generator on ``device`` seeded by ``(seed, k)``: the same seed gives the
    same batches on the same device, and setting ``loader.epoch`` replays a pass.

    >>> images = torch.randint(0, 256, (10, 3, 32, 32), dtype=torch.uint8)
    >>> loader = TensorLoader(images, torch.arange(10), batch_size=4, mean=[0.5] * 3,
    ...                       std=[0.25] * 3, shuffle=True, augment="all", device="cpu")
    >>> len(loader), len(loader.dataset), [tuple(x.shape) for x, _ in loader][-1]
    (3, 10, (2, 3, 32, 32))
    >>> order = torch.cat([y for _, y in loader])  # pass 1 (pass 0 was above)
    >>> loader.epoch = 1
    >>> torch.equal(torch.cat([y for _, y in loader]), order)  # pass 1 once more
    True
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, batch_size: int, *,
                 mean: Sequence[float], std: Sequence[float], shuffle: bool = False,
                 augment: str = "none", seed: int = 0, drop_last: bool = False,
                 device: torch.device | str | None = None) -> None:
        augmentation_steps(augment)  # an unknown preset fails here, not in the first pass
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1; got {batch_size}.")
        self.device = torch.device(device) if device is not None else config.pick_device()
        self.batch_size, self.shuffle, self.augment = batch_size, shuffle, augment
        self.seed, self.drop_last, self.epoch = seed, drop_last, 0
        self.mean, self.std = tuple(mean), tuple(std)
        # Kept on the device: copying them there for every batch would make the CPU wait
        # for the GPU each time.
        self._mean = torch.tensor(self.mean, dtype=torch.float32, device=self.device)
        self._std = torch.tensor(self.std, dtype=torch.float32, device=self.device)
        self.dataset = ImageDataset(
            images.to(self.device), labels.to(self.device),
            transform=functools.partial(normalize_images, mean=self._mean, std=self._std))

    def __len__(self) -> int:
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __iter__(self) -> Iterator[Batch]:
        generator = torch.Generator(device=self.device)
        generator.manual_seed(_epoch_seed(self.seed, self.epoch))
        self.epoch += 1
        return self._batches(generator)

    def _batches(self, generator: torch.Generator) -> Iterator[Batch]:
        n, device = len(self.dataset), self.device
        order = (torch.randperm(n, generator=generator, device=device) if self.shuffle
                 else torch.arange(n, device=device))
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            index = order[start:start + self.batch_size]
            images = self.dataset.images[index]
            if self.augment != "none":
                images = augment_batch(images.to(torch.float32), self.augment, generator)
            yield normalize_images(images, self._mean, self._std), self.dataset.labels[index]

    def __repr__(self) -> str:
        return (f"TensorLoader({len(self.dataset)} images on {self.device}, "
                f"batch_size={self.batch_size}, shuffle={self.shuffle}, "
                f"augment={self.augment!r})")
