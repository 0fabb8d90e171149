"""Datasets, splits and loaders: embedded substitutes, the real-data path, seeding."""

import gzip
import hashlib
import http.server
import pickle
import struct
import tarfile
import threading
from dataclasses import replace
from functools import partial

import numpy as np
import pytest
import torch
import torchvision

from course_utils import config, data

SMOKE, QUICK, FULL = (config.PROFILES[name] for name in config.PROFILE_NAMES)


@pytest.fixture(scope="module")
def mnist():
    return data.embedded_mnist()


@pytest.fixture(scope="module")
def shapes():
    return data.synthetic_cifar10(n_train=2000, n_test=500, seed=0)


def indexed_data(n_train, n_test):
    """ImageData whose image i stores i in its two pixels, so loaders reveal their indices."""

    def images(n):
        index = torch.arange(n)
        return torch.stack([index // 256, index % 256], dim=1).to(torch.uint8).view(n, 1, 1, 2)

    return data.ImageData(
        images(n_train),
        torch.arange(n_train) % 10,
        images(n_test),
        torch.arange(n_test) % 10,
        classes=data.MNIST_CLASSES,
        name="indexed",
        source=config.DataSource("embedded", "test"),
    )


def loader_indices(loader):
    """The indices stored by indexed_data, in the order the loader yields them.

    Only valid for loaders built with mean=0, std=1, which leave pixels at value / 255.
    """
    pixels = torch.cat([x for x, _ in loader]).view(-1, 2) * 255
    return (pixels[:, 0].round() * 256 + pixels[:, 1].round()).long().tolist()


# --- embedded MNIST ------------------------------------------------------------------


def test_embedded_mnist_is_a_balanced_uint8_split(mnist):
    assert tuple(mnist.train_images.shape) == (4000, 1, 28, 28)
    assert tuple(mnist.test_images.shape) == (1000, 1, 28, 28)
    assert mnist.train_images.dtype == mnist.test_images.dtype == torch.uint8
    assert mnist.train_labels.dtype == torch.int64
    assert torch.bincount(mnist.train_labels).tolist() == [400] * 10
    assert torch.bincount(mnist.test_labels).tolist() == [100] * 10
    assert mnist.classes == data.MNIST_CLASSES and mnist.source.kind == "embedded"
    # Real digits: dark background, bright strokes.
    assert mnist.train_images.max() == 255 and mnist.train_images.float().mean() < 60
    # Shuffled, not sorted by class: a short prefix already holds every digit.
    assert set(mnist.train_labels[:100].tolist()) == set(range(10))


def test_embedded_mnist_is_deterministic(mnist):
    again = data.embedded_mnist()
    assert torch.equal(again.train_images, mnist.train_images)
    assert torch.equal(again.test_labels, mnist.test_labels)


# --- synthetic CIFAR-10 --------------------------------------------------------------


def test_synthetic_cifar_shapes_and_exact_balance(shapes):
    assert tuple(shapes.train_images.shape) == (2000, 3, 32, 32)
    assert tuple(shapes.test_images.shape) == (500, 3, 32, 32)
    assert shapes.train_images.dtype == torch.uint8
    assert torch.bincount(shapes.train_labels).tolist() == [200] * 10
    assert torch.bincount(shapes.test_labels).tolist() == [50] * 10
    assert shapes.classes == data.CIFAR10_CLASSES
    # Every image has structure, none is a flat colour.
    assert shapes.train_images.float().flatten(1).std(dim=1).min() > 10


def test_synthetic_cifar_is_deterministic_by_seed():
    first = data.synthetic_cifar10(n_train=60, n_test=20, seed=3)
    again = data.synthetic_cifar10(n_train=60, n_test=20, seed=3)
    other = data.synthetic_cifar10(n_train=60, n_test=20, seed=4)
    assert torch.equal(first.train_images, again.train_images)
    assert torch.equal(first.test_images, again.test_images)
    assert torch.equal(first.train_labels, again.train_labels)
    assert not torch.equal(first.train_images, other.train_images)
    assert not torch.equal(first.train_images[:20], first.test_images)


def nearest_class_mean_accuracy(shapes, features):
    """Test accuracy of a nearest-class-mean classifier on ``features(images)``."""
    train, test = features(shapes.train_images.float()), features(shapes.test_images.float())
    centroids = torch.stack([train[shapes.train_labels == k].mean(dim=0) for k in range(10)])
    predicted = torch.cdist(test, centroids).argmin(dim=1)
    return (predicted == shapes.test_labels).float().mean().item()


@pytest.mark.parametrize(
    "statistic, features",
    [
        ("mean colour", lambda images: images.mean(dim=(2, 3))),
        (
            "mean colour and contrast",
            lambda images: torch.cat([images.mean(dim=(2, 3)), images.std(dim=(2, 3))], dim=1),
        ),
        ("raw pixels", lambda images: images.flatten(1)),
    ],
)
def test_synthetic_cifar_no_simple_statistic_gives_away_the_class(shapes, statistic, features):
    # Colours and scenes carry a weak cue, as in photographs (chance is 10 %), but far
    # from the 60-85 % the CNNs of Assignment 2 reach: they must find the shapes.
    accuracy = nearest_class_mean_accuracy(shapes, features)
    assert 0.1 < accuracy < 0.35, f"{statistic}: {accuracy:.1%}"


def test_synthetic_cifar_look_alike_classes_share_their_colours(shapes):
    # Cat and dog, deer and horse, automobile and truck: their mean colours differ by
    # less than the spread of colours within a class.
    mean_colour = shapes.train_images.float().mean(dim=(2, 3))
    labels, classes = shapes.train_labels, shapes.classes
    for first, second in [("cat", "dog"), ("deer", "horse"), ("automobile", "truck")]:
        a = mean_colour[labels == classes.index(first)]
        b = mean_colour[labels == classes.index(second)]
        assert (a.mean(dim=0) - b.mean(dim=0)).norm() < 0.5 * a.std(dim=0).norm()


def test_synthetic_cifar_rejects_negative_sizes():
    with pytest.raises(ValueError, match="must be >= 0"):
        data.synthetic_cifar10(n_train=-1, n_test=10)


# --- splits, statistics, loaders -----------------------------------------------------


def test_split_train_val_is_disjoint_complete_and_seeded():
    train_idx, val_idx = data.split_train_val(100, 20, seed=0)
    assert len(train_idx) == 80 and len(val_idx) == 20
    assert not set(train_idx) & set(val_idx)
    assert sorted([*train_idx, *val_idx]) == list(range(100))
    again_train, again_val = data.split_train_val(100, 20, seed=0)
    assert np.array_equal(again_train, train_idx) and np.array_equal(again_val, val_idx)
    assert not np.array_equal(data.split_train_val(100, 20, seed=1)[1], val_idx)
    with pytest.raises(ValueError, match="val_size must be between 0 and n=100"):
        data.split_train_val(100, 101, seed=0)


@pytest.mark.parametrize(
    "profile, sizes", [(FULL, (49_000, 1_000)), (QUICK, (8_000, 1_000)), (SMOKE, (512, 128))]
)
def test_split_for_profile_sizes_cifar_like_the_assignment(profile, sizes):
    train_idx, val_idx = data.split_for_profile(50_000, profile, seed=0)
    assert (len(train_idx), len(val_idx)) == sizes
    assert not set(train_idx.tolist()) & set(val_idx.tolist())
    again = data.split_for_profile(50_000, profile, seed=0)
    assert torch.equal(again[0], train_idx) and torch.equal(again[1], val_idx)
    assert not torch.equal(data.split_for_profile(50_000, profile, seed=1)[1], val_idx)


def make_loaders(images, profile, seed, path, **options):
    """data.make_loaders on the CPU, so that both paths yield comparable CPU tensors."""
    return data.make_loaders(images, profile, seed, path=path, device="cpu", **options)


both_paths = pytest.mark.parametrize("path", data.PATHS)


@both_paths
def test_make_loaders_follow_the_profile_and_keep_val_disjoint(path):
    indexed = indexed_data(n_train=1000, n_test=400)
    loaders = make_loaders(indexed, SMOKE, 0, path, mean=[0.0], std=[1.0])
    train, val, test = (loader_indices(getattr(loaders, part)) for part in ("train", "val", "test"))
    assert (len(train), len(val), len(test)) == (512, 128, 256)
    assert loaders.sizes == {"train": 512, "val": 128, "test": 256}
    assert not set(train) & set(val)
    assert test == list(range(256))  # a fixed prefix, in order: not shuffled
    assert loader_indices(loaders.val) == val  # the same order on every pass
    assert loaders.train.batch_size == SMOKE.batch_size


@both_paths
def test_make_loaders_with_less_data_than_the_profile_wants(path):
    indexed = indexed_data(n_train=300, n_test=100)
    loaders = make_loaders(indexed, QUICK, 0, path, mean=[0.0], std=[1.0])
    train, val = loader_indices(loaders.train), loader_indices(loaders.val)
    assert len(val) == 150 and len(train) == 150  # at least half stays for training
    assert sorted(train + val) == list(range(300))
    assert loaders.sizes["test"] == 100
    # A profile that keeps everything holds out VAL_FRACTION for validation.
    full = make_loaders(indexed, FULL, 0, path, batch_size=32, mean=[0.0], std=[1.0])
    assert (full.sizes["train"], full.sizes["val"]) == (270, 30)
    assert full.train.batch_size == 32


@both_paths
def test_make_loaders_same_seed_same_batches(shapes, path):
    first, again, other = (make_loaders(shapes, SMOKE, seed, path) for seed in (0, 0, 1))
    (x1, y1), (x2, y2), (x3, _) = (next(iter(lo.train)) for lo in (first, again, other))
    assert torch.equal(x1, x2) and torch.equal(y1, y2)
    assert not torch.equal(x1, x3)
    # Each pass over the training loader reshuffles.
    assert not torch.equal(next(iter(first.train))[0], x1)


@both_paths
def test_evaluation_passes_leave_the_training_batches_alone(shapes, path):
    untouched, evaluated = (make_loaders(shapes, SMOKE, 2, path) for _ in range(2))
    for loader in (evaluated.val, evaluated.test, evaluated.val):
        list(loader)
    assert torch.equal(next(iter(untouched.train))[0], next(iter(evaluated.train))[0])


@both_paths
def test_make_loaders_shuffle_depends_on_the_seed(path):
    indexed = indexed_data(n_train=1000, n_test=10)
    shuffles = []
    for seed in (0, 1):
        loaders = make_loaders(indexed, SMOKE, seed, path, mean=[0.0], std=[1.0])
        order = loader_indices(loaders.train)
        subset = data.split_train_val(1000, SMOKE.val_size, seed)[0][: SMOKE.train_size].tolist()
        shuffles.append([subset.index(i) for i in order])  # the loader's own permutation
    assert sorted(shuffles[0]) == list(range(SMOKE.train_size))
    assert shuffles[0] != shuffles[1]


def test_classic_workers_give_the_same_batches():
    indexed = indexed_data(n_train=300, n_test=10)
    plain = make_loaders(indexed, SMOKE, 5, "classic", mean=[0.0], std=[1.0])
    workers = make_loaders(indexed, SMOKE, 5, "classic", num_workers=2, mean=[0.0], std=[1.0])
    assert loader_indices(workers.train) == loader_indices(plain.train)


def test_classic_workers_seed_the_augmentation(shapes):
    # Each worker's random transforms are seeded from the loader's generator.
    first, again = (
        make_loaders(shapes, SMOKE, 3, "classic", num_workers=2, augment="all") for _ in range(2)
    )
    assert torch.equal(next(iter(first.train))[0], next(iter(again.train))[0])


@both_paths
def test_make_loaders_normalise_the_training_data(shapes, path):
    loaders = make_loaders(shapes, SMOKE, 0, path)
    train = torch.cat([x for x, _ in loaders.train])
    assert train.dtype == torch.float32 and tuple(train.shape[1:]) == (3, 32, 32)
    torch.testing.assert_close(train.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-4, rtol=0)
    torch.testing.assert_close(train.std(dim=(0, 2, 3)), torch.ones(3), atol=1e-3, rtol=0)
    assert len(loaders.mean) == len(loaders.std) == 3
    with pytest.raises(ValueError, match="both mean and std"):
        make_loaders(shapes, SMOKE, 0, path, mean=[0.5, 0.5, 0.5])


def test_make_loaders_reject_bad_options(shapes):
    with pytest.raises(ValueError, match="Unknown path 'gpu'"):
        make_loaders(shapes, SMOKE, 0, "gpu")
    with pytest.raises(ValueError, match="Unknown augmentation 'jitter'"):
        make_loaders(shapes, SMOKE, 0, "classic", augment="jitter")
    with pytest.raises(ValueError, match="num_workers is for path='classic'"):
        make_loaders(shapes, SMOKE, 0, "fast", num_workers=2)


def test_classic_path_samples_two_views_of_one_training_tensor(shapes):
    loaders = make_loaders(shapes, SMOKE, 0, "classic", augment="all")
    train, val = loaders.train, loaders.val
    assert isinstance(train.sampler, torch.utils.data.SubsetRandomSampler)
    assert train.dataset.images is val.dataset.images is shapes.train_images  # no copies
    train_idx, val_idx = data.split_for_profile(len(shapes.train_labels), SMOKE, seed=0)
    assert sorted(train.sampler.indices) == sorted(train_idx.tolist())
    assert list(val.sampler) == val_idx.tolist()
    # 2,000 images, but one pass yields only the training part.
    assert len(train.dataset) == 2000 and data.num_examples(train) == SMOKE.train_size


@both_paths
def test_evaluation_loaders_yield_exactly_the_normalised_images(shapes, path):
    # Training augments; validation and test must not.
    loaders = make_loaders(shapes, SMOKE, 0, path, augment="all")
    _, val_idx = data.split_for_profile(len(shapes.train_labels), SMOKE, seed=0)
    raw = {"val": shapes.train_images[val_idx], "test": shapes.test_images[: SMOKE.test_size]}
    for part, images in raw.items():
        expected = data.normalize_images(images, loaders.mean, loaders.std)
        yielded = torch.cat([x for x, _ in getattr(loaders, part)])
        torch.testing.assert_close(yielded, expected, atol=1e-6, rtol=0)


def test_classic_and_fast_paths_agree_without_augmentation(shapes):
    classic, fast = (make_loaders(shapes, SMOKE, 4, path) for path in ("classic", "fast"))
    assert classic.mean == fast.mean and classic.std == fast.std
    for part in ("val", "test"):  # the same images in the same order
        (x_classic, y_classic), (x_fast, y_fast) = (
            [torch.cat(column) for column in zip(*getattr(lo, part), strict=True)]
            for lo in (classic, fast)
        )
        torch.testing.assert_close(x_fast, x_classic, atol=1e-6, rtol=0)
        assert torch.equal(y_fast, y_classic)
    # The training loaders hold the same images, each path in its own shuffled order.
    indexed = indexed_data(n_train=1000, n_test=10)
    classic, fast = (
        make_loaders(indexed, SMOKE, 4, path, mean=[0.0], std=[1.0]) for path in ("classic", "fast")
    )
    assert sorted(loader_indices(classic.train)) == sorted(loader_indices(fast.train))


@both_paths
def test_make_loaders_augment_only_the_training_batches(shapes, path):
    # The same seed gives the same order, so the first batches differ by the crops only.
    plain, augmented = (
        make_loaders(shapes, SMOKE, 0, path, augment=preset) for preset in ("none", "crop")
    )
    (x_plain, y_plain), (x_augmented, y_augmented) = (
        next(iter(lo.train)) for lo in (plain, augmented)
    )
    assert torch.equal(y_plain, y_augmented)
    assert x_plain.shape == x_augmented.shape and not torch.equal(x_plain, x_augmented)
    assert torch.equal(next(iter(plain.val))[0], next(iter(augmented.val))[0])


def test_resize_gives_the_same_pixels_on_both_paths(shapes):
    # ImageNet statistics, as a transfer-learning notebook passes them.
    options = dict(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225], resize=48)
    classic, fast = (
        make_loaders(shapes, SMOKE, 4, path, **options) for path in ("classic", "fast")
    )
    for part in ("val", "test"):
        x_classic, x_fast = (torch.cat([x for x, _ in getattr(lo, part)]) for lo in (classic, fast))
        assert tuple(x_fast.shape[1:]) == (3, 48, 48)
        torch.testing.assert_close(x_fast, x_classic, atol=1e-5, rtol=0)
    assert tuple(fast.val.dataset[0][0].shape) == (3, 48, 48)  # single images too
    # Augmentation happens at the stored size; the batch comes out resized.
    augmented = make_loaders(shapes, SMOKE, 4, "fast", augment="all", **options)
    assert tuple(next(iter(augmented.train))[0].shape[1:]) == (3, 48, 48)


def test_resize_batch_keeps_a_constant_image_constant():
    images = torch.full((2, 3, 32, 32), 7.0)
    assert data.resize_batch(images, None) is images
    assert data.resize_batch(images, 32) is images  # already that size: no copy
    bigger = data.resize_batch(images, 64)
    assert bigger.shape == (2, 3, 64, 64)
    torch.testing.assert_close(bigger, torch.full_like(bigger, 7.0))


def test_normalize_images_scales_then_standardises():
    images = torch.tensor([0, 51, 255], dtype=torch.uint8).view(3, 1, 1, 1)
    result = data.normalize_images(images, mean=[0.2], std=[0.5])
    torch.testing.assert_close(result.flatten(), torch.tensor([-0.4, 0.0, 1.6]))
    pixels = images.float()  # augmented batches arrive as floats, which must stay as they are
    torch.testing.assert_close(data.normalize_images(pixels, mean=[0.2], std=[0.5]), result)
    assert pixels.flatten().tolist() == [0.0, 51.0, 255.0]


def test_image_data_rejects_wrong_dtypes():
    good = indexed_data(n_train=4, n_test=2)
    with pytest.raises(ValueError, match="train_images must be uint8"):
        replace(good, train_images=good.train_images.float())
    with pytest.raises(ValueError, match=r"test_labels must be int64 of shape \(2,\)"):
        replace(good, test_labels=good.test_labels[:1])
    with pytest.raises(ValueError, match="dataset_images must be uint8"):
        data.ImageDataset(good.train_images.float(), good.train_labels)


# --- load_dataset: embedded, offline failures, and a real download ------------------


def test_load_dataset_embedded_follows_the_profile():
    run = config.start_run(dataset="cifar10", profile="smoke", quiet=True)
    cifar = data.load_dataset("cifar10", run)
    assert cifar.source == run.data and cifar.source.kind == "embedded"
    assert len(cifar.train_labels) == SMOKE.train_size + SMOKE.val_size
    assert len(cifar.test_labels) == SMOKE.test_size
    assert data.load_dataset("mnist", run).name == "mnist"
    with pytest.raises(ValueError, match="Unknown dataset 'svhn'"):
        data.load_dataset("svhn", run)


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """No real data in tmp_path, and torchvision's downloads fail at once."""
    nowhere = (tmp_path / "nowhere").as_uri()
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    monkeypatch.setattr(torchvision.datasets.MNIST, "mirrors", [nowhere + "/"])
    monkeypatch.setattr(torchvision.datasets.CIFAR10, "url", nowhere + "/cifar-10-python.tar.gz")
    return tmp_path


@pytest.mark.parametrize(
    "name, expected",
    [
        ("mnist", "MNIST/raw/train-images-idx3-ubyte"),
        ("cifar10", "cifar-10-python.tar.gz"),
    ],
)
@pytest.mark.parametrize("from_env", [True, False])
def test_real_mode_without_files_names_the_folder(offline, monkeypatch, name, expected, from_env):
    # Asking for real data in the environment or in the call must both fail fast.
    if from_env:
        monkeypatch.setenv("COURSE_DATA", "real")
    else:
        monkeypatch.delenv("COURSE_DATA", raising=False)
    run = config.start_run(
        dataset=name, profile="quick", data=None if from_env else "real", quiet=True
    )
    assert run.data.kind == "real"
    with pytest.raises(FileNotFoundError, match="not found: expected") as error:
        data.load_dataset(name, run)
    assert str(offline / expected) in str(error.value)
    assert "put the files there or go online" in str(error.value)


def test_auto_mode_falls_back_to_the_substitute_loudly(offline, monkeypatch, capsys):
    monkeypatch.setenv("COURSE_DATA", "auto")
    run = config.start_run(profile="quick", quiet=True).with_data(
        config.DataSource("real", "pretend the network is up")
    )
    mnist = data.load_dataset("mnist", run)
    assert mnist.source.kind == "embedded" and mnist.source.reason.startswith("OFFLINE")
    assert len(mnist.train_labels) == 4000
    printed = capsys.readouterr().out
    assert "NOTICE" in printed and str(offline / "MNIST" / "raw") in printed


def _idx_file(path, magic, array):
    """Write ``array`` as a gzipped IDX file, the format MNIST is distributed in."""
    header = struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in array.shape)
    path.write_bytes(gzip.compress(header + array.tobytes()))
    return path.name, hashlib.md5(path.read_bytes()).hexdigest()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def mirror(tmp_path):
    """A local HTTP server for a folder: torchvision's downloader refuses file:// URLs."""
    folder = tmp_path / "mirror"
    folder.mkdir()
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), partial(_QuietHandler, directory=str(folder))
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield folder, f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def test_real_mnist_downloads_checks_and_loads(mirror, monkeypatch, tmp_path):
    folder, url = mirror
    rng = np.random.default_rng(0)
    fake = {
        split: (
            rng.integers(0, 256, (n, 28, 28), dtype=np.uint8),
            rng.integers(0, 10, n, dtype=np.uint8),
        )
        for split, n in (("train", 6), ("t10k", 4))
    }
    resources = []
    for split, (images, labels) in fake.items():
        resources.append(_idx_file(folder / f"{split}-images-idx3-ubyte.gz", 2051, images))
        resources.append(_idx_file(folder / f"{split}-labels-idx1-ubyte.gz", 2049, labels))
    monkeypatch.setattr(torchvision.datasets.MNIST, "mirrors", [url])
    monkeypatch.setattr(torchvision.datasets.MNIST, "resources", resources)
    monkeypatch.setenv("COURSE_DATA", "real")
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path / "data"))

    run = config.start_run(dataset="mnist", profile="quick", quiet=True)
    mnist = data.load_dataset("mnist", run)

    assert mnist.source.kind == "real"
    assert (tmp_path / "data" / "MNIST" / "raw" / "train-images-idx3-ubyte.gz").exists()
    assert torch.equal(mnist.train_images, torch.from_numpy(fake["train"][0]).unsqueeze(1))
    assert torch.equal(mnist.test_labels, torch.from_numpy(fake["t10k"][1]).long())
    assert mnist.classes == data.MNIST_CLASSES


def test_real_cifar10_downloads_and_becomes_nchw(mirror, monkeypatch, tmp_path):
    folder, url = mirror
    rng = np.random.default_rng(1)
    build = tmp_path / "build" / "cifar-10-batches-py"
    build.mkdir(parents=True)
    images = {}
    for batch, n in [*((f"data_batch_{i}", 2) for i in range(1, 6)), ("test_batch", 3)]:
        images[batch] = rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8)
        # CIFAR-10 stores each image as one row: the red plane, then green, then blue.
        entry = {"data": images[batch].reshape(n, -1), "labels": rng.integers(0, 10, n).tolist()}
        (build / batch).write_bytes(pickle.dumps(entry))
    (build / "batches.meta").write_bytes(pickle.dumps({"label_names": data.CIFAR10_CLASSES}))
    with tarfile.open(folder / "cifar-10-python.tar.gz", "w:gz") as archive:
        archive.add(build, arcname=build.name)

    def md5(path):
        return hashlib.md5(path.read_bytes()).hexdigest()

    cifar10 = torchvision.datasets.CIFAR10
    monkeypatch.setattr(cifar10, "url", url + "cifar-10-python.tar.gz")
    monkeypatch.setattr(cifar10, "tgz_md5", md5(folder / "cifar-10-python.tar.gz"))
    monkeypatch.setattr(
        cifar10,
        "train_list",
        [[f"data_batch_{i}", md5(build / f"data_batch_{i}")] for i in range(1, 6)],
    )
    monkeypatch.setattr(cifar10, "test_list", [["test_batch", md5(build / "test_batch")]])
    monkeypatch.setattr(
        cifar10,
        "meta",
        {"filename": "batches.meta", "key": "label_names", "md5": md5(build / "batches.meta")},
    )

    cifar = data.load_real("cifar10", tmp_path / "data")

    expected = np.concatenate([images[f"data_batch_{i}"] for i in range(1, 6)])
    assert torch.equal(cifar.train_images, torch.from_numpy(expected))
    assert torch.equal(cifar.test_images, torch.from_numpy(images["test_batch"]))
    assert cifar.train_images.is_contiguous() and cifar.classes == data.CIFAR10_CLASSES
