"""Train/validation splits and the three loaders of a run, by either of two paths.

:func:`make_loaders` builds the training, validation and test loaders from an
:class:`~course_utils.data.ImageData`, sized by the run profile:

- ``path="fast"`` (the default): each loader is a :class:`~course_utils.data.TensorLoader`
  that keeps the images in one uint8 tensor on the training device and augments whole
  batches there.
- ``path="classic"``: what Assignment 2 teaches. Each loader is a ``DataLoader`` that
  reads an :class:`~course_utils.data.ImageDataset` view through torchvision
  transforms, one image at a time. The training loader samples the training indices
  with a seeded ``SubsetRandomSampler``; the validation loader reads a second view of
  the same tensor, with the evaluation transform, at the validation indices.

Both paths share one split, one normalisation and one test prefix, so the same seed
puts the same images in each loader, whichever the path.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, SubsetRandomSampler
from torchvision.transforms import v2

from course_utils import config
from course_utils.data.augment import augmentation_steps, classic_transform
from course_utils.data.datasets import ImageData, ImageDataset, _normalisation_constants
from course_utils.data.fast import PassSeeds, TensorLoader

PATHS = ("fast", "classic")
# A profile that keeps the whole training split holds out this fraction of it for
# validation, but no more than MAX_VAL_SIZE images: CIFAR-10's 50,000 become the
# assignment's 49,000/1,000.
VAL_FRACTION = 0.1
MAX_VAL_SIZE = 1_000

Loader = DataLoader | TensorLoader


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


def split_for_profile(
    n: int, profile: config.Profile, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The training and validation indices of a run with ``n`` training images.

    Validation gets ``profile.val_size`` images (for a profile that keeps everything,
    ``VAL_FRACTION`` of them, at most ``MAX_VAL_SIZE``) and training the rest, up to
    ``profile.train_size``; a small dataset keeps at least half for training.

    >>> train_idx, val_idx = split_for_profile(50_000, config.PROFILES["full"], seed=0)
    >>> len(train_idx), len(val_idx)
    (49000, 1000)
    >>> [len(part) for part in split_for_profile(50_000, config.PROFILES["quick"], seed=0)]
    [8000, 1000]
    """
    if profile.val_size is None:
        wanted_val = min(round(VAL_FRACTION * n), MAX_VAL_SIZE)
    else:
        wanted_val = profile.val_size
    train_idx, val_idx = split_train_val(n, min(wanted_val, n // 2), seed)
    # [:None] keeps all.
    return torch.from_numpy(train_idx[: profile.train_size]), torch.from_numpy(val_idx)


def num_examples(loader: Loader) -> int:
    """How many examples one pass over ``loader`` yields.

    Not always ``len(loader.dataset)``: a ``DataLoader`` with a ``SubsetRandomSampler``
    yields only the sampler's indices of its dataset.

    >>> loader = DataLoader(list(range(10)), sampler=SubsetRandomSampler([1, 5, 7]))
    >>> len(loader.dataset), num_examples(loader)
    (10, 3)
    """
    if isinstance(loader, DataLoader):
        return len(loader.sampler)  # type: ignore[arg-type]  # every sampler here is sized
    return len(loader.dataset)


@dataclass
class Loaders:
    """The three loaders of a run, and the normalisation they use."""

    train: Loader
    val: Loader
    test: Loader
    mean: tuple[float, ...]
    std: tuple[float, ...]

    @property
    def sizes(self) -> dict[str, int]:
        """How many images each loader yields per pass, by part: train, val, test."""
        return {part: num_examples(getattr(self, part)) for part in ("train", "val", "test")}


@dataclass(frozen=True)
class _Plan:
    """What the two paths share: which images go where, how to normalise them, the
    batch size, the seed and the training augmentation."""

    data: ImageData
    train_idx: torch.Tensor
    val_idx: torch.Tensor
    train_images: torch.Tensor  # data.train_images[train_idx], gathered once
    test_size: int | None
    mean: tuple[float, ...]
    std: tuple[float, ...]
    batch_size: int
    seed: int
    augment: str
    resize: int | None

    def test_split(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The first ``test_size`` test images and labels (all for ``None``)."""
        return self.data.test_images[: self.test_size], self.data.test_labels[: self.test_size]


class _PassSeededLoader(DataLoader):
    """A DataLoader whose generator is seeded anew for every pass (:class:`PassSeeds`).

    A plain DataLoader draws each pass's order and worker seeds from its generator's
    running state, so its batches depend on how many passes it made before; this one
    seeds the generator with ``(seed, pass)`` first, and the pass count starts again
    after every ``config.seed_everything``, as the fast path's does.
    """

    def __init__(self, *args: Any, seed: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.passes = PassSeeds(seed)

    def __iter__(self) -> Any:
        if self.generator is not None:
            self.generator.manual_seed(self.passes.next_seed())
        return super().__iter__()


def _classic_loaders(
    plan: _Plan, num_workers: int, pin_memory: bool
) -> tuple[DataLoader, DataLoader, DataLoader]:
    """The classic path: torchvision transforms in DataLoaders, batches on the CPU."""
    data = plan.data
    height, width = data.train_images.shape[-2:]
    image_size = (int(height), int(width))
    training = classic_transform(plan.augment, plan.mean, plan.std, image_size)
    evaluation = classic_transform("none", plan.mean, plan.std, image_size)
    if plan.resize is not None:
        # Augment at the stored size (a 4-pixel crop shift means the same at any input
        # size), then resize; antialias=True matches the fast path's resize_batch.
        resize = v2.Resize((plan.resize, plan.resize), antialias=True)
        training, evaluation = v2.Compose([training, resize]), v2.Compose([evaluation, resize])

    def loader(
        dataset: ImageDataset,
        sampler: Sequence[int] | SubsetRandomSampler | None = None,
        generator: torch.Generator | None = None,
    ) -> DataLoader:
        # Every pass draws its workers' seeds from the loader's generator. Each loader
        # gets its own, so that a pass over one leaves the batches of the others alone.
        generator = generator or torch.Generator().manual_seed(plan.seed)
        return _PassSeededLoader(
            dataset,
            plan.batch_size,
            sampler=sampler,
            num_workers=num_workers,
            pin_memory=pin_memory,
            generator=generator,
            worker_init_fn=config.seed_worker,
            seed=plan.seed,
        )

    # The sampler shares the training loader's generator, as with shuffle=True.
    generator = torch.Generator().manual_seed(plan.seed)
    # Two views of the same training tensor: one augments, the other only normalises.
    train = loader(
        ImageDataset(data.train_images, data.train_labels, training),
        SubsetRandomSampler(plan.train_idx.tolist(), generator=generator),
        generator,
    )
    # Validation in a fixed order (a list of indices is a sampler too): the order cannot
    # change a score, and a fixed one lines predict()'s outputs up with val_idx.
    val = loader(
        ImageDataset(data.train_images, data.train_labels, evaluation), plan.val_idx.tolist()
    )
    test = loader(ImageDataset(*plan.test_split(), evaluation))
    return train, val, test


def _fast_loaders(
    plan: _Plan, device: torch.device
) -> tuple[TensorLoader, TensorLoader, TensorLoader]:
    """The fast path: each part's images copied once to ``device``, batched there."""
    data = plan.data

    def loader(
        images: torch.Tensor, labels: torch.Tensor, shuffle: bool = False, augment: str = "none"
    ) -> TensorLoader:
        return TensorLoader(
            images,
            labels,
            plan.batch_size,
            mean=plan.mean,
            std=plan.std,
            shuffle=shuffle,
            augment=augment,
            seed=plan.seed,
            resize=plan.resize,
            device=device,
        )

    train = loader(
        plan.train_images, data.train_labels[plan.train_idx], shuffle=True, augment=plan.augment
    )
    val = loader(data.train_images[plan.val_idx], data.train_labels[plan.val_idx])
    return train, val, loader(*plan.test_split())


def make_loaders(
    data: ImageData,
    profile: config.Profile,
    seed: int,
    batch_size: int | None = None,
    num_workers: int = 0,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    *,
    path: str = "fast",
    augment: str = "none",
    resize: int | None = None,
    device: torch.device | str | None = None,
) -> Loaders:
    """Seeded train/validation/test loaders of normalised images, sized by the profile.

    Validation is a seeded random part of ``data``'s training split
    (:func:`split_for_profile`), and never overlaps the training subset. The test loader
    takes the first ``test_size`` test images, the same for every seed. ``mean``/``std``
    default to the per-channel statistics of the training subset. Only the training loader
    shuffles and applies the ``augment`` preset (see :mod:`course_utils.data.augment`);
    validation and test batches come in a fixed order, normalised only. The same seed
    gives the same batches. ``resize`` scales every image to ``resize x resize``
    pixels, after augmentation: for a pretrained network, pass it with the network's
    own ``mean`` and ``std`` (for ImageNet models, those in
    :mod:`course_utils.models.transfer`).

    - ``path="fast"``: :class:`TensorLoader` objects with the images on ``device``
      (default :func:`course_utils.config.pick_device`), batches made and augmented there.
    - ``path="classic"``: ``DataLoader`` objects over :class:`ImageDataset` views with
      torchvision transforms, ``num_workers`` worker processes, batches on the CPU
      (in pinned memory when ``device`` is a GPU). Without workers the random
      transforms draw from torch's global generator, which
      :func:`course_utils.config.seed_everything` seeds.

    ``loaders.sizes`` counts the images of each loader: with ``path="classic"``
    ``len(loaders.train.dataset)`` is the whole training split, of which the sampler
    takes the training part.

    >>> from course_utils.data import load_dataset
    >>> run = config.start_run(dataset="mnist", profile="smoke", quiet=True)
    >>> mnist = load_dataset("mnist", run)
    >>> make_loaders(mnist, run.profile, seed=run.seed).sizes
    {'train': 512, 'val': 128, 'test': 256}
    >>> classic = make_loaders(mnist, run.profile, seed=0, path="classic", augment="crop")
    >>> classic.sizes, type(classic.train.sampler).__name__
    ({'train': 512, 'val': 128, 'test': 256}, 'SubsetRandomSampler')
    >>> images, _ = next(iter(make_loaders(mnist, run.profile, seed=0, resize=64).train))
    >>> tuple(images.shape)
    (64, 1, 64, 64)
    """
    if (mean is None) != (std is None):
        raise ValueError("Give both mean and std, or neither (to compute them from the data).")
    if path not in PATHS:
        raise ValueError(f"Unknown path {path!r}: expected one of {', '.join(PATHS)}.")
    augmentation_steps(augment)  # fails on an unknown preset before any work is done
    if path == "fast" and num_workers:
        raise ValueError(
            "num_workers is for path='classic': the fast path makes its "
            "batches on the device, without worker processes."
        )
    train_idx, val_idx = split_for_profile(len(data.train_labels), profile, seed)
    train_images = data.train_images[train_idx]  # for the statistics and the fast path
    if mean is None or std is None:
        mean, std = _normalisation_constants(train_images)
    plan = _Plan(
        data,
        train_idx,
        val_idx,
        train_images,
        profile.test_size,
        tuple(mean),
        tuple(std),
        batch_size or profile.batch_size,
        seed,
        augment,
        resize,
    )
    device = torch.device(device) if device is not None else config.pick_device()
    loaders: tuple[Loader, Loader, Loader]
    if path == "classic":
        loaders = _classic_loaders(plan, num_workers, pin_memory=device.type == "cuda")
    else:
        loaders = _fast_loaders(plan, device)
    train, val, test = loaders
    return Loaders(train, val, test, mean=plan.mean, std=plan.std)
