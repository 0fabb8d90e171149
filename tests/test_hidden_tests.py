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
import textwrap
import zlib
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import nbformat
import numpy as np
import pandas as pd
import pytest
import torch

from course_utils import checks, sweep, train
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
    "a4_t2_unet_segmentation.ipynb": "settings = SimpleNamespace(depth=3, width=8, patience=1)",
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
        if notebook in RESULTS:
            RESULTS[notebook](namespace)
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


# --- Stand-ins for what a notebook's training produced ----------------------------------
# The hidden tests of experiments read the student's results (runs, histories, tables) and
# recompute what follows from them. Here the results are stand-ins drawn at random, with
# the fields and the early-stopping rule of the real ones, and the notebook's own cells
# (solution regions, and the cells around them that they need) run on them.


def solution_region(notebook: str, cell_id: str) -> str:
    """The code between a cell's solution markers (its first region), dedented."""
    source = notebook_cell(notebook, cell_id).source
    region = source.split(SOLUTION, 1)[1].split("### END SOLUTION", 1)[0]
    return textwrap.dedent(region.split("\n", 1)[1])


def notebook_cell(notebook: str, cell_id: str) -> Any:
    cells = nbformat.read(NOTEBOOKS / notebook, as_version=4).cells
    return next(cell for cell in cells if cell.get("id") == cell_id)


def run_cells(notebook: str, namespace: dict[str, Any], *cells: str, whole: bool = False) -> None:
    """Run cells of ``notebook`` (their solution regions, or the whole cells) in ``namespace``."""
    for cell_id in cells:
        source = (
            notebook_cell(notebook, cell_id).source if whole else solution_region(notebook, cell_id)
        )
        exec(compile(source, f"{notebook}:{cell_id}", "exec"), namespace)


def run_assignments(notebook: str, cell_id: str, names: set[str], namespace: dict) -> None:
    """Run only the statements of a cell that assign ``names`` (constants it defines)."""
    import ast

    for statement in ast.parse(notebook_cell(notebook, cell_id).source).body:
        if (
            isinstance(statement, ast.Assign)
            and {t.id for t in statement.targets if isinstance(t, ast.Name)} & names
        ):
            exec(compile(ast.Module([statement], []), notebook, "exec"), namespace)


def kept_epoch(history: list[dict[str, float]]) -> int:
    """The epoch ``train.fit`` keeps: the lowest validation loss (stand-ins have no NaN)."""
    return 1 + int(np.argmin([record["val_loss"] for record in history]))


def stand_in_history(rng: np.random.Generator, epochs: int) -> list[dict[str, float]]:
    return [
        {
            "epoch": epoch,
            "train_loss": float(rng.uniform(0.2, 2.5)),
            "train_acc": float(rng.uniform()),
            "val_loss": float(rng.uniform(0.3, 2.5)),
            "val_acc": float(rng.uniform()),
            "val_f1": float(rng.uniform()),
            "seconds": 1.0,
        }
        for epoch in range(1, epochs + 1)
    ]


def stand_in_result(config: dict, seed: int, epochs: int, budgets: tuple[int, ...]) -> dict:
    """What one training run returns, in every notebook's fields, drawn for (config, seed)."""
    rng = np.random.default_rng(zlib.crc32(repr((sorted(config.items()), seed)).encode()))
    history = stand_in_history(rng, int(rng.integers(2, epochs + 1)))
    best = history[kept_epoch(history) - 1]
    return {
        "val_acc": 100 * best["val_acc"],
        "val_loss": best["val_loss"],
        "train_acc": float(rng.uniform(0, 100)),
        "best_epoch": kept_epoch(history),
        "epochs_trained": len(history),
        "epochs_run": len(history),
        "test_acc": float(rng.uniform(0, 100)),
        "test_loss": float(rng.uniform(0.3, 2.5)),
        **{f"test_{m}_{b}ep": float(rng.uniform()) for b in budgets for m in ("f1", "iou")},
        "history": history,
    }


def stand_in_sweep(
    configs: list[dict],
    seeds: list[int],
    metric: str = "val_acc",
    epochs: int = 5,
    budgets: tuple[int, ...] = (),
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``sweep.run_sweep(..., return_runs=True)``'s table and runs, from stand-in runs."""
    rows = [
        {**config, "seed": seed, **stand_in_result(config, seed, epochs, budgets), "cached": False}
        for config in configs
        for seed in seeds
    ]
    runs = pd.DataFrame(rows)
    return sweep.summarize_runs(runs, metric), runs


NO_FINDINGS = SimpleNamespace(finding=lambda *args, **kwargs: None)
CPU = SimpleNamespace(device="cpu", seed=0)


def tiny_classifier(frozen: bool) -> torch.nn.Module:
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3, stride=4),
        torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(),
        torch.nn.Linear(4, 10),
    )
    model[0].requires_grad_(not frozen)
    return model


def a1_t2_results(ns: dict[str, Any]) -> None:
    history = stand_in_history(np.random.default_rng(0), 6)
    ns.update(
        history=train.History(epochs=history, best_epoch=kept_epoch(history)),
        model=ns["DigitCNN"](),
        test_result={"loss": 0.4, "acc": 0.9},
    )


def a2_t3_results(ns: dict[str, Any]) -> None:
    networks = [
        {"network": name, **ns[settings], "train_images": 100, "epochs": 5}
        for name, settings in (("network 1", "NETWORK_1"), ("network 2", "NETWORK_2"))
    ]
    ns["network_table"], ns["network_runs"] = stand_in_sweep(networks, seeds=[0, 1])
    run_cells(A2T3, ns, "h17a-t3-best")
    ns["budget"] = SimpleNamespace(ablation_images=100, ablation_epochs=5)
    ns["SEEDS"], ns["REGULARISER_SEEDS"] = [0], [0, 1, 2]
    run_cells(A2T3, ns, "991eb8cc", whole=True)
    ns["runs"] = stand_in_sweep(ns["configs"], seeds=[0, 1, 2])[1]
    run_cells(A2T3, ns, "48b47330")


def a2_t4_results(ns: dict[str, Any]) -> None:
    ns["table"], ns["runs"] = stand_in_sweep(ns["grid"], seeds=[0, 1, 2])
    run_cells(A2T4, ns, "238ba4c0", "1bc8ae77", "5bf6edd1")


def a3_t1_results(ns: dict[str, Any]) -> None:
    from dataclasses import replace

    from course_utils import config, data

    ns.update(
        run=CPU, findings=NO_FINDINGS, SEED=0, BATCH_SIZE=16, INPUT_SIZE=40, EPOCHS=3,
        PATIENCE=2, LEARNING_RATE=5e-4, NETWORK="ResNet18 (stand-in)", DATA_NAME="stand-in",
        weights=SimpleNamespace(pretrained=False), cifar=data.synthetic_cifar10(120, 40),
        profile=replace(config.PROFILES["smoke"], train_size=64, val_size=32, test_size=32),
    )  # fmt: skip
    run_cells(A3T1, ns, "2bf4423e")
    torch.manual_seed(0)
    ns["model"] = tiny_classifier(frozen=True)
    run_cells(A3T1, ns, "c23256a2")
    history = stand_in_history(np.random.default_rng(1), 4)
    ns["a2"] = {"epochs": history, "best_epoch": kept_epoch(history), "test": {"acc": 0.6}}
    ns["curves"] = {
        ns["NETWORK"]: ns["history"].to_frame(),
        "best of Assignment 2": pd.DataFrame(history),
    }
    run_cells(A3T1, ns, "4045d183", "566c70c1")


def a3_t2_results(ns: dict[str, Any]) -> None:
    generator = torch.Generator().manual_seed(0)
    ns.update(
        run=CPU,
        INPUT_SIZE=36,
        photo=torch.randint(0, 256, (3, 50, 70), dtype=torch.uint8, generator=generator),
        model=tiny_classifier(frozen=False).eval(),
        conv1_maps=torch.randn(16, 9, 9, generator=generator),
        last_maps=torch.randn(12, 3, 3, generator=generator).relu(),
    )
    run_cells(A3T2, ns, "c7108717", "66f34a6c", "3bf72619")


def a4_t1_results(ns: dict[str, Any]) -> None:
    from course_utils import data

    run_assignments(A4T1, "0c7d383a", {"GRID", "NAMES"}, ns)
    ns.update(EPOCHS=5, SEEDS=[0, 1, 2], run=CPU, findings=NO_FINDINGS,
              cifar=data.synthetic_cifar10(20, 10))  # fmt: skip
    configs = sweep.expand_grid(ns["GRID"])
    ns["table"], ns["runs"] = stand_in_sweep(configs, ns["SEEDS"], "test_acc", ns["EPOCHS"])
    run_cells(A4T1, ns, "36d1cff8", "2a9f7136", "1763ad32", "a860d74a", whole=True)


def a4_t2_results(ns: dict[str, Any]) -> None:
    images = torch.randn(16, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    masks = (images[:, :1] > 0).float()
    part = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(images, masks), 8)
    ns.update(BUDGETS=(2, 4), SEEDS=[0, 1, 2], SEED=0, run=CPU, findings=NO_FINDINGS,
              loaders=SimpleNamespace(train=part, val=part, test=part))  # fmt: skip
    variants = [{"variant": name} for name in ns["VARIANTS"]]
    ns["runs"] = stand_in_sweep(variants, ns["SEEDS"], "test_f1_4ep", 4, ns["BUDGETS"])[1]
    run_cells(A4T2, ns, "a22c913b", "7066b62c", whole=True)
    run_cells(A4T2, ns, "d60b06fe", "de20c62a")


A2T3, A2T4 = "a2_t3_improving_the_network.ipynb", "a2_t4_hyperparameter_sweeps.ipynb"
A3T1, A3T2 = "a3_t1_resnet18_transfer.ipynb", "a3_t2_what_a_cnn_sees.ipynb"
A4T1, A4T2 = "a4_t1_batch_norm_and_optimisers.ipynb", "a4_t2_unet_segmentation.ipynb"
RESULTS = {
    "a1_t2_mnist_cnn.ipynb": a1_t2_results,
    A2T3: a2_t3_results,
    A2T4: a2_t4_results,
    A3T1: a3_t1_results,
    A3T2: a3_t2_results,
    A4T1: a4_t1_results,
    A4T2: a4_t2_results,
}


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


def coverage_problems(nb: nbformat.NotebookNode) -> list[str]:
    """What is wrong with a notebook's hidden-test coverage: each code cell with a solution
    region (a coding task; a markdown one is a written answer, graded by its rubric) must be
    named in ``metadata.course.covers`` of a hidden test placed after it, and every name
    there must be such a cell.

    >>> cells = [nbformat.v4.new_code_cell("x = 1  # ### BEGIN SOLUTION")]
    >>> cells[0].id = "task"
    >>> coverage_problems(nbformat.v4.new_notebook(cells=cells))
    ['task: no hidden test covers it']
    """
    tasks = {
        cell.id: index
        for index, cell in enumerate(nb.cells)
        if cell.cell_type == "code"
        and SOLUTION in cell.source
        and "hidden-test" not in cell.metadata.get("tags", [])
    }
    problems, covered = [], set()
    for index, cell in enumerate(nb.cells):
        if "hidden-test" not in cell.metadata.get("tags", []):
            continue
        for task in cell.metadata.get("course", {}).get("covers", []):
            if task not in tasks:
                problems.append(f"{cell.id}: covers {task!r}, not a cell with a solution")
            elif tasks[task] > index:
                problems.append(f"{cell.id}: covers {task!r}, which runs after it")
            covered.add(task)
    return problems + [f"{task}: no hidden test covers it" for task in tasks if task not in covered]


@pytest.mark.parametrize("path", sorted(NOTEBOOKS.glob("*.ipynb")), ids=lambda p: p.stem)
def test_every_coding_task_has_a_hidden_test(path):
    assert coverage_problems(nbformat.read(path, as_version=4)) == []


def test_coverage_problems_names_a_stale_or_misplaced_cover():
    task = nbformat.v4.new_code_cell(f"x = 1\n{SOLUTION}")
    early = nbformat.v4.new_code_cell(
        "", metadata={"tags": ["hidden-test"], "course": {"covers": ["task"]}}
    )
    stale = nbformat.v4.new_code_cell(
        "", metadata={"tags": ["hidden-test"], "course": {"covers": ["gone"]}}
    )
    task.id, early.id, stale.id = "task", "early", "stale"
    problems = coverage_problems(nbformat.v4.new_notebook(cells=[early, task, stale]))
    assert problems == [
        "early: covers 'task', which runs after it",
        "stale: covers 'gone', not a cell with a solution",
    ]


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
CONSTANT_CLAIMS = [
    'findings.finding(run, "batch norm helps", holds=True, evidence=f"{len(SEEDS)} seeds")',
    'findings.finding(run, "ELU leaves the plateau sooner", holds=ok, evidence="the table")',
]
WRONG += [
    (cell_id, {"ok": True}, {"claim": claim})
    for cell_id in ("hidden-a4t1-findings", "hidden-a4t2-findings")
    for claim in CONSTANT_CLAIMS
]
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


# --- Wrong results for the hidden tests of experiments ----------------------------------
# Each builds, from the solution's stand-in namespace, what a typical mistake would have
# left in the student's notebook; the hidden test must fail it by its own check.


def other_kept_epoch(ns: dict[str, Any]) -> dict[str, Any]:
    """The model kept the weights of another epoch than the lowest validation loss."""
    history = ns["history"]
    epochs = list(history.epochs)
    return {
        "history": train.History(epochs=epochs, best_epoch=history.best_epoch % len(epochs) + 1)
    }


def last_epoch_scores(runs: pd.DataFrame) -> pd.DataFrame:
    """Runs that report their last epoch's validation accuracy, not the kept epoch's."""
    return runs.assign(val_acc=[100 * history[-1]["val_acc"] for history in runs["history"]])


def other_network(ns: dict[str, Any]) -> dict[str, Any]:
    names = set(ns["network_runs"]["network"])
    return {"best_network": next(iter(names - {ns["best_network"]}))}


def reversed_gap(ns: dict[str, Any]) -> dict[str, Any]:
    """The ablation's gap as validation minus training accuracy."""
    ablation = ns["ablation"]
    return {"ablation": ablation.assign(gap=-ablation["gap"])}


def a_change_that_changes_nothing(ns: dict[str, Any]) -> dict[str, Any]:
    return {"CHANGES": {**ns["CHANGES"], "dropout 0.0": {"dropout": 0.0}}}


def second_best(ns: dict[str, Any]) -> dict[str, Any]:
    return {"best": ns["table"].iloc[1]}


def nothing_changed(ns: dict[str, Any]) -> dict[str, Any]:
    return {"results": ns["results"].assign(changed="centre")}


def one_sided_p_values(ns: dict[str, Any]) -> dict[str, Any]:
    effects = ns["effects"]
    return {"effects": effects.assign(**{"p (Welch)": effects["p (Welch)"] / 2})}


def cifar_normalisation(ns: dict[str, Any]) -> dict[str, Any]:
    from course_utils import data

    return {
        "loaders": data.make_loaders(
            ns["cifar"], ns["profile"], seed=0, batch_size=16, resize=40, device="cpu"
        )
    }


def not_resized(ns: dict[str, Any]) -> dict[str, Any]:
    from course_utils import data
    from course_utils.models import transfer

    return {
        "loaders": data.make_loaders(
            ns["cifar"], ns["profile"], seed=0, batch_size=16, device="cpu",
            mean=transfer.IMAGENET_MEAN, std=transfer.IMAGENET_STD,
        )
    }  # fmt: skip


def frozen_parameters_optimised(ns: dict[str, Any]) -> dict[str, Any]:
    return {"optimizer": torch.optim.Adam(ns["model"].parameters(), lr=ns["LEARNING_RATE"])}


def reversed_comparison(ns: dict[str, Any]) -> dict[str, Any]:
    return {"gap": ns["a2_acc"] - ns["resnet_acc"]}


def channels_by_mean(ns: dict[str, Any]) -> dict[str, Any]:
    return {"first_channels": ns["conv1_maps"].mean(dim=(1, 2)).topk(8).indices.tolist()}


def unnormalised_input(ns: dict[str, Any]) -> dict[str, Any]:
    from torchvision.transforms import v2

    resize = v2.Compose([v2.Resize(ns["INPUT_SIZE"]), v2.CenterCrop(ns["INPUT_SIZE"])])
    return {"batch": resize(ns["photo"]).float().unsqueeze(0) / 255}


def population_std(ns: dict[str, Any]) -> dict[str, Any]:
    summary = ns["summary"]
    groups = ns["runs"].groupby("variant", sort=False)
    return {
        "summary": summary.assign(
            test_acc_std=groups["test_acc"].std(ddof=0),
            test_loss_std=groups["test_loss"].std(ddof=0),
        )
    }


def swapped_names(ns: dict[str, Any]) -> dict[str, Any]:
    runs = ns["runs"]
    return {"runs": runs.assign(variant=runs["variant"].iloc[::-1].to_numpy())}


def effect_without_minus_with(ns: dict[str, Any]) -> dict[str, Any]:
    from course_utils import stats

    runs = ns["runs"]
    effect = {}
    for optimizer, chosen in runs.groupby("optimizer"):
        bn = chosen["batch_norm"].astype(bool)
        effect[optimizer] = stats.welch_t_test(
            chosen.loc[~bn, "test_acc"], chosen.loc[bn, "test_acc"]
        )
    return {"bn_effect": effect}


def unpaired_budgets(ns: dict[str, Any]) -> dict[str, Any]:
    from course_utils import stats

    f1, budgets = ns["f1"], ns["BUDGETS"]
    return {
        "longer": {
            v: stats.welch_t_test(f1[(v, budgets[-1])], f1[(v, budgets[0])]) for v in ns["VARIANTS"]
        }
    }


def logits_for_masks(ns: dict[str, Any]) -> dict[str, Any]:
    with torch.no_grad():
        return {"predicted": ns["model"].eval()(ns["test_images"])}


def best_at_the_short_budget(ns: dict[str, Any]) -> dict[str, Any]:
    summary, budgets = ns["summary"], ns["BUDGETS"]
    at_short = summary[summary["budget"] == budgets[0]].sort_values("f1")
    return {"best_variant": at_short.iloc[-1]["variant"]}


WRONG_RESULTS = [
    ("hidden-a1t2-training-run", other_kept_epoch),
    ("hidden-a1t2-training-run", lambda ns: {"model": ns["DigitCNN"](kernel_size=3)}),
    ("hidden-a2t3-run-records", lambda ns: {"network_runs": last_epoch_scores(ns["network_runs"])}),
    ("hidden-a2t3-run-records", other_network),
    ("hidden-a2t3-ablation-table", reversed_gap),
    ("hidden-a2t3-ablation-table", a_change_that_changes_nothing),
    ("hidden-a2t4-run-records", lambda ns: {"runs": last_epoch_scores(ns["runs"])}),
    ("hidden-a2t4-run-records", second_best),
    ("hidden-a2t4-run-records", nothing_changed),
    ("hidden-a2t4-run-records", lambda ns: {"changed": lambda row: "centre"}),
    ("hidden-a2t4-effects", one_sided_p_values),
    ("hidden-a3t1-loaders", cifar_normalisation),
    ("hidden-a3t1-loaders", not_resized),
    ("hidden-a3t1-fine-tuning", frozen_parameters_optimised),
    ("hidden-a3t1-fine-tuning", reversed_comparison),
    ("hidden-a3t2-prediction-and-channels", channels_by_mean),
    ("hidden-a3t2-prediction-and-channels", unnormalised_input),
    ("hidden-a3t2-prediction-and-channels", lambda ns: {"top_channels": ns["top_channels"][::-1]}),
    ("hidden-a4t1-summary", population_std),
    ("hidden-a4t1-summary", swapped_names),
    ("hidden-a4t1-effects", effect_without_minus_with),
    ("hidden-a4t2-scores", unpaired_budgets),
    ("hidden-a4t2-best-variant", best_at_the_short_budget),
    ("hidden-a4t2-best-variant", logits_for_masks),
]


@pytest.mark.parametrize(
    "cell_id, wrong",
    WRONG_RESULTS,
    ids=[f"{cell_id}-{wrong.__name__}-{i}" for i, (cell_id, wrong) in enumerate(WRONG_RESULTS)],
)
def test_wrong_results_fail(cell_id, wrong):
    notebook, source = hidden(cell_id)
    solution = solution_namespace(notebook)
    namespace = {**solution, **wrong(solution)}
    with pytest.raises(AssertionError):
        run_hidden(notebook, source, namespace, submission_code(notebook), seed=3)


def test_every_hidden_test_has_an_answer_here_that_must_fail_it():
    failing = {cell_id for cell_id, _, _ in WRONG} | {c[1] for c in NETWORK_CHANGES}
    failing |= {cell_id for cell_id, _ in WRONG_RESULTS}
    assert failing == {cell_id for _, cell_id, _ in HIDDEN}
