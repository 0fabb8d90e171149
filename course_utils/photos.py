"""Natural photos to look inside a network with: any image file, or one that ships with
scikit-image, so that it works offline.

    photo = load_photo()                    # scikit-image's cat, "chelsea"
    photo = load_photo("my_holiday.jpg")    # any file Pillow can open
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from skimage import data as skimage_data

# Colour photos bundled with scikit-image (no download needed).
BUILT_IN: dict[str, Callable[[], np.ndarray]] = {
    "chelsea": skimage_data.chelsea,  # a tabby cat, 300x451
    "astronaut": skimage_data.astronaut,  # Eileen Collins, 512x512
    "coffee": skimage_data.coffee,  # a cup of coffee, 400x600
}
DEFAULT_PHOTO = "chelsea"


def load_photo(source: str | Path | None = None) -> torch.Tensor:
    """Return a photo as a uint8 RGB tensor ``(3, H, W)``.

    ``source`` is the path of an image file (JPEG, PNG, anything Pillow opens; greyscale
    and transparent images are converted to RGB) or the name of a photo in
    :data:`BUILT_IN`; ``None`` gives :data:`DEFAULT_PHOTO`.

    >>> tuple(load_photo().shape), load_photo().dtype
    ((3, 300, 451), torch.uint8)
    """
    source = DEFAULT_PHOTO if source is None else source
    if isinstance(source, str) and source in BUILT_IN:
        pixels = BUILT_IN[source]()
    else:
        path = Path(source).expanduser()
        if not path.is_file():
            raise FileNotFoundError(
                f"No image file at {path}: name an image file (JPEG, "
                f"PNG, ...) or a built-in photo: {', '.join(BUILT_IN)}."
            )
        try:
            with Image.open(path) as image:
                pixels = np.array(image.convert("RGB"))  # a writable copy
        except UnidentifiedImageError as error:
            raise ValueError(
                f"{path} is not an image file Pillow can read; try a JPEG or PNG."
            ) from error
    return torch.from_numpy(pixels).permute(2, 0, 1).contiguous()
