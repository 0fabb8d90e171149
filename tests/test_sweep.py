"""run_sweep runs each configuration and seed once, caches it, and ranks the results."""

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch

from course_utils import metrics, sweep

GRID = {"kernel": [3, 5], "stride": [1, 2]}


class FakeTraining:
    """A train_fn with known results that counts which runs really trained.

    val_acc is highest for kernel 5, stride 1, and moves by 0.01 per seed; the history
    has one record per epoch.
    """

    def __init__(self) -> None:
        self.calls: list[tuple[dict, int]] = []

    def __call__(self, config: dict, seed: int) -> dict:
        self.calls.append((config, seed))
        val_acc = 0.5 + 0.05 * config["kernel"] - 0.1 * config["stride"] + 0.01 * seed
        history = [{"epoch": epoch, "val_acc": val_acc - 0.1 / epoch} for epoch in (1, 2)]
        return {
            "val_acc": val_acc,
            "val_loss": 1 - val_acc,
            "epochs": np.int64(2),
            "history": history,
        }


@pytest.fixture
def fake() -> FakeTraining:
    return FakeTraining()


def sweep_quietly(train_fn, cache_dir, grid=GRID, seeds=(0, 1), **kwargs):
    return sweep.run_sweep(
        train_fn, grid, seeds=seeds, cache_dir=cache_dir, progress=False, **kwargs
    )


def test_table_is_sorted_best_first_with_delta_and_seed_statistics(fake, tmp_path):
    table = sweep_quietly(fake, tmp_path, seeds=[0, 1, 2])

    assert len(fake.calls) == 4 * 3
    assert list(table.columns) == [
        "kernel",
        "stride",
        "val_acc",
        "val_acc_std",
        "Δ vs best",
        "val_loss",
        "epochs",
        "n_seeds",
    ]
    assert table[["kernel", "stride"]].values.tolist() == [[5, 1], [3, 1], [5, 2], [3, 2]]
    # Mean over seeds 0, 1, 2 of 0.5 + 0.25 - 0.1 + 0.01 * seed.
    assert table["val_acc"].tolist() == pytest.approx([0.66, 0.56, 0.56, 0.46])
    assert table["val_acc_std"].tolist() == pytest.approx([0.01] * 4)
    assert table["Δ vs best"].tolist() == pytest.approx([0.0, -0.1, -0.1, -0.2])
    assert table["val_loss"].iloc[0] == pytest.approx(0.34)
    assert table["n_seeds"].tolist() == [3] * 4


def test_ties_keep_grid_order_and_a_loss_is_sorted_lowest_first(fake, tmp_path):
    table = sweep_quietly(fake, tmp_path, metric="val_loss", maximize=False)

    # kernel 3 stride 1 and kernel 5 stride 2 tie; the grid lists (3, 1) first.
    assert table[["kernel", "stride"]].values.tolist() == [[5, 1], [3, 1], [5, 2], [3, 2]]
    assert table["Δ vs best"].tolist() == pytest.approx([0.0, 0.1, 0.1, 0.2])


def test_rerun_skips_finished_runs_and_runs_only_changed_configurations(fake, tmp_path):
    first = sweep_quietly(fake, tmp_path)
    assert len(fake.calls) == 8

    again = sweep_quietly(fake, tmp_path)
    assert len(fake.calls) == 8  # nothing trained again
    pd.testing.assert_frame_equal(first, again)

    sweep_quietly(fake, tmp_path, grid={"kernel": [3, 7], "stride": [1, 2]})
    assert sorted((c["kernel"], c["stride"], s) for c, s in fake.calls[8:]) == [
        (7, 1, 0),
        (7, 1, 1),
        (7, 2, 0),
        (7, 2, 1),
    ]

    sweep_quietly(fake, tmp_path, seeds=(0, 1, 2))
    assert len(fake.calls) == 12 + 4  # one new seed for each of the four configurations

    sweep_quietly(fake, tmp_path, version="2")
    assert len(fake.calls) == 16 + 8  # a new version is a new sweep


def test_cache_files_are_complete_json_named_by_config_seed_and_version(fake, tmp_path):
    sweep_quietly(fake, tmp_path)

    files = sorted(tmp_path.iterdir())
    assert len(files) == 8 and all(path.suffix == ".json" for path in files)  # no leftovers
    code = sweep.code_fingerprint(fake)
    path = tmp_path / f"{sweep.run_key({'kernel': 5, 'stride': 2}, 1, '1', code)}.json"
    record = json.loads(path.read_text())
    assert (record["config"], record["seed"], record["version"]) == (
        {"kernel": 5, "stride": 2},
        1,
        "1",
    )
    assert record["results"]["val_acc"] == pytest.approx(0.56)
    assert record["results"]["epochs"] == 2


def test_key_ignores_dict_order_but_not_values():
    key = sweep.run_key({"kernel": 5, "stride": 1}, 0, "1")
    assert key == sweep.run_key({"stride": 1, "kernel": 5}, 0, "1")
    assert key != sweep.run_key({"kernel": 5, "stride": 2}, 0, "1")
    assert key != sweep.run_key({"kernel": 5.0, "stride": 1}, 0, "1")
    assert key != sweep.run_key({"kernel": 5, "stride": 1}, 0, "2")
    assert key != sweep.run_key({"kernel": 5, "stride": 1}, 0, "1", code="other")


@pytest.mark.parametrize(
    "damage",
    [
        lambda text: text[: len(text) // 2],  # cut off mid-write
        lambda text: "",  # empty
        lambda text: "\udcff not json",  # garbage
        lambda text: text.replace('"stride": 2', '"stride": 9'),  # another run's file
        lambda text: json.dumps({"config": {}, "seed": 0}),  # no results
    ],
)
def test_a_damaged_cache_file_is_run_again(fake, tmp_path, damage):
    sweep_quietly(fake, tmp_path)
    code = sweep.code_fingerprint(fake)
    path = tmp_path / f"{sweep.run_key({'kernel': 3, 'stride': 2}, 0, '1', code)}.json"
    path.write_text(damage(path.read_text()), errors="surrogateescape")

    with pytest.warns(RuntimeWarning, match="damaged or belongs to another run"):
        table = sweep_quietly(fake, tmp_path)

    assert fake.calls[8:] == [({"kernel": 3, "stride": 2}, 0)]
    assert table["n_seeds"].tolist() == [2] * 4
    assert json.loads(path.read_text())["results"]["val_acc"] == pytest.approx(0.45)


def test_runs_keep_every_result_and_history_the_same_fresh_or_cached(fake, tmp_path):
    _, fresh = sweep_quietly(fake, tmp_path, return_runs=True)
    _, cached = sweep_quietly(fake, tmp_path, return_runs=True)

    assert list(fresh.columns) == [
        "kernel",
        "stride",
        "seed",
        "val_acc",
        "val_loss",
        "epochs",
        "history",
        "cached",
    ]
    assert len(fresh) == 8 and not fresh["cached"].any() and cached["cached"].all()
    pd.testing.assert_frame_equal(fresh.drop(columns="cached"), cached.drop(columns="cached"))
    # Kernel 3, stride 1, seed 0: val_acc 0.55, less 0.1 / epoch.
    assert fresh.loc[0, "history"] == [
        {"epoch": 1, "val_acc": pytest.approx(0.45)},
        {"epoch": 2, "val_acc": pytest.approx(0.5)},
    ]


def test_histories_unroll_to_epochs_and_average_over_seeds(fake, tmp_path):
    _, runs = sweep_quietly(fake, tmp_path, return_runs=True)

    curves = sweep.history_frame(runs)

    assert list(curves.columns) == ["kernel", "stride", "seed", "epoch", "val_acc"]
    assert len(curves) == 8 * 2
    band = metrics.aggregate_over_seeds(
        curves, ["kernel", "stride", "epoch"], spread=["val_acc"], stats=["min", "max"]
    )
    best_epoch_2 = band.query("kernel == 5 and stride == 1 and epoch == 2").iloc[0]
    assert (best_epoch_2["val_acc_min"], best_epoch_2["val_acc_max"]) == pytest.approx((0.6, 0.61))
    assert best_epoch_2["n_seeds"] == 2


def test_each_run_is_seeded_so_caching_does_not_change_results(tmp_path):
    def random_result(config, seed):
        # The legacy global generator on purpose: seed_everything must seed it too.
        return {"val_acc": torch.rand(()).item(), "numpy": float(np.random.rand())}  # noqa: NPY002

    _, runs = sweep_quietly(random_result, tmp_path / "a", grid={"x": [1, 2]}, return_runs=True)
    sweep_quietly(random_result, tmp_path / "b", grid={"x": [2]})  # x=2 cached, x=1 not
    _, mixed = sweep_quietly(random_result, tmp_path / "b", grid={"x": [1, 2]}, return_runs=True)

    # Same seed, same random numbers: whatever ran before, and whichever config it is.
    assert runs["val_acc"].tolist() == mixed["val_acc"].tolist()
    assert runs.query("seed == 0")["val_acc"].nunique() == 1
    assert runs.query("seed == 0")["numpy"].nunique() == 1


def test_progress_bar_counts_runs_and_cached_ones(fake, tmp_path, monkeypatch):
    bars = []

    class RecordingBar:
        def __init__(self, total, disable, **kwargs):
            self.total, self.disable, self.n, self.postfix = total, disable, 0, None
            bars.append(self)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def update(self):
            self.n += 1

        def set_postfix(self, refresh=True, **values):
            self.postfix = values

    monkeypatch.setattr(sweep, "progress_bar", RecordingBar)
    sweep.run_sweep(fake, {"kernel": [3], "stride": [1, 2]}, seeds=[0, 1], cache_dir=tmp_path)
    sweep.run_sweep(fake, GRID, seeds=[0, 1], cache_dir=tmp_path)

    assert [(b.total, b.n, b.postfix, b.disable) for b in bars] == [
        (4, 4, {"cached": 0}, False),
        (8, 8, {"cached": 4}, False),
    ]


def test_a_list_of_configurations_with_different_keys(tmp_path):
    grid = [
        {"optimizer": "adam", "lr": 1e-3},
        {"optimizer": "sgd", "lr": np.float64(0.1), "momentum": 0.9},
        {"optimizer": "sgd", "lr": 0.1, "momentum": None},
    ]

    def train_fn(config, seed):
        return {
            "val_acc": {"adam": 0.8, "sgd": 0.7}[config["optimizer"]]
            + (config.get("momentum") or 0) / 10
        }

    table = sweep_quietly(train_fn, tmp_path, grid=grid)

    assert list(table.columns[:3]) == ["optimizer", "lr", "momentum"]
    assert table["optimizer"].tolist() == ["adam", "sgd", "sgd"]
    assert table["val_acc"].tolist() == pytest.approx([0.8, 0.79, 0.7])
    assert table["n_seeds"].tolist() == [2, 2, 2]
    # Missing and None both mean "no momentum"; each configuration is still its own row.
    assert table["momentum"].isna().tolist() == [True, False, True]


def test_bad_grids_and_results_are_explained(fake, tmp_path):
    with pytest.raises(TypeError, match=r"values for 'lr' must be a list.*\[0.1\]"):
        sweep.expand_grid({"lr": 0.1})
    with pytest.raises(TypeError, match=r"kernel=\(5, 5\) is a tuple.*'5x5'"):
        sweep.expand_grid({"kernel": [(5, 5)]})
    with pytest.raises(ValueError, match="more than once"):
        sweep.expand_grid([{"lr": 0.1}, {"lr": 0.1}])
    with pytest.raises(ValueError, match="pass seeds"):
        sweep.expand_grid({"seed": [0, 1]})
    with pytest.raises(ValueError, match="no configuration settings"):
        sweep.expand_grid({})
    with pytest.raises(ValueError, match="distinct seeds"):
        sweep_quietly(fake, tmp_path, seeds=[0, 0])
    with pytest.raises(KeyError, match=r"No result called 'test_acc'.*'val_acc', 'val_loss'"):
        sweep_quietly(fake, tmp_path, metric="test_acc")
    with pytest.raises(TypeError, match="must return a dict"):
        sweep_quietly(lambda config, seed: 0.5, tmp_path / "none")
    with pytest.raises(ValueError, match=r"named \['kernel'\]"):
        sweep_quietly(lambda config, seed: {"kernel": 1}, tmp_path / "clash")
    with pytest.raises(TypeError, match="cannot be saved as JSON"):
        sweep_quietly(lambda config, seed: {"weights": torch.ones(3)}, tmp_path / "tensor")


def test_nan_metric_sorts_last(tmp_path):
    def train_fn(config, seed):
        return {"val_acc": math.nan if config["lr"] == 1.0 else config["lr"]}

    table = sweep_quietly(train_fn, tmp_path, grid={"lr": [1.0, 0.1, 0.2]}, seeds=[0])

    assert table["lr"].tolist() == [0.2, 0.1, 1.0]
    assert math.isnan(table["Δ vs best"].iloc[-1])


# A notebook's training code, as a module of its own: the fingerprint reads its globals.
NOTEBOOK = """
LEARNING_RATE = {lr}
WIDTHS = [8, 16]


class Net:
    def width(self):
        return WIDTHS[-1]


def plot(history):  # not training code, but defined in the same notebook
    return history


def train_fn(config, seed):
    return {{"val_acc": LEARNING_RATE * Net().width() + config["k"]}}
"""


def notebook_train_fn(lr: float = 0.1, extra: str = ""):
    namespace: dict = {"__name__": "__main__"}
    exec(compile(NOTEBOOK.format(lr=lr) + extra, "<notebook cell>", "exec"), namespace)
    return namespace["train_fn"]


def test_code_fingerprint_follows_the_code_and_settings_a_run_uses():
    same = sweep.code_fingerprint(notebook_train_fn())
    assert same == sweep.code_fingerprint(notebook_train_fn())
    # A setting the training reads, or a class it builds, changes the fingerprint.
    assert same != sweep.code_fingerprint(notebook_train_fn(lr=0.2))
    changed_class = NOTEBOOK.replace("WIDTHS[-1]", "WIDTHS[0]")
    namespace: dict = {"__name__": "__main__"}
    exec(compile(changed_class.format(lr=0.1), "<notebook cell>", "exec"), namespace)
    assert same != sweep.code_fingerprint(namespace["train_fn"])
    # A value nothing reads does not.
    assert same == sweep.code_fingerprint(notebook_train_fn(extra="UNUSED = 3\n"))


def test_changed_training_code_reruns_instead_of_loading_stale_results(tmp_path):
    old = sweep_quietly(notebook_train_fn(lr=0.1), tmp_path, grid={"k": [0]}, seeds=[0])
    new = sweep_quietly(notebook_train_fn(lr=0.2), tmp_path, grid={"k": [0]}, seeds=[0])
    assert old["val_acc"].item() == pytest.approx(1.6)
    assert new["val_acc"].item() == pytest.approx(3.2)


@pytest.mark.parametrize("path", ["fast", "classic"])
def test_a_runs_batches_do_not_depend_on_whether_earlier_runs_were_cached(tmp_path, path):
    from course_utils import config, data

    cifar = data.synthetic_cifar10(n_train=700, n_test=10)
    run = config.start_run(profile="smoke", quiet=True)
    loaders = data.make_loaders(cifar, run.profile, seed=0, batch_size=128, path=path, device="cpu")

    def train_fn(config: dict, seed: int) -> dict:
        # Each run makes `passes` passes; its result is the label order of its last one.
        order = []
        for _ in range(config["passes"]):
            order = torch.cat([labels for _, labels in loaders.train]).tolist()
        return {"val_acc": sum(i * label for i, label in enumerate(order))}

    grid = [{"passes": 3}, {"passes": 2}]
    trained = sweep_quietly(train_fn, tmp_path / "all", grid=grid, seeds=[0], return_runs=True)
    # Now the first run comes from the cache, so no pass is made before the second.
    sweep_quietly(train_fn, tmp_path / "cached", grid=grid[:1], seeds=[0])
    cached = sweep_quietly(train_fn, tmp_path / "cached", grid=grid, seeds=[0], return_runs=True)
    assert cached[1]["cached"].tolist() == [True, False]
    assert cached[1]["val_acc"].tolist() == trained[1]["val_acc"].tolist()
