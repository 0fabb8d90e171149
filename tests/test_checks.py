"""The checks accept correct answers in any reasonable form, reject typical wrong ones with
the hint that names the mistake, never print the expected value, and never crash on a
wrong type. Correct answers here are written by hand and compared with PyTorch too."""

import math

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from course_utils import checks, train
from course_utils.checks import CheckFailed, convolution, sizes
from course_utils.models import transfer


def failure(check, *args) -> str:
    with pytest.raises(CheckFailed) as raised:
        check(*args)
    return str(raised.value)


# --- convolution ---------------------------------------------------------------------


def sliding(
    image,
    kernel,
    padding,
    flip=True,
    square_kernel=False,
    square_image=False,
    pad_sides=2,
    rows_short=0,
):
    """A by-hand sliding window with switchable mistakes."""
    kernel = np.asarray(kernel)[::-1, ::-1] if flip else np.asarray(kernel)
    if pad_sides == 2:
        padded = np.pad(image, padding)
    else:
        padded = np.pad(image, ((padding, 0), (padding, 0)))
    kh, kw = kernel.shape
    if square_kernel:
        kw = kh
    ph, pw = padded.shape
    if square_image:
        pw = ph
    out = np.zeros((ph - kh + 1 - rows_short, pw - kw + 1))
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            out[i, j] = np.sum(padded[i : i + kh, j : j + kw] * kernel[:kh, :kw])
    return out


def convolve(image, kernel, padding):
    return sliding(image, kernel, padding)


def correlate(image, kernel, padding):
    return sliding(image, kernel, padding, flip=False)


def test_by_hand_convolution_matches_pytorch_and_the_curriculum():
    result = convolve(checks.ASSIGNMENT_IMAGE, checks.ASSIGNMENT_KERNEL, 1)
    oracle = F.conv2d(
        torch.tensor(checks.ASSIGNMENT_IMAGE)[None, None],
        torch.tensor(checks.ASSIGNMENT_KERNEL).flip(0, 1)[None, None],
        padding=1,
    )
    assert (
        result.tolist()
        == oracle[0, 0].tolist()
        == [[-2, 1, -11, 2, 13], [-10, 4, -8, -2, 18], [-14, 1, 5, -6, 9]]
    )


def test_cases_cover_rectangles_and_padding_that_is_not_same():
    cases = convolution._cases()
    assert any(c.kernel.shape[0] != c.kernel.shape[1] for c in cases)
    assert any(c.image.shape[0] != c.image.shape[1] for c in cases)
    assert {c.padding for c in cases} == {0, 1, 2, 3}
    same = [c for c in cases if convolution._oracle(c, True).shape == c.image.shape]
    assert len(same) < len(cases) / 2


@pytest.mark.parametrize(
    "to_form", [np.asarray, lambda a: a.tolist(), torch.tensor], ids=["array", "list", "tensor"]
)
def test_correct_convolutions_pass_in_any_form(to_form, capsys):
    checks.check_convolution(lambda im, k, p: to_form(convolve(im, k, p)))
    checks.check_cross_correlation(lambda im, k, p: to_form(correlate(im, k, p)))
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines] == [
        "PASS check_convolution",
        "PASS check_cross_correlation",
    ]


@pytest.mark.parametrize(
    "wrong, hint",
    [
        (correlate, "did you flip the kernel?"),
        (lambda im, k, p: sliding(im, k, 0), "did you forget the zero padding?"),
        (lambda im, k, p: sliding(im, k, p, pad_sides=1), "Padding counted once"),
        (lambda im, k, p: sliding(im, k, p, square_kernel=True), "Square kernel assumed"),
        (lambda im, k, p: sliding(im, k, p, square_image=True), "Square image assumed"),
        (lambda im, k, p: sliding(im, k, p, rows_short=1), "Off by one: one too few rows"),
        (
            lambda im, k, p: sliding(im, np.asarray(k)[:, ::-1], p, flip=False),
            "flipped left to right only",
        ),
        # Its first failing case has a 1x1 kernel: that padding is no padding at all.
        (lambda im, k, p: sliding(im, k, (k.shape[0] - 1) // 2), "forget the zero padding"),
        (lambda im, k, p: np.pad(convolve(im, k, p)[1:-1, 1:-1], 1), "Only border positions"),
    ],
)
def test_wrong_convolutions_get_the_hint_that_names_them(wrong, hint):
    assert hint in failure(checks.check_convolution, wrong)


def test_a_loop_that_crashes_on_rectangular_kernels_is_told_what_it_assumed():
    def square_only(image, kernel, padding):
        if kernel.shape[0] != kernel.shape[1]:  # as a broadcast error would, deep in a loop
            raise ValueError("operands could not be broadcast together")
        return convolve(image, kernel, padding)

    message = failure(checks.check_convolution, square_only)
    assert "raised ValueError" in message and "Square kernel assumed?" in message


def test_cross_correlation_rejects_a_flipped_kernel():
    assert "cross-correlation does not flip" in failure(checks.check_cross_correlation, convolve)


def test_convolution_failure_names_the_place_not_the_expected_value():
    message = failure(checks.check_convolution, lambda im, k, p: convolve(im, k, p) + 1)
    assert "position (0, 0), where yours is -1" in message
    assert "expected" not in message and "-11" not in message


@pytest.mark.parametrize(
    "result, hint",
    [
        (None, "is None: did you forget to return it?"),
        ("abc", "expected numbers"),
        ([[1, 2], [3]], "not an array of numbers"),
    ],
)
def test_convolution_wrong_types_get_clear_messages(result, hint):
    assert hint in failure(checks.check_convolution, lambda im, k, p: result)


def test_errors_in_the_students_function_are_reported_and_stubs_pass_through():
    def broken(image, kernel, padding):
        return image[100]

    assert "raised IndexError" in failure(checks.check_convolution, broken)

    def stub(image, kernel, padding):
        raise NotImplementedError

    with pytest.raises(NotImplementedError):
        checks.check_convolution(stub)


# --- sizes ---------------------------------------------------------------------------


def conv_size(W, F, S, P):
    return (W - F + 2 * P) // S + 1


def test_size_cases_include_uneven_strides_and_padding():
    cases = sizes._conv_cases()
    assert any(s > 1 and (w - f + 2 * p) % s for w, f, s, p in cases)
    assert {p for *_, p in cases} == {0, 1, 2, 3}
    for w, f, s, p in cases:  # the oracle is nn.Conv2d itself
        assert (
            sizes.conv_width(w, f, s, p)
            == nn.Conv2d(1, 1, f, s, p)(torch.zeros(1, 1, w + 10, w)).shape[-1]
        )


@pytest.mark.parametrize(
    "form", [int, np.int64, float, torch.tensor], ids=["int", "numpy", "whole float", "tensor"]
)
def test_output_size_accepts_any_whole_number(form, capsys):
    checks.check_output_size(lambda W, F, S, P: form(conv_size(W, F, S, P)))
    assert capsys.readouterr().out.startswith("PASS check_output_size")


@pytest.mark.parametrize(
    "wrong, hint",
    [
        (lambda W, F, S, P: math.ceil((W - F + 2 * P) / S) + 1, "it rounds up; the formula floors"),
        (lambda W, F, S, P: (W - F + P) // S + 1, "padding counted once"),
        (lambda W, F, S, P: (W - F) // S + 1, "ignores the padding"),
        (lambda W, F, S, P: W - F + 2 * P + 1, "did you divide by the stride?"),
        (lambda W, F, S, P: (W - F + 2 * P) // S, "one too few"),
        (lambda W, F, S, P: (W - F + 2 * P) // S + 2, "one too many"),
        (lambda W, F, S, P: (W - F + 2 * P) / S + 1, "not a whole number"),
        (lambda W, F, S, P: "5", "returned str '5'; return a whole number"),
        (lambda W, F, S, P: None, "returned None; return a whole number"),
        (lambda W, F, S, P: [5], "returned list [5]"),
        (lambda W, F, S, P: True, "return a whole number"),
    ],
)
def test_output_size_hints(wrong, hint):
    message = failure(checks.check_output_size, wrong)
    assert hint in message
    assert "off by one: add 1" not in message and "(W - F" not in message


def test_output_size_message_gives_the_case_and_the_students_number_only():
    message = failure(checks.check_output_size, lambda W, F, S, P: (W - F + 2 * P) // S)
    assert message == (
        "check_output_size: W=5, F=5, S=1, P=0: your answer 0 disagrees with "
        "nn.Conv2d: one too few: the first filter position counts too."
    )


@pytest.mark.parametrize(
    "wrong, hint",
    [
        (lambda W, F, S: math.ceil((W - F) / S) + 1, "ceil_mode=True"),
        (lambda W, F, S: (W - F) // S, "one too few"),
        (lambda W, F, S: W - F + 1, "did you divide by the stride?"),
        (lambda W, F, S: W // 2 if (W, F, S) != (8, 2, 2) else 4, "2-pixel stride"),
        (lambda W, F, S: "4", "return a whole number"),
    ],
)
def test_pool_output_size(wrong, hint, capsys):
    checks.check_pool_output_size(lambda W, F, S: (W - F) // S + 1)
    assert capsys.readouterr().out.startswith("PASS check_pool_output_size")
    assert hint in failure(checks.check_pool_output_size, wrong)


def test_pool_cases_have_overlapping_and_uneven_windows():
    cases = sizes._pool_cases()
    assert any(f > s for _, f, s in cases) and any((w - f) % s for w, f, s in cases)
    assert all(f <= w for w, f, _ in cases)


@pytest.mark.parametrize(
    "wrong, hint",
    [
        (lambda F: F - 1, "padding goes on both sides"),
        (lambda F: (F + 1) // 2, "one pixel too much per side"),
        (lambda F: max(F // 2 - 1, 0), "one pixel too little per side"),
        (lambda F: -1, "negative"),
        (lambda F: None, "returned None"),
    ],
)
def test_same_padding(wrong, hint, capsys):
    checks.check_same_padding(lambda F: (F - 1) / 2)  # a whole float is fine
    assert capsys.readouterr().out.startswith("PASS check_same_padding")
    assert hint in failure(checks.check_same_padding, wrong)


def largest_filter(W_in, W_out, S, P):
    return W_in + 2 * P - (W_out - 1) * S


@pytest.mark.parametrize(
    "wrong, hint",
    [
        (lambda Wi, Wo, S, P: Wi + P - (Wo - 1) * S, "padding counted once"),
        (
            lambda Wi, Wo, S, P: (
                largest_filter(Wi, Wo, S, 0)
                if P and largest_filter(Wi, Wo, S, 0) > 0
                else largest_filter(Wi, Wo, S, P)
            ),
            "ignores the padding",
        ),
        (lambda Wi, Wo, S, P: Wi + 2 * P - Wo + 1, "ignores the stride"),
        (lambda Wi, Wo, S, P: largest_filter(Wi, Wo, S, P) + 1, "one too large"),
        (lambda Wi, Wo, S, P: 0, "cannot be a filter width"),
        (lambda Wi, Wo, S, P: "9", "return a whole number"),
    ],
)
def test_filter_size(wrong, hint, capsys):
    checks.check_filter_size(largest_filter)
    # With a stride above 1 a smaller filter can give the same output: it passes too.
    checks.check_filter_size(lambda Wi, Wo, S, P: max(1, largest_filter(Wi, Wo, S, P) - S + 1))
    assert capsys.readouterr().out.count("PASS check_filter_size") == 2
    assert hint in failure(checks.check_filter_size, wrong)


# --- parameter counts ----------------------------------------------------------------


def small_net():
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 2 * 2, 5))


TOTAL = 3 * 3 * 3 * 4 + 4 + 16 * 5 + 5  # 197, by hand


@pytest.mark.parametrize(
    "answer",
    [
        TOTAL,
        np.int64(TOTAL),
        torch.tensor(TOTAL),
        float(TOTAL),
        {"0": 112, "3": 85},
        {"0": np.int64(112), "3": 85.0},
        {"0": 112, "1": 0, "2": 0, "3": 85},  # parameterless layers as zero rows
        {0: 112, 3: torch.tensor(85)},
        [112, 85],
        (np.int64(112), 85.0),
        pd.Series({"0": 112, "1": 0, "3": 85}),
    ],
)
def test_parameter_count_accepts_any_reasonable_form(answer, capsys):
    assert sum(p.numel() for p in small_net().parameters()) == TOTAL
    checks.check_parameter_count(answer, small_net())
    assert capsys.readouterr().out.startswith("PASS check_parameter_count")


@pytest.mark.parametrize(
    "answer, message",
    [
        (TOTAL - 9, "Did you forget the biases"),
        (196, "your total 196 disagrees with the model's parameters. Count layer by layer"),
        (
            {"0": 108, "3": 85},
            "layer '0' (Conv2d, 3 -> 4 channels, 3x3): your count 108 is wrong. "
            "Did you forget the biases",
        ),
        ({"0": 3 * 3 * 4 + 4, "3": 85}, "Did you forget the input channels"),
        ({"0": 3 * 3 * 5 * 4 + 4, "3": 85}, "implies 5 input channels"),
        ({"0": 108 + 3, "3": 85}, "One bias per filter"),
        ({"0": 112, "3": 16 * 5 + 16}, "One bias per output, not per input"),
        ({"0": 112, "3": 64 * 5 + 5}, "implies 64 inputs"),
        ({"0": 112}, "missing from your table: 3"),
        ({"conv1": 112}, "no layer named str 'conv1'"),
        ({"0": 112, "1": 5, "3": 85}, "layer '1' (ReLU): your count 5 is wrong"),
        (None, "your total returned None"),
        ("197", "your total returned str '197'"),
        ([112], "give the total as an int, or a per-layer table"),
        ({"0": None, "3": 85}, "your count for layer '0' returned None"),
    ],
)
def test_parameter_count_wrong_answers(answer, message):
    text = failure(checks.check_parameter_count, answer, small_net())
    assert message in text
    assert "197" not in text.replace("'197'", "")  # the right total is never printed
    assert "112 param" not in text


def test_parameter_count_hint_for_a_filter_counted_in_one_dimension():
    net = nn.Sequential(nn.Conv2d(2, 4, 5))
    assert "count both of its dimensions" in failure(
        checks.check_parameter_count, {"0": 5 * 2 * 4 + 4}, net
    )


def conv_params(F, c_in, c_out):
    return F * F * c_in * c_out + c_out


def linear_params(n_in, n_out):
    return n_in * n_out + n_out


@pytest.mark.parametrize(
    "conv, linear, hint",
    [
        (lambda F, ci, co: F * F * ci * co, linear_params, "Did you forget the biases"),
        (lambda F, ci, co: F * F * ci * co + ci, linear_params, "One bias per filter"),
        (conv_params, lambda ni, no: ni * no + ni, "One bias per output"),
        (conv_params, lambda ni, no: "many", "return a whole number"),
    ],
)
def test_parameter_formulas(conv, linear, hint, capsys):
    checks.check_parameter_formulas(conv_params, linear_params)
    assert capsys.readouterr().out.startswith("PASS check_parameter_formulas")
    assert hint in failure(checks.check_parameter_formulas, conv, linear)


def features_net():
    return nn.Sequential(
        nn.Conv2d(3, 8, 5),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(8, 4, 3),
        nn.MaxPool2d(2),
        nn.Flatten(),
    )


def test_flattened_features(capsys):
    checks.check_flattened_features(4 * 6 * 6, features_net(), (3, 32, 32), widths=[28, 14, 12, 6])
    checks.check_flattened_features(torch.tensor(144), features_net(), (3, 32, 32))
    for form in (tuple, np.array, torch.tensor):
        checks.check_flattened_features(
            np.int64(144), features_net(), (3, 32, 32), widths=form([28, 14, 12, 6])
        )
    assert capsys.readouterr().out.count("PASS check_flattened_features") == 5
    wrong_pool = failure(
        checks.check_flattened_features, 4 * 5 * 5, features_net(), (3, 32, 32), [28, 14, 12, 5]
    )
    assert "width after layer '4' (MaxPool2d) is 5" in wrong_pool
    assert "144" not in wrong_pool and " 6" not in wrong_pool
    assert "multiply the channels" in failure(
        checks.check_flattened_features, 100, features_net(), (3, 32, 32)
    )
    assert "4 convolution and pooling layers" in failure(
        checks.check_flattened_features, 144, features_net(), (3, 32, 32), [28]
    )


# --- channel statistics --------------------------------------------------------------


def cifar_like(n=20, seed=0):
    return np.random.default_rng(seed).integers(0, 256, size=(n, 3, 6, 5), dtype=np.uint8)


def by_hand_stats(images, axes=(0, 2, 3), ddof=0):
    pixels = np.asarray(images, dtype=np.float64) / 255
    return pixels.mean(axis=axes), pixels.std(axis=axes, ddof=ddof)


@pytest.mark.parametrize(
    "form", [np.asarray, list, torch.tensor, tuple], ids=["array", "list", "tensor", "tuple"]
)
def test_channel_stats_accepts_any_form(form, capsys):
    images = cifar_like()
    mean, std = by_hand_stats(images)
    checks.check_channel_stats(form(mean), form(std), images)
    checks.check_channel_stats(mean, by_hand_stats(images, ddof=1)[1], torch.from_numpy(images))
    out = capsys.readouterr().out
    assert out.count("PASS check_channel_stats") == 2 and str(round(mean[0], 4)) not in out


def test_channel_stats_understands_scaled_and_channels_last_images(capsys):
    images = cifar_like()
    mean, std = by_hand_stats(images)
    checks.check_channel_stats(mean, std, images.astype(np.float32) / 255)  # already in [0, 1]
    checks.check_channel_stats(mean, std, images.astype(np.float32))  # floats 0 to 255
    checks.check_channel_stats(mean, std, images.transpose(0, 2, 3, 1))  # channels last
    out = capsys.readouterr().out.splitlines()
    assert "floats in [0, 1]" in out[0] and "channels last" in out[2]


@pytest.mark.parametrize(
    "answer, hint",
    [
        (lambda im: (255 * by_hand_stats(im)[0], by_hand_stats(im)[1]), "in 0-255 units"),
        (lambda im: (by_hand_stats(im)[0] / 255, by_hand_stats(im)[1]), "255 times too small"),
        (lambda im: (by_hand_stats(im)[0], by_hand_stats(im)[1] ** 2), "That is the variance"),
        (lambda im: by_hand_stats(im)[::-1], "Did you swap mean and std?"),
        (
            lambda im: (by_hand_stats(im)[0], (np.asarray(im) / 255).std(axis=(2, 3)).mean(axis=0)),
            "per-image stds",
        ),
        (
            lambda im: (np.asarray(im).mean() / 255, by_hand_stats(im)[1]),
            "one value for all channels",
        ),
        (lambda im: by_hand_stats(im, axes=(0, 1, 2)), "one value per column"),
        (lambda im: (None, by_hand_stats(im)[1]), "mean is None"),
        (lambda im: ("0.5", by_hand_stats(im)[1]), "expected numbers"),
        (lambda im: ([math.nan] * 3, by_hand_stats(im)[1]), "NaN"),
    ],
)
def test_channel_stats_hints(answer, hint):
    images = cifar_like()
    mean, std = answer(images)
    message = failure(checks.check_channel_stats, mean, std, images)
    assert hint in message
    right_mean, right_std = by_hand_stats(images)
    if "swap" not in hint:  # a swapped answer is printed as given, and it holds the std
        assert f"{right_mean[0]:.4f}" not in message and f"{right_std[0]:.4f}" not in message


def test_channel_stats_on_images_already_in_unit_range_does_not_blame_the_scale():
    images = cifar_like().astype(np.float32) / 255
    mean, std = by_hand_stats(cifar_like())
    message = failure(checks.check_channel_stats, mean / 255, std / 255, images)
    assert "were the pixels already in [0, 1]" in message
    assert "255 times too big" not in message


# --- training loop -------------------------------------------------------------------


def loop(
    zero_grad=True,
    train_mode=True,
    step=True,
    form=list,
    own_optimizer=False,
    own_loss=False,
    clip=None,
    model_zero_grad=False,
):
    def train_one_epoch(model, loader, optimizer, loss_fn):
        if train_mode:
            model.train()
        if own_optimizer:
            optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        criterion = nn.CrossEntropyLoss() if own_loss else loss_fn
        device = next(model.parameters()).device
        losses = []
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            if zero_grad:
                (model if model_zero_grad else optimizer).zero_grad()
            loss = criterion(model(x), y)
            loss.backward()
            if clip == "norm":
                nn.utils.clip_grad_norm_(model.parameters(), max_norm=0.1)
            elif clip == "value":
                nn.utils.clip_grad_value_(model.parameters(), clip_value=0.01)
            if step:
                optimizer.step()
            losses.append(loss.item() if form is list else loss.detach())
        return losses if form is list else form(torch.stack(losses))

    return train_one_epoch


@pytest.mark.parametrize(
    "correct",
    [
        loop(),
        loop(form=lambda t: t),
        loop(form=lambda t: t.numpy()),
        loop(form=lambda t: [v for v in t]),
        loop(model_zero_grad=True),
    ],
    ids=["floats", "tensor", "array", "list of tensors", "model.zero_grad"],
)
def test_training_loop_passes_correct_loops(correct, capsys):
    checks.check_training_loop(correct)
    assert capsys.readouterr().out.startswith("PASS check_training_loop")


def logs_loss_fn_but_trains_on_cross_entropy(model, loader, optimizer, loss_fn):
    model.train()
    losses = []
    for x, y in loader:
        optimizer.zero_grad()
        outputs = model(x)
        losses.append(loss_fn(outputs, y).item())
        F.cross_entropy(outputs, y).backward()
        optimizer.step()
    return losses


def changes_learning_rate(model, loader, optimizer, loss_fn):
    for group in optimizer.param_groups:
        group["lr"] = 0.01
    return loop()(model, loader, optimizer, loss_fn)


def zero_grad_between_backward_and_step(model, loader, optimizer, loss_fn):
    model.train()
    losses = []
    for x, y in loader:
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.zero_grad()
        optimizer.step()
        losses.append(loss.item())
    return losses


def running_mean(model, loader, optimizer, loss_fn):
    losses = loop()(model, loader, optimizer, loss_fn)
    return [float(np.mean(losses[: k + 1])) for k in range(len(losses))]


def fit_with_defaults(model, loader, optimizer, loss_fn):
    history = train.fit(model, loader, epochs=1, progress=False, device="cpu")
    return [step["loss"] for step in history.steps]


def fit_with_the_arguments(model, loader, optimizer, loss_fn):
    history = train.fit(
        model, loader, epochs=1, progress=False, device="cpu", optimizer=optimizer, loss_fn=loss_fn
    )
    return [step["loss"] for step in history.steps]


@pytest.mark.parametrize(
    "wrong, hint",
    [
        (loop(zero_grad=False), "did you forget optimizer.zero_grad()"),
        (loop(train_mode=False), "call model.train() first"),
        (loop(step=False), "did you call optimizer.step()?"),
        (loop(own_optimizer=True), "did you create an optimizer of your own?"),
        (loop(own_loss=True), "the loss_fn you were given was never called"),
        (logs_loss_fn_but_trains_on_cross_entropy, "those of plain cross-entropy"),
        (loop(clip="norm"), "gradient clipping (clip_grad_norm_)"),
        (loop(clip="value"), "gradient clipping (clip_grad_value_)"),
        (changes_learning_rate, "the optimizer's settings changed"),
        (zero_grad_between_backward_and_step, "found no gradient"),
        (running_mean, "not a running mean or sum"),
        (fit_with_defaults, "calls course_utils.train.fit"),
        (fit_with_the_arguments, "calls course_utils.train.fit"),
        (lambda model, loader, optimizer, loss_fn: [], "returned 0 losses for 3 batches"),
        (lambda model, loader, optimizer, loss_fn: None, "returned None"),
        (lambda model, loader, optimizer, loss_fn: 2.5, "returned one number"),
        (lambda model, loader, optimizer, loss_fn: "done", "expected numbers"),
    ],
)
def test_training_loop_names_the_mistake(wrong, hint):
    message = failure(checks.check_training_loop, wrong)
    assert hint in message
    if hint != "did you forget optimizer.zero_grad()":
        assert "zero_grad()?" not in message


def test_training_loop_stub_passes_through():
    def stub(model, loader, optimizer, loss_fn):
        raise NotImplementedError

    with pytest.raises(NotImplementedError):
        checks.check_training_loop(stub)


def test_checks_leave_the_global_random_state_alone():
    state = torch.random.get_rng_state()
    checks.check_training_loop(loop())
    checks.check_grad_cam(grad_cam_map)
    assert torch.equal(torch.random.get_rng_state(), state)


def test_training_loop_check_leaves_no_profiler_behind():
    failure(checks.check_training_loop, loop(step=False))
    import sys

    assert sys.getprofile() is None


# --- Grad-CAM ------------------------------------------------------------------------


def grad_cam_map(activations, gradients):
    weights = gradients.mean(dim=(1, 2))
    return torch.relu(torch.einsum("k,khw->hw", weights, activations))


@pytest.fixture(scope="module")
def resnet():
    return transfer.resnet18(num_classes=6).eval(), torch.rand(3, 64, 96)


def test_grad_cam_passes_a_correct_map_on_the_toy_and_a_resnet(resnet, capsys):
    model, image = resnet
    checks.check_grad_cam(grad_cam_map)
    checks.check_grad_cam(lambda a, g: grad_cam_map(a, g).numpy(), model, image)
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("PASS check_grad_cam: 6 maps") and out[1].startswith(
        "PASS check_grad_cam: 8 maps"
    )


@pytest.mark.parametrize(
    "wrong, hint",
    [
        (lambda a, g: torch.einsum("k,khw->hw", g.mean(dim=(1, 2)), a), "keeps negative values"),
        (lambda a, g: grad_cam_map(a, g) * a.shape[1] * a.shape[2], "h * w times too large"),
        (lambda a, g: grad_cam_map(a, g) / grad_cam_map(a, g).max(), "another scale"),
        (lambda a, g: torch.relu((a * g).sum(dim=0)), "vary over the map"),
        (lambda a, g: torch.relu(g.mean(dim=(1, 2))[:, None, None] * a), "Sum over the channels"),
        (
            lambda a, g: F.interpolate(grad_cam_map(a, g)[None, None], scale_factor=2)[0, 0],
            "at the layer's resolution",
        ),
        (lambda a, g: None, "is None"),
    ],
)
def test_grad_cam_names_the_mistake(wrong, hint):
    assert hint in failure(checks.check_grad_cam, wrong)


def test_grad_cam_needs_a_resnet_for_the_second_case():
    net = nn.Sequential(nn.Conv2d(3, 2, 3))
    assert "needs a torchvision ResNet" in failure(
        checks.check_grad_cam, grad_cam_map, net, torch.rand(3, 8, 8)
    )


class Unprintable:
    def __repr__(self) -> str:
        raise RuntimeError("no repr")


@pytest.mark.parametrize(
    "check, args",
    [
        (checks.check_output_size, (lambda W, F, S, P: Unprintable(),)),
        (checks.check_parameter_count, (Unprintable(), small_net())),
        (checks.check_channel_stats, (Unprintable(), [0.5], cifar_like())),
        (checks.check_flattened_features, ("144", features_net(), (3, 32, 32), "abc")),
    ],
)
def test_odd_answers_get_a_message_not_a_crash(check, args):
    message = failure(check, *args)
    assert message.startswith(check.__name__) and "PASS" not in message


# --- fresh cases (rng) -----------------------------------------------------------------


def memorise(check_cases, oracle, fallback):
    """A function that answers the visible cases from a table, anything else wrongly."""
    table = {tuple(np.asarray(a).tobytes() for a in case): oracle(*case) for case in check_cases}

    def lookup(*args):
        key = tuple(np.asarray(a).tobytes() for a in args)
        return table[key] if key in table else fallback(*args)

    return lookup


def visible_conv_cases():
    return [(c.image, c.kernel, c.padding) for c in convolution._cases()]


@pytest.mark.parametrize(
    "check, correct, memorised",
    [
        (
            checks.check_convolution,
            convolve,
            memorise(visible_conv_cases(), convolve, lambda im, k, p: np.zeros((1, 1))),
        ),
        (
            checks.check_cross_correlation,
            correlate,
            memorise(visible_conv_cases(), correlate, lambda im, k, p: np.zeros((1, 1))),
        ),
        (
            checks.check_output_size,
            conv_size,
            memorise(sizes._conv_cases(), conv_size, lambda *a: 1),
        ),
        (
            checks.check_pool_output_size,
            lambda W, F, S: (W - F) // S + 1,
            memorise(sizes._pool_cases(), lambda W, F, S: (W - F) // S + 1, lambda *a: 1),
        ),
        (
            checks.check_same_padding,
            lambda F: (F - 1) // 2,
            memorise([(f,) for f in (1, 3, 5, 7, 9, 11)], lambda F: (F - 1) // 2, lambda F: 0),
        ),
        (
            checks.check_filter_size,
            largest_filter,
            memorise(
                [(w, sizes.conv_width(w, f, s, p), s, p) for w, f, s, p in sizes._conv_cases()],
                largest_filter,
                lambda *a: 1,
            ),
        ),
    ],
    ids=["convolution", "cross-correlation", "output size", "pool", "same padding", "filter"],
)
def test_fresh_cases_pass_right_answers_and_fail_memorised_ones(check, correct, memorised, capsys):
    check(memorised)  # the visible cases only: a table of them passes
    for seed in range(3):
        check(correct, rng=np.random.default_rng(seed))
    out = capsys.readouterr().out
    assert out.count("PASS") == 4
    with pytest.raises(CheckFailed):
        check(memorised, rng=np.random.default_rng(0))


def test_parameter_formulas_on_fresh_sizes(capsys):
    table = memorise(
        [
            tuple(int(v) for v in g.integers(1, 9, size=3))
            for g in [np.random.default_rng(2024)]
            for _ in range(20)
        ],
        conv_params,
        lambda *a: 0,
    )
    checks.check_parameter_formulas(conv_params, linear_params, rng=np.random.default_rng(5))
    assert capsys.readouterr().out.startswith("PASS")
    with pytest.raises(CheckFailed):
        checks.check_parameter_formulas(table, linear_params, rng=np.random.default_rng(5))


def test_fresh_cases_differ_from_the_visible_ones_and_from_run_to_run():
    visible = {c.image.tobytes() for c in convolution._cases()}
    first = [c.image.tobytes() for c in convolution._cases(np.random.default_rng(1))]
    second = [c.image.tobytes() for c in convolution._cases(np.random.default_rng(2))]
    assert not visible & set(first) and first != second
    assert not set(sizes._conv_cases()[:4]) & set(sizes._conv_cases(np.random.default_rng(1)))
    shapes = {c.image.shape for c in convolution._cases(np.random.default_rng(1))}
    assert max(max(s) for s in shapes) > 7  # larger images than the visible cases have


def test_training_loop_and_grad_cam_on_fresh_settings(capsys):
    checks.check_training_loop(loop(), rng=np.random.default_rng(3))
    checks.check_grad_cam(grad_cam_map, rng=np.random.default_rng(3))
    out = capsys.readouterr().out
    assert "PASS check_training_loop" in out and "PASS check_grad_cam" in out
    assert "returned 0 losses" in failure(
        checks.check_training_loop,
        lambda model, loader, optimizer, loss_fn: [],
    )


def test_run_epoch_returns_data_that_a_grader_can_compare():
    setting = checks.training.epoch_setting(np.random.default_rng(0))
    right = checks.training.run_epoch(loop(), **setting)
    again = checks.training.run_epoch(loop(form=lambda t: t), **setting)
    wrong = checks.training.run_epoch(loop(zero_grad=False), **setting)
    assert len(right["losses"]) == setting["batches"]
    assert np.allclose(right["losses"], again["losses"])
    assert all(isinstance(w, np.ndarray) for w in right["weights"])
    assert not all(
        np.allclose(a, b) for a, b in zip(right["weights"], wrong["weights"], strict=True)
    )


# --- by hand ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "library",
    [
        lambda im, k, p: F.conv2d(
            torch.tensor(im, dtype=torch.float64)[None, None],
            torch.tensor(k.copy(), dtype=torch.float64).flip(0, 1)[None, None],
            padding=p,
        )[0, 0],
        lambda im, k, p: nn.Conv2d(1, 1, k.shape, padding=p, bias=False)(
            torch.zeros(1, 1, *im.shape)
        ),
        lambda im, k, p: np.array([np.convolve(row, k[0]) for row in np.pad(im, p)]),
    ],
    ids=["F.conv2d", "nn.Conv2d", "np.convolve"],
)
def test_a_library_convolution_fails_the_by_hand_check(library):
    message = failure(checks.check_convolution, library)
    assert "compute it by hand" in message


def test_scipy_is_watched_too():
    signal = pytest.importorskip("scipy.signal")

    def with_scipy(image, kernel, padding):
        return signal.convolve2d(np.pad(image, padding), kernel, mode="valid")

    assert "scipy.signal.convolve2d" in failure(checks.check_convolution, with_scipy)


HONEST = """
import numpy as np
import torch.nn.functional as F

def cross_correlate2d(image, kernel, padding):
    oracle = np.pad(image, padding)  # a local name, not the module-level oracle below
    kh, kw = kernel.shape
    return np.array([[np.sum(oracle[i:i + kh, j:j + kw] * kernel)
                      for j in range(oracle.shape[1] - kw + 1)]
                     for i in range(oracle.shape[0] - kh + 1)])

def convolve2d(image, kernel, padding):
    \"\"\"A true convolution, by hand (no F.conv2d here).\"\"\"
    return cross_correlate2d(image, kernel[::-1, ::-1], padding)

%time result = convolve2d(image, kernel, 1)
oracle = F.conv2d(x, w, padding=1)  # the notebook's own comparison
"""


@pytest.mark.parametrize(
    "source, reached",
    [
        (HONEST, []),
        (
            HONEST + "\ndef convolve2d(image, kernel, padding):\n    return F.conv2d(image)\n",
            [".conv2d"],
        ),
        (
            "from scipy.signal import correlate2d as slide\n"
            "def convolve2d(i, k, p):\n    return slide(i, k)\n",
            ["slide (imported correlate2d)"],
        ),
        (
            "import torch\nconv = torch.nn.functional.conv2d\n"
            "def helper(i, k):\n    return conv(i, k)\n"
            "def convolve2d(i, k, p):\n    return helper(i, k)\n",
            ["conv (bound to .conv2d)"],
        ),
        ("def convolve2d(i, k, p):\n    return getattr(F, 'conv2d')(i, k)\n", ["'conv2d'"]),
        ("def convolve2d(i, k, p):\n    return vars(F)['conv2d'](i, k)\n", ["'conv2d'"]),
        (
            "def convolve2d(i, k, p, mode='convolve'):\n    return slide(i, k, mode)\n"
            "def slide(i, k, mode):\n    return i if mode == 'convolve' else k\n",
            [],
        ),
        (
            "def convolve2d(i, k, p):\n    return getattr(F, 'conv' + '2d')(i, k)\n",
            ["getattr with a computed name"],
        ),
        (
            "def convolve2d(i, k, p):\n    return eval('F.conv2d')(i, k)\n",
            ["eval(...)"],
        ),
        (
            "convolve2d = lambda i, k, p: torch.nn.Conv2d(1, 1, 3)(i)\n",
            ["convolve2d (bound to .Conv2d)"],
        ),
        ("def convolve2d(i, k, p:\n    broken\ndef other():\n    return F.conv2d(1)\n", []),
    ],
    ids=[
        "honest",
        "redefined later",
        "imported alias",
        "module alias via helper",
        "getattr string",
        "vars lookup",
        "a mode string of its own",
        "getattr computed",
        "eval",
        "lambda",
        "syntax error cell",
    ],
)
def test_library_convolution_calls_reads_the_handed_in_code(source, reached):
    assert checks.library_convolution_calls(source, ["convolve2d"]) == reached


def test_the_a1_t1_solution_is_by_hand():
    import nbformat

    nb = nbformat.read("notebooks/a1_t1_convolution_arithmetic.ipynb", as_version=4)
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert "F.conv2d" in code  # the notebook compares with it, outside the functions
    assert checks.library_convolution_calls(code, ["convolve2d", "cross_correlate2d"]) == []
