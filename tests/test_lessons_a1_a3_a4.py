"""The decisions behind the findings of a1_t1, a1_t2, a3_t2, a4_t1 and a4_t2 fail on contrary
evidence.

Each finding's decision is a small function defined in the notebook's findings cell
(numbers in, a bool out). These tests take those functions from the solution notebooks
as they are, without running the notebooks, and feed them numbers that must make the
claim fail, as well as numbers that bear it out.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nbformat
import numpy as np
import pytest
import torch
from matplotlib.colors import to_rgb

from course_utils import stats, viz

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def notebook_function(notebook: str, name: str) -> Callable[..., Any]:
    """The function ``name`` as defined in a code cell of ``notebook``, compiled on its own.

    Only the ``def`` is taken from the cell, so the rest of the cell (training, printing)
    does not run; the function sees ``math``, ``np`` and ``stats`` as the notebook does.
    """
    nb = nbformat.read(NOTEBOOKS / f"{notebook}.ipynb", as_version=4)
    for cell in nb.cells:
        if cell.cell_type != "code" or f"def {name}(" not in cell.source:
            continue
        for node in ast.parse(cell.source).body:
            if isinstance(node, ast.FunctionDef) and node.name == name:
                namespace: dict[str, Any] = {"math": math, "np": np, "stats": stats}
                exec(compile(ast.Module([node], []), notebook, "exec"), namespace)
                return namespace[name]
    raise AssertionError(f"{notebook} defines no function {name}")


# ------------------------------------------------------------------------------------ a1_t1


def test_a1_t1_pooling_order_fails_when_a_larger_window_changes_more() -> None:
    shrinks_in_order = notebook_function("a1_t1_convolution_arithmetic", "shrinks_in_order")
    assert shrinks_in_order([0.9, 0.5, 0.3])
    assert not shrinks_in_order([0.9, 0.3, 0.5])  # the 4x4 window changed more than 2x2
    assert not shrinks_in_order([0.4, 0.5, 0.3])  # pooling made it worse
    assert not shrinks_in_order([0.5, 0.5, 0.3])  # no change is not shrinking


def test_a1_t1_unchanged_maps_fail_when_pooling_removes_the_change() -> None:
    rarely_unchanged = notebook_function("a1_t1_convolution_arithmetic", "rarely_unchanged")
    assert rarely_unchanged([3, 20], n=200)
    assert not rarely_unchanged([3, 21], n=200)
    assert not rarely_unchanged([150, 0], n=200)


# ------------------------------------------------------------------------------------ a1_t2


def test_a1_t2_overfitting_fails_while_validation_loss_still_falls() -> None:
    overfits = notebook_function("a1_t2_mnist_cnn", "overfits")
    train = [0.50, 0.30, 0.20, 0.15]
    assert overfits(train, [0.20, 0.16, 0.18, 0.21])
    assert not overfits(train, [0.20, 0.18, 0.17, 0.16])  # still improving at the end
    assert not overfits([0.50, 0.30, 0.35, 0.40], [0.20, 0.16, 0.18, 0.21])  # both got worse


# ------------------------------------------------------------------------------------ a3_t2


def test_a3_t2_untrained_maps_agree_fails_on_one_unrelated_pair() -> None:
    agree = notebook_function("a3_t2_what_a_cnn_sees", "agree")
    assert agree([0.8, 0.9, 0.7])
    assert not agree([0.8, 0.3, 0.7])
    assert not agree([0.8, -0.6, 0.9])


# ------------------------------------------------------------------------------------ a4_t1


def test_a4_t1_a_run_trained_only_when_it_ran_every_epoch_below_chance() -> None:
    trained = notebook_function("a4_t1_batch_norm_and_optimisers", "trained")
    chance = math.log(10)
    ran = [{"train_loss": 2.2}, {"train_loss": 1.6}]
    assert trained(ran, epochs=2, chance_loss=chance)
    assert not trained(ran[:1], epochs=2, chance_loss=chance)  # stopped at a NaN
    assert not trained([{"train_loss": 2.2}, {"train_loss": 19.5}], 2, chance)  # blew up
    assert not trained([], epochs=2, chance_loss=chance)  # NaN in the first epoch


def test_a4_t1_batch_norm_decides_fails_in_either_direction() -> None:
    separates = notebook_function("a4_t1_batch_norm_and_optimisers", "separates")
    assert separates([True, True, True], [False, False, False])
    assert not separates([True, True, True], [False, True, False])  # one plain run trained
    assert not separates([True, False, True], [False, False, False])  # one BN run failed
    assert not separates([False] * 3, [True] * 3)  # the reverse


def test_a4_t1_adam_claim_fails_on_a_large_effect_of_either_sign() -> None:
    within = notebook_function("a4_t1_batch_norm_and_optimisers", "within")
    assert within(0.4, 2.0) and within(-1.9, 2.0)
    assert not within(2.5, 2.0) and not within(-2.5, 2.0)


# ------------------------------------------------------------------------------------ a4_t2


def test_a4_t2_elu_lead_needs_the_sign_the_size_and_the_test() -> None:
    ahead = notebook_function("a4_t2_unet_segmentation", "ahead_beyond_noise")
    elu = [0.80, 0.82, 0.81, 0.83, 0.80, 0.82, 0.81, 0.83, 0.80, 0.82]
    relu = [0.70, 0.72, 0.71, 0.73, 0.70, 0.72, 0.71, 0.73, 0.70, 0.72]
    assert ahead(stats.welch_t_test(elu, relu), significant=True, at_most=0.2)
    assert not ahead(stats.welch_t_test(relu, elu), significant=True, at_most=0.2)  # behind
    assert not ahead(stats.welch_t_test(elu, relu), significant=False, at_most=0.2)  # noise
    assert not ahead(stats.welch_t_test(elu, relu), significant=True, at_most=0.05)  # too big


def test_a4_t2_holm_holds_every_test_to_the_bar_of_all_five() -> None:
    holm_over = notebook_function("a4_t2_unet_segmentation", "holm_over")
    # The ELU lead's p = 0.014 clears Holm's bar over the three comparisons at the long
    # budget (0.05 / 3), but not over the five tests the cell reports (0.05 / 5).
    p_values = {"longer": 0.02, "plateau": 0.015, "elu": 0.014, "up ReLU": 0.5, "up ELU": 0.6}
    assert stats.holm([0.014, 0.5, 0.6])[0]
    assert not any(holm_over(p_values).values())
    verdicts = holm_over({**p_values, "elu": 0.009})  # 0.009 < 0.05 / 5; then 0.015 > 0.05 / 4
    assert [name for name, significant in verdicts.items() if significant] == ["elu"]
    # A test that could not run is never significant, and the others still pay for it.
    assert holm_over({"a": 0.03, "b": None}) == {"a": False, "b": False}  # 0.03 > 0.05 / 2
    assert holm_over({"a": 0.03}) == {"a": True}


def test_a4_t2_fewer_epochs_needs_the_sign_and_the_verdict() -> None:
    fewer = notebook_function("a4_t2_unet_segmentation", "fewer_beyond_noise")
    elu, relu = [2.0, 2.0, 3.0, 2.0, 3.0], [4.0, 5.0, 4.0, 5.0, 4.0]
    assert fewer(stats.welch_t_test(elu, relu), significant=True)
    assert not fewer(stats.welch_t_test(relu, elu), significant=True)  # more epochs
    assert not fewer(stats.welch_t_test(elu, relu), significant=False)  # not past Holm


# ------------------------------------------------------------------------------- viz overlay


def test_mask_overlay_draws_the_image_in_grey_so_only_the_paint_has_hue() -> None:
    images = torch.zeros(1, 3, 4, 4)
    images[:, 0] = 1.0  # a pure red image, the kind of colour a mask could be confused with
    masks = torch.zeros(1, 4, 4)
    masks[:, :2] = 1
    fig = viz.plot_mask_overlay(images, masks, n=1, alpha=1.0)
    shown = fig.axes[0].images[0].get_array()
    assert np.allclose(shown[0, 0], to_rgb(viz.MASK_COLOR))  # the mask's paint
    assert np.allclose(shown[3, 0], 0.299)  # red's luminance, in grey: R = G = B
    assert np.ptp(shown[3, 0]) == pytest.approx(0)


def test_overlaid_weight_histograms_each_get_an_outline() -> None:
    from torch import nn

    plain, other = nn.Linear(8, 4), nn.Linear(8, 4)
    fig = viz.plot_weight_histograms({"plain": plain, "L2": other})
    outlines = [line for line in fig.axes[0].lines if line.get_drawstyle() == "steps-post"]
    assert [to_rgb(line.get_color()) for line in outlines] == [
        to_rgb(viz.PALETTE[0]),
        to_rgb(viz.PALETTE[1]),
    ]
    assert len(viz.plot_weight_histograms(plain).axes[0].lines) == 0  # one model: bars only
