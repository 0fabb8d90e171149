"""Tests for course_utils.viz: the course palette, learning curves, and the figures of a
trained classifier (confusion matrix, weight histograms, feature maps, example grids)."""

import math

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import torch
from matplotlib.axes import Axes
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from torch import nn

from course_utils import metrics, viz
from course_utils.train import History


@pytest.fixture
def history() -> History:
    """Three epochs of two steps each; validation loss is lowest at epoch 2."""
    history = History(best_epoch=2, best_val_loss=0.7, stop_reason="completed")
    for epoch, (train_loss, val_loss) in enumerate([(1.0, 0.9), (0.6, 0.7), (0.4, 0.8)], 1):
        history.epochs.append(
            {
                "epoch": epoch,
                "train_loss": train_loss,
                "train_acc": 0.5 + epoch / 10,
                "val_loss": val_loss,
                "val_acc": 0.45 + epoch / 10,
                "seconds": 1.0,
            }
        )
        for half in (1, 2):
            step = 2 * (epoch - 1) + half
            history.steps.append(
                {
                    "epoch": epoch - 1 + half / 2,
                    "step": step,
                    "loss": train_loss + 0.1 * (half == 1),
                }
            )
    return history


def lines_by_label(ax: Axes) -> dict[str, Line2D]:
    return {str(line.get_label()): line for line in ax.get_lines()}


def test_two_labelled_panels_against_epochs(history):
    fig = viz.plot_learning_curves(history, title="LeNet")

    assert len(fig.axes) == 2
    loss_ax, acc_ax = fig.axes
    assert [ax.get_xlabel() for ax in fig.axes] == ["epoch", "epoch"]
    assert loss_ax.get_ylabel() == "loss (cross-entropy)"
    assert acc_ax.get_ylabel() == "accuracy (%)"
    assert fig.get_suptitle() == "LeNet"
    assert all(ax.get_legend() is not None for ax in fig.axes)


def test_lines_of_a_history(history):
    loss_ax, acc_ax = viz.plot_learning_curves(history).axes

    loss_lines = lines_by_label(loss_ax)
    assert list(loss_lines) == ["train (per step)", "train", "validation", "best epoch (2)"]
    assert [text.get_text() for text in loss_ax.get_legend().get_texts()] == list(loss_lines)
    assert list(loss_lines["train"].get_xdata()) == [1, 2, 3]
    assert list(loss_lines["validation"].get_ydata()) == [0.9, 0.7, 0.8]
    # Per-step losses sit at fractional epochs, fainter than the per-epoch lines.
    assert list(loss_lines["train (per step)"].get_xdata()) == [0.5, 1.0, 1.5, 2.0, 2.5, 3.0]
    assert loss_lines["train (per step)"].get_alpha() < 1
    assert list(loss_lines["best epoch (2)"].get_xdata()) == [2, 2]

    acc_lines = lines_by_label(acc_ax)
    assert list(acc_lines) == ["train", "validation", "best epoch (2)"]
    # Accuracy is drawn in percent, as the axis label says.
    assert acc_lines["train"].get_ydata() == pytest.approx([60, 70, 80])


def test_train_and_validation_colours_differ_and_come_from_the_palette(history):
    loss_ax, _ = viz.plot_learning_curves(history).axes
    lines = lines_by_label(loss_ax)

    colours = {lines["train"].get_color(), lines["validation"].get_color()}
    assert colours == {viz.TRAIN_COLOR, viz.VAL_COLOR}
    assert len(colours) == 2 and colours <= set(viz.PALETTE)


def test_test_metrics_drawn_as_dashed_lines(history):
    loss_ax, acc_ax = viz.plot_learning_curves(history, test={"loss": 0.75, "acc": 0.72}).axes

    loss_test = lines_by_label(loss_ax)["test (0.75)"]
    acc_test = lines_by_label(acc_ax)["test (72)"]
    assert list(loss_test.get_ydata()) == [0.75, 0.75]
    assert list(acc_test.get_ydata()) == pytest.approx([72, 72])
    assert loss_test.get_linestyle() == acc_test.get_linestyle() == "--"


def test_accepts_a_per_epoch_frame(history):
    frame = history.to_frame()
    frame.loc[2, "val_loss"] = 0.5  # now epoch 3 is best: found from the frame itself

    loss_ax, _ = viz.plot_learning_curves(frame).axes

    labels = list(lines_by_label(loss_ax))
    assert labels == ["train", "validation", "best epoch (3)"]  # no steps in a frame


def test_frame_without_validation_has_only_train_lines(history):
    frame = history.to_frame().assign(val_loss=math.nan, val_acc=math.nan)

    fig = viz.plot_learning_curves(frame)

    assert [list(lines_by_label(ax)) for ax in fig.axes] == [["train"], ["train"]]


def test_empty_history_still_plots():
    # Ctrl-C in the first epoch leaves a history with steps but no finished epoch.
    history = History(steps=[{"epoch": 0.5, "step": 1, "loss": 2.0}])

    loss_ax, _ = viz.plot_learning_curves(history).axes

    assert "train (per step)" in lines_by_label(loss_ax)


def test_draws_into_given_axes(history):
    fig, axes = plt.subplots(2, 2)

    returned = viz.plot_learning_curves(history, axes=axes[1])

    assert returned is fig
    assert len(axes[1][0].get_lines()) == 4 and not axes[0][0].get_lines()


def test_palette_is_okabe_ito_and_the_default_colour_cycle():
    assert len(viz.PALETTE) == len(set(viz.PALETTE)) == 8
    assert {"#E69F00", "#56B4E9", "#009E73", "#0072B2", "#D55E00", "#CC79A7"} <= set(viz.PALETTE)

    plt.rcParams["axes.prop_cycle"] = matplotlib.rcParamsDefault["axes.prop_cycle"]
    viz.use_course_style()

    _, ax = plt.subplots()
    first, second = ax.plot([0, 1]), ax.plot([1, 0])
    assert [first[0].get_color(), second[0].get_color()] == list(viz.PALETTE[:2])


def test_helper_does_not_show(history, monkeypatch):
    monkeypatch.setattr(plt, "show", lambda *args, **kwargs: pytest.fail("plt.show called"))

    assert isinstance(viz.plot_learning_curves(history), Figure)


def test_live_curves_drawn_once_at_the_end_with_their_title(history, monkeypatch):
    # Outside a Jupyter kernel nothing is drawn per epoch, and one titled figure at the end.
    monkeypatch.setattr(plt, "show", lambda *args, **kwargs: None)
    plt.close("all")
    curves = viz.LiveLearningCurves(title="LeNet on the generated stand-in")
    curves.on_epoch_end(history)
    assert not plt.get_fignums()
    curves.on_train_end(history)
    [number] = plt.get_fignums()
    assert plt.figure(number).get_suptitle() == "LeNet on the generated stand-in"
    plt.close("all")
    viz.LiveLearningCurves().on_train_end(history)
    assert plt.gcf().get_suptitle() == ""


def test_filter_positions_draws_one_bar_per_output():
    from matplotlib.patches import Rectangle

    fig = viz.plot_filter_positions(W=7, F=3, S=2, P=1, output_size=5)
    ax = fig.axes[0]
    bars = [p for p in ax.patches if isinstance(p, Rectangle) and p.get_height() == 0.5]
    assert len(bars) == 4  # (7 - 3 + 2) // 2 + 1
    assert ax.get_title() == "W=7, F=3, S=2, P=1: 4 filter positions (your formula: 5)"
    assert "pixels" in ax.get_xlabel()


# --- confusion matrix ----------------------------------------------------------------------


def test_confusion_matrix_heatmap_labels_and_counts():
    matrix = np.array([[5, 1, 0], [2, 3, 0], [0, 0, 4]])

    fig = viz.plot_confusion_matrix(matrix, ["cat", "dog", "owl"])

    ax = fig.axes[0]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("predicted class", "true class")
    assert [t.get_text() for t in ax.get_xticklabels()] == ["cat", "dog", "owl"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["cat", "dog", "owl"]
    # Annotations read row by row, so row 1 (true "dog") holds 2, 3, 0.
    assert [t.get_text() for t in ax.texts] == ["5", "1", "0", "2", "3", "0", "0", "0", "4"]
    assert "accuracy 80.0 %" in ax.get_title()
    assert fig.axes[1].get_ylabel() == "count (examples)"  # the colour bar


def test_normalised_rows_sum_to_one_and_an_absent_class_is_zero_not_nan():
    matrix = np.array([[3, 1, 0], [0, 0, 0], [1, 0, 1]])  # nothing of class 1 in the labels

    ax = viz.plot_confusion_matrix(matrix, ["a", "b", "c"], normalize=True).axes[0]

    values = np.array([float(t.get_text()) for t in ax.texts]).reshape(3, 3)
    np.testing.assert_allclose(values.sum(axis=1), [1, 0, 1])
    assert values[0].tolist() == [0.75, 0.25, 0.0]
    assert ax.collections[0].get_array().max() <= 1


def test_confusion_matrix_shape_must_match_the_classes():
    with pytest.raises(ValueError, match="3x3 matrix for 3 class names"):
        viz.plot_confusion_matrix(np.zeros((2, 2), dtype=int), ["a", "b", "c"])


# --- weight histograms ---------------------------------------------------------------------


def mnist_like_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 4, 5, padding=2),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(4, 8, 5, padding=2, bias=False),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(8 * 14 * 14, 10),
    )


def test_weight_histograms_one_row_per_parameterised_layer():
    net = mnist_like_net()

    fig = viz.plot_weight_histograms(net)

    titles = [ax.get_title() for ax in fig.axes]
    assert titles == [
        "0.weight (4, 1, 5, 5)",
        "0.bias (4,)",
        "3.weight (8, 4, 5, 5)",
        "",  # no bias: an annotated blank panel
        "4.weight (8,)",
        "4.bias (8,)",
        "7.weight (10, 1568)",
        "7.bias (10,)",
    ]
    assert fig.axes[3].texts[0].get_text() == "3: no bias" and not fig.axes[3].axison
    first = fig.axes[0]
    assert (first.get_xlabel(), first.get_ylabel()) == ("value", "count")
    counts = sum(patch.get_height() for patch in first.patches)
    assert counts == net[0].weight.numel()  # every weight lands in some bar


def test_weight_histograms_overlay_models_on_shared_bins():
    plain, decayed = mnist_like_net(), mnist_like_net()
    with torch.no_grad():
        for parameter in decayed.parameters():
            parameter.mul_(0.5)

    fig = viz.plot_weight_histograms(
        {"plain": plain, "L2": decayed}, layers=["7"], title="after L2"
    )

    weight_ax = fig.axes[0]
    bars = weight_ax.patches
    assert len(fig.axes) == 2 and fig.get_suptitle() == "after L2"
    assert {bar.get_facecolor()[:3] for bar in bars} == {
        matplotlib.colors.to_rgb(viz.PALETTE[0]),
        matplotlib.colors.to_rgb(viz.PALETTE[1]),
    }
    half = len(bars) // 2
    assert [b.get_x() for b in bars[:half]] == [b.get_x() for b in bars[half:]]  # same bins
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["plain", "L2"]


def test_weight_histograms_refuse_a_model_without_parameters_or_unknown_layers():
    with pytest.raises(ValueError, match="No weights or biases"):
        viz.plot_weight_histograms(nn.ReLU())
    with pytest.raises(ValueError, match=r"layers with parameters are \['0'"):
        viz.plot_weight_histograms(mnist_like_net(), layers=["fc9"])


# --- feature maps ----------------------------------------------------------------------------


def panel_titles(fig: Figure) -> list[str]:
    return [ax.get_title() for ax in fig.axes if ax.get_title()]


def test_feature_maps_one_titled_panel_per_channel():
    maps = torch.rand(6, 5, 5)
    maps[2] = 0  # a dead channel

    fig = viz.plot_feature_maps({"conv1": maps}, columns=4)

    assert panel_titles(fig) == [f"conv1 ch {c}" for c in range(6)]
    images = [ax.images[0] for ax in fig.axes if ax.images]
    assert len(images) == 6
    np.testing.assert_array_equal(images[2].get_array(), np.zeros((5, 5)))
    assert images[0].get_cmap().name == viz.SEQUENTIAL_CMAP
    # One shared scale: every panel maps the same range of activations to colours.
    assert len({image.get_clim() for image in images}) == 1
    assert fig.subfigs[0].get_suptitle() == "conv1: 6 channels, 5×5 px"
    assert any(ax.get_ylabel() == "activation" for ax in fig.axes)  # the colour bar


def test_feature_maps_of_captured_layers_pick_the_image_and_channels():
    from course_utils.inspect import capture_activations

    net = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.ReLU(), nn.Conv2d(3, 5, 3))
    batch = torch.rand(4, 1, 8, 8)
    maps = capture_activations(net, ["0", "2"], batch)

    fig = viz.plot_feature_maps(maps, index=2, image=batch[2], channels=[1, 2])

    assert panel_titles(fig) == ["input", "0 ch 1", "0 ch 2", "2 ch 1", "2 ch 2"]
    shown = [ax.images[0].get_array() for ax in fig.axes if ax.get_title() == "2 ch 2"][0]
    np.testing.assert_allclose(shown, maps["2"][2, 2].numpy())
    assert [sub.get_suptitle() for sub in fig.subfigs[1].subfigs] == [
        "0: 2 of 3 channels, 8×8 px",
        "2: 2 of 5 channels, 6×6 px",
    ]


def test_feature_maps_explain_wrong_input():
    with pytest.raises(ValueError, match=r"'fc': feature maps are \(C, H, W\).*\(2, 10\)"):
        viz.plot_feature_maps({"fc": torch.rand(2, 10)})
    with pytest.raises(IndexError, match="'c' has 3 channels"):
        viz.plot_feature_maps({"c": torch.rand(3, 4, 4)}, channels=[3])


def test_confusion_matrix_grid_and_maps_put_a_given_title_above_their_own():
    # The figures of a classifier say what they come from (issue 17: a stand-in says so).
    matrix = viz.plot_confusion_matrix(np.array([[3, 1], [0, 4]]), ["a", "b"], title="on X")
    assert matrix.axes[0].get_title() == "on X\nconfusion matrix, counts (accuracy 87.5 %)"
    labels, predictions = torch.tensor([0, 1]), torch.tensor([0, 0])
    grid = viz.plot_example_grid(
        torch.rand(2, 1, 6, 6), labels, predictions, ["a", "b"], correct=False, title="on X"
    )
    assert grid.get_suptitle() == "on X\nmisclassified examples: 1 of 1"
    none = viz.plot_example_grid(
        torch.rand(2, 1, 6, 6), labels, labels, ["a", "b"], correct=False, title="on X"
    )
    assert none.get_suptitle() == "on X"
    maps = viz.plot_feature_maps(torch.rand(2, 4, 4), title="on X")
    assert maps.get_suptitle() == "on X"
    assert viz.plot_feature_maps(torch.rand(2, 4, 4)).get_suptitle() == ""
    plt.close("all")


# --- example grids -------------------------------------------------------------------------

CLASSES = ["zero", "one", "two"]


def test_example_grid_shows_misclassified_with_true_and_predicted_labels():
    labels = torch.tensor([0, 1, 2, 1, 0, 2, 2])
    predictions = torch.tensor([0, 2, 2, 0, 0, 1, 2])

    fig = viz.plot_example_grid(
        torch.rand(7, 1, 6, 6), labels, predictions, CLASSES, correct=False, n=2
    )

    assert panel_titles(fig) == ["true: one / pred: two", "true: one / pred: zero"]
    assert fig.get_suptitle() == "misclassified examples: 2 of 3"


def test_example_grid_of_correct_examples_with_fewer_than_n():
    labels = torch.tensor([0, 1, 2])
    predictions = torch.tensor([0, 2, 2])

    fig = viz.plot_example_grid(
        torch.rand(3, 1, 6, 6), labels, predictions, CLASSES, correct=True, n=5
    )

    assert panel_titles(fig) == ["true: zero / pred: zero", "true: two / pred: two"]
    assert len(fig.axes) == 5 and sum(ax.axison for ax in fig.axes) == 2
    assert fig.get_suptitle() == "correctly classified examples: 2 of 2"


def test_example_grid_with_no_mistakes_says_so():
    labels = torch.tensor([0, 1, 2])

    fig = viz.plot_example_grid(
        torch.rand(3, 1, 6, 6), labels, labels.clone(), CLASSES, correct=False
    )

    assert isinstance(fig, Figure)
    assert [t.get_text() for ax in fig.axes for t in ax.texts] == ["no misclassified examples"]


def test_example_grid_for_a_class_without_mistakes():
    labels = torch.tensor([0, 1, 1, 2])
    predictions = torch.tensor([0, 1, 1, 0])  # only class 2 has a mistake

    fig = viz.plot_example_grid(
        torch.rand(4, 1, 6, 6), labels, predictions, CLASSES, correct=False, true_class=1
    )
    assert [t.get_text() for ax in fig.axes for t in ax.texts] == [
        "no misclassified 'one' examples"
    ]

    fig = viz.plot_example_grid(
        torch.rand(4, 1, 6, 6), labels, predictions, CLASSES, correct=False, true_class=2
    )
    assert panel_titles(fig) == ["true: two / pred: zero"]


def test_example_grid_undoes_normalisation_of_rgb_images():
    mean, std = [0.5, 0.4, 0.3], [0.2, 0.1, 0.25]
    pixels = torch.rand(2, 3, 4, 4)
    normalised = (pixels - torch.tensor(mean).view(3, 1, 1)) / torch.tensor(std).view(3, 1, 1)

    fig = viz.plot_example_grid(
        normalised, [0, 1], [0, 1], CLASSES, correct=True, n=2, mean=mean, std=std
    )

    shown = fig.axes[1].images[0].get_array()
    assert shown.shape == (4, 4, 3)  # channels last, as imshow wants RGB
    np.testing.assert_allclose(shown, pixels[1].permute(1, 2, 0).numpy(), atol=1e-6)


def test_grayscale_images_are_drawn_in_grey_between_fixed_limits():
    image = torch.full((1, 5, 5), 64, dtype=torch.uint8)

    ax = viz.show_image(image)

    drawn = ax.images[0]
    assert drawn.get_cmap().name == "gray" and drawn.get_clim() == (0, 1)
    np.testing.assert_allclose(drawn.get_array(), np.full((5, 5), 64 / 255))


def test_example_grid_needs_one_label_per_image():
    with pytest.raises(ValueError, match="got 3 images, 2 labels and 2 predictions"):
        viz.plot_example_grid(torch.rand(3, 1, 4, 4), [0, 1], [0, 1], CLASSES, correct=True)


def test_new_helpers_return_figures_without_showing(monkeypatch):
    monkeypatch.setattr(plt, "show", lambda *args, **kwargs: pytest.fail("plt.show called"))
    figures = [
        viz.plot_confusion_matrix(np.eye(2, dtype=int), ["a", "b"]),
        viz.plot_weight_histograms(nn.Linear(2, 2)),
        viz.plot_feature_maps(torch.rand(2, 3, 3)),
        viz.plot_example_grid(torch.rand(2, 1, 3, 3), [0, 1], [1, 1], CLASSES, correct=False),
    ]
    assert all(isinstance(fig, Figure) for fig in figures)


# --- curves over seeds ---------------------------------------------------------------------


@pytest.fixture
def seed_curves() -> pd.DataFrame:
    """Two optimisers, two seeds; one SGD seed stopped early after 3 of 6 epochs."""
    rows = []
    for optimizer, offset in (("adam", 0.2), ("sgd", 0.0)):
        for seed in (0, 1):
            last = 3 if (optimizer, seed) == ("sgd", 1) else 6
            rows += [
                {
                    "optimizer": optimizer,
                    "seed": seed,
                    "epoch": epoch,
                    "val_acc": offset + 0.1 * epoch + 0.02 * seed,
                }
                for epoch in range(1, last + 1)
            ]
    return metrics.aggregate_curves(pd.DataFrame(rows), ["optimizer"], ["val_acc"])


def test_seed_bands_draw_mean_lines_and_min_max_bands(seed_curves):
    fig = viz.plot_seed_bands(
        seed_curves,
        "val_acc",
        "optimizer",
        scale=100,
        labels={"adam": "Adam (test 71 %)"},
        ylabel="accuracy (%)",
    )
    ax = fig.axes[0]
    adam = next(line for line in ax.lines if line.get_label() == "Adam (test 71 %)")
    np.testing.assert_allclose(adam.get_ydata(), 100 * (0.2 + 0.1 * np.arange(1, 7) + 0.01))
    assert adam.get_color() == viz.PALETTE[0]
    # The band of Adam spans its two seeds: 0.02 apart at every epoch.
    band = ax.collections[0].get_paths()[0].vertices
    assert band[:, 1].max() == pytest.approx(100 * (0.2 + 0.6 + 0.02))
    assert band[:, 1].min() == pytest.approx(100 * (0.2 + 0.1))
    assert ax.get_xlabel() == "epoch" and ax.get_ylabel() == "accuracy (%)"
    legend = [text.get_text() for text in ax.get_legend().get_texts()]
    assert legend[:2] == ["Adam (test 71 %)", "sgd"]
    assert "band: min to max over seeds" in legend


def test_seed_bands_dash_the_mean_where_runs_stopped_early(seed_curves):
    ax = viz.plot_seed_bands(seed_curves, "val_acc", "optimizer", band="std").axes[0]
    sgd = [line for line in ax.lines if line.get_color() == viz.PALETTE[1]]
    solid, dashed = sgd
    assert solid.get_linestyle() == "-" and list(solid.get_xdata()) == [1, 2, 3]
    assert dashed.get_linestyle() == "--" and list(dashed.get_xdata()) == [3, 4, 5, 6]
    assert "dashed: some runs stopped early" in [t.get_text() for t in ax.get_legend().get_texts()]
    # A std band: mean ± one sample standard deviation.
    epoch_1 = seed_curves.iloc[0]
    band = ax.collections[0].get_paths()[0].vertices
    assert band[:, 1].min() == pytest.approx(epoch_1["val_acc"] - epoch_1["val_acc_std"])


def test_seed_bands_on_a_log_epoch_axis_label_whole_epochs(seed_curves):
    ax = viz.plot_seed_bands(seed_curves, "val_acc", ["optimizer"], log_epochs=True).axes[0]
    assert ax.get_xscale() == "log" and ax.get_xlabel() == "epoch (log scale)"
    assert list(ax.get_xticks()) == [1, 2, 3, 5, 6]  # round numbers, and the last epoch
    fig = ax.figure
    fig.canvas.draw()
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1", "2", "3", "5", "6"]


def test_seed_bands_explain_bad_input(seed_curves):
    with pytest.raises(ValueError, match="band must be one of"):
        viz.plot_seed_bands(seed_curves, "val_acc", "optimizer", band="iqr")
    with pytest.raises(KeyError, match=r"lacks the columns \['val_loss'.*aggregate_curves"):
        viz.plot_seed_bands(seed_curves, "val_loss", "optimizer")


# ------------------------------------------------------------ mask overlays


def test_overlay_paints_hits_false_alarms_and_misses():
    images = torch.zeros(3, 3, 6, 6)  # black images: the paint alone sets each pixel
    masks = torch.zeros(3, 1, 6, 6)
    masks[:, :, :3] = 1  # top half is foreground
    predictions = torch.zeros(3, 6, 6)
    predictions[:, :, :3] = 1  # left half predicted
    fig = viz.plot_mask_overlay(images, masks, predictions, n=2, alpha=1.0)

    assert len(fig.axes) == 4  # two images, two rows
    top, bottom = fig.axes[0], fig.axes[2]
    assert top.get_title() == "true mask"
    painted = bottom.images[0].get_array()
    assert np.allclose(painted[0, 0], to_rgb(viz.HIT_COLOR))  # top left
    assert np.allclose(painted[5, 0], to_rgb(viz.FALSE_ALARM_COLOR))  # bottom left
    assert np.allclose(painted[0, 5], to_rgb(viz.MISS_COLOR))  # top right
    assert np.allclose(painted[5, 5], 0)  # true negative
    assert bottom.get_title() == "prediction, F1 0.50"
    labels = [text.get_text() for text in fig.legends[0].get_texts()]
    assert labels[0] == "true mask" and any("false alarm" in label for label in labels)


def test_overlay_without_predictions_shows_one_row_of_grayscale_images():
    images = torch.rand(2, 1, 5, 5)
    fig = viz.plot_mask_overlay(images, torch.ones(2, 5, 5), n=4, title="data")
    assert len(fig.axes) == 2 and fig.get_suptitle() == "data"
    assert fig.axes[0].images[0].get_array().shape == (5, 5, 3)


# --- the generated set and its loaders -------------------------------------------------------
