"""Grad-CAM, map upsampling and overlays."""

import matplotlib.pyplot as plt
import pytest
import torch
from torch import nn

from course_utils import saliency
from course_utils.models import transfer

SIZE = 16
HALF = SIZE // 2
# Quadrant k as (rows, columns): top-left, top-right, bottom-left, bottom-right.
QUADRANTS = [(slice(0, HALF), slice(0, HALF)), (slice(0, HALF), slice(HALF, SIZE)),
             (slice(HALF, SIZE), slice(0, HALF)), (slice(HALF, SIZE), slice(HALF, SIZE))]


class QuadrantGate(nn.Module):
    """Keeps channel k of its input inside quadrant k only."""

    def __init__(self) -> None:
        super().__init__()
        mask = torch.zeros(4, SIZE, SIZE)
        for k, (rows, columns) in enumerate(QUADRANTS):
            mask[k, rows, columns] = 1
        self.register_buffer("mask", mask)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.mask


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


def quadrant_of(heat: torch.Tensor) -> int:
    """The quadrant (0 to 3, as in QUADRANTS) of a map's largest value."""
    row, column = divmod(int(heat.argmax()), heat.shape[1])
    return 2 * (row >= heat.shape[0] / 2) + (column >= heat.shape[1] / 2)


@pytest.fixture
def image() -> torch.Tensor:
    """Random pixels, brighter in the bottom-left quadrant: the toy predicts class 2."""
    torch.manual_seed(0)
    image = torch.rand(3, SIZE, SIZE)
    image[:, HALF:, :HALF] += 1
    return image


def test_grad_cam_peaks_in_the_quadrant_the_class_depends_on(image):
    model = QuadrantNet()
    predicted = saliency.grad_cam(model, "features", image)
    assert predicted.class_index == 2
    assert quadrant_of(predicted.heatmap) == 2
    for k, (rows, columns) in enumerate(QUADRANTS):  # a chosen class, each quadrant in turn
        heat = saliency.grad_cam(model, "features", image, target=k).heatmap
        assert quadrant_of(heat) == k
        outside = heat.clone()
        outside[rows, columns] = 0
        assert heat[rows, columns].min() > 0 and outside.abs().max() == 0
        # Stretched to a photo of another shape, the peak stays in that quadrant.
        assert quadrant_of(saliency.upsample_map(heat, (30, 50))) == k


def test_grad_cam_reports_the_score_and_probability(image):
    model = QuadrantNet()
    result = saliency.grad_cam(model, "features", image.unsqueeze(0), target=1)
    with torch.no_grad():
        logits = model(image[None])[0]
    assert result.score == pytest.approx(float(logits[1]))
    assert result.probability == pytest.approx(float(torch.softmax(logits, 0)[1]))
    assert result.activations.shape == result.gradients.shape == (4, SIZE, SIZE)
    torch.testing.assert_close(result.heatmap,
                               saliency.grad_cam_map(result.activations, result.gradients))


def test_grad_cam_leaves_the_model_as_it_was(image):
    model = QuadrantNet().train()
    saliency.grad_cam(model, "features", image)
    assert model.training
    assert all(p.grad is None for p in model.parameters())
    assert not model.features._forward_hooks  # the hook is removed


def test_grad_cam_works_on_a_frozen_resnet():
    model = transfer.resnet18(num_classes=3, freeze_backbone=True)
    result = saliency.grad_cam(model, "layer4", torch.rand(3, 64, 64))
    assert result.heatmap.shape == (2, 2) and 0 <= result.class_index < 3
    assert (result.heatmap >= 0).all()


def test_grad_cam_rejects_bad_targets_and_layers(image):
    model = QuadrantNet()
    with pytest.raises(IndexError, match="scores 4 classes"):
        saliency.grad_cam(model, "features", image, target=4)
    with pytest.raises(KeyError, match="no layer named 'layer9'"):
        saliency.grad_cam(model, "layer9", image)
    with pytest.raises(ValueError, match="one image"):
        saliency.grad_cam(model, "features", torch.rand(2, 3, SIZE, SIZE))


def test_grad_cam_map_keeps_only_evidence_for_the_class():
    activations = torch.rand(3, 4, 4)
    against = saliency.grad_cam_map(activations, -torch.ones(3, 4, 4))
    assert torch.equal(against, torch.zeros(4, 4))  # every channel lowers the score
    with pytest.raises(ValueError, match="both be"):
        saliency.grad_cam_map(activations, torch.ones(3, 2, 2))


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
