"""Layer gradients (what Grad-CAM is built from), map upsampling and overlays."""

import matplotlib.pyplot as plt
import pytest
import torch
from torch import nn

from course_utils import saliency
from course_utils.models import transfer

SIZE = 16
HALF = SIZE // 2
# Quadrant k as (rows, columns): top-left, top-right, bottom-left, bottom-right.
QUADRANTS = [
    (slice(0, HALF), slice(0, HALF)),
    (slice(0, HALF), slice(HALF, SIZE)),
    (slice(HALF, SIZE), slice(0, HALF)),
    (slice(HALF, SIZE), slice(HALF, SIZE)),
]


class QuadrantGate(nn.Module):
    """Keeps channel k of its input inside quadrant k only."""

    def __init__(self) -> None:
        super().__init__()
        mask = torch.zeros(4, SIZE, SIZE)
        for k, (rows, columns) in enumerate(QUADRANTS):
            mask[k, rows, columns] = 1
        self.register_buffer("mask", mask)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.get_buffer("mask")


class QuadrantNet(nn.Module):
    """A toy classifier whose score for class k depends only on quadrant k of the image:
    its brightness there (channel k = the sum of R, G and B, gated to quadrant k)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 1)
        nn.init.ones_(self.conv.weight)
        nn.init.zeros_(self.conv.bias)
        self.features = QuadrantGate()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(torch.relu(self.conv(x))).mean(dim=(2, 3))


@pytest.fixture
def image() -> torch.Tensor:
    """Random pixels, brighter in the bottom-left quadrant: the toy predicts class 2."""
    torch.manual_seed(0)
    image = torch.rand(3, SIZE, SIZE)
    image[:, HALF:, :HALF] += 1
    return image


def test_layer_gradients_of_the_quadrant_net(image):
    model = QuadrantNet()
    predicted = saliency.layer_gradients(model, "features", image)
    assert predicted.class_index == 2
    for k, (rows, columns) in enumerate(QUADRANTS):
        captured = saliency.layer_gradients(model, "features", image, target=k)
        # Class k is the mean of channel k: its gradient is 1 / (h * w) there, 0 elsewhere.
        expected = torch.zeros(4, SIZE, SIZE)
        expected[k] = 1 / SIZE**2
        torch.testing.assert_close(captured.gradients, expected)
        outside = captured.activations[k].clone()
        outside[rows, columns] = 0
        assert captured.activations[k][rows, columns].min() > 0 and outside.abs().max() == 0


def test_gradients_before_global_average_pooling_are_the_head_weights():
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 5, 3, stride=2),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(5, 3),
    )
    captured = saliency.layer_gradients(net, "1", torch.rand(3, 11, 15), target=1)
    h, w = captured.activations.shape[1:]
    expected = (net[-1].weight[1] / (h * w))[:, None, None].expand(5, h, w)
    torch.testing.assert_close(captured.gradients, expected.detach())


def test_layer_gradients_report_the_score_and_probability(image):
    model = QuadrantNet()
    result = saliency.layer_gradients(model, "features", image.unsqueeze(0), target=1)
    with torch.no_grad():
        logits = model(image[None])[0]
    assert result.score == pytest.approx(float(logits[1]))
    assert result.probability == pytest.approx(float(torch.softmax(logits, 0)[1]))
    assert result.activations.shape == result.gradients.shape == (4, SIZE, SIZE)


def test_layer_gradients_leave_the_model_as_it_was(image):
    model = QuadrantNet().train()
    saliency.layer_gradients(model, "features", image)
    assert model.training
    assert all(p.grad is None for p in model.parameters())
    assert not model.features._forward_hooks  # the hook is removed


def test_layer_gradients_work_on_a_frozen_resnet():
    model = transfer.resnet18(num_classes=3, freeze_backbone=True)
    result = saliency.layer_gradients(model, "layer4", torch.rand(3, 64, 64))
    assert result.activations.shape == (512, 2, 2) and 0 <= result.class_index < 3
    assert result.gradients.abs().sum() > 0


def test_layer_gradients_reject_bad_targets_and_layers(image):
    model = QuadrantNet()
    with pytest.raises(IndexError, match="scores 4 classes"):
        saliency.layer_gradients(model, "features", image, target=4)
    with pytest.raises(KeyError, match="no layer named 'layer9'"):
        saliency.layer_gradients(model, "layer9", image)
    with pytest.raises(ValueError, match="one image"):
        saliency.layer_gradients(model, "features", torch.rand(2, 3, SIZE, SIZE))


def test_overlay_keeps_the_photos_size():
    photo = torch.randint(0, 256, (3, 300, 451), dtype=torch.uint8)
    blended = saliency.overlay(photo, torch.rand(7, 7))
    assert blended.shape == (300, 451, 3)
    assert blended.min() >= 0 and blended.max() <= 1


def test_overlay_leaves_the_photo_alone_where_the_map_is_low():
    photo = torch.full((3, 20, 20), 128, dtype=torch.uint8)
    heat = torch.zeros(2, 2)
    heat[0, 0] = 1  # top-left cell only
    blended = saliency.overlay(photo, heat, alpha=0.5)
    assert blended[-1, -1].tolist() == pytest.approx([128 / 255] * 3)  # untouched
    assert not blended[0, 0].tolist() == pytest.approx([128 / 255] * 3)  # tinted
    with pytest.raises(ValueError, match="opacity"):
        saliency.overlay(photo, heat, alpha=2)
    with pytest.raises(ValueError, match="RGB image"):
        saliency.overlay(torch.zeros(20, 20), heat)


def test_scale_map_handles_a_constant_map():
    assert torch.equal(saliency.scale_map(torch.full((3, 3), 5.0)), torch.zeros(3, 3))
    with pytest.raises(ValueError, match="A map is"):
        saliency.upsample_map(torch.rand(2, 3, 3), (9, 9))


def test_plot_overlays_draws_the_photo_then_each_map():
    photo = torch.zeros(3, 40, 60, dtype=torch.uint8)
    fig = saliency.plot_overlays(photo, {"a": torch.rand(4, 4), "b": torch.rand(4, 4)})
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles == ["photo", "a", "b"]
    assert fig.axes[1].images[0].get_array().shape == (40, 60, 3)
    assert all(ax.get_ylabel() == "y (pixels)" for ax in fig.axes[:3])
    plt.close(fig)
    with pytest.raises(ValueError, match="No maps"):
        saliency.plot_overlays(photo, {})
