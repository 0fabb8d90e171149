"""Checks that compare a student's answer with PyTorch or NumPy as the oracle.

Each ``check_*`` function runs the student's answer on the assignment's own case (where
there is one) and on seeded random cases. A correct answer prints exactly one ``PASS``
line; a wrong one raises :class:`CheckFailed` with a hint that names the kind of mistake
and where it shows, for example::

    CheckFailed: check_convolution: for the assignment's case ..., 15 of 15 positions
    disagree with F.conv2d; the first is position (0, 0), where yours is 2. Your result
    equals cross-correlation with the unflipped kernel: did you flip the kernel?

A hint never prints the expected value of a graded item, nor the formula a task asks
for: the helper holds no answers, the notebooks do. Answers of the wrong type (``None``,
a string, a list where a number is wanted) get a message that says what was expected.

Every check of a function takes ``rng``, a ``numpy.random.Generator``: without it the
cases are the fixed ones a notebook shows; with it, fresh ones drawn from it (other
shapes, strides, paddings and seeds), so that a table of the fixed cases' answers fails.
A failed check shows in a notebook as its hint and one line naming the check, without a
traceback through this package.

One module per kind of task: :mod:`~course_utils.checks.convolution`,
:mod:`~course_utils.checks.sizes`, :mod:`~course_utils.checks.parameters`,
:mod:`~course_utils.checks.statistics`, :mod:`~course_utils.checks.training` and
:mod:`~course_utils.checks.grad_cam`; :mod:`~course_utils.checks.by_hand` tells whether a
function meant to be written by hand calls a library convolution.
"""

from course_utils.checks._core import CheckFailed
from course_utils.checks.by_hand import library_convolution_calls
from course_utils.checks.convolution import (
    ASSIGNMENT_IMAGE,
    ASSIGNMENT_KERNEL,
    check_convolution,
    check_cross_correlation,
)
from course_utils.checks.grad_cam import check_grad_cam
from course_utils.checks.parameters import (
    check_flattened_features,
    check_parameter_count,
    check_parameter_formulas,
)
from course_utils.checks.sizes import (
    check_filter_size,
    check_output_size,
    check_pool_output_size,
    check_same_padding,
)
from course_utils.checks.statistics import check_channel_stats
from course_utils.checks.training import check_training_loop

__all__ = [
    "ASSIGNMENT_IMAGE",
    "ASSIGNMENT_KERNEL",
    "CheckFailed",
    "check_channel_stats",
    "check_convolution",
    "check_cross_correlation",
    "check_filter_size",
    "check_flattened_features",
    "check_grad_cam",
    "check_output_size",
    "check_parameter_count",
    "check_parameter_formulas",
    "check_pool_output_size",
    "check_same_padding",
    "check_training_loop",
    "library_convolution_calls",
]
