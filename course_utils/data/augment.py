"""Data augmentation presets, written twice with the same meaning.

=========  ==========================================================================
preset     training images are...
=========  ==========================================================================
none       left as they are
flip       mirrored left-right with probability 0.5
rotation   rotated by a uniform random angle in [-15, 15] degrees (nearest neighbour)
crop       padded with 4 black pixels on each side, then cut back to their size at a
           random position (a shift of up to 4 pixels each way)
all        flip, then rotation, then crop
=========  ==========================================================================

Pixels that a rotation or a crop brings in from outside the image are black (0).
Evaluation never augments.

- :func:`classic_transform` builds the torchvision ``transforms.v2`` pipeline that a
  ``Dataset`` applies to one uint8 image at a time: the classic path.
- :func:`augment_batch` does the same to a whole batch at once with tensor operations,
  on whatever device the batch is on: the fast path of
  :class:`course_utils.data.TensorLoader`. Each sample draws its own random flip, angle
  and shift, from a ``torch.Generator`` so that a seed fixes them.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torchvision.transforms import v2

AUGMENTATIONS: dict[str, tuple[str, ...]] = {
    "none": (),
    "flip": ("flip",),
    "rotation": ("rotation",),
    "crop": ("crop",),
    "all": ("flip", "rotation", "crop"),
}
FLIP_PROBABILITY = 0.5
ROTATION_DEGREES = 15.0
CROP_PADDING = 4


def augmentation_steps(augment: str) -> tuple[str, ...]:
    """The steps of the preset ``augment``, in the order they are applied.

    >>> augmentation_steps("all")
    ('flip', 'rotation', 'crop')
    """
    if augment not in AUGMENTATIONS:
        raise ValueError(
            f"Unknown augmentation {augment!r}: expected one of {', '.join(AUGMENTATIONS)}."
        )
    return AUGMENTATIONS[augment]


# --- the classic path: torchvision transforms, one image at a time ---------------------


def classic_transform(
    augment: str, mean: Sequence[float], std: Sequence[float], image_size: tuple[int, int]
) -> v2.Compose:
    """The ``transforms.v2`` pipeline for one uint8 image ``(C, H, W)``: the preset's
    random steps, then scaling to [0, 1] and per-channel normalisation.

    ``classic_transform("none", ...)`` is the evaluation transform. ``image_size``
    ``(H, W)`` is the size a crop cuts back to.

    >>> transform = classic_transform("flip", [0.5], [0.5], image_size=(2, 2))
    >>> [type(step).__name__ for step in transform.transforms]
    ['RandomHorizontalFlip', 'ToDtype', 'Normalize']
    >>> transform(torch.zeros(1, 2, 2, dtype=torch.uint8)).unique().tolist()
    [-1.0]
    """
    random_steps = {
        "flip": v2.RandomHorizontalFlip(p=FLIP_PROBABILITY),
        # Nearest neighbour and a black fill are RandomRotation's defaults.
        "rotation": v2.RandomRotation(ROTATION_DEGREES),
        "crop": v2.RandomCrop(image_size, padding=CROP_PADDING),
    }
    steps = [random_steps[step] for step in augmentation_steps(augment)]
    return v2.Compose(
        [*steps, v2.ToDtype(torch.float32, scale=True), v2.Normalize(list(mean), list(std))]
    )


# --- the fast path: a whole batch at once ----------------------------------------------


def flip_batch(images: torch.Tensor, flip: torch.Tensor) -> torch.Tensor:
    """Mirror left-right the images ``(N, C, H, W)`` whose entry in the bool mask
    ``flip`` ``(N,)`` is True; keep the others.

    >>> images = torch.tensor([[[[1, 2]]], [[[3, 4]]]])
    >>> flip_batch(images, torch.tensor([True, False])).flatten().tolist()
    [2, 1, 3, 4]
    """
    return torch.where(flip.view(-1, 1, 1, 1), images.flip(-1), images)


def rotate_batch(images: torch.Tensor, degrees: torch.Tensor) -> torch.Tensor:
    """Rotate each float image ``(N, C, H, W)`` about its centre by its own angle
    ``degrees`` ``(N,)``, counter-clockwise, like ``torchvision``'s ``rotate``:
    nearest neighbour, black (0) where the rotated image does not reach.

    >>> image = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])
    >>> rotate_batch(image, torch.tensor([90.0])).flatten().tolist()
    [2.0, 4.0, 1.0, 3.0]
    """
    height, width = images.shape[-2:]
    angle = torch.deg2rad(degrees.to(images.dtype))
    cos, sin, zero = angle.cos(), angle.sin(), torch.zeros_like(angle)
    # theta maps each output pixel to the input point it samples, in coordinates scaled
    # to [-1, 1] along each axis; the height/width factors keep the rotation rigid (not
    # sheared) on non-square images.
    theta = torch.stack(
        [
            torch.stack([cos, -sin * height / width, zero], dim=1),
            torch.stack([sin * width / height, cos, zero], dim=1),
        ],
        dim=1,
    )
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="nearest", padding_mode="zeros", align_corners=False)


def crop_batch(images: torch.Tensor, offsets: torch.Tensor, padding: int) -> torch.Tensor:
    """Pad the images ``(N, C, H, W)`` with ``padding`` zeros on each side, then cut
    from each the ``H x W`` window whose top-left corner is its row of ``offsets``
    ``(N, 2)``: (top, left), each in ``[0, 2 * padding]``.

    Offsets of ``(padding, padding)`` give back the image itself.

    >>> images = torch.tensor([[[[1, 2], [3, 4]]]])
    >>> crop_batch(images, torch.tensor([[0, 1]]), padding=1).tolist()
    [[[[0, 0], [1, 2]]]]
    """
    n, channels, height, width = images.shape
    padded = F.pad(images, (padding, padding, padding, padding))
    arange = torch.arange(max(height, width), device=images.device)
    # Gather each window's rows, then its columns: two gathers along one axis each are
    # several times faster than one 4-D advanced index.
    rows = (offsets[:, :1] + arange[:height]).view(n, 1, height, 1)
    band = padded.gather(2, rows.expand(n, channels, height, width + 2 * padding))
    columns = (offsets[:, 1:] + arange[:width]).view(n, 1, 1, width)
    return band.gather(3, columns.expand(n, channels, height, width))


def augment_batch(
    images: torch.Tensor, augment: str, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Apply the preset ``augment`` to a batch of float images ``(N, C, H, W)`` with
    pixel values 0 to 255 (before normalisation, so that the fill is black).

    Every sample draws its own flip, angle and offsets from ``generator``, which must
    live on the images' device; ``None`` uses torch's global generator.

    >>> images = torch.rand(8, 3, 32, 32) * 255
    >>> generator = torch.Generator().manual_seed(0)
    >>> augment_batch(images, "all", generator).shape
    torch.Size([8, 3, 32, 32])
    >>> torch.equal(augment_batch(images, "none"), images)
    True
    """
    n, device = len(images), images.device
    for step in augmentation_steps(augment):
        if step == "flip":
            flip = torch.rand(n, generator=generator, device=device) < FLIP_PROBABILITY
            images = flip_batch(images, flip)
        elif step == "rotation":
            uniform = torch.rand(n, generator=generator, device=device)
            images = rotate_batch(images, (2 * uniform - 1) * ROTATION_DEGREES)
        else:  # crop
            offsets = torch.randint(
                0, 2 * CROP_PADDING + 1, (n, 2), generator=generator, device=device
            )
            images = crop_batch(images, offsets, CROP_PADDING)
    return images
