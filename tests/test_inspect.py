"""layer_table traces real shapes and names the layer when a shape is wrong."""

import pytest
import torch
from torch import nn

from course_utils.inspect import ShapeMismatchError, format_layer_table, layer_table


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
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                        nn.MaxPool2d(2), nn.Flatten(), nn.Linear(8 * 2 * 2, 3))
    table = layer_table(net, (2, 3, 4, 4))
    assert table["type"].tolist() == ["Conv2d", "BatchNorm2d", "ReLU", "MaxPool2d", "Flatten", "Linear"]
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
    with pytest.raises(ShapeMismatchError, match=r"layer 'fc' \(Linear\) expects 100 input features, got 144"):
        layer_table(Flattening(100), (1, 1, 8, 8))


def test_conv_channel_mismatch_names_layer():
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Conv2d(5, 2, 3))
    with pytest.raises(ShapeMismatchError, match=r"layer '1' \(Conv2d\) expects 5 input channels, got 4"):
        layer_table(net, (1, 3, 8, 8))


def test_error_in_forward_names_the_last_layer_that_ran():
    with pytest.raises(ShapeMismatchError, match=r"after layer 'conv' \(its output shape is \(1, 4, 6, 6\)\)"):
        layer_table(Reshaping(7), (1, 1, 8, 8))
    net = Reshaping(7)
    with pytest.raises(ShapeMismatchError):
        layer_table(net, (1, 1, 8, 8))
    assert not net.conv._forward_hooks, "hooks must be removed even when the forward pass fails"


def test_format_has_total_line():
    text = format_layer_table(layer_table(nn.Sequential(nn.Linear(300, 10)), (1, 300)))
    assert text.splitlines()[-1] == "total parameters: 3,010"
