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

import math
from collections.abc import Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from course_utils import config
from course_utils.data.augment import augment_batch, augmentation_steps
from course_utils.data.datasets import ImageDataset, normalize_images

Batch = tuple[torch.Tensor, torch.Tensor]


def resize_batch(images: torch.Tensor, size: int | None) -> torch.Tensor:
    """Resize float images ``(N, C, H, W)`` to ``size x size`` pixels (``None``: keep them).

    Bilinear with antialiasing, as torchvision's ``v2.Resize`` does it, so that both
    loader paths feed a network the same pixels.

    >>> resize_batch(torch.rand(2, 3, 32, 32), 64).shape
    torch.Size([2, 3, 64, 64])
    """
    if size is None or tuple(images.shape[-2:]) == (size, size):
        return images
    return F.interpolate(
        images, size=(size, size), mode="bilinear", align_corners=False, antialias=True
    )


def _epoch_seed(seed: int, epoch: int) -> int:
    """A seed for one pass: SeedSequence mixes (seed, epoch) so that no two pairs share
    a random stream (seed 0 epoch 1 and seed 1 epoch 0 are unrelated)."""
    return int(np.random.SeedSequence([seed, epoch]).generate_state(1)[0])


class PassSeeds:
    """The seeds of a loader's successive passes: one per ``(seed, epoch)``.

    ``epoch`` counts passes from 0 and starts again at 0 after every
    :func:`course_utils.config.seed_everything`. So a run that seeds everything before
    it trains (as :func:`course_utils.sweep.run_sweep` does for each run) gets the same
    batches from a loader made earlier, whether the runs before it trained for many
    passes or came from the cache and made none. Setting ``epoch`` replays a pass.

    >>> from course_utils import config
    >>> passes = PassSeeds(seed=0)
    >>> first, second = passes.next_seed(), passes.next_seed()
    >>> _ = config.seed_everything(0)
    >>> passes.next_seed() == first, passes.epoch
    (True, 1)
    """

    def __init__(self, seed: int) -> None:
        self.seed, self.epoch = seed, 0
        self._seedings = config.seedings()

    def replay(self, epoch: int) -> None:
        """Make pass ``epoch`` (from 0) the next one."""
        self.epoch, self._seedings = epoch, config.seedings()

    def next_seed(self) -> int:
        """The seed of the next pass, counting it."""
        if config.seedings() != self._seedings:
            self.epoch, self._seedings = 0, config.seedings()
        self.epoch += 1
        return _epoch_seed(self.seed, self.epoch - 1)


class TensorLoader:
    """Batches ``(images, labels)`` of normalised, optionally augmented, images from
    uint8 images ``(N, C, H, W)`` held in one tensor on ``device``.

    It stands in for a ``DataLoader``: ``for x, y in loader`` yields float32 batches
    and int64 labels on ``device``, ``len(loader)`` counts batches,
    ``len(loader.dataset)`` counts images, and ``loader.dataset[i]`` is image ``i``
    normalised but not augmented. ``shuffle`` draws a new order on every pass,
    ``augment`` names a preset of :mod:`course_utils.data.augment` applied to each batch,
    ``drop_last`` skips a last, smaller batch. ``resize`` scales every image to
    ``resize x resize`` pixels after augmentation (for a network that wants larger
    inputs, such as an ImageNet model); the stored images keep their size. ``device``
    defaults to :func:`course_utils.config.pick_device`.

    Pass ``k`` (counted by ``loader.epoch``, from 0) draws its order and augmentation
    from a generator on ``device`` seeded by ``(seed, k)``: the same seed gives the
    same batches on the same device, and setting ``loader.epoch`` replays a pass. The
    count starts again after every ``config.seed_everything`` (:class:`PassSeeds`).

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

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        batch_size: int,
        *,
        mean: Sequence[float],
        std: Sequence[float],
        shuffle: bool = False,
        augment: str = "none",
        seed: int = 0,
        drop_last: bool = False,
        resize: int | None = None,
        device: torch.device | str | None = None,
    ) -> None:
        augmentation_steps(augment)  # an unknown preset fails here, not in the first pass
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1; got {batch_size}.")
        self.device = torch.device(device) if device is not None else config.pick_device()
        self.batch_size, self.shuffle, self.augment = batch_size, shuffle, augment
        self.seed, self.drop_last = seed, drop_last
        self.passes = PassSeeds(seed)
        self.resize = resize
        self.mean, self.std = tuple(mean), tuple(std)
        # Kept on the device: copying them there for every batch would make the CPU wait
        # for the GPU each time.
        self._mean = torch.tensor(self.mean, dtype=torch.float32, device=self.device)
        self._std = torch.tensor(self.std, dtype=torch.float32, device=self.device)
        self.dataset = ImageDataset(
            images.to(self.device), labels.to(self.device), transform=self._prepare_one
        )

    @property
    def epoch(self) -> int:
        """How many passes this loader has made since it was made or everything was seeded."""
        return self.passes.epoch

    @epoch.setter
    def epoch(self, value: int) -> None:
        self.passes.replay(value)

    def __len__(self) -> int:
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __iter__(self) -> Iterator[Batch]:
        generator = torch.Generator(device=self.device)
        generator.manual_seed(self.passes.next_seed())
        return self._batches(generator)

    def _batches(self, generator: torch.Generator) -> Iterator[Batch]:
        n, device = len(self.dataset), self.device
        order = (
            torch.randperm(n, generator=generator, device=device)
            if self.shuffle
            else torch.arange(n, device=device)
        )
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            index = order[start : start + self.batch_size]
            images = self.dataset.images[index]
            if self.augment != "none":
                images = augment_batch(images.to(torch.float32), self.augment, generator)
            yield self._prepare(images), self.dataset.labels[index]

    def _prepare(self, images: torch.Tensor) -> torch.Tensor:
        """Pixels 0 to 255 ``(N, C, H, W)`` to the network's input: resized, normalised."""
        # Resized last, as in the classic path, whose transforms end with the resize.
        return resize_batch(normalize_images(images, self._mean, self._std), self.resize)

    def _prepare_one(self, image: torch.Tensor) -> torch.Tensor:
        """One image ``(C, H, W)``, as :meth:`_prepare` treats a batch."""
        return self._prepare(image[None])[0]

    def __repr__(self) -> str:
        return (
            f"TensorLoader({len(self.dataset)} images on {self.device}, "
            f"batch_size={self.batch_size}, shuffle={self.shuffle}, "
            f"augment={self.augment!r}, resize={self.resize})"
        )
