"""The hidden tests of the solution notebooks pass for the solutions and fail for wrong
and memorising answers.

Each hidden test's source runs as the grader runs it (a namespace with ``checks``, ``np``,
``torch``, a fresh ``rng``, ``student`` and ``submission_code``), without the sandbox: the
``student`` is the grader's own proxy, talking to an in-process namespace built from the
solution notebook's definitions (its imports, and every statement of its solution cells
that runs without the course's data) instead of a kernel.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import nbformat
import numpy as np
import pytest
import torch

from course_utils import checks
from course_utils.checks import convolution, sizes
from course_utils.instructor.verify.proxy import Channel, Student
from course_utils.instructor.verify.remote import serve

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
SOLUTION = "### BEGIN SOLUTION"


def hidden_tests() -> list[tuple[str, str, str]]:
    """(notebook, cell id, source) of every hidden-test cell."""
    found = []
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            if "hidden-test" in cell.metadata.get("tags", []):
                found.append((path.name, cell.id, cell.source))
    return found


def submission_code(notebook: str, replace: dict[str, str] | None = None) -> str:
    """The code of every code cell of ``notebook`` (no hidden tests), with ``replace``'s
    sources appended, as a later cell that redefines a function would be."""
    nb = nbformat.read(NOTEBOOKS / notebook, as_version=4)
    cells = [
        c.source
        for c in nb.cells
        if c.cell_type == "code" and "hidden-test" not in c.metadata.get("tags", [])
    ]
    return "\n\n".join(cells + list((replace or {}).values()))


_NAMESPACES: dict[str, dict[str, Any]] = {}

# What a notebook's solution cells read from its earlier cells that need the course's
# data: the quick profile's settings, as stand-ins.
PREAMBLES = {
    "a2_t4_hyperparameter_sweeps.ipynb": (
        "run = SimpleNamespace(profile=SimpleNamespace(name='quick'))"
    ),
    "a4_t2_unet_segmentation.ipynb": "settings = SimpleNamespace(depth=3, width=8)",
}


def solution_namespace(notebook: str) -> dict[str, Any]:
    """The notebook's imports and what its solution cells define, each statement run on
    its own (one that needs the course's data fails and is skipped)."""
    if notebook not in _NAMESPACES:
        import ast

        namespace: dict[str, Any] = {"SimpleNamespace": SimpleNamespace}
        exec(PREAMBLES.get(notebook, ""), namespace)
        nb = nbformat.read(NOTEBOOKS / notebook, as_version=4)
        for cell in nb.cells:
            if cell.cell_type != "code" or "hidden-test" in cell.metadata.get("tags", []):
                continue
            try:
                tree = ast.parse(cell.source)
            except SyntaxError:
                continue
            for statement in tree.body:
                wanted = isinstance(statement, (ast.Import, ast.ImportFrom)) or (
                    SOLUTION in cell.source
                    and isinstance(
                        statement, (ast.FunctionDef, ast.ClassDef, ast.Assign, ast.Expr, ast.If)
                    )
                )
                if not wanted:
                    continue
                try:
                    exec(compile(ast.Module([statement], []), notebook, "exec"), namespace)
                except Exception:  # needs the course's data or an earlier result
                    continue
        _NAMESPACES[notebook] = namespace
    return _NAMESPACES[notebook]


def run_hidden(notebook: str, source: str, namespace: dict[str, Any], code: str, seed: int) -> None:
    """Run a hidden test's source as the grader does; raise what it raises."""
    student = Student(Channel(lambda payload: serve(namespace, json.dumps(payload))))
    scope = {
        "checks": checks,
        "np": np,
        "torch": torch,
        "rng": np.random.default_rng(seed),
        "student": student,
        "submission_code": code,
    }
    exec(compile(source, f"<hidden test of {notebook}>", "exec"), scope)


HIDDEN = hidden_tests()


def test_every_notebook_with_a_solution_has_hidden_tests():
    with_solutions = {
        p.name for p in NOTEBOOKS.glob("*.ipynb") if SOLUTION in p.read_text(encoding="utf-8")
    }
    with_hidden = {notebook for notebook, _, _ in HIDDEN}
    assert with_solutions == with_hidden


def test_hidden_tests_carry_points_and_a_public_name():
    for notebook in sorted(NOTEBOOKS.glob("*.ipynb")):
        for cell in nbformat.read(notebook, as_version=4).cells:
            if "hidden-test" in cell.metadata.get("tags", []):
                course = cell.metadata["course"]
                assert course["points"] > 0 and course["name"].strip(), cell.id
                assert not cell.get("outputs"), cell.id


@pytest.mark.parametrize(
    "notebook, cell_id, source", HIDDEN, ids=[cell_id for _, cell_id, _ in HIDDEN]
)
@pytest.mark.parametrize("seed", [0, 1])
def test_the_solution_passes_every_hidden_test(notebook, cell_id, source, seed):
    run_hidden(notebook, source, solution_namespace(notebook), submission_code(notebook), seed)


def memorised(answers: dict, fallback: Any) -> Any:
    """A function that answers the visible cases from a table, anything else wrongly."""

    def lookup(*args: Any) -> Any:
        key = tuple(a.tobytes() if isinstance(a, np.ndarray) else a for a in args)
        return answers[key] if key in answers else fallback(*args)

    return lookup


def conv_table(flip: bool) -> dict:
    return {
        (c.image.tobytes(), c.kernel.tobytes(), c.padding): convolution._oracle(c, flip)
        for c in convolution._cases()
    }


BY_LIBRARY = """
def convolve2d(image, kernel, padding):
    x = torch.as_tensor(image, dtype=torch.float64)[None, None]
    w = torch.as_tensor(kernel, dtype=torch.float64).flip(0, 1)[None, None]
    return getattr(F, "conv2d")(x, w, padding=padding)[0, 0].numpy()
"""

# (hidden test, what replaces the solution in the student's namespace, extra source for
# submission_code): each must fail.
WRONG = [
    (
        "hidden-a1t1-convolve2d",
        {"convolve2d": memorised(conv_table(True), lambda im, k, p: np.zeros((1, 1)))},
        {},
    ),
    ("hidden-a1t1-convolve2d", {}, {"convolve2d": BY_LIBRARY}),
    (
        "hidden-a1t1-cross-correlate2d",
        {"cross_correlate2d": memorised(conv_table(False), lambda im, k, p: np.zeros((1, 1)))},
        {},
    ),
    (
        "hidden-a1t1-output-sizes",
        {
            "conv_output_size": memorised(
                {c: sizes.conv_width(*c) for c in sizes._conv_cases()}, lambda *a: 1
            )
        },
        {},
    ),
    (
        "hidden-a1t1-rearranged-sizes",
        {"same_padding": memorised({f: (f - 1) // 2 for f in (1, 3, 5, 7, 9, 11)}, lambda f: 0)},
        {},
    ),
    ("hidden-a1t1-parameters", {"linear_params": lambda n_in, n_out: n_in * n_out}, {}),
    ("hidden-a1t1-parameters", {"params_by_hand": {"features.0": 1, "features.3": 2}}, {}),
    ("hidden-a1t1-widths", {"features": 511}, {}),
    (
        "hidden-a1t1-relative-change",
        {"relative_change": lambda a, b: (b - a).norm() / a.norm()},
        {},
    ),
    (
        "hidden-a2t1-channel-stats",
        {
            "channel_mean_std": lambda x: (
                x.double().mean(dim=(0, 2, 3)),
                x.double().std(dim=(0, 2, 3)),
            )
        },
        {},
    ),
    (
        "hidden-a2t1-split-loaders",
        {
            "split_loaders": lambda d, n_train, n_val, seed, batch_size=64: (
                torch.utils.data.DataLoader(d[:n_train], batch_size=batch_size),
                torch.utils.data.DataLoader(d[n_train : n_train + n_val], batch_size=batch_size),
            )
        },
        {},
    ),
    (
        "hidden-a3t1-count-trainable",
        {"count_trainable": lambda m: sum(p.numel() for p in m.parameters())},
        {},
    ),
    (
        "hidden-a3t2-grad-cam",
        {"grad_cam_map": lambda a, g: (g.mean(dim=(1, 2))[:, None, None] * a).sum(dim=0)},
        {},
    ),
]


def no_zero_grad(model, loader, optimizer, loss_fn):
    model.train()
    losses = []
    for x, y in loader:
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


WRONG.append(("hidden-a2t2-train-one-epoch", {"train_one_epoch": no_zero_grad}, {}))
A2T3 = "a2_t3_improving_the_network.ipynb"
WRONG += [
    (
        "hidden-a2t3-two-networks",
        {"NETWORK_2": {**solution_namespace(A2T3)["NETWORK_2"], "dropout": 0.0}},
        {},
    ),
    ("hidden-a2t4-grid", {"grid": [{"momentum": 0.9, "batch_size": 32, "lr": 0.01}]}, {}),
    (
        "hidden-a4t2-variants",
        {
            "VARIANTS": {
                f"{u} + {a}": {"upsampling": u, "activation": "relu"}
                for u in ("transpose", "nearest")
                for a in ("ReLU", "ELU")
            }
        },
        {},
    ),
]


def wrong_network(notebook: str, name: str, change: str) -> dict[str, Any]:
    """The solution's class ``name`` with every ``old`` of ``change`` made ``new``."""
    old, new = change.split(" => ")
    for cell in nbformat.read(NOTEBOOKS / notebook, as_version=4).cells:
        if f"class {name}(" in cell.source and "hidden-test" not in cell.metadata.get("tags", []):
            source = cell.source[cell.source.index(f"class {name}(") :]
            assert old in source
            scope = dict(solution_namespace(notebook))
            exec(source.replace(old, new), scope)
            return {name: scope[name]}
    raise AssertionError(name)


NETWORK_CHANGES = [
    ("a1_t2_mnist_cnn.ipynb", "hidden-a1t2-digitcnn", "DigitCNN", "stride=stride => stride=1"),
    (
        "a2_t2_baseline_and_training_loop.ipynb",
        "hidden-a2t2-lenet",
        "LeNet",
        "nn.Linear(64, num_classes) => nn.Linear(64, 10)",
    ),
    (
        "a2_t2_baseline_and_training_loop.ipynb",
        "hidden-a2t2-vgglike",
        "VGGLike",
        "nn.Dropout(dropout) => nn.Identity()",
    ),
    (
        "a2_t3_improving_the_network.ipynb",
        "hidden-a2t3-cifarnet",
        "CifarNet",
        "bias=not batch_norm)) => bias=True))",
    ),
    (
        "a2_t4_hyperparameter_sweeps.ipynb",
        "hidden-a2t4-sweepnet",
        "SweepNet",
        "nn.Linear(hidden, num_classes) => nn.Linear(512, num_classes)",
    ),
    (
        "a4_t1_batch_norm_and_optimisers.ipynb",
        "hidden-a4t1-cardnet",
        "CardNet",
        "*block(width, 32, 5) => *block(width, 32, 3)",
    ),
]


def hidden(cell_id: str) -> tuple[str, str]:
    return next((notebook, source) for notebook, i, source in HIDDEN if i == cell_id)


@pytest.mark.parametrize(
    "cell_id, replace, added", WRONG, ids=[f"{w[0]}-{i}" for i, w in enumerate(WRONG)]
)
def test_wrong_and_memorised_answers_fail(cell_id, replace, added):
    notebook, source = hidden(cell_id)
    namespace = {**solution_namespace(notebook), **replace}
    for code in added.values():
        exec(code, namespace)
    with pytest.raises((AssertionError, Exception)):
        run_hidden(notebook, source, namespace, submission_code(notebook, added), seed=3)


@pytest.mark.parametrize(
    "notebook, cell_id, name, change", NETWORK_CHANGES, ids=[c[1] for c in NETWORK_CHANGES]
)
def test_wrong_networks_fail(notebook, cell_id, name, change):
    _, source = hidden(cell_id)
    namespace = {**solution_namespace(notebook), **wrong_network(notebook, name, change)}
    with pytest.raises(AssertionError):
        run_hidden(notebook, source, namespace, submission_code(notebook), seed=3)


def test_every_hidden_test_has_an_answer_here_that_must_fail_it():
    failing = {cell_id for cell_id, _, _ in WRONG} | {c[1] for c in NETWORK_CHANGES}
    assert failing == {cell_id for _, cell_id, _ in HIDDEN}
