"""data.segmentation: the generated striped-blob set, seeded loaders, and Oxford-IIIT Pet
from a fake local folder."""

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image

from course_utils import config
from course_utils.data import segmentation


def test_generated_set_is_deterministic_by_seed():
    a = segmentation.synthetic_segmentation(12, 4, size=30, seed=3)
    b = segmentation.synthetic_segmentation.__wrapped__(12, 4, size=30, seed=3)  # not the cache
    c = segmentation.synthetic_segmentation(12, 4, size=30, seed=4)
    assert torch.equal(a.train_images, b.train_images) and torch.equal(a.test_masks, b.test_masks)
    assert not torch.equal(a.train_images, c.train_images)
    assert a.train_images.shape == (12, 3, 30, 30) and a.train_masks.shape == (12, 1, 30, 30)


def test_generated_foreground_is_the_striped_blobs():
    data = segmentation.synthetic_segmentation(200, 10, size=48)
    images, masks = data.train_images.float() / 255, data.train_masks.bool()[:, 0]
    # Every image has some foreground and some background.
    assert (masks.flatten(1).any(1)).all() and (~masks).flatten(1).any(1).all()
    # Stripes: neighbouring pixels differ much more inside the foreground than outside.
    steps = (images[..., 1:] - images[..., :-1]).abs().mean(dim=1)
    inside = masks[..., 1:] & masks[..., :-1]
    outside = ~masks[..., 1:] & ~masks[..., :-1]
    assert steps[inside].mean() > 2 * steps[outside].mean()


def test_segmentation_loaders_follow_the_profile_and_seed():
    data = segmentation.synthetic_segmentation(300, 40, size=32)
    profile = config.PROFILES["smoke"]
    loaders = segmentation.make_segmentation_loaders(data, profile, seed=1, batch_size=50)
    assert loaders.sizes == {"train": 172, "val": 128, "test": 40}
    images = torch.cat([x for x, _ in loaders.train])
    assert images.mean(dim=(0, 2, 3)).abs().max() < 1e-4  # normalised by the train subset
    masks = torch.cat([y for _, y in loaders.val])
    assert masks.dtype == torch.float32 and set(masks.unique().tolist()) <= {0.0, 1.0}
    again = segmentation.make_segmentation_loaders(data, profile, seed=1, batch_size=50)
    assert torch.equal(
        next(iter(again.train))[1],
        next(
            iter(segmentation.make_segmentation_loaders(data, profile, seed=1, batch_size=50).train)
        )[1],
    )
    assert not torch.equal(
        next(iter(again.val))[1],
        next(
            iter(segmentation.make_segmentation_loaders(data, profile, seed=2, batch_size=50).val)
        )[1],
    )


def test_segmentation_data_rejects_non_binary_masks():
    data = segmentation.synthetic_segmentation(4, 2, size=16)
    with pytest.raises(ValueError, match="train_masks must be uint8 0/1"):
        segmentation.SegmentationData(
            data.train_images,
            data.train_masks * 2,
            data.test_images,
            data.test_masks,
            data.source,
            "bad",
        )


# --- Oxford-IIIT Pet: trimaps, a fake local copy, and missing files --------------------------


def test_trimap_to_foreground():
    trimap = np.array([[1, 2], [3, 2]])
    assert segmentation.pet_foreground(trimap).tolist() == [[1, 0], [1, 0]]
    with pytest.raises(ValueError, match=r"found \[0, 7\].*nearest"):
        segmentation.pet_foreground(np.array([[0, 1], [7, 2]]))


def fake_pets(root, trainval=("Abyssinian_1", "beagle_2", "pug_3"), test=("Bombay_4", "boxer_5")):
    """A tiny Oxford-IIIT Pet in torchvision's layout: left 3/5 of each photo is the pet."""
    base = root / segmentation.PET_FOLDER
    (base / "images").mkdir(parents=True)
    (base / "annotations" / "trimaps").mkdir(parents=True)
    trimap = np.full((30, 40), segmentation.BACKGROUND, dtype=np.uint8)
    trimap[:, :24] = segmentation.PET
    trimap[:, 22:24] = segmentation.BORDER
    for split, names in (("trainval", trainval), ("test", test)):
        lines = []
        for k, name in enumerate(names):
            photo = np.zeros((30, 40, 3), dtype=np.uint8)
            photo[:, :24] = (200, 60 + 40 * k, 20)  # a flat-coloured "pet"
            Image.fromarray(photo).save(base / "images" / f"{name}.jpg", quality=95)
            Image.fromarray(trimap).save(base / "annotations" / "trimaps" / f"{name}.png")
            lines.append(f"{name} {k + 1} {1 + name[0].islower()} 1")
        (base / "annotations" / f"{split}.txt").write_text("\n".join(lines) + "\n")
    return root


def test_pets_load_from_a_local_copy_as_binary_masks(tmp_path):
    pets = segmentation.load_pets(fake_pets(tmp_path), size=20, download=False)
    assert pets.train_images.shape == (3, 3, 20, 20) and pets.test_masks.shape == (2, 1, 20, 20)
    assert pets.source.kind == "real" and pets.name == segmentation.PETS
    # 24 of 40 columns are pet or border: 12 of 20 after resizing.
    expected = torch.zeros(20, 20, dtype=torch.uint8)
    expected[:, :12] = 1
    assert all(torch.equal(mask[0], expected) for mask in pets.train_masks)
    # Photos keep their colours (JPEG is lossy, hence the tolerance).
    assert (pets.train_images[1, :, 10, 3].int() - torch.tensor([200, 100, 20])).abs().max() < 8


@pytest.fixture
def pet_dir(monkeypatch, tmp_path):
    """COURSE_DATA_DIR in tmp_path, and Pet downloads that fail at once."""
    nowhere = (tmp_path / "nowhere").as_uri()
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    monkeypatch.setattr(
        torchvision.datasets.OxfordIIITPet,
        "_RESOURCES",
        ((nowhere + "/images.tar.gz", "0"), (nowhere + "/annotations.tar.gz", "0")),
    )
    return tmp_path


def test_a_local_copy_is_used_by_start_run(pet_dir):
    fake_pets(pet_dir)
    run = config.start_run(dataset=segmentation.PETS, profile="quick", data="auto", quiet=True)
    assert run.data.kind == "real" and "cached" in run.data.reason
    assert segmentation.load_segmentation(run, size=16).train_images.shape == (3, 3, 16, 16)


def test_real_mode_without_files_names_the_folder(pet_dir):
    run = config.start_run(dataset=segmentation.PETS, profile="quick", data="real", quiet=True)
    with pytest.raises(FileNotFoundError, match="OxfordIIITPet not found") as error:
        segmentation.load_segmentation(run)
    message = str(error.value)
    assert str(pet_dir / segmentation.PET_FOLDER) in message and "trainval.txt" in message


def test_auto_mode_falls_back_to_the_generated_set_loudly(pet_dir, capsys):
    run = config.start_run(profile="quick", data="auto", quiet=True).with_data(
        config.DataSource("real", "pretend the network is up")
    )
    data = segmentation.load_segmentation(run, size=24, n_train=6, n_test=2)
    assert data.name == "synthetic_blobs" and data.source.reason.startswith("OFFLINE")
    assert "NOTICE" in capsys.readouterr().out


def test_smoke_always_uses_the_generated_set(pet_dir):
    fake_pets(pet_dir)
    run = config.start_run(dataset=segmentation.PETS, profile="smoke", quiet=True)
    assert (
        segmentation.load_segmentation(run, size=16, n_train=4, n_test=2).source.kind == "embedded"
    )
