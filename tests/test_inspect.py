"""layer_table traces real shapes and names the layer when a shape is wrong;
capture_activations records chosen layers and always removes its hooks."""

import pytest
import torch
from torch import nn

from course_utils.inspect import (
    ShapeMismatchError,
    capture_activations,
    conv_layer_names,
    format_layer_table,
    layer_table,
)


class Flattening(nn.Module):
    def __init__(self, features: int):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)
        self.fc = nn.Linear(features, 2)

    def forward(self, x):
        return self.fc(torch.flatten(self.conv(x), 1))


class Reshaping(Flattening):
    def forward(self, x):
        return self.fc(self.conv(x).view(-1, 7))


def test_table_lists_leaf_layers_with_shapes_and_params():
    net = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(8 * 2 * 2, 3),
    )
    table = layer_table(net, (2, 3, 4, 4))
    assert table["type"].tolist() == [
        "Conv2d",
        "BatchNorm2d",
        "ReLU",
        "MaxPool2d",
        "Flatten",
        "Linear",
    ]
    assert table["output shape"].tolist()[-2:] == ["(2, 32)", "(2, 3)"]
    assert table["params"].tolist() == [224, 16, 0, 0, 0, 99]
    assert table.attrs["total_params"] == sum(p.numel() for p in net.parameters())


def test_frozen_parameters_are_not_trainable():
    net = nn.Sequential(nn.Linear(4, 3), nn.Linear(3, 2))
    net[0].requires_grad_(False)
    table = layer_table(net, (1, 4))
    assert table["trainable"].tolist() == [0, 8]


def test_model_mode_and_hooks_are_restored():
    net = nn.Sequential(nn.Linear(4, 2))
    net.train()
    layer_table(net, (1, 4))
    assert net.training
    assert not net[0]._forward_hooks and not net[0]._forward_pre_hooks


def test_linear_mismatch_names_layer_and_sizes():
    with pytest.raises(
        ShapeMismatchError, match=r"layer 'fc' \(Linear\) expects 100 input features, got 144"
    ):
        layer_table(Flattening(100), (1, 1, 8, 8))


def test_conv_channel_mismatch_names_layer():
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Conv2d(5, 2, 3))
    with pytest.raises(
        ShapeMismatchError, match=r"layer '1' \(Conv2d\) expects 5 input channels, got 4"
    ):
        layer_table(net, (1, 3, 8, 8))


def test_error_in_forward_names_the_last_layer_that_ran():
    with pytest.raises(
        ShapeMismatchError, match=r"after layer 'conv' \(its output shape is \(1, 4, 6, 6\)\)"
    ):
        layer_table(Reshaping(7), (1, 1, 8, 8))
    net = Reshaping(7)
    with pytest.raises(ShapeMismatchError):
        layer_table(net, (1, 1, 8, 8))
    assert not net.conv._forward_hooks, "hooks must be removed even when the forward pass fails"


def test_format_has_total_line():
    text = format_layer_table(layer_table(nn.Sequential(nn.Linear(300, 10)), (1, 300)))
    assert text.splitlines()[-1] == "total parameters: 3,010"


class SmallCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 5, padding=2)
        self.pool = nn.MaxPool2d(2)
        self.block = nn.Sequential(nn.Conv2d(4, 8, 3, padding=1), nn.ReLU())
        self.fc = nn.Linear(8 * 4 * 4, 10)

    def forward(self, x):
        return self.fc(torch.flatten(self.block(self.pool(self.conv1(x))), 1))


def all_hooks(model: nn.Module) -> list:
    return [hook for module in model.modules() for hook in module._forward_hooks.values()]


def test_capture_returns_each_layers_output_with_its_shape():
    net = SmallCNN()
    images = torch.randn(3, 1, 8, 8)

    maps = capture_activations(net, ["conv1", "block.0", "fc"], images)

    assert list(maps) == ["conv1", "block.0", "fc"]
    assert [tuple(t.shape) for t in maps.values()] == [(3, 4, 8, 8), (3, 8, 4, 4), (3, 10)]
    with torch.no_grad():
        torch.testing.assert_close(maps["conv1"], net.conv1(images))
        torch.testing.assert_close(maps["fc"], net(images))
    assert all(not t.requires_grad and t.device.type == "cpu" for t in maps.values())
    assert not all_hooks(net)


def test_capture_accepts_one_name_and_restores_the_mode():
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Dropout(0.5))
    net.train()
    net[1].eval()  # a layer kept in eval mode on purpose stays that way

    images = torch.ones(4, 1, 5, 5)

    first = capture_activations(net, "1", images)["1"]
    second = capture_activations(net, "1", images)["1"]

    torch.testing.assert_close(first, second)  # captured in eval mode: dropout was off
    assert net.training and net[0].training and not net[1].training


def test_hooks_are_removed_even_when_the_forward_pass_raises():
    net = SmallCNN()
    with pytest.raises(RuntimeError):
        capture_activations(net, ["conv1", "block.0"], torch.randn(1, 1, 12, 12))  # fc gets 288
    assert not all_hooks(net)
    # Nothing keeps recording: a later forward pass leaves no trace anywhere.
    net(torch.randn(1, 1, 8, 8))
    assert not all_hooks(net)


def test_unknown_layer_names_the_layers_that_exist():
    net = SmallCNN()
    with pytest.raises(
        KeyError,
        match=r"no layer named 'conv9'.*'conv1', 'pool', 'block', "
        r"'block.0', 'block.1', 'fc'",
    ):
        capture_activations(net, ["conv1", "conv9"], torch.randn(1, 1, 8, 8))
    assert not all_hooks(net)


def test_a_layer_that_never_runs_is_reported():
    net = SmallCNN()
    net.unused = nn.Conv2d(1, 1, 1)
    with pytest.raises(RuntimeError, match=r"\['unused'\] did not run"):
        capture_activations(net, ["conv1", "unused"], torch.randn(1, 1, 8, 8))


def test_conv_layer_names_in_definition_order():
    net = SmallCNN()
    net.up = nn.ConvTranspose2d(8, 4, 2, stride=2)
    assert conv_layer_names(net) == ["conv1", "block.0", "up"]
    assert conv_layer_names(nn.Sequential(nn.Linear(2, 2))) == []
