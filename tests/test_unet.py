"""course_utils.models.unet: output size for any input size, the four variants, bad settings."""

import pytest
import torch
from torch import nn

from course_utils.models import UNet
from course_utils.models.unet import kaiming_init

VARIANTS = [
    (upsampling, activation)
    for upsampling in ("transpose", "nearest")
    for activation in ("relu", "elu")
]


@pytest.mark.parametrize("size", [28, 30, 64, 65])
@pytest.mark.parametrize("upsampling,activation", VARIANTS)
def test_output_has_the_input_size(size, upsampling, activation):
    model = UNet(depth=4, base_width=4, upsampling=upsampling, activation=activation)
    assert model(torch.zeros(2, 3, size, size)).shape == (2, 1, size, size)


@pytest.mark.parametrize("height,width", [(28, 65), (33, 30), (8, 8)])
def test_rectangular_and_smallest_inputs(height, width):
    model = UNet(depth=4, base_width=2, in_channels=1, out_channels=3)
    assert model(torch.zeros(1, 1, height, width)).shape == (1, 3, height, width)


def test_too_small_input_names_the_size_and_depth():
    with pytest.raises(ValueError, match=r"\(7, 30\) pixels is too small for depth 4.*8 pixels"):
        UNet(depth=4)(torch.zeros(1, 3, 7, 30))


def test_depth_and_width_set_the_layers():
    model = UNet(depth=3, base_width=8)
    convs = [m for m in model.down.modules() if isinstance(m, nn.Conv2d)]
    assert [conv.out_channels for conv in convs] == [8, 8, 16, 16, 32, 32]
    assert len(model.up) == 2 and model.head.in_channels == 8
    # A depth of 1 has no pooling at all: two convolutions and the 1x1 head.
    assert UNet(depth=1, base_width=3)(torch.zeros(1, 3, 5, 5)).shape == (1, 1, 5, 5)


def test_variants_differ_where_they_should():
    def modules(model: nn.Module) -> set[type]:
        return {type(m) for m in model.modules()}

    transpose_relu = UNet(depth=3, base_width=4)
    nearest_elu = UNet(depth=3, base_width=4, upsampling="nearest", activation="elu")
    assert {nn.ConvTranspose2d, nn.ReLU} <= modules(transpose_relu)
    assert not {nn.ConvTranspose2d, nn.ReLU} & modules(nearest_elu)
    assert nn.ELU in modules(nearest_elu)
    # Nearest upsampling learns a 3x3 conv instead of a 2x2 transposed conv: per decoder
    # step, (9 - 4) * in * out more weights (16 * 8 and 8 * 4 here).
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(nearest_elu) - count(transpose_relu) == 5 * (16 * 8 + 8 * 4)


def test_an_output_pixel_sees_its_own_neighbourhood_only():
    # Fully convolutional: the logit at (5, 9) depends on the input around (5, 9), and
    # not on a far corner (a misaligned skip or a global layer would break this).
    torch.manual_seed(0)
    model = UNet(depth=3, base_width=4).eval()
    # Random, not zeros: with zero biases a zero image leaves every ReLU at 0, without gradient.
    image = torch.randn(1, 3, 64, 64, requires_grad=True)
    model(image)[0, 0, 5, 9].backward()
    influence = image.grad.abs().sum(dim=1)[0]
    assert influence[5, 9] > 0 and influence[63, 63] == 0  # local, not global


def test_bad_settings_are_explained():
    with pytest.raises(ValueError, match="upsampling must be one of"):
        UNet(upsampling="bilinear")
    with pytest.raises(ValueError, match="activation must be one of"):
        UNet(activation="tanh")
    with pytest.raises(ValueError, match="at least 1"):
        UNet(depth=0)


def test_convolutions_start_from_kaiming_weights_and_zero_biases():
    torch.manual_seed(0)
    model = UNet(depth=3, base_width=16, upsampling="nearest")
    for conv in (m for m in model.modules() if isinstance(m, nn.Conv2d) and m is not model.head):
        fan_in = conv.in_channels * conv.kernel_size[0] * conv.kernel_size[1]
        assert conv.weight.std().item() == pytest.approx((2 / fan_in) ** 0.5, rel=0.15)
        assert conv.bias.abs().max().item() == 0


def test_the_head_that_no_activation_follows_gets_gain_one():
    # Wide enough (64 * 16 weights) that the ReLU gain, 41 % larger, cannot pass as 1.
    torch.manual_seed(0)
    model = UNet(depth=2, base_width=64, out_channels=16)
    assert model.head.weight.std().item() == pytest.approx((1 / 64) ** 0.5, rel=0.1)
    assert model.head.bias.abs().max().item() == 0
    # What gain 1 is for: unit-variance inputs give outputs of unit variance, not 2.
    relu_head, linear_head = nn.Conv2d(256, 8, kernel_size=1), nn.Conv2d(256, 8, kernel_size=1)
    kaiming_init(nn.Sequential(relu_head, linear_head), linear=[linear_head])
    x = torch.randn(16, 256, 8, 8)
    assert linear_head(x).var().item() == pytest.approx(1, rel=0.1)
    assert relu_head(x).var().item() == pytest.approx(2, rel=0.1)  # only the listed one


def test_kaiming_keeps_the_signal_through_relus():
    # What the initialisation is for: the mean square of the activations neither
    # vanishes nor explodes through a deep ReLU stack (PyTorch's default shrinks it).
    torch.manual_seed(0)

    def stack() -> nn.Sequential:
        return nn.Sequential(
            *[layer for _ in range(12) for layer in (nn.Conv2d(16, 16, 3, padding=1), nn.ReLU())]
        )

    x = torch.randn(8, 16, 16, 16)
    kept = kaiming_init(stack())(x).pow(2).mean().item()
    default = stack()(x).pow(2).mean().item()
    # (The zero padding at the borders loses some signal in every layer, hence not 1.)
    assert 0.1 < kept < 3 and default < kept / 100


def test_a_transposed_convolution_counts_its_real_fan_in():
    # Stride 2 with a 2x2 kernel: each output value sees every input channel once, so
    # unit-variance inputs give outputs of variance 2 (the ReLU gain), whatever the width.
    torch.manual_seed(0)
    up = kaiming_init(nn.ConvTranspose2d(256, 8, kernel_size=2, stride=2))
    assert up(torch.randn(16, 256, 8, 8)).var().item() == pytest.approx(2, rel=0.1)
