"""The U-Net handed out for Assignment 4: an encoder-decoder with skip connections that
predicts one logit per pixel (Ronneberger et al., 2015, with padded convolutions).

::

    from course_utils.models import UNet
    model = UNet(depth=3, base_width=16, upsampling="nearest", activation="elu")
    logits = model(images)  # (N, 1, H, W) for images (N, 3, H, W), any H, W

The encoder is ``depth`` levels of two 3x3 convolutions; between levels, 2x2 max
pooling halves the size and the width doubles. The decoder climbs back up: each step
upsamples, halves the width, joins the encoder's map of that level (the skip
connection) and applies two 3x3 convolutions. Two ways to upsample:

- ``"transpose"``: a learned 2x2 transposed convolution with stride 2;
- ``"nearest"``: copy each pixel into a 2x2 block, then a 3x3 convolution. Unlike a
  transposed convolution with stride 2, this cannot produce checkerboard artefacts.

Pooling an odd size drops the last row or column (65 -> 32), so an upsampled map can
be one pixel short of the skip it joins; it is padded (transposed) or resized
(nearest) to the skip's exact size, and the output always has the input's size.

Every convolution that an activation follows starts from Kaiming (He) normal weights
with the ReLU gain and zero biases (:func:`kaiming_init`), as the field initialises ReLU
networks: PyTorch's default keeps the activations' variance only for a linear network,
so through ReLUs it halves at every layer. ELU is the identity for positive inputs, and
ELU networks are usually initialised the same way. The final 1x1 ``head`` convolution
is followed by no activation, so it gets gain 1 (standard deviation ``sqrt(1 / fan_in)``),
as the output layers of the course's other networks do.
"""

from __future__ import annotations

from collections.abc import Collection

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["ACTIVATIONS", "UPSAMPLING", "UNet", "kaiming_init"]

UPSAMPLING = ("transpose", "nearest")
ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "elu": nn.ELU}


def kaiming_init(model: nn.Module, linear: Collection[nn.Module] = ()) -> nn.Module:
    """Kaiming-normal weights and zero biases for every convolution in ``model``.

    The weights get standard deviation ``sqrt(2 / fan_in)`` (the ReLU gain), where
    ``fan_in`` is the number of inputs that reach one output value (He et al., 2015).
    The convolutions in ``linear``, which no ReLU follows (an output layer), get gain 1,
    ``sqrt(1 / fan_in)``: the factor 2 makes up for the half of the signal a ReLU sets
    to zero, and without a ReLU it would only double the variance of the outputs.

    For a convolution ``fan_in`` is ``in_channels * kernel height * kernel width``. A
    transposed convolution with stride equal to its kernel (the U-Net's 2x2, stride 2)
    places each input pixel once, so an output value sees ``in_channels`` inputs:
    ``nn.init.kaiming_normal_`` would take the fan-in from the wrong axis of its weight
    tensor.

    >>> up = kaiming_init(nn.ConvTranspose2d(512, 8, kernel_size=2, stride=2))
    >>> round(float(up.weight.std()) / (2 / 512) ** 0.5, 1), float(up.bias.abs().max())
    (1.0, 0.0)
    >>> head = nn.Conv2d(512, 8, kernel_size=1)
    >>> round(float(kaiming_init(head, linear=[head]).weight.std()) / (1 / 512) ** 0.5, 1)
    1.0
    """
    linear_ids = {id(module) for module in linear}
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            fan_in = module.in_channels * module.kernel_size[0] * module.kernel_size[1]
        elif isinstance(module, nn.ConvTranspose2d):
            taps = [max(1, k // s) for k, s in zip(module.kernel_size, module.stride, strict=True)]
            fan_in = module.in_channels * taps[0] * taps[1]
        else:
            continue
        fan_in //= module.groups
        with torch.no_grad():
            gain_squared = 1.0 if id(module) in linear_ids else 2.0
            module.weight.normal_(0.0, (gain_squared / fan_in) ** 0.5)
            if module.bias is not None:
                module.bias.zero_()
    return model


def _double_conv(in_channels: int, out_channels: int, activation: str) -> nn.Sequential:
    """Two 3x3 convolutions with padding 1 (size kept), each followed by the activation."""
    make = ACTIVATIONS[activation]
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1),
        make(),
        nn.Conv2d(out_channels, out_channels, 3, padding=1),
        make(),
    )


class _Up(nn.Module):
    """One decoder step: upsample, match the skip's size, concatenate, double conv."""

    def __init__(
        self, in_channels: int, out_channels: int, upsampling: str, activation: str
    ) -> None:
        super().__init__()
        self.upsampling = upsampling
        self.up: nn.Module
        if upsampling == "transpose":
            self.up = nn.ConvTranspose2d(in_channels, out_channels, kernel_size=2, stride=2)
        else:
            self.up = nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1)
        self.conv = _double_conv(2 * out_channels, out_channels, activation)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        size = skip.shape[-2:]
        if self.upsampling == "transpose":
            x = self.up(x)
            # Doubling a floored size can fall one pixel short: pad at the bottom/right.
            x = F.pad(x, (0, size[1] - x.shape[-1], 0, size[0] - x.shape[-2]))
        else:
            # Straight to the skip's size, so odd sizes need no padding.
            x = self.up(F.interpolate(x, size=size, mode="nearest"))
        return self.conv(torch.cat([skip, x], dim=1))


class UNet(nn.Module):
    """A U-Net that maps images ``(N, in_channels, H, W)`` to logits ``(N, out_channels, H, W)``.

    - ``depth``: number of resolution levels (``depth - 1`` poolings); the input must
      be at least ``2 ** (depth - 1)`` pixels on each side.
    - ``base_width``: channels of the first level; level ``k`` has ``base_width * 2**k``.
    - ``upsampling``: ``"transpose"`` or ``"nearest"`` (see the module docstring).
    - ``activation``: ``"relu"`` or ``"elu"``, after every convolution but the last.

    For binary segmentation keep ``out_channels=1`` and train with
    ``nn.BCEWithLogitsLoss``; a pixel is foreground where its logit is positive.

    >>> model = UNet(depth=3, base_width=4)
    >>> model(torch.zeros(2, 3, 30, 30)).shape
    torch.Size([2, 1, 30, 30])
    >>> sum(p.numel() for p in model.parameters())
    7469
    """

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 1,
        depth: int = 4,
        base_width: int = 16,
        upsampling: str = "transpose",
        activation: str = "relu",
    ) -> None:
        super().__init__()
        if upsampling not in UPSAMPLING:
            raise ValueError(f"upsampling must be one of {UPSAMPLING}; got {upsampling!r}.")
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {tuple(ACTIVATIONS)}; got {activation!r}.")
        if depth < 1 or base_width < 1:
            raise ValueError(
                f"depth and base_width must be at least 1; got {depth} and {base_width}."
            )
        self.depth = depth
        widths = [base_width * 2**level for level in range(depth)]
        self.down = nn.ModuleList(
            _double_conv(in_channels if level == 0 else widths[level - 1], width, activation)
            for level, width in enumerate(widths)
        )
        self.pool = nn.MaxPool2d(2)
        self.up = nn.ModuleList(
            _Up(widths[level + 1], widths[level], upsampling, activation)
            for level in reversed(range(depth - 1))
        )
        self.head = nn.Conv2d(base_width, out_channels, kernel_size=1)
        kaiming_init(self, linear=[self.head])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        smallest = 2 ** (self.depth - 1)
        if min(x.shape[-2:]) < smallest:
            raise ValueError(
                f"UNet input of {tuple(x.shape[-2:])} pixels is too small for "
                f"depth {self.depth}: its {self.depth - 1} poolings need at least "
                f"{smallest} pixels a side. Use larger images or a smaller depth."
            )
        skips = []
        for level, block in enumerate(self.down):
            if level:
                x = self.pool(x)
            x = block(x)
            skips.append(x)
        for block, skip in zip(self.up, reversed(skips[:-1]), strict=True):
            x = block(x, skip)
        return self.head(x)
