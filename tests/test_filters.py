"""First-layer filters as RGB images, and each filter next to its response."""

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from course_utils import filters


def test_each_filter_is_scaled_on_its_own_keeping_its_colours():
    weight = torch.randn(5, 3, 7, 7)
    weight[1] *= 100  # a much larger filter must not wash out the others
    images = filters.filter_images(weight)
    assert images.shape == (5, 7, 7, 3)
    for image, w in zip(images, weight, strict=True):
        assert image.min() == pytest.approx(0) and image.max() == pytest.approx(1)
        # One scale for all three channels: the order of the weights is kept across colours.
        order = np.argsort(w.permute(1, 2, 0).numpy().ravel())
        assert np.array_equal(np.argsort(image.ravel()), order)


def test_constant_and_greyscale_filters():
    images = filters.filter_images(torch.ones(2, 1, 3, 3))
    assert images.shape == (2, 3, 3, 3) and np.all(images == 0.5)
    with pytest.raises(ValueError, match="First-layer filters"):
        filters.filter_images(torch.ones(2, 4, 3, 3))


def test_plot_filters_draws_one_panel_per_filter():
    fig = filters.plot_filters(torch.randn(10, 3, 5, 5), columns=4)
    drawn = [ax for ax in fig.axes if ax.images]
    assert len(drawn) == 10 and drawn[9].get_title() == "filter 9"
    assert drawn[0].images[0].get_array().shape == (5, 5, 3)
    assert "5×5 px" in fig.get_suptitle()
    plt.close(fig)
    with pytest.raises(IndexError, match="There are 10 filters"):
        filters.plot_filters(torch.randn(10, 3, 5, 5), channels=[10])


def test_plot_filter_responses_pairs_filters_with_their_maps():
    maps = torch.rand(1, 6, 12, 12)
    maps[0, 4] *= 10
    fig = filters.plot_filter_responses(torch.randn(6, 3, 7, 7), maps, channels=[4, 1])
    panels = {ax.get_title(): ax for ax in fig.axes if ax.images}
    assert list(panels) == ["filter 4", "response 4", "filter 1", "response 1"]
    np.testing.assert_allclose(panels["response 4"].images[0].get_array(), maps[0, 4].numpy())
    # One colour scale for all maps: the strong channel sets the top.
    assert panels["response 1"].images[0].get_clim() == pytest.approx(
        (float(maps[0, [4, 1]].min()), float(maps[0, [4, 1]].max()))
    )
    assert fig.axes[-1].get_ylabel() == "activation (shared scale)"
    plt.close(fig)
    with pytest.raises(ValueError, match="for 6 filters"):
        filters.plot_filter_responses(torch.randn(6, 3, 7, 7), torch.rand(5, 12, 12))
