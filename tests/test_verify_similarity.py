"""Alike solution code (issue 18, class 7): found through small edits, per function or cell.

The honest submission is the a1_t1 solution notebook's own solution code (what a
student who solved it hands in); each variant edits it the way a copier would. Code
written another way, and stubs left as the release hands them out, are not listed.
"""

from __future__ import annotations

import io
import os
import random
import subprocess
import sys
import time
import tokenize
from pathlib import Path

import nbformat
import pytest

from course_utils.instructor.verify import VERIFIED, Verdict, report
from course_utils.instructor.verify.similarity import release_tokens, similar_pairs, winnow
from course_utils.instructor.verify.submission import MAX_TOKEN_CHARS, MAX_TOKENS, solution_tokens
from course_utils.instructor.verify.template import SOLUTION, Template, cell_role

ROOT = Path(__file__).resolve().parent.parent
NAME = "a1_t1_convolution_arithmetic.ipynb"

# The same tasks solved another way: vectorised windows, other formulas, other layers.
OTHER_WAY = [
    '''def cross_correlate2d(image: np.ndarray, kernel: np.ndarray, padding: int) -> np.ndarray:
    """Stride-1 cross-correlation of a 2-D image with zero padding on every side."""
    big = np.zeros((image.shape[0] + 2 * padding, image.shape[1] + 2 * padding))
    big[padding:padding + image.shape[0], padding:padding + image.shape[1]] = image
    windows = np.lib.stride_tricks.sliding_window_view(big, kernel.shape)
    return np.einsum("abij,ij->ab", windows, kernel)


def convolve2d(image: np.ndarray, kernel: np.ndarray, padding: int) -> np.ndarray:
    """Stride-1 true convolution: cross-correlation with the kernel flipped in both axes."""
    flipped = np.flip(np.flip(kernel, axis=0), axis=1)
    result = cross_correlate2d(image, flipped, padding)
    return result
''',
    '''def conv_output_size(W: int, F: int, S: int, P: int) -> int:
    """Width of a convolution's output."""
    span = W + P + P - F
    assert span % S == 0, "the filter does not tile the input"
    return span // S + 1


def pool_output_size(W: int, F: int, S: int) -> int:
    """Width of a max-pooling layer's output (no padding)."""
    return conv_output_size(W, F, S, 0)


def same_padding(F: int) -> int:
    """Zero padding per side that keeps the width unchanged at stride 1 (odd F)."""
    return int((F - 1) / 2)


def filter_size(W_in: int, W_out: int, S: int, P: int) -> int:
    """Filter width that turns W_in into W_out with stride S and padding P."""
    return -(S * (W_out - 1) - W_in - 2 * P)
''',
    '''class LeNet(nn.Module):
    """Three conv-ReLU-pool blocks and two linear layers, for 32x32 RGB images."""

    def __init__(self, num_classes: int = 10):
        super().__init__()
        blocks = []
        for c_in, c_out in [(3, 32), (32, 64), (64, 128)]:
            blocks += [nn.Conv2d(c_in, c_out, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2)]
        self.features = nn.Sequential(*blocks)
        head = [nn.Flatten(), nn.Linear(2048, 64), nn.ReLU(), nn.Linear(64, num_classes)]
        self.classifier = nn.Sequential(*head)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        return self.classifier(x)


def conv_params(F: int, c_in: int, c_out: int) -> int:
    weights = c_out * c_in * F ** 2
    return weights + c_out


def linear_params(n_in: int, n_out: int) -> int:
    return (n_in + 1) * n_out


lenet = LeNet()
# A dict from layer name (as in `lenet.named_modules()`) to its parameter count.
params_by_hand = {}
for name, module in lenet.named_modules():
    if isinstance(module, nn.Conv2d):
        params_by_hand[name] = conv_params(module.kernel_size[0], module.in_channels,
                                           module.out_channels)
    elif isinstance(module, nn.Linear):
        params_by_hand[name] = linear_params(module.in_features, module.out_features)
''',
    """# widths: the width after each of the five layers, in order, from your size functions;
# features: the number of values the flatten hands to the linear layer (an int).
layers = [("conv", 5), ("conv", 5), ("pool", 2), ("conv", 3), ("pool", 2)]
widths, width = [], 28
for kind, size in layers:
    width = conv_output_size(width, size, 1, 0) if kind == "conv" else width // 2
    widths.append(width)
features = 32 * widths[4] ** 2
""",
]


@pytest.fixture(scope="module")
def template() -> Template:
    path = ROOT / "notebooks" / NAME
    return Template(path, nbformat.read(path, as_version=4))


@pytest.fixture(scope="module")
def honest(template: Template) -> list[str]:
    """The solution cells' code, as the student who solved them hands it in."""
    return [cell.source for cell in template.nb.cells if cell_role(cell) == SOLUTION]


def alike(template: Template, **sources: list[str]) -> dict[str, list[str]]:
    """``similar_to`` of each submission, compared as the gradebook's final write does."""
    verdicts = [
        Verdict(name, VERIFIED, "", template=NAME, tokens=solution_tokens(cells))
        for name, cells in sources.items()
    ]
    report.mark_similar(verdicts, [template])
    return {v.submission: v.similar_to for v in verdicts}


def renamed(source: str, names: dict[str, str]) -> str:
    """``source`` with each name in ``names`` replaced, as a careful copier renames."""
    tokens = [
        tok._replace(string=names.get(tok.string, tok.string)) if tok.type == tokenize.NAME else tok
        for tok in tokenize.generate_tokens(io.StringIO(source).readline)
    ]
    return tokenize.untokenize(tokens)


def test_an_added_import_at_the_top_is_still_listed(template: Template, honest: list[str]) -> None:
    # The a01 pair of the issue: numbering names by first use made this 0.61, not listed.
    copied = ["import numpy\n" + honest[0], *honest[1:]]
    pairs = similar_pairs(
        {"a01": solution_tokens(honest), "a01_copy": solution_tokens(copied)},
        base=release_tokens(template),
    )
    assert [(p.first, p.second) for p in pairs] == [("a01", "a01_copy")]
    assert pairs[0].ratio >= 0.95
    assert {"cross_correlate2d", "convolve2d", "LeNet"} <= set(pairs[0].units)


def test_renamed_variables_and_reordered_functions_are_listed(
    template: Template, honest: list[str]
) -> None:
    names = {
        "padded": "img_p",
        "out": "result",
        "k_h": "kh",
        "k_w": "kw",
        "out_h": "rows",
        "out_w": "cols",
        "i": "r",
        "j": "c",
        "lenet": "net",
        "widths": "widths",
    }
    first = renamed(honest[0], names)
    # The two functions of the first cell swapped, and the cells handed in in reverse order.
    head, tail = first.split("\n\n\ndef convolve2d")
    swapped = "def convolve2d" + tail + "\n\n\n" + head
    copied = [swapped, *(renamed(cell, names) for cell in honest[1:])][::-1]
    result = alike(template, honest=honest, copier=copied, other=OTHER_WAY)
    assert result == {"honest": ["copier"], "copier": ["honest"], "other": []}


def test_one_copied_function_is_found_on_its_own(template: Template, honest: list[str]) -> None:
    # Everything written another way but the convolution, copied and renamed.
    copied = [renamed(honest[0], {"padded": "p", "out": "o"}), *OTHER_WAY[1:]]
    pairs = similar_pairs(
        {"honest": solution_tokens(honest), "copier": solution_tokens(copied)},
        base=release_tokens(template),
    )
    assert len(pairs) == 1 and "cross_correlate2d" in pairs[0].units
    assert "LeNet" not in pairs[0].units and pairs[0].ratio < 0.8


def test_different_code_and_untouched_stubs_are_not_listed(
    template: Template, honest: list[str]
) -> None:
    stubs = [
        text
        for text, cell in zip(template.releases, template.nb.cells, strict=True)
        if cell_role(cell) == SOLUTION
    ]
    result = alike(template, honest=honest, other=OTHER_WAY, idle=stubs, idle_too=stubs)
    assert result == {"honest": [], "other": [], "idle": [], "idle_too": []}


def test_tokens_are_bounded_and_names_become_roles() -> None:
    assert solution_tokens(["s = a + b"]) == solution_tokens(["total = x + y  # sum"])
    assert solution_tokens(["y = np.zeros(3)"]) != solution_tokens(["y = np.ones(3)"])
    assert len(solution_tokens(["x = 1\n" * MAX_TOKENS])) == MAX_TOKENS
    start = time.perf_counter()
    huge = solution_tokens([f"x = {'9' * 20 * 2**20}"])  # a 20 MB number: read in part
    assert huge[-1] == "9" * MAX_TOKEN_CHARS and time.perf_counter() - start < 10
    assert winnow("a b c".split()) and not winnow([])


def synthetic_program(rng: random.Random) -> str:
    """A random but plausible solution: a few functions of loops, sums and conditions."""
    attributes = (
        "sum mean zeros ones shape reshape flatten max min pad argmax clip abs sqrt exp log "
        "dot matmul transpose copy sort cumsum std var"
    ).split()
    functions = []
    for index in range(rng.randint(4, 7)):
        lines = [f"def f{index}(a, b, c):", "    out = 0"]
        for _ in range(rng.randint(4, 9)):
            op = rng.choice(["+", "-", "*", "//"])
            attribute = rng.choice(attributes)
            number = rng.randint(0, 99)
            lines += rng.choice(
                [
                    [f"    out = out {op} np.{attribute}(a[{number}:]) {op} {number}"],
                    [f"    for i in range({number}):", f"        out {op}= b.{attribute}(i)"],
                    [f"    if c > {number}:", f"        c = c {op} a.{attribute}"],
                    [f"    b = [x {op} {number} for x in b if x != {number}]"],
                ]
            )
        functions.append("\n".join([*lines, "    return out"]))
    return "\n\n\n".join(functions)


def test_a_class_of_300_is_compared_in_seconds() -> None:
    rng = random.Random(18)
    programs = {f"s{index:03d}": [synthetic_program(rng)] for index in range(300)}
    copies = {"s010": "s200", "s050": "s051", "s123": "s299"}
    for source, copier in copies.items():
        code = renamed(programs[source][0], {"out": "total", "a": "x", "b": "y", "i": "k"})
        functions = code.split("\n\n\n")
        programs[copier] = ["import numpy\n" + "\n\n\n".join(functions[::-1])]
    tokens = {name: solution_tokens(cells) for name, cells in programs.items()}
    start = time.perf_counter()
    pairs = similar_pairs(tokens)
    took = time.perf_counter() - start
    assert {(p.first, p.second) for p in pairs} == set(copies.items())
    assert took < 30, f"{took:.1f} s for 300 submissions"


def test_exact_copies_are_listed_even_when_the_whole_class_shares_the_code() -> None:
    # 25 submissions built on one solution, 23 with an edit of their own: the shared code
    # is common (in more than the cut), but the two untouched copies are still a pair.
    code = OTHER_WAY[0]
    tokens = {f"s{i:02d}": solution_tokens([code, f"print({i} * {i} + {i})"]) for i in range(23)}
    tokens["copy_a"] = tokens["copy_b"] = solution_tokens([code])
    pairs = similar_pairs(tokens)
    assert [(p.first, p.second, p.ratio) for p in pairs if "copy_a" in (p.first, p.second)] == [
        ("copy_a", "copy_b", 1.0)
    ]


def test_fingerprints_are_the_same_in_every_process() -> None:
    # Python's string hash changes with PYTHONHASHSEED; with it, a class graded twice
    # listed different pairs (a random pair of the 300 above now and then).
    code = (
        "from course_utils.instructor.verify.similarity import winnow\n"
        "print(sorted(winnow('N = N . sum ( N * N ) return N + 1'.split())))"
    )
    outputs = {
        subprocess.run(
            [sys.executable, "-c", code],
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in ("1", "2", "3")
    }
    assert len(outputs) == 1 and outputs != {"[]\n"}
