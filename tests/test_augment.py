"""Augmentation presets: the batched tensor operations of the fast path, their agreement
with torchvision, and the TensorLoader that applies them."""

import pytest
import torch
import torch.nn.functional as F
from torchvision.transforms.v2 import functional as TF

from course_utils import data


@pytest.fixture(scope="module")
def images():
    """Known, asymmetric float images with pixel values 0 to 255: 6 RGB images of 32x32."""
    return torch.randint(0, 256, (6, 3, 32, 32), generator=torch.Generator().manual_seed(0)).float()


def generator(seed=0):
    return torch.Generator().manual_seed(seed)


# --- the deterministic operations ------------------------------------------------------


def test_flip_batch_mirrors_exactly_the_masked_images(images):
    everything = torch.ones(len(images), dtype=torch.bool)
    assert torch.equal(data.flip_batch(images, everything), torch.flip(images, dims=[3]))
    assert torch.equal(data.flip_batch(images, ~everything), images)
    some = torch.tensor([True, False, True, False, False, True])
    flipped = data.flip_batch(images, some)
    assert torch.equal(flipped[some], images[some].flip(-1))
    assert torch.equal(flipped[~some], images[~some])


def test_crop_batch_is_a_shifted_window_of_the_padded_image(images):
    padding = data.CROP_PADDING
    offsets = torch.tensor([[0, 0], [8, 8], [0, 8], [3, 5], [4, 4], [7, 1]])
    cropped = data.crop_batch(images, offsets, padding)
    assert cropped.shape == images.shape
    padded = F.pad(images, (padding,) * 4)
    for image, window, (top, left) in zip(padded, cropped, offsets.tolist(), strict=True):
        assert torch.equal(window, image[:, top : top + 32, left : left + 32])
    assert torch.equal(cropped[4], images[4])  # (padding, padding) is the image itself
    assert (cropped[0, :, :4, :] == 0).all() and (cropped[0, :, :, :4] == 0).all()  # black


@pytest.mark.parametrize("angle", [0.0, 15.0, -15.0, 7.3, 90.0])
@pytest.mark.parametrize("size", [(32, 32), (28, 28), (20, 30)])
def test_rotate_batch_matches_torchvision_rotate(angle, size):
    image = torch.arange(3 * size[0] * size[1], dtype=torch.float32).view(1, 3, *size)
    expected = TF.rotate(image, angle, interpolation=TF.InterpolationMode.NEAREST)
    rotated = data.rotate_batch(image, torch.tensor([angle]))
    assert torch.equal(rotated, expected)
    if angle == 0:
        assert torch.equal(rotated, image)


def test_rotate_batch_turns_each_image_by_its_own_angle(images):
    angles = torch.tensor([0.0, 10.0, -10.0, 15.0, -15.0, 5.0])
    rotated = data.rotate_batch(images, angles)
    for image, result, angle in zip(images, rotated, angles.tolist(), strict=True):
        assert torch.equal(result, data.rotate_batch(image[None], torch.tensor([angle]))[0])


# --- the random presets ----------------------------------------------------------------


def test_augment_batch_none_is_the_identity_and_presets_keep_the_shape(images):
    assert torch.equal(data.augment_batch(images, "none", generator()), images)
    for preset in data.AUGMENTATIONS:
        assert data.augment_batch(images, preset, generator()).shape == images.shape
    with pytest.raises(ValueError, match="Unknown augmentation 'blur'"):
        data.augment_batch(images, "blur")


def test_augment_batch_is_seeded(images):
    first, again, other = (data.augment_batch(images, "all", generator(seed)) for seed in (1, 1, 2))
    assert torch.equal(first, again) and not torch.equal(first, other)


def test_flip_preset_flips_about_half_of_the_images():
    many = torch.rand(2000, 1, 2, 3, generator=generator()) * 255
    flipped = data.augment_batch(many, "flip", generator())
    mirrored = (flipped == many.flip(-1)).flatten(1).all(dim=1)
    kept = (flipped == many).flatten(1).all(dim=1)
    assert (mirrored | kept).all()
    assert 0.45 < mirrored.float().mean() < 0.55


def test_crop_preset_shifts_by_up_to_four_pixels_each_way(images):
    many = images.repeat(40, 1, 1, 1)
    cropped = data.augment_batch(many, "crop", generator())
    padded = F.pad(many, (4,) * 4)
    shifts = set()
    for original, window in zip(padded, cropped, strict=True):
        found = [
            (top, left)
            for top in range(9)
            for left in range(9)
            if torch.equal(window, original[:, top : top + 32, left : left + 32])
        ]
        assert found, "a crop that is no window of the padded image"
        shifts.add(found[0])
    assert len(shifts) > 60  # of the 81 possible shifts, in 240 draws


def test_rotation_preset_rotates_each_image_within_fifteen_degrees(images):
    rotated = data.augment_batch(images, "rotation", generator())
    # Nearest neighbour changes pixels at many nearby angles, so a grid of candidate
    # angles comes close to each drawn angle but need not hit it pixel for pixel.
    candidates = torch.linspace(-15, 15, 601)
    for image, result in zip(images, rotated, strict=True):
        turned = data.rotate_batch(image.expand(len(candidates), -1, -1, -1), candidates)
        agreement = (turned == result).flatten(1).float().mean(dim=1)
        assert agreement.max() > 0.99, "no rotation within 15 degrees gives this image"
    assert not torch.equal(rotated, images)


def test_all_preset_flips_then_rotates_then_crops(images):
    # The same draws, in the same order, applied by hand.
    n, draws = len(images), generator(5)
    flip = torch.rand(n, generator=draws) < data.FLIP_PROBABILITY
    angles = (2 * torch.rand(n, generator=draws) - 1) * data.ROTATION_DEGREES
    offsets = torch.randint(0, 2 * data.CROP_PADDING + 1, (n, 2), generator=draws)
    by_hand = data.crop_batch(
        data.rotate_batch(data.flip_batch(images, flip), angles), offsets, data.CROP_PADDING
    )
    assert torch.equal(data.augment_batch(images, "all", generator(5)), by_hand)


# --- the classic transforms ------------------------------------------------------------


@pytest.mark.parametrize(
    "preset, steps",
    [
        ("none", []),
        ("flip", ["RandomHorizontalFlip"]),
        ("rotation", ["RandomRotation"]),
        ("crop", ["RandomCrop"]),
        ("all", ["RandomHorizontalFlip", "RandomRotation", "RandomCrop"]),
    ],
)
def test_classic_transform_has_the_preset_steps_in_order(preset, steps):
    transform = data.classic_transform(preset, [0.5] * 3, [0.2] * 3, image_size=(32, 32))
    names = [type(step).__name__ for step in transform.transforms]
    assert names == [*steps, "ToDtype", "Normalize"]


def test_classic_transform_agrees_with_the_batched_operations(images):
    uint8 = images.to(torch.uint8)
    mean, std = [0.4, 0.5, 0.6], [0.2, 0.25, 0.3]
    evaluation = data.classic_transform("none", mean, std, image_size=(32, 32))
    expected = data.normalize_images(uint8, mean, std)
    torch.testing.assert_close(
        torch.stack([evaluation(x) for x in uint8]), expected, atol=1e-6, rtol=0
    )
    # torchvision's random crop, rotation and flip, replayed with fixed parameters.
    padded = F.pad(uint8, (4,) * 4)
    torch.testing.assert_close(
        data.crop_batch(images, torch.tensor([[2, 7]] * 6), 4), padded[:, :, 2:34, 7:39].float()
    )
    rotated = torch.stack([TF.rotate(x, 12.0) for x in uint8])  # uint8, as in the pipeline
    assert torch.equal(data.rotate_batch(images, torch.full((6,), 12.0)), rotated.float())


def test_classic_crop_draws_windows_of_the_zero_padded_image(images):
    uint8 = images[:1].to(torch.uint8)
    crop = data.classic_transform("crop", [0.0] * 3, [1.0] * 3, image_size=(32, 32))
    torch.manual_seed(0)
    for _ in range(20):
        window = (crop(uint8[0]) * 255).round()
        shifts = [
            data.crop_batch(images[:1], torch.tensor([[top, left]]), 4)[0]
            for top in range(9)
            for left in range(9)
        ]
        assert any(torch.equal(window, shifted) for shifted in shifts)


# --- TensorLoader -------------------------------------------------------------------------


def tensor_loader(n=50, **options):
    uint8 = torch.randint(
        0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(1)
    )
    defaults = dict(batch_size=16, mean=[0.5] * 3, std=[0.25] * 3, device="cpu")
    return data.TensorLoader(uint8, torch.arange(n), **{**defaults, **options})


def batches(loader):
    return [(x.clone(), y.clone()) for x, y in loader]


def test_tensor_loader_counts_batches_and_images():
    loader = tensor_loader()
    assert len(loader) == 4 and len(loader.dataset) == 50
    assert [len(y) for _, y in loader] == [16, 16, 16, 2]
    dropping = tensor_loader(drop_last=True)
    assert len(dropping) == 3 and [len(y) for _, y in dropping] == [16, 16, 16]
    x, y = next(iter(loader))
    assert x.dtype == torch.float32 and y.dtype == torch.int64 and x.device.type == "cpu"
    with pytest.raises(ValueError, match="batch_size must be at least 1"):
        tensor_loader(batch_size=0)


def test_tensor_loader_unshuffled_yields_the_normalised_images_in_order():
    loader = tensor_loader()
    x = torch.cat([x for x, _ in loader])
    assert torch.equal(torch.cat([y for _, y in loader]), torch.arange(50))
    expected = data.normalize_images(loader.dataset.images, loader.mean, loader.std)
    assert torch.equal(x, expected)
    assert torch.equal(loader.dataset[7][0], expected[7])  # the dataset view: unaugmented


def test_tensor_loader_same_seed_same_batches_and_a_new_order_per_pass():
    first, again, other = (
        tensor_loader(shuffle=True, augment="all", seed=seed) for seed in (3, 3, 4)
    )
    one, two = batches(first), batches(first)
    for (x1, y1), (x2, y2) in zip(one, batches(again), strict=True):
        assert torch.equal(x1, x2) and torch.equal(y1, y2)
    assert not torch.equal(one[0][1], two[0][1])  # pass 2 reshuffles
    assert sorted(torch.cat([y for _, y in two]).tolist()) == list(range(50))
    assert not torch.equal(one[0][0], batches(other)[0][0])
    first.epoch = 1  # replays pass 2
    assert all(
        torch.equal(x, x_again) for (x, _), (x_again, _) in zip(two, batches(first), strict=True)
    )


def test_tensor_loader_augments_with_the_preset():
    plain, cropped = (tensor_loader(augment=preset, seed=0) for preset in ("none", "crop"))
    (x_plain, y_plain), (x_cropped, y_cropped) = next(iter(plain)), next(iter(cropped))
    assert torch.equal(y_plain, y_cropped) and not torch.equal(x_plain, x_cropped)
    # Unshuffled, the crops are those augment_batch draws from the pass's generator.
    generator = torch.Generator().manual_seed(data.fast._epoch_seed(0, 0))
    raw = cropped.dataset.images[:16].float()
    expected = data.normalize_images(
        data.augment_batch(raw, "crop", generator), cropped.mean, cropped.std
    )
    assert torch.equal(x_cropped, expected)
    with pytest.raises(ValueError, match="Unknown augmentation"):
        tensor_loader(augment="mixup")


def test_tensor_loader_trains_with_fit():
    from course_utils import train

    loader = tensor_loader(shuffle=True, augment="flip")
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 32 * 32, 50))
    history = train.fit(model, loader, tensor_loader(), epochs=2, device="cpu", progress=False)
    assert len(history.steps) == 2 * len(loader) and history.stop_reason == "completed"
    assert train.evaluate(model, tensor_loader())["acc"] > 0.1
