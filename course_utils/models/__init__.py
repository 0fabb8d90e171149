"""The models the course hands out ready-made; the ones students build live in the notebooks.

- :class:`~course_utils.models.unet.UNet`: the U-Net of Assignment 4 that students modify;
- :mod:`~course_utils.models.transfer`: ResNet18 with ImageNet weights (when cached or
  downloadable) and a new head, with its ImageNet preprocessing, for Assignment 3.

>>> from course_utils.models import UNet, transfer
>>> UNet(base_width=4, depth=2).__class__.__name__
'UNet'
"""

from course_utils.models import transfer
from course_utils.models.unet import UNet

__all__ = ["UNet", "transfer"]
