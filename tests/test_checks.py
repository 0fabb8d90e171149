"""The checks accept correct answers and reject typical wrong ones with the right hint."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from course_utils import checks
from course_utils.checks import CheckFailed


def correlate(image, kernel, padding):
    x = torch.tensor(image, dtype=torch.float64)[None, None]
    w = torch.tensor(kernel, dtype=torch.float64)[None, None]
    return F.conv2d(x, w, padding=padding)[0, 0].numpy()


def convolve(image, kernel, padding):
    return correlate(image, kernel[::-1, ::-1].copy(), padding)


def one_sided_padding(image, kernel, padding):
    return convolve(np.pad(image, ((padding, 0), (padding, 0))), kernel, 0)


def test_correct_convolution_prints_one_pass_line(capsys):
    checks.check_convolution(convolve)
    out = capsys.readouterr().out.strip().splitlines()
    assert out == ["PASS check_convolution: the assignment's case and 20 random cases agree with F.conv2d"]


def test_assignment_case_matches_the_curriculum():
    result = convolve(checks.ASSIGNMENT_IMAGE, checks.ASSIGNMENT_KERNEL, 1)
    assert result.tolist() == [[-2, 1, -11, 2, 13], [-10, 4, -8, -2, 18], [-14, 1, 5, -6, 9]]


@pytest.mark.parametrize("wrong, hint", [
    (correlate, "did you flip the kernel?"),
    (lambda im, k, p: convolve(im, k, 0), "Did you forget the zero padding?"),
    (one_sided_padding, "Padding counted once instead of on both sides."),
    (lambda im, k, p: convolve(im, k, p) + 1, "position (0, 0) is -1, expected -2"),
])
def test_wrong_convolutions_get_targeted_hints(wrong, hint):
    with pytest.raises(CheckFailed, match="check_convolution") as failure:
        checks.check_convolution(wrong)
    assert hint in str(failure.value)


def test_cross_correlation_rejects_a_flipped_kernel():
    checks.check_cross_correlation(correlate)
    with pytest.raises(CheckFailed, match="cross-correlation does not flip"):
        checks.check_cross_correlation(convolve)


def good_size(W, F, S, P):
    return (W - F + 2 * P) // S + 1


@pytest.mark.parametrize("wrong, hint", [
    (lambda W, F, S, P: (W - F + P) // S + 1, "padding counted once instead of on both sides"),
    (lambda W, F, S, P: (W - F + 2 * P) // S, "off by one"),
    (lambda W, F, S, P: W - F + 2 * P + 1, "did you divide by the stride?"),
    (lambda W, F, S, P: (W - F + 2 * P) / S + 1, "use floor division"),
    (lambda W, F, S, P: "big", "expected an integer"),
])
def test_output_size_hints(wrong, hint):
    checks.check_output_size(good_size)
    with pytest.raises(CheckFailed) as failure:
        checks.check_output_size(wrong)
    assert hint in str(failure.value)


def test_output_size_failure_names_the_numbers():
    with pytest.raises(CheckFailed, match=r"W=512, F=9, S=1, P=0 gives 503, PyTorch gives 504"):
        checks.check_output_size(lambda W, F, S, P: (W - F + 2 * P) // S)


@pytest.mark.parametrize("wrong, hint", [
    (lambda W, F, S: (W - F) // S, "off by one"),
    (lambda W, F, S: W - F + 1, "did you divide by the stride?"),
])
def test_pool_output_size(wrong, hint):
    checks.check_pool_output_size(lambda W, F, S: (W - F) // S + 1)
    with pytest.raises(CheckFailed) as failure:
        checks.check_pool_output_size(wrong)
    assert hint in str(failure.value)


@pytest.mark.parametrize("wrong, hint", [
    (lambda F: F - 1, "padding is added on both sides"),
    (lambda F: (F + 1) // 2, "one pixel too much"),
    (lambda F: 0, "solve (W - F + 2P)"),
])
def test_same_padding(wrong, hint, capsys):
    checks.check_same_padding(lambda F: (F - 1) // 2)
    assert capsys.readouterr().out.startswith("PASS check_same_padding")
    with pytest.raises(CheckFailed) as failure:
        checks.check_same_padding(wrong)
    assert hint in str(failure.value)


@pytest.mark.parametrize("wrong, hint", [
    (lambda Wi, Wo, S, P: Wi + P - (Wo - 1) * S, "padding counted once"),
    (lambda Wi, Wo, S, P: Wi + 2 * P - Wo * S, "off by one"),
])
def test_filter_size(wrong, hint):
    checks.check_filter_size(lambda Wi, Wo, S, P: Wi + 2 * P - (Wo - 1) * S)
    with pytest.raises(CheckFailed) as failure:
        checks.check_filter_size(wrong)
    assert hint in str(failure.value)
    assert "W_in=" in str(failure.value)


def small_net():
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 2 * 2, 5))


def test_parameter_count_total_and_per_layer(capsys):
    net = small_net()
    checks.check_parameter_count(3 * 3 * 3 * 4 + 4 + 16 * 5 + 5, net)
    checks.check_parameter_count({"0": 112, "3": 85}, net)
    lines = capsys.readouterr().out.splitlines()
    assert lines == ["PASS check_parameter_count: the total 197 agrees with the model",
                     "PASS check_parameter_count: 2 layers and the total 197 agree with the model"]


@pytest.mark.parametrize("answer, message", [
    (197 - 9, "Did you forget the biases"),
    (196, "the model has 197 parameters, you counted 196."),
    ({"0": 108, "3": 85}, "layer '0' (Conv2d) has 112 parameters, you counted 108. Did you forget the biases"),
    ({"0": 3 * 3 * 4 + 4, "3": 85}, "Did you forget the input channels"),
    ({"0": 112}, "missing from your table: 3"),
    ({"conv1": 112}, "no layer named 'conv1'"),
])
def test_parameter_count_wrong_answers(answer, message):
    with pytest.raises(CheckFailed) as failure:
        checks.check_parameter_count(answer, small_net())
    assert message in str(failure.value)


def cifar_like(n=20, seed=0):
    return np.random.default_rng(seed).integers(0, 256, size=(n, 3, 4, 4), dtype=np.uint8)


def test_channel_stats_accepts_numpy_answer(capsys):
    images = cifar_like()
    pixels = images / 255
    checks.check_channel_stats(pixels.mean(axis=(0, 2, 3)), pixels.std(axis=(0, 2, 3)), images)
    assert capsys.readouterr().out.startswith("PASS check_channel_stats: mean [")


@pytest.mark.parametrize("answer, hint", [
    (lambda p: (255 * p.mean(axis=(0, 2, 3)), p.std(axis=(0, 2, 3))), "255 times too big"),
    (lambda p: (p.mean(axis=(0, 2, 3)), p.std(axis=(2, 3)).mean(axis=0)), "average of per-image stds"),
    (lambda p: (p.mean(), p.std(axis=(0, 2, 3))), "one per channel"),
])
def test_channel_stats_hints(answer, hint):
    images = cifar_like()
    mean, std = answer(images / 255)
    with pytest.raises(CheckFailed, match=hint):
        checks.check_channel_stats(mean, std, images)


def loop(zero_grad=True, train_mode=True, step=True, item=True):
    def train_one_epoch(model, loader, optimizer, loss_fn):
        if train_mode:
            model.train()
        losses = []
        for x, y in loader:
            if zero_grad:
                optimizer.zero_grad()
            loss = loss_fn(model(x), y)
            loss.backward()
            if step:
                optimizer.step()
            losses.append(loss.item() if item else loss.detach())
        return losses
    return train_one_epoch


def test_training_loop_passes_a_correct_loop(capsys):
    checks.check_training_loop(loop())
    checks.check_training_loop(loop(item=False))  # tensors are fine too
    assert capsys.readouterr().out.count("PASS check_training_loop") == 2


@pytest.mark.parametrize("wrong, hint", [
    (loop(zero_grad=False), "did you forget optimizer.zero_grad()"),
    (loop(train_mode=False), "model.train()"),
    (loop(step=False), "did you call optimizer.step()"),
    (lambda model, loader, optimizer, loss_fn: [], "returned 0 losses for 3 batches"),
])
def test_training_loop_hints(wrong, hint):
    with pytest.raises(CheckFailed) as failure:
        checks.check_training_loop(wrong)
    assert hint in str(failure.value)
