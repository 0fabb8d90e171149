"""What a student sees when a check fails: the hint first, in a few lines, without the
course's own traceback (in a kernel, in the saved notebook and under nbval); and a hint
that names a mistake only when the student made that mistake.

The property tests draw wrong answers of several kinds on fresh cases (``rng``) and
require that a message never names another kind's mistake.
"""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import nbformat
import numpy as np
import pytest
from nbclient import NotebookClient

from course_utils import checks
from course_utils.checks import CheckFailed

ROOT = Path(__file__).resolve().parents[1]

OFF_BY_ONE = """
import numpy as np
from course_utils import checks


def convolve2d(image, kernel, padding):
    padded, (kh, kw) = np.pad(image, padding), kernel.shape
    kernel = kernel[::-1, ::-1]
    rows, columns = padded.shape[0] - kh, padded.shape[1] - kw + 1  # one row short
    return np.array([[np.sum(padded[i:i + kh, j:j + kw] * kernel) for j in range(columns)]
                     for i in range(rows)])


checks.check_convolution(convolve2d)
"""


def failure(check, *args, **kwargs) -> str:
    with pytest.raises(CheckFailed) as raised:
        check(*args, **kwargs)
    return str(raised.value)


# --- display --------------------------------------------------------------------------


def test_a_failed_check_renders_as_its_hint_then_one_line():
    error = CheckFailed("check_x: " + "word " * 40 + "end.")
    lines = error._render_traceback_()
    assert lines[0].startswith("word word") and len(lines) == 4
    assert all(len(line) <= 100 for line in lines[:-1])
    assert lines[-1].startswith("(CheckFailed in checks.check_x")


@pytest.fixture(scope="module")
def executed_cell() -> nbformat.NotebookNode:
    """The off-by-one check run in a real kernel, as the saved notebook stores it."""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(OFF_BY_ONE)])
    NotebookClient(nb, timeout=120, kernel_name="python3", allow_errors=True).execute(cwd=str(ROOT))
    return nb.cells[0]


def test_the_saved_error_output_shows_the_hint_first_and_no_course_source(executed_cell):
    (output,) = [o for o in executed_cell.outputs if o.output_type == "error"]
    traceback = output.traceback
    assert traceback[0].startswith("for the assignment's case (3x5 image, 3x3 kernel, padding 1)")
    assert len(traceback) <= 6
    text = "\n".join(traceback)
    assert "Off by one: one too few rows" in text
    assert "checks/" not in text and "_core.py" not in text and "File " not in text
    assert traceback[-1].startswith("(CheckFailed in checks.check_convolution")
    assert output.ename == "CheckFailed"


def test_the_hint_on_the_assignments_own_case_names_no_square_image(executed_cell):
    text = "\n".join(executed_cell.outputs[-1].traceback)
    assert "Square" not in text  # no square case was tried before the assignment's


def test_nbval_reports_the_hint_without_the_course_traceback(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(OFF_BY_ONE)])
    path = tmp_path / "student.ipynb"
    nbformat.write(nb, path)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--nbval-lax", "-p", "no:cacheprovider", str(path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert result.returncode == 1, result.stdout[-2000:]
    assert "Off by one: one too few rows" in result.stdout
    assert "checks/convolution.py" not in result.stdout and "_core.py" not in result.stdout


# --- convolution hints: only the mistake that was made ---------------------------------


def slide(image, kernel, flip=True, pads=None, rows=0, columns=0, square=""):
    """A by-hand sliding window with one switchable mistake."""
    kernel = np.asarray(kernel)[::-1, ::-1] if flip else np.asarray(kernel)
    padded = np.pad(image, pads)
    kh, kw = kernel.shape
    if square == "kernel":
        kh = kw = min(kh, kw)
        kernel = kernel[:kh, :kw]
    if square == "image":
        side = min(padded.shape)
        padded = padded[:side, :side]
    out = np.zeros((padded.shape[0] - kh + 1 + rows, padded.shape[1] - kw + 1 + columns))
    for i in range(max(out.shape[0], 0)):
        for j in range(max(out.shape[1], 0)):
            window = padded[i : i + kh, j : j + kw]
            out[i, j] = np.sum(window * kernel[: window.shape[0], : window.shape[1]])
    return out


# Each kind of mistake, and the phrases only a hint about that kind may use.
PHRASES = {
    "no flip": ["did you flip"],
    "half flip": ["flipped upside down", "flipped left to right"],
    "no padding": ["forget the zero padding"],
    "padding once": ["Padding counted once"],
    "same padding": [],
    "square kernel": ["Square kernel"],
    "square image": ["Square image"],
    "off by one": ["Off by one"],
    "noise": [],
}
MISTAKES = {
    "no flip": lambda im, k, p: slide(im, k, flip=False, pads=p),
    "half flip": lambda im, k, p: slide(im, np.asarray(k)[:, ::-1], flip=False, pads=p),
    "no padding": lambda im, k, p: slide(im, k, pads=0),
    "padding once": lambda im, k, p: slide(im, k, pads=((p, 0), (p, 0))),
    "same padding": lambda im, k, p: slide(im, k, pads=((k.shape[0] - 1) // 2,)),
    "square kernel": lambda im, k, p: slide(im, k, pads=p, square="kernel"),
    "square image": lambda im, k, p: slide(im, k, pads=p, square="image"),
    "off by one": lambda im, k, p: slide(im, k, pads=p, rows=-1),
    "noise": lambda im, k, p: (
        slide(im, k, pads=p)
        + (np.arange(slide(im, k, pads=p).size) == 3).reshape(slide(im, k, pads=p).shape)
    ),
}
ALSO_ALLOWED = {
    # For an even kernel the "same" padding of an odd one is no padding at all.
    "same padding": ["forget the zero padding"],
}


@pytest.mark.parametrize("kind", sorted(MISTAKES))
@pytest.mark.parametrize("seed", range(6))
def test_a_convolution_hint_never_names_a_mistake_not_made(kind, seed):
    message = failure(checks.check_convolution, MISTAKES[kind], rng=np.random.default_rng(seed))
    allowed = PHRASES[kind] + ALSO_ALLOWED.get(kind, [])
    named = [p for k, phrases in PHRASES.items() for p in phrases if p in message]
    assert set(named) <= set(allowed), message
    assert message.count("Square image") <= 1 and message.count("Square kernel") <= 1


@pytest.mark.parametrize("kind", ["no padding", "padding once", "square kernel", "square image"])
def test_each_convolution_mistake_is_named_on_some_fresh_case(kind):
    messages = [
        failure(checks.check_convolution, MISTAKES[kind], rng=np.random.default_rng(seed))
        for seed in range(6)
    ]
    assert any(phrase in m for m in messages for phrase in PHRASES[kind])


def test_a_square_hint_needs_a_square_case_that_passed():
    def square_image_only(image, kernel, padding):
        if image.shape[0] != image.shape[1]:
            raise IndexError("index 5 is out of bounds")
        return slide(image, kernel, pads=padding)

    first = failure(checks.check_convolution, square_image_only)  # the assignment's case
    assert "Square" not in first
    fresh = failure(checks.check_convolution, square_image_only, rng=np.random.default_rng(0))
    assert fresh.count("Square image assumed?") == 1


# --- size hints: only the mistake that was made ----------------------------------------


def conv_size(w, f, s, p):
    return (w - f + 2 * p) // s + 1


SIZE_MISTAKES = {
    "rounds up": (lambda w, f, s, p: math.ceil((w - f + 2 * p) / s) + 1, "rounds up"),
    "padding once": (lambda w, f, s, p: (w - f + p) // s + 1, "padding counted once"),
    "no padding": (lambda w, f, s, p: (w - f) // s + 1, "ignores the padding"),
    "no stride": (lambda w, f, s, p: w - f + 2 * p + 1, "divide by the stride"),
    "one too few": (lambda w, f, s, p: conv_size(w, f, s, p) - 1, "one too few"),
    "one too many": (lambda w, f, s, p: conv_size(w, f, s, p) + 1, "one too many"),
    "garbage": (lambda w, f, s, p: conv_size(w, f, s, p) + 1 + (w * 7 + f) % 5, None),
}


@pytest.mark.parametrize("kind", sorted(SIZE_MISTAKES))
@pytest.mark.parametrize("seed", range(4))
def test_an_output_size_hint_never_names_a_mistake_not_made(kind, seed):
    wrong, own = SIZE_MISTAKES[kind]
    message = failure(checks.check_output_size, wrong, rng=np.random.default_rng(seed))
    named = [phrase for _, phrase in SIZE_MISTAKES.values() if phrase and phrase in message]
    assert named in ([own], []), message
    if own is not None:
        assert own in message


def test_one_row_short_is_not_padding_counted_once():
    # With P = 1 and S = 1, padding counted once is also one short: only a function that
    # is short by P everywhere is told about padding.
    message = failure(checks.check_output_size, SIZE_MISTAKES["one too few"][0])
    assert "one too few" in message and "padding" not in message


POOL_MISTAKES = {
    "rounds up": (lambda w, f, s: math.ceil((w - f) / s) + 1, "rounds up"),
    "no stride": (lambda w, f, s: w - f + 1, "divide by the stride"),
    "halves": (lambda w, f, s: w // 2, "2-pixel stride"),
    "one too few": (lambda w, f, s: (w - f) // s, "one too few"),
}


@pytest.mark.parametrize("kind", sorted(POOL_MISTAKES))
@pytest.mark.parametrize("seed", range(4))
def test_a_pool_hint_never_names_a_mistake_not_made(kind, seed):
    wrong, own = POOL_MISTAKES[kind]
    message = failure(checks.check_pool_output_size, wrong, rng=np.random.default_rng(seed))
    named = [phrase for _, phrase in POOL_MISTAKES.values() if phrase in message]
    assert named in ([own], []), message


def test_an_error_in_the_students_function_shows_its_line_and_nothing_of_the_course():
    def convolve2d(image, kernel, padding):
        return image[100]  # the student's bug

    with pytest.raises(CheckFailed) as raised:
        checks.check_convolution(convolve2d)
    lines = raised.value._render_traceback_()
    assert "raised IndexError" in lines[0]
    assert any("in your convolve2d" in line and "image[100]" in line for line in lines)
    assert not any("checks/" in line for line in lines)


# --- parameter-formula and filter-size hints: only the mistake that was made ----------

CONV_MISTAKES = {
    "no bias": (lambda f, i, o: f * f * i * o, "forget the biases"),
    "no input channels": (lambda f, i, o: f * f * o + o, "forget the input channels"),
    "one dimension": (lambda f, i, o: f * i * o + o, "count both of its dimensions"),
    "bias per input": (lambda f, i, o: f * f * i * o + i, "One bias per filter"),
    "garbage": (lambda f, i, o: f * f * i * o + o + 7 + f % 3, None),
}


@pytest.mark.parametrize("kind", sorted(CONV_MISTAKES))
@pytest.mark.parametrize("seed", range(3))
def test_a_parameter_hint_never_names_a_mistake_not_made(kind, seed):
    wrong, own = CONV_MISTAKES[kind]
    message = failure(
        checks.check_parameter_formulas,
        wrong,
        lambda n_in, n_out: n_in * n_out + n_out,
        rng=np.random.default_rng(seed),
    )
    named = [phrase for _, phrase in CONV_MISTAKES.values() if phrase and phrase in message]
    assert named in ([own], []), message
    if own is not None:
        assert own in message


def largest_filter(w_in, w_out, s, p):
    return w_in + 2 * p - (w_out - 1) * s


FILTER_MISTAKES = {
    "no padding": (lambda w, o, s, p: largest_filter(w, o, s, 0), "ignores the padding"),
    "padding once": (lambda w, o, s, p: w + p - (o - 1) * s, "padding counted once"),
    "no stride": (lambda w, o, s, p: largest_filter(w, o, 1, p), "ignores the stride"),
    "garbage": (lambda w, o, s, p: largest_filter(w, o, s, p) + 2 + w % 3, None),
}


@pytest.mark.parametrize("kind", sorted(FILTER_MISTAKES))
@pytest.mark.parametrize("seed", range(3))
def test_a_filter_size_hint_never_names_a_mistake_not_made(kind, seed):
    wrong, own = FILTER_MISTAKES[kind]
    message = failure(checks.check_filter_size, wrong, rng=np.random.default_rng(seed))
    named = [phrase for _, phrase in FILTER_MISTAKES.values() if phrase and phrase in message]
    assert named in ([own], []), message
