"""Results handed from one notebook to another: save, load, and produce when missing."""

import json
import math

import nbformat
import pytest
import torch
from nbformat.v4 import new_code_cell, new_notebook
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from course_utils import config, notebooks, results, train


@pytest.fixture
def run() -> config.Run:
    return config.start_run(profile="smoke", quiet=True, weights="random-init (test)")


@pytest.fixture
def toy_producer(monkeypatch, tmp_path):
    """A notebook that writes the result 'toy', registered as its producer."""
    monkeypatch.setitem(results.PRODUCERS, "toy", "toy.ipynb")
    source = (
        "from course_utils import config, results\n"
        "run = config.start_run(quiet=True)\n"
        "results.save_result('toy', [{'epoch': 1, 'val_loss': 0.5}], {'acc': 0.5}, run)"
    )
    nbformat.write(new_notebook(cells=[new_code_cell(source)]), tmp_path / "toy.ipynb")
    return tmp_path


def test_a_fit_history_round_trips(tmp_path, run):
    x = torch.randn(64, 2)
    loader = DataLoader(TensorDataset(x, (x[:, 0] > 0).long()), batch_size=16)
    history = train.fit(nn.Linear(2, 2), loader, loader, epochs=3, device="cpu", progress=False)
    test = train.evaluate(nn.Linear(2, 2), loader)
    path = results.save_result("fit", history, test, run, folder=tmp_path)
    assert path == tmp_path / "fit.json"
    saved = results.load_result("fit", tmp_path)
    assert saved["epochs"] == history.epochs  # JSON keeps floats exactly
    assert saved["best_epoch"] == history.best_epoch and saved["stop_reason"] == "completed"
    assert saved["test"] == test
    assert (saved["profile"], saved["data_kind"], saved["seed"]) == ("smoke", "none", 0)
    assert saved["weights"] == "random-init (test)"


def test_plain_records_pick_the_lowest_validation_loss_and_store_nan_as_null(tmp_path, run):
    epochs = [
        {"epoch": 1, "val_loss": 0.8},
        {"epoch": 2, "val_loss": 0.6},
        {"epoch": 3, "val_loss": 0.7},
    ]
    results.save_result("r", epochs, {}, run, folder=tmp_path)
    saved = results.load_result("r", tmp_path)
    assert saved["best_epoch"] == 2
    no_val = [{"epoch": 1, "val_loss": math.nan}, {"epoch": 2, "val_loss": math.nan}]
    path = results.save_result("n", no_val, {}, run, folder=tmp_path)
    text = path.read_text()
    assert "NaN" not in text and json.loads(text)["epochs"][0]["val_loss"] is None
    assert json.loads(text)["best_epoch"] == 2  # no validation: the last epoch
    with pytest.raises(ValueError, match="no epochs"):
        results.save_result("empty", [], {}, run, folder=tmp_path)


def test_a_missing_result_names_the_notebook_that_writes_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="written by a2_t3_improving_the_network.ipynb"):
        results.load_result("a2_best", tmp_path)
    with pytest.raises(FileNotFoundError, match=r"results.save_result\('other'"):
        results.load_result("other", tmp_path)


def test_require_result_runs_the_producing_notebook(toy_producer, run, capsys):
    folder = toy_producer / "results"
    loaded = results.require_result("toy", run, folder=folder, notebook_dir=toy_producer)
    assert loaded["test"] == {"acc": 0.5} and loaded["profile"] == "smoke"
    assert "NOTICE: " in capsys.readouterr().out
    # Now it is there: loaded without running anything.
    assert results.require_result("toy", run, folder=folder, notebook_dir=toy_producer) == loaded
    assert capsys.readouterr().out == ""


def test_a_result_from_another_profile_is_made_again(toy_producer, run, monkeypatch, capsys):
    folder = toy_producer / "results"
    quick = config.start_run(profile="quick", quiet=True)
    results.save_result("toy", [{"epoch": 1, "val_loss": 1.0}], {"acc": 0.1}, quick, folder=folder)
    ran = []

    def fake_execute(nb, where, timeout, env, **kwargs):
        ran.append(env["COURSE_PROFILE"])
        results.save_result(
            "toy", [{"epoch": 1, "val_loss": 0.5}], {"acc": 0.5}, run, folder=folder
        )

    monkeypatch.setattr(notebooks, "execute_notebook", fake_execute)
    loaded = results.require_result("toy", run, folder=folder, notebook_dir=toy_producer)
    assert ran == ["smoke"] and loaded["profile"] == "smoke"
    assert "is from the quick profile, not smoke" in capsys.readouterr().out


def test_a_failing_or_missing_producer_fails_clearly(toy_producer, run, monkeypatch, tmp_path):
    monkeypatch.setattr(
        notebooks,
        "execute_notebook",
        lambda *args, **kwargs: "NotImplementedError: fill in the model",
    )
    with pytest.raises(RuntimeError, match="toy.ipynb failed .NotImplementedError"):
        results.require_result(
            "toy", run, folder=toy_producer / "results", notebook_dir=toy_producer
        )
    monkeypatch.setattr(notebooks, "execute_notebook", lambda *args, **kwargs: None)
    with pytest.raises(RuntimeError, match="does it call results.save_result"):
        results.require_result(
            "toy", run, folder=toy_producer / "results", notebook_dir=toy_producer
        )
    with pytest.raises(FileNotFoundError, match="is not there either"):
        results.require_result("toy", run, folder=tmp_path / "r", notebook_dir=tmp_path / "none")


def test_the_producer_fingerprint_follows_code_cells_only(toy_producer):
    before = results.producer_fingerprint("toy", toy_producer)
    nb = nbformat.read(toy_producer / "toy.ipynb", as_version=4)
    nb.cells.append(nbformat.v4.new_markdown_cell("A note on the results."))
    nb.cells[0].outputs = [nbformat.v4.new_output("stream", text="done\n")]
    nbformat.write(nb, toy_producer / "toy.ipynb")
    assert results.producer_fingerprint("toy", toy_producer) == before
    nb.cells[0].source += "\nprint('changed')"
    nbformat.write(nb, toy_producer / "toy.ipynb")
    assert results.producer_fingerprint("toy", toy_producer) not in (before, None)


def _fake_producer(monkeypatch, folder, run, ran):
    def fake_execute(nb, where, timeout, env, **kwargs):
        ran.append(where)
        results.save_result(
            "toy",
            [{"epoch": 1, "val_loss": 0.5}],
            {"acc": 0.5},
            run,
            folder=folder,
            notebook_dir=where,
        )

    monkeypatch.setattr(notebooks, "execute_notebook", fake_execute)


def test_a_result_of_an_edited_producer_is_made_again(toy_producer, run, monkeypatch, capsys):
    folder, ran = toy_producer / "results", []
    results.save_result(
        "toy",
        [{"epoch": 1, "val_loss": 1.0}],
        {"acc": 0.1},
        run,
        folder=folder,
        notebook_dir=toy_producer,
    )
    _fake_producer(monkeypatch, folder, run, ran)
    assert (
        results.require_result("toy", run, folder=folder, notebook_dir=toy_producer)["test"]
        == {"acc": 0.1}
        and ran == []
    )  # unchanged: loaded as it is
    nb = nbformat.read(toy_producer / "toy.ipynb", as_version=4)
    nb.cells[0].source = nb.cells[0].source.replace("0.5", "0.6")
    nbformat.write(nb, toy_producer / "toy.ipynb")
    loaded = results.require_result("toy", run, folder=folder, notebook_dir=toy_producer)
    assert ran == [toy_producer] and loaded["test"] == {"acc": 0.5}
    assert "made by another version of toy.ipynb" in capsys.readouterr().out


def test_a_result_made_with_other_data_code_is_made_again(
    toy_producer, run, monkeypatch, tmp_path, capsys
):
    folder, ran = toy_producer / "results", []
    results.save_result("toy", [{"epoch": 1, "val_loss": 1.0}], {"acc": 0.1}, run, folder=folder)
    other_data = tmp_path / "data"
    other_data.mkdir()
    (other_data / "synthetic.py").write_text("# another stand-in\n")
    monkeypatch.setattr(results, "DATA_CODE", other_data)
    _fake_producer(monkeypatch, folder, run, ran)
    loaded = results.require_result("toy", run, folder=folder, notebook_dir=toy_producer)
    assert ran and loaded["data_code"] == results.data_code_fingerprint()
    assert "another version of the data code" in capsys.readouterr().out


def test_a_student_is_asked_before_a_notebook_runs(toy_producer, run, monkeypatch, capsys):
    folder = toy_producer / "results"
    monkeypatch.setitem(results.PRODUCER_QUICK_CPU_MINUTES, "toy", 3.2)
    questions = []
    answers = iter(["n", ""])

    def answer(question):
        questions.append(question)
        return next(answers)

    monkeypatch.setattr("builtins.input", answer)
    ran = []

    def fake_execute(nb, where, timeout, env, **kwargs):
        ran.append(where)
        results.save_result(
            "toy", [{"epoch": 1, "val_loss": 0.5}], {"acc": 0.5}, run, folder=folder
        )

    monkeypatch.setattr(notebooks, "execute_notebook", fake_execute)
    with pytest.raises(RuntimeError, match="toy.ipynb was not run.*run toy.ipynb yourself"):
        results.require_result("toy", run, folder=folder, notebook_dir=toy_producer)
    assert ran == [] and questions == ["Run toy.ipynb now? [Y/n] "]
    notice = capsys.readouterr().out
    assert "does not exist" in notice and "about 3 min in the quick profile" in notice

    loaded = results.require_result("toy", run, folder=folder, notebook_dir=toy_producer)
    assert ran == [toy_producer] and loaded["test"] == {"acc": 0.5}  # Enter: yes


@pytest.mark.parametrize("refusal", [EOFError, OSError, NotImplementedError])
def test_nobody_to_ask_means_go_on(monkeypatch, refusal):
    def no_input(question):
        raise refusal("no stdin")

    monkeypatch.setattr("builtins.input", no_input)
    assert results.ask_to_go_on("Run it? [Y/n] ")


def test_a_headless_kernel_goes_on_without_asking():
    # What nbclient (course run, nbval, require_result itself) gives a notebook's input().
    nb = new_notebook(
        cells=[new_code_cell("from course_utils import results\nprint(results.ask_to_go_on('?'))")]
    )
    assert notebooks.execute_notebook(nb, ".", 120, notebooks.kernel_env({})) is None
    assert nb.cells[0].outputs[-1]["text"].strip() == "True"
