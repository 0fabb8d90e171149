"""The explorers wire their controls to the static figures and survive impossible settings."""

import pytest
import torch
from torch import nn

from course_utils import widgets


def formula(W, F, S, P):
    return (W - F + 2 * P) // S + 1


def test_explorer_has_the_four_sliders_and_draws_the_figure(monkeypatch):
    drawn = []
    monkeypatch.setattr(
        widgets.viz,
        "plot_filter_positions",
        lambda W, F, S, P, output_size: drawn.append((W, F, S, P, output_size)),
    )
    explorer = widgets.conv_arithmetic_explorer(formula)
    sliders = {c.description: c for c in explorer.children[:-1]}
    assert sorted(sliders) == ["F", "P", "S", "W"]
    sliders["W"].value = 12
    assert drawn[-1] == (12, 3, 2, 1, formula(12, 3, 2, 1))


def test_explorer_explains_a_filter_wider_than_the_input(capsys, monkeypatch):
    monkeypatch.setattr(widgets.viz, "plot_filter_positions", lambda *a, **k: None)
    explorer = widgets.conv_arithmetic_explorer(formula)
    sliders = {c.description: c for c in explorer.children[:-1]}
    sliders["P"].value = 0
    sliders["W"].value = 2
    sliders["F"].value = 5
    assert "wider than the padded input (2)" in capsys.readouterr().out


class TwoConvs(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 3, padding=1)
        self.conv2 = nn.Conv2d(6, 3, 3)
        self.fc = nn.Linear(3 * 6 * 6, 10)

    def forward(self, x):
        return self.fc(torch.flatten(self.conv2(torch.relu(self.conv1(x))), 1))


@pytest.fixture
def drawn(monkeypatch) -> list[dict]:
    """What the browser asked viz to draw, one dict per redraw."""
    calls = []

    def record(activations, index, channels, image, **kwargs):
        ((layer, maps),) = activations.items()
        calls.append(
            {
                "layer": layer,
                "index": index,
                "channels": channels,
                "maps": maps,
                "image": image,
                **kwargs,
            }
        )

    monkeypatch.setattr(widgets.viz, "plot_feature_maps", record)
    return calls


def controls(browser) -> dict:
    return {child.description: child for child in browser.children[:-1]}


def test_browser_offers_conv_layers_images_and_channels(drawn):
    torch.manual_seed(0)
    images = torch.rand(3, 1, 8, 8)

    browser = widgets.feature_map_browser(
        TwoConvs(),
        images,
        class_names=["a", "b", "c"],
        labels=torch.tensor([2, 0, 1]),
        mean=[0.5],
        std=[0.2],
    )

    widgets_by_name = controls(browser)
    assert sorted(widgets_by_name) == ["channel", "image", "layer"]
    assert list(widgets_by_name["layer"].options) == ["conv1", "conv2"]
    assert list(widgets_by_name["image"].options) == [
        ("image 0 (c)", 0),
        ("image 1 (a)", 1),
        ("image 2 (b)", 2),
    ]
    assert (widgets_by_name["channel"].min, widgets_by_name["channel"].max) == (0, 5)
    first = drawn[-1]  # drawn once when built
    assert (first["layer"], first["index"], first["channels"]) == ("conv1", 0, [0])
    assert (first["mean"], first["std"]) == ([0.5], [0.2])


def test_changing_layer_updates_the_channel_range(drawn):
    torch.manual_seed(0)
    model, images = TwoConvs(), torch.rand(3, 1, 8, 8)
    browser = widgets.feature_map_browser(model, images)
    layer, image, channel = (controls(browser)[name] for name in ("layer", "image", "channel"))

    channel.value = 5
    layer.value = "conv2"  # 3 channels: 5 is out of range now

    assert channel.max == 2 and channel.value == 2
    last = drawn[-1]
    assert (last["layer"], last["channels"]) == ("conv2", [2])
    assert tuple(last["maps"].shape) == (3, 3, 6, 6)  # the whole batch of conv2's maps

    image.value = 1
    with torch.no_grad():
        expected = model.conv2(torch.relu(model.conv1(images)))
    last = drawn[-1]
    assert last["index"] == 1 and torch.equal(last["image"], images[1])
    torch.testing.assert_close(last["maps"][1], expected[1])

    layer.value = "conv1"
    assert channel.max == 5 and channel.value == 2  # a value still in range is kept
    assert drawn[-1]["layer"] == "conv1"


def test_browser_refuses_layers_without_feature_maps():
    with pytest.raises(ValueError, match=r"do not output feature maps.*'fc': \(2, 10\)"):
        widgets.feature_map_browser(TwoConvs(), torch.rand(2, 1, 8, 8), layer_names=["fc"])
    with pytest.raises(ValueError, match="no convolution layers"):
        widgets.feature_map_browser(nn.Sequential(nn.Flatten()), torch.rand(2, 1, 8, 8))


def test_browser_draws_the_real_figure(monkeypatch):
    import matplotlib.pyplot as plt

    shown = []
    monkeypatch.setattr(widgets.plt, "show", lambda: shown.append(plt.gcf()))
    browser = widgets.feature_map_browser(TwoConvs(), torch.rand(2, 1, 8, 8))

    controls(browser)["layer"].value = "conv2"
    controls(browser)["channel"].value = 1

    titles = [ax.get_title() for ax in shown[-1].axes if ax.get_title()]
    assert titles == ["input", "conv2 ch 1"]
    plt.close("all")


def test_displayed_explorer_carries_a_picture_of_its_start(monkeypatch):
    # What IPython publishes for the explorer: a frontend without the widget's model
    # (the kernel gone, another machine) shows the PNG, drawn at the starting values.
    from IPython.core.formatters import DisplayFormatter

    drawn = []

    def plot(W, F, S, P, output_size):
        drawn.append((W, F, S, P))
        return widgets.plt.figure()

    monkeypatch.setattr(widgets.viz, "plot_filter_positions", plot)
    explorer = widgets.conv_arithmetic_explorer(formula)
    controls(explorer)["W"].value = 12

    bundle, _ = DisplayFormatter().format(explorer)

    assert bundle[widgets.WIDGET_VIEW]["model_id"] == explorer.model_id
    assert bundle["image/png"] and drawn[-1] == (7, 3, 2, 1)
    assert bundle["text/plain"].endswith("the picture shows W=7, F=3, S=2, P=1")
    widgets.plt.close("all")


def test_an_explorer_over_failing_code_still_displays():
    # A formula that is still a stub: the live view shows the error, the display works.
    from IPython.core.formatters import DisplayFormatter

    def stub(W, F, S, P):
        raise NotImplementedError

    explorer = widgets.conv_arithmetic_explorer(stub)
    bundle, _ = DisplayFormatter().format(explorer)
    assert widgets.WIDGET_VIEW in bundle and "image/png" not in bundle
