"""No answer reaches the student release: not a solution line, not a graded value.

Three sources are scanned:

- every text file of the release (package code and docstrings, README, packaging files,
  every notebook's markdown, code, findings and docstrings), for the lines of the solution
  regions of every instructor's notebook and for the graded values and formulas of the
  whole curriculum as a notebook would print or write them: the release hands out all
  notebooks at once, so one notebook's text must not give another's answers;
- the helper package's code and docstrings, for the same lines and values;
- the messages the checks give typical wrong answers (and the PASS lines of right ones),
  for the same graded values.

A graded value is a pattern for the answer as written (a chain of sizes, a product with
its result, a formula), not a lone number, so that the inputs of a task (a 28×28 image,
``widths=(32, 64, 128)``, ``nn.Conv2d(3, 32, 5, padding=2)``) do not count.

Each scan is tested on a planted leak, so that a scan that finds nothing cannot pass by
looking in the wrong place.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from pathlib import Path

import nbformat
import numpy as np
import pytest
import torch
from torch import nn

from course_utils import checks
from course_utils.checks import CheckFailed
from course_utils.instructor.release import (
    SOLUTION_BEGIN,
    SOLUTION_END,
    build_release,
    is_hidden_test,
)

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
PACKAGE = ROOT / "course_utils"

# A solution line shorter than this (normalised) is an idiom, not an answer: `return out`,
# `model.train()`, `loss.backward()`, which the course's own trainer also contains.
MIN_SECRET_LENGTH = 24
# A call with at most one plain argument (`config.seed_everything(seed)`) is an idiom too:
# every notebook seeds, loads and steps the same way.
BARE_CALL = re.compile(r"[\w.]+\(\w*\)")

# How notebooks write arithmetic in Markdown, LaTeX and code, reduced to one spelling
# before the graded values and formulas are looked for.
SPELLINGS = {
    "\u2212": "-",  # minus sign
    "\u00b7": "*",  # middle dot
    "\u22c5": "*",  # dot operator
    "\u00d7": "*",  # multiplication sign
    "\u2192": "->",  # rightwards arrow
    "\\cdot": "*",
    "\\times": "*",
    "\\rightarrow": "->",
    "\\to ": "-> ",
}

# The graded values of the curriculum, as a notebook prints or writes them (regular
# expressions, matched against text in SPELLINGS' spelling with runs of spaces collapsed).
GRADED_VALUES = {
    "a1_t1 convolution, row 1": r"-2[\s,]+1[\s,]+-11[\s,]+2[\s,]+13\b",
    "a1_t1 convolution, row 2": r"-10[\s,]+4[\s,]+-8[\s,]+-2[\s,]+18\b",
    "a1_t1 convolution, row 3": r"-14[\s,]+1[\s,]+5[\s,]+-6[\s,]+9\b",
    "a1_t1 filter size": r"\bF\s*=\s*9\b",
    "a1_t1 pooling": r"\b504\s*(->|→|to)\s*252\b",
    "a1_t1 next convolution": r"\b252\s*(->|→|to)\s*250\b",
    "a1_t1 same padding": r"\bP\s*=\s*[12]\s+for\s+F\s*=\s*[35]\b",
    "a1_t1 LeNet total": r"\b390[,\s]?410\b",
    "a1_t1 LeNet layers": r"\b(2,?432|51,?264|204,?928|131,?136)\b",
    "a1_t1 seed-004 features": r"\b4\s*[x*]\s*4\s*[x*]\s*32\b|\b28\s*->\s*24\s*->\s*20\b",
    # With its result: `nn.Linear(128 * 4 * 4, 64)` in a given network is an input.
    "a1_t1 LeNet flattened features": r"\b(128\s*[x*]\s*4\s*[x*]\s*4|4\s*[x*]\s*4\s*[x*]\s*128)"
    r"\s*=\s*2,?048\b",
    "a2_t1 CIFAR-10 statistics": r"0\.(4914|4822|4465|2470|2435|2616)\b",
    "a3_t1 trainable head": r"\b5,?130\b",
}
# The size formulas a1_t1 asks for, with spaces removed and lower-cased.
GRADED_FORMULAS = [
    "(w-f+2*p)//s+1",
    "(w-f+2p)/s+1",
    "(w-f+2*p)/s+1",
    "(w-f)//s+1",
    "(w-f)/s+1",
    "(f-1)//2",
    "(f-1)/2",
    "\\frac{f-1}{2}",
    "w_in+2*p-(w_out-1)*s",
    "w_in+2p-(w_out-1)s",
    "w+2*p-(w_out-1)*s",
]


def normalise(line: str) -> str:
    return " ".join(line.split())


def one_spelling(text: str) -> str:
    """``text`` with SPELLINGS' symbols replaced: "4 · 4 · 32" reads "4 * 4 * 32"."""
    for symbol, plain in SPELLINGS.items():
        text = text.replace(symbol, plain)
    return text


def is_answer(line: str, code: bool) -> bool:
    """Whether a normalised solution line can give an answer away on its own.

    Short lines and bare calls are idioms. In code, a block header (``if module.bias is not None:``)
    is structure, and a line with unbalanced brackets is the tail or head of a longer
    statement (``device=run.device, progress=False)``): both also occur in any code.
    """
    if len(line) < MIN_SECRET_LENGTH:
        return False
    if not code:
        return True
    if BARE_CALL.fullmatch(line):
        return False
    balanced = all(line.count(a) == line.count(b) for a, b in ("()", "[]", "{}"))
    return balanced and not line.endswith(":")


def solution_lines(nb: nbformat.NotebookNode) -> set[str]:
    """Normalised lines inside the solution regions (code and markdown), hidden-test
    cells and rubrics of ``nb`` that appear nowhere outside them and can give an answer
    away (:func:`is_answer`)."""
    inside: set[tuple[str, bool]] = set()
    outside: set[str] = set()
    for cell in nb.cells:
        # A written answer's rubric says what earns its points.
        for item in cell.metadata.get("course", {}).get("rubric", []):
            inside.add((normalise(item["description"]), False))
        # A hidden test is the grader's secret as a whole: its cases and expected values.
        in_solution = is_hidden_test(cell)
        for line in cell.source.splitlines():
            text = normalise(line)
            if text.startswith(SOLUTION_BEGIN):
                in_solution = True
            elif text.startswith(SOLUTION_END):
                in_solution = False
            elif in_solution:
                inside.add((text, cell.cell_type == "code"))
            else:
                outside.add(text)
    return {line for line, code in inside if line not in outside and is_answer(line, code)}


def strings(value: object) -> Iterable[str]:
    """Every string anywhere in parsed JSON (sources, outputs, metadata)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)


def text_files(folder: Path) -> dict[Path, str]:
    """Every text file under ``folder``; notebooks as the text of all their strings."""
    texts = {}
    for path in sorted(folder.rglob("*")):
        if not path.is_file() or "__pycache__" in path.parts:
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue  # binary files hold no source lines
        if path.suffix == ".ipynb":
            text = "\n".join(strings(json.loads(text)))
        texts[path] = text
    return texts


def leaked_lines(texts: dict[Path, str], secrets: dict[str, set[str]]) -> list[str]:
    """``"file: line (notebook)"`` for each secret line found in a text."""
    found = []
    for path, text in texts.items():
        lines = {normalise(line) for line in text.splitlines()}
        for notebook, secret in secrets.items():
            found += [f"{path.name}: {line!r} (from {notebook})" for line in secret & lines]
    return found


def graded_values_in(text: str) -> list[str]:
    """The names of the graded values and formulas that ``text`` gives away."""
    flat = normalise(one_spelling(text))
    found = [name for name, pattern in GRADED_VALUES.items() if re.search(pattern, flat)]
    squashed = "".join(flat.split()).lower()
    return found + [f"formula {formula}" for formula in GRADED_FORMULAS if formula in squashed]


@pytest.fixture(scope="module")
def secrets() -> dict[str, set[str]]:
    found = {
        path.name: solution_lines(nbformat.read(path, as_version=4))
        for path in sorted(NOTEBOOKS.glob("*.ipynb"))
    }
    assert all(found.values()), [name for name, lines in found.items() if not lines]
    return found


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("leaks") / "student"
    build_release(NOTEBOOKS, out)
    return out


def test_no_solution_line_anywhere_in_the_release(release: Path, secrets) -> None:
    texts = text_files(release)
    assert any(path.suffix == ".py" for path in texts) and any(
        path.suffix == ".ipynb" for path in texts
    )
    assert not leaked_lines(texts, secrets)


def test_no_solution_line_in_the_helper_package(secrets) -> None:
    # Whatever the release ships, the package's own files must hold no answer.
    assert not leaked_lines(text_files(PACKAGE), secrets)


def test_no_graded_value_in_package_code_or_docstrings() -> None:
    found = {
        str(path.relative_to(ROOT)): graded_values_in(text)
        for path, text in text_files(PACKAGE).items()
    }
    assert not {path: names for path, names in found.items() if names}


def test_no_graded_value_anywhere_in_the_release(release: Path) -> None:
    # Every notebook's text too: a graded value of any notebook in any notebook is a leak.
    found = {
        str(path.relative_to(release)): graded_values_in(text)
        for path, text in text_files(release).items()
    }
    assert not {path: names for path, names in found.items() if names}


# --- check messages ------------------------------------------------------------------


def lenet() -> nn.Module:
    """The a1_t1 model, whose counts are graded."""
    return nn.Sequential(
        nn.Conv2d(3, 32, 5, padding=2),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 5, padding=2),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(64, 128, 5, padding=2),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(2048, 64),
        nn.ReLU(),
        nn.Linear(64, 10),
    )


def seed004() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 64, 5),
        nn.ELU(),
        nn.Conv2d(64, 32, 5),
        nn.ELU(),
        nn.MaxPool2d(2),
        nn.Conv2d(32, 32, 3),
        nn.ELU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
    )


def unflipped(image, kernel, padding):
    x = torch.tensor(image, dtype=torch.float64)[None, None]
    return torch.nn.functional.conv2d(
        x, torch.tensor(kernel, dtype=torch.float64)[None, None], padding=padding
    )[0, 0]


def images() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, size=(8, 3, 6, 5), dtype=np.uint8)


def no_step_loop(model, loader, optimizer, loss_fn):
    losses = []
    for x, y in loader:
        optimizer.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        losses.append(loss.item())
    return losses


WRONG_ANSWERS: list[tuple[Callable[..., None], tuple]] = [
    (checks.check_convolution, (unflipped,)),
    (checks.check_convolution, (lambda im, k, p: unflipped(im, k[::-1, ::-1].copy(), p) + 1,)),
    (checks.check_convolution, (lambda im, k, p: unflipped(im, k[::-1, ::-1].copy(), 0),)),
    (checks.check_cross_correlation, (lambda im, k, p: unflipped(im, k[::-1, ::-1].copy(), p),)),
    (checks.check_output_size, (lambda W, F, S, P: (W - F + 2 * P) // S,)),
    (checks.check_output_size, (lambda W, F, S, P: "5",)),
    (checks.check_pool_output_size, (lambda W, F, S: W // F - 1,)),
    (checks.check_same_padding, (lambda F: F,)),
    (checks.check_filter_size, (lambda W_in, W_out, S, P: W_in - W_out,)),
    (checks.check_parameter_count, (390_000, lenet())),
    (
        checks.check_parameter_count,
        ({"0": 2400, "3": 51_200, "6": 204_800, "10": 131_072, "12": 640}, lenet()),
    ),
    (checks.check_parameter_count, (None, lenet())),
    (checks.check_parameter_count, ([1, 2], lenet())),
    (checks.check_parameter_formulas, (lambda F, ci, co: F * ci * co, lambda ni, no: ni * no)),
    (checks.check_flattened_features, (500, seed004(), (3, 28, 28))),
    (checks.check_flattened_features, (512, seed004(), (3, 28, 28), [24, 20, 10, 8, 5])),
    (checks.check_channel_stats, ([0.5, 0.5, 0.5], [0.25, 0.25, 0.25], images())),
    (checks.check_channel_stats, (None, [0.25] * 3, images())),
    (checks.check_training_loop, (no_step_loop,)),
    (checks.check_grad_cam, (lambda activations, gradients: activations.sum(dim=0),)),
]


def check_messages() -> list[str]:
    """What the checks say to typical wrong answers."""
    messages = []
    for check, args in WRONG_ANSWERS:
        with pytest.raises(CheckFailed) as failure:
            check(*args)
        messages.append(str(failure.value))
    return messages


def test_check_messages_give_no_graded_value() -> None:
    found = {message: graded_values_in(message) for message in check_messages()}
    assert not {message: names for message, names in found.items() if names}


def test_pass_lines_give_no_graded_value(capsys) -> None:
    checks.check_parameter_count(390_410, lenet())
    checks.check_flattened_features(512, seed004(), (3, 28, 28), [24, 20, 10, 8, 4])
    out = capsys.readouterr().out
    assert out.count("PASS") == 2 and not graded_values_in(out)


# --- the scans find a planted leak ---------------------------------------------------


def test_a_planted_solution_line_is_found(tmp_path: Path, secrets) -> None:
    notebook, lines = next(iter(secrets.items()))
    planted = sorted(lines)[0]
    (tmp_path / "helper.py").write_text(f'"""Docstring.\n\n    {planted}\n"""\n')
    (tmp_path / "notes.ipynb").write_text(json.dumps({"cells": [{"source": [planted]}]}))
    found = leaked_lines(text_files(tmp_path), {notebook: lines})
    assert [entry.split(":")[0] for entry in found] == ["helper.py", "notes.ipynb"]


def test_idioms_are_no_secret() -> None:
    source = (
        f"{SOLUTION_BEGIN}\nconfig.seed_everything(seed)\nif module.bias is not None:\n"
        f"    out[i, j] = (window * flipped).sum()\n{SOLUTION_END}"
    )
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source)])
    assert solution_lines(nb) == {"out[i, j] = (window * flipped).sum()"}


def test_hidden_test_lines_are_secrets() -> None:
    check = "assert student.widths == [24, 20, 10, 8, 4], 'widths'"
    cell = nbformat.v4.new_code_cell(check, metadata={"tags": ["hidden-test"]})
    assert solution_lines(nbformat.v4.new_notebook(cells=[cell])) == {check}


def test_markdown_solution_lines_are_secrets_too() -> None:
    answer = "Pooling buys tolerance to small shifts."
    source = f"**Answer.**\n{SOLUTION_BEGIN}\n{answer}\n{SOLUTION_END}"
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(source)])
    assert solution_lines(nb) == {answer}


@pytest.mark.parametrize(
    "text, name",
    [
        ("[[ -2   1 -11   2  13]", "a1_t1 convolution, row 1"),
        ("total: 390,410", "a1_t1 LeNet total"),
        ("512 -> 504 with S = 1, P = 0 needs F = 9", "a1_t1 filter size"),
        ("use (W - F + 2P) / S + 1", "formula (w-f+2p)/s+1"),
        ("return (F - 1) // 2", "formula (f-1)//2"),
        # The cross-notebook leaks of issue 20, as the notebooks wrote them.
        ("10 outputs (390,410 parameters). Every", "a1_t1 LeNet total"),
        ("sizes go 28 → 24 → 20 → (pool) 10 → 8 → (pool) 4", "a1_t1 seed-004 features"),
        ("4 · 4 · 32 = 512 features.", "a1_t1 seed-004 features"),
        ("Network 1's (128·4·4 = 2,048).", "a1_t1 LeNet flattened features"),
        ('"same" padding $P = (F-1)/2$ so only', "formula (f-1)/2"),
        ("P = (F−1)/2", "formula (f-1)/2"),
        ("$P = \\frac{F - 1}{2}$", "formula \\frac{f-1}{2}"),
        ("$4 \\times 4 \\times 32$", "a1_t1 seed-004 features"),
    ],
)
def test_a_planted_graded_value_is_found(text: str, name: str) -> None:
    assert name in graded_values_in(text)


@pytest.mark.parametrize(
    "text",
    [
        "a 28×28 grey image, 1 channel",
        "- `widths`: output channels per block, e.g. `(32, 64, 128)`",
        "nn.Conv2d(3, 32, 5, padding=2), nn.MaxPool2d(2)",
        "fc 128 -> activation [-> dropout] -> fc 10",
        "a 4×4 max pool and 32 filters",
    ],
)
def test_inputs_of_a_task_are_no_graded_value(text: str) -> None:
    assert not graded_values_in(text)


def test_the_release_scan_reads_every_notebooks_text(tmp_path: Path) -> None:
    # A leak in a markdown cell of one notebook is found in the release's notebook files.
    leaky = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_markdown_cell("The LeNet of Assignment 1 (390,410 parameters).")]
    )
    nbformat.write(leaky, tmp_path / "a2_t2.ipynb")
    (text,) = text_files(tmp_path).values()
    assert graded_values_in(text) == ["a1_t1 LeNet total"]


def test_a_planted_value_in_a_check_message_is_found(monkeypatch) -> None:
    from course_utils.checks import parameters

    monkeypatch.setattr(parameters, "_layer_hint", lambda got, module: "expected 2,432.")
    assert any("a1_t1 LeNet layers" in graded_values_in(m) for m in check_messages())
