"""The findings of a2_t2, a2_t3, a2_t4 and a3_t1 fail on contrary evidence.

Each test runs a findings cell of the solution notebook, as it is, on made-up numbers
(the variables the cells before it would have made), in the quick profile on the
stand-in with ``COURSE_CHECK_FINDINGS=1``: numbers that bear the claims out must pass,
and numbers that contradict one claim must make exactly that claim fail.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import nbformat
import pandas as pd
import pytest

from course_utils import config, findings, stats, train

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


@pytest.fixture(autouse=True)
def checking(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(findings.CHECK_ENV, "1")


def run_cells(notebook: str, cell_ids: list[str], namespace: dict[str, Any]) -> dict[str, Any]:
    """Execute the code cells ``cell_ids`` of ``notebook`` in ``namespace``, in that order.

    >>> run_cells("a2_t2_baseline_and_training_loop", ["a4c3424c"], {"pd": pd})["learns"](25)
    True
    """
    cells = {
        cell.get("id"): cell for cell in nbformat.read(NOTEBOOKS / f"{notebook}.ipynb", 4).cells
    }
    for cell_id in cell_ids:
        exec(compile(cells[cell_id].source, f"{notebook}:{cell_id}", "exec"), namespace)
    return namespace


def quick_run() -> config.Run:
    return config.start_run("cifar10", profile="quick", data="embedded", quiet=True)


# ------------------------------------------------------------------------------------ a2_t2

A2_T2 = "a2_t2_baseline_and_training_loop"
PLAIN, DROPOUT = "VGG-like, dropout 0.0", "VGG-like, dropout 0.5"


def vgg_history(val_losses: list[float], train_losses: list[float]) -> train.History:
    epochs = [
        {"epoch": i + 1, "train_loss": t, "train_acc": 0.5, "val_loss": v, "val_acc": 0.3}
        for i, (v, t) in enumerate(zip(val_losses, train_losses, strict=True))
    ]
    best = min(range(len(epochs)), key=lambda i: val_losses[i]) + 1
    return train.History(epochs=epochs, best_epoch=best)


def a2_t2_findings(
    plain: train.History | None = None,
    dropout: train.History | None = None,
    gaps: tuple[float, float] = (40.0, 10.0),
    dropout_val: float = 30.0,
) -> None:
    """The a2_t2 findings cell; by default on numbers that bear every claim out."""
    plain = plain or vgg_history([2.0, 1.8, 1.9, 2.1, 2.3], [2.0, 1.5, 1.1, 0.8, 0.6])
    dropout = dropout or vgg_history([2.2, 2.0, 1.9, 1.8, 1.7, 1.75], [2.3, 2.1, 2.0] + [1.9] * 3)
    table = pd.DataFrame(
        {
            "best epoch": [plain.best_epoch, dropout.best_epoch],
            "val acc (%)": [27.0, dropout_val],
            "test acc (%)": [25.0, 28.0],
            "train - val (points)": list(gaps),
        },
        index=[PLAIN, DROPOUT],
    )
    namespace = {
        "pd": pd,
        "findings": findings,
        "run": quick_run(),
        "vgg_table": table,
        "vgg_histories": {PLAIN: plain, DROPOUT: dropout},
    }
    run_cells(A2_T2, ["a4c3424c", "h17a-t2-findings"], namespace)


def test_a2_t2_findings_hold_on_numbers_that_bear_them_out() -> None:
    a2_t2_findings()


def test_a2_t2_overfitting_fails_when_the_validation_loss_hardly_rises() -> None:
    barely = vgg_history([2.0, 1.8, 1.85, 1.9, 1.95], [2.0, 1.5, 1.1, 0.8, 0.6])  # +8 %
    with pytest.raises(AssertionError, match="without dropout the VGG-like net overfits"):
        a2_t2_findings(plain=barely)


def test_a2_t2_overfitting_fails_when_the_training_loss_rises_too() -> None:
    diverging = vgg_history([2.0, 1.8, 1.9, 2.1, 2.3], [2.0, 1.5, 1.6, 1.7, 1.8])
    with pytest.raises(AssertionError, match="without dropout the VGG-like net overfits"):
        a2_t2_findings(plain=diverging)


def test_a2_t2_dropout_net_must_learn() -> None:
    with pytest.raises(AssertionError, match="with dropout 0.5 the net still learns"):
        a2_t2_findings(dropout_val=19.9)


def test_a2_t2_dropout_gap_fails_when_dropout_widens_it() -> None:
    with pytest.raises(AssertionError, match="narrows the gap"):
        a2_t2_findings(gaps=(10.0, 12.0))


def test_a2_t2_epoch_cost_fails_when_dropout_peaks_first() -> None:
    early = vgg_history([2.0, 1.7, 1.8, 1.9, 2.0], [2.0, 1.9, 1.8, 1.7, 1.6])
    with pytest.raises(AssertionError, match="dropout 0.5 costs epochs"):
        a2_t2_findings(dropout=early)


# ------------------------------------------------------------------------------------ a2_t3

A2_T3 = "a2_t3_improving_the_network"
SEEDS = [0, 1, 2, 3, 4]
BASELINE_RUNS = {
    "val_acc": [28.0, 30.0, 26.0, 31.0, 29.0],
    "train_acc": [97.0, 95.0, 99.0, 96.0, 98.0],
}
BEARING_OUT = {  # per seed: far lower gaps with dropout and augmentation
    ("dropout 0.2", "gap"): [5.0, 8.0, 3.0, 9.0, 6.0],
    ("dropout 0.2", "val_acc"): [34.0, 29.0, 30.0, 33.0, 31.0],
    ("augment: all", "gap"): [2.0, 4.0, 1.0, 6.0, 3.0],
    ("augment: all", "val_acc"): [33.0, 31.0, 27.0, 32.0, 30.0],
}


def a2_t3_findings(
    baseline: dict[str, list[float]] = BASELINE_RUNS,
    changes: dict[tuple[str, str], list[float]] | None = None,
    seeds: list[int] = SEEDS,
) -> dict[str, Any]:
    """The a2_t3 ablation table and findings cells, on runs made up from ``baseline`` and
    ``BEARING_OUT`` (``changes`` replace some of them; ``seeds`` are the regularisers')."""
    samples = {**BEARING_OUT, **(changes or {})}
    rows = [
        {"change": "baseline (network 1)", "seed": seed, "val_acc": val, "train_acc": train}
        for seed, val, train in zip(SEEDS, baseline["val_acc"], baseline["train_acc"], strict=True)
    ]
    for change in ("dropout 0.2", "augment: all"):
        vals, gaps = samples[(change, "val_acc")], samples[(change, "gap")]
        rows += [
            {"change": change, "seed": seed, "val_acc": val, "train_acc": val + gap}
            for seed, val, gap in zip(seeds, vals, gaps, strict=True)
        ]
    rows.append({"change": "L2 5e-4", "seed": 0, "val_acc": 29.0, "train_acc": 97.0})
    namespace = {
        "stats": stats,
        "findings": findings,
        "run": quick_run(),
        "runs": pd.DataFrame(rows),
        "BASELINE": "baseline (network 1)",
        "REGULARISERS": ["dropout 0.2", "augment: all"],
        "DATA_NAME": "the CIFAR-10 stand-in",
        "budget": SimpleNamespace(ablation_images=1_000, ablation_epochs=12),
    }
    return run_cells(A2_T3, ["48b47330", "fba04376"], namespace)


def test_a2_t3_findings_hold_on_numbers_that_bear_them_out() -> None:
    a2_t3_findings()


def test_a2_t3_overfitting_fails_when_training_and_validation_agree() -> None:
    close = {"val_acc": BASELINE_RUNS["val_acc"], "train_acc": [50.0, 61.0, 52.0, 60.0, 58.0]}
    with pytest.raises(AssertionError, match="the baseline learns and overfits"):
        a2_t3_findings(baseline=close)


def test_a2_t3_overfitting_fails_when_the_baseline_does_not_learn() -> None:
    chance = {"val_acc": [11.0, 12.0, 10.0, 13.0, 9.0], "train_acc": BASELINE_RUNS["train_acc"]}
    with pytest.raises(AssertionError, match="the baseline learns and overfits"):
        a2_t3_findings(baseline=chance)


def test_a2_t3_narrowing_fails_when_dropout_widens_the_gap() -> None:
    wider = [74.0, 70.0, 78.0, 70.0, 74.0]  # every seed 5 points above the baseline's gap
    with pytest.raises(AssertionError, match="dropout 0.2 narrows the gap"):
        a2_t3_findings(changes={("dropout 0.2", "gap"): wider})


def test_a2_t3_table_pairs_runs_by_seed_and_corrects_for_four_tests() -> None:
    namespace = a2_t3_findings()
    assert {t.name for t in namespace["tests"].values()} == {"paired t-test"}
    assert len(namespace["tests"]) == 4
    gap = namespace["tests"][("dropout 0.2", "gap")]
    assert gap.n_a == 5 and round(gap.difference, 1) == -62.0


def test_a2_t3_table_refuses_to_pair_runs_of_other_seeds() -> None:
    with pytest.raises(AssertionError, match="dropout 0.2"):
        a2_t3_findings(seeds=[0, 1, 2, 3, 5])


def test_a2_t3_narrowing_fails_when_augmentation_is_within_the_noise() -> None:
    # Lower on average, but one seed goes the other way: no longer beyond the noise.
    noisy = [60.0, 40.0, 80.0, 30.0, 70.0]  # mean 56 against the baseline's 68.2
    with pytest.raises(AssertionError, match="augment: all narrows the gap"):
        a2_t3_findings(changes={("augment: all", "gap"): noisy})


# ------------------------------------------------------------------------------------ a2_t4

A2_T4 = "a2_t4_hyperparameter_sweeps"


def a2_t4_findings(steep: list[float]) -> None:
    centre = [35.0, 31.0, 34.0]
    others = [  # every one within the seed noise of the centre
        [31.0, 36.0, 33.0],
        [34.0, 30.0, 36.0],
        [33.0, 36.0, 31.0],
        [35.0, 31.0, 34.0],
        [32.0, 35.0, 33.0],
        [30.0, 35.0, 32.0],
    ]
    names = [
        "momentum=0",
        "momentum=0.5",
        "batch_size=128",
        "lr=0.002",
        "dropout=0.25",
        "dropout=0.5",
    ]
    rows = [
        (name, stats.welch_t_test(values, centre))
        for name, values in zip(names, others, strict=True)
    ]
    rows.append(("lr=0.05", stats.welch_t_test(steep, centre)))
    effects = pd.DataFrame(
        {
            "changed": [name for name, _ in rows],
            "val_acc": [t.mean_a for _, t in rows],
            "Δ vs centre": [t.difference for _, t in rows],
            "p (Welch)": [t.p_value for _, t in rows],
        }
    )
    effects["significant (Holm, 5 %)"] = stats.holm(effects["p (Welch)"].tolist())
    namespace = {
        "findings": findings,
        "run": quick_run(),
        "effects": effects,
        "centre_acc": pd.Series(centre),
        "SEEDS": (0, 1, 2),
        "CENTRE": {"momentum": 0.9, "batch_size": 32, "lr": 0.01, "dropout": 0.0},
        "AROUND": {"lr": [0.002, 0.05]},
    }
    run_cells(A2_T4, ["dd063fb3"], namespace)


def test_a2_t4_no_knob_beyond_the_noise_holds_when_the_runs_overlap() -> None:
    a2_t4_findings(steep=[20.0, 36.0, 30.0])


def test_a2_t4_no_knob_beyond_the_noise_fails_when_one_clears_holm() -> None:
    with pytest.raises(AssertionError, match="no single knob moves the validation accuracy"):
        a2_t4_findings(steep=[10.0, 10.2, 9.9])


# ------------------------------------------------------------------------------------ a3_t1

A3_T1 = "a3_t1_resnet18_transfer"


def a3_t1_findings(resnet_acc: float, a2_acc: float) -> None:
    history = SimpleNamespace(epochs=[{}] * 4)
    namespace = {
        "findings": findings,
        "run": quick_run(),
        "NETWORK": "ResNet18 (random init)",
        "weights": SimpleNamespace(pretrained=False),
        "history": history,
        "resnet_test": {"acc": resnet_acc},
        "a2": {"test": {"acc": a2_acc}, "epochs": [{}] * 10},
        "loaders": SimpleNamespace(sizes={"train": 1_500}),
    }
    run_cells(A3_T1, ["566c70c1"], namespace)


def test_a3_t1_from_scratch_holds_below_assignment_2(capsys: pytest.CaptureFixture[str]) -> None:
    a3_t1_findings(resnet_acc=0.28, a2_acc=0.55)
    assert "from scratch on 1,500 images for 4 epochs" in capsys.readouterr().out


def test_a3_t1_from_scratch_fails_when_resnet_wins() -> None:
    with pytest.raises(AssertionError, match="ResNet18 stays below"):
        a3_t1_findings(resnet_acc=0.60, a2_acc=0.55)
