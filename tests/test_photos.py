"""Photos from any image file, or built into scikit-image."""

import numpy as np
import pytest
import torch
from PIL import Image

from course_utils import photos


def test_default_and_built_in_photos_are_rgb_uint8():
    cat = photos.load_photo()
    assert cat.dtype == torch.uint8 and cat.shape == (3, 300, 451)
    assert photos.load_photo("astronaut").shape == (3, 512, 512)


def test_any_image_file_works(tmp_path):
    pixels = np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "photo.png")
    loaded = photos.load_photo(tmp_path / "photo.png")
    assert torch.equal(loaded, torch.from_numpy(pixels).permute(2, 0, 1))
    # Greyscale and transparent files come back as RGB.
    Image.fromarray(pixels[..., 0]).save(tmp_path / "grey.png")
    Image.fromarray(np.dstack([pixels, pixels[..., :1]])).save(tmp_path / "rgba.png")
    assert photos.load_photo(str(tmp_path / "grey.png")).shape == (3, 20, 30)
    assert photos.load_photo(tmp_path / "rgba.png").shape == (3, 20, 30)


def test_missing_and_unreadable_files_say_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError, match="built-in photo: chelsea"):
        photos.load_photo(tmp_path / "nothing.jpg")
    (tmp_path / "notes.txt").write_text("not a picture")
    with pytest.raises(ValueError, match="not an image file"):
        photos.load_photo(tmp_path / "notes.txt")
