"""Results that one notebook hands to another, as small JSON files.

A notebook saves what a later one compares against: a trained model's per-epoch
history, best epoch and test metrics, and how it was run::

    results.save_result("a2_best", history, test, run)   # Assignment 2, task 3
    a2 = results.require_result("a2_best", run)          # Assignment 3, task 1

The files live in ``results/`` next to the notebooks (a notebook's working directory
is its own folder). :func:`require_result` runs the notebook that writes a missing
result, in the same profile, before loading it. It also remakes a *stale* result: one
from another profile or data source, or written before the data code or the producing
notebook's code last changed (each result records a fingerprint of both), since its
numbers then no longer belong to the notebooks as they are. Before it runs a notebook it
says so, with the time that notebook took when the course was built, and in a notebook
someone works in it asks first.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

from course_utils import config, train

DEFAULT_FOLDER = "results"
# Which notebook writes which result, so that a missing one can be made or asked for.
PRODUCERS: dict[str, str] = {
    "a2_best": "a2_t3_improving_the_network.ipynb",
}
# How long each producing notebook ran in the quick profile when the course was built
# (`course run` on a 2-core CPU, README), to say what remaking a result costs.
PRODUCER_QUICK_CPU_MINUTES: dict[str, float] = {
    "a2_best": 3.2,
}
# Per-cell limit for running a producing notebook, as `course run` uses it.
PRODUCER_CELL_TIMEOUT = 1800
# The code that makes the datasets: a result trained on other data is stale.
DATA_CODE = Path(__file__).resolve().parent / "data"


def _digest(texts: Sequence[str]) -> str:
    digest = hashlib.sha256()
    for text in texts:
        digest.update(text.encode("utf-8"))
        digest.update(b"\0")  # so that ["ab", "c"] and ["a", "bc"] differ
    return digest.hexdigest()[:16]


def data_code_fingerprint() -> str:
    """A hash of the source of :mod:`course_utils.data`, which makes every dataset.

    >>> len(data_code_fingerprint())
    16
    """
    return _digest([path.read_text(encoding="utf-8") for path in sorted(DATA_CODE.glob("*.py"))])


def producer_fingerprint(name: str, notebook_dir: str | Path = ".") -> str | None:
    """A hash of the code cells of the notebook that writes result ``name``.

    ``None`` when no notebook is registered for ``name`` (:data:`PRODUCERS`) or it is not
    in ``notebook_dir``. Outputs and markdown do not count: rerunning or rewording the
    notebook leaves its results valid.

    >>> producer_fingerprint("a2_best", notebook_dir="/nowhere") is None
    True
    """
    writer = PRODUCERS.get(name)
    notebook = Path(notebook_dir) / writer if writer else None
    if notebook is None or not notebook.is_file():
        return None
    cells = json.loads(notebook.read_text(encoding="utf-8")).get("cells", [])
    return _digest(
        ["".join(cell.get("source", "")) for cell in cells if cell.get("cell_type") == "code"]
    )


def result_path(name: str, folder: str | Path = DEFAULT_FOLDER) -> Path:
    """The file of result ``name``.

    >>> result_path("a2_best").as_posix()
    'results/a2_best.json'
    """
    return Path(folder) / f"{name}.json"


def _finite_or_none(value: float) -> float | None:
    """JSON has no NaN: an epoch without validation stores null."""
    return None if isinstance(value, float) and math.isnan(value) else value


def save_result(
    name: str,
    history: train.History | Sequence[Mapping[str, float]],
    test: Mapping[str, float],
    run: config.Run,
    folder: str | Path = DEFAULT_FOLDER,
    best_epoch: int | None = None,
    notebook_dir: str | Path = ".",
) -> Path:
    """Write a trained model's history and test metrics to ``folder/name.json``.

    ``history`` is what :func:`course_utils.train.fit` returns, or its per-epoch records
    (``history.epochs``, a list of dicts, as a sweep keeps them). ``best_epoch``
    defaults to the History's own, or for plain records to the epoch with the lowest
    validation loss. ``test`` holds the test metrics, for example
    :func:`course_utils.train.evaluate`'s ``{"loss": ..., "acc": ...}`` (fractions).
    The file also records the profile, data source, seed, device and weights of ``run``,
    and the fingerprints of the data code and of the producing notebook (looked for in
    ``notebook_dir``, the running notebook's own folder), so that
    :func:`require_result` can tell a stale result.

    >>> import tempfile
    >>> run = config.start_run(profile="smoke", quiet=True)
    >>> epochs = [{"epoch": 1, "val_loss": 0.9, "val_acc": 0.6},
    ...           {"epoch": 2, "val_loss": 0.7, "val_acc": 0.7}]
    >>> path = save_result("demo", epochs, {"acc": 0.68}, run, folder=tempfile.mkdtemp())
    >>> saved = load_result("demo", path.parent)
    >>> saved["best_epoch"], saved["profile"], saved["test"]
    (2, 'smoke', {'acc': 0.68})
    """
    records: list[Mapping[str, float]]
    if isinstance(history, train.History):
        records, stop_reason = list(history.epochs), history.stop_reason
        best_epoch = best_epoch or history.best_epoch
    else:
        records, stop_reason = list(history), None
    if not records:
        raise ValueError(f"The history of {name!r} has no epochs: train the model first.")
    if best_epoch is None:
        scored = [r for r in records if _finite_or_none(r.get("val_loss", math.nan)) is not None]
        best_epoch = (
            int(min(scored, key=lambda r: r["val_loss"])["epoch"])
            if scored
            else int(records[-1]["epoch"])
        )
    content = {
        "name": name,
        "profile": run.profile.name,
        "data": str(run.data),
        "data_kind": run.data.kind,
        "seed": run.seed,
        "device": run.device.type,
        "weights": run.weights,
        "best_epoch": int(best_epoch),
        "stop_reason": stop_reason,
        "epochs": [
            {key: _finite_or_none(value) for key, value in record.items()} for record in records
        ],
        "test": {key: float(value) for key, value in test.items()},
        "data_code": data_code_fingerprint(),
        "producer": producer_fingerprint(name, notebook_dir),
    }
    path = result_path(name, folder)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(content, indent=1) + "\n", encoding="utf-8")
    return path


def load_result(name: str, folder: str | Path = DEFAULT_FOLDER) -> dict:
    """Read the result that :func:`save_result` wrote as ``name``.

    A missing file raises ``FileNotFoundError`` saying which notebook writes it.

    >>> load_result("a2_best", folder="/no/such/folder")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    FileNotFoundError: /no/such/folder/a2_best.json not found: it is written by a2_t3_...
    """
    path = result_path(name, folder)
    if not path.is_file():
        writer = PRODUCERS.get(name)
        how = (
            f"it is written by {writer}; run that notebook first, in the same profile"
            if writer
            else f"write it with results.save_result({name!r}, ...)"
        )
        raise FileNotFoundError(f"{path} not found: {how}.")
    return json.loads(path.read_text(encoding="utf-8"))


def _stale_reason(
    name: str, run: config.Run, folder: str | Path, notebook_dir: str | Path
) -> str | None:
    """Why the stored result cannot be used with ``run`` (``None``: it can)."""
    return stale_reason(name, run.profile.name, run.data.kind, folder, notebook_dir)


def stale_reason(
    name: str, profile: str, data_kind: str, folder: str | Path, notebook_dir: str | Path
) -> str | None:
    """Why the stored result ``name`` cannot serve a run in ``profile`` on ``data_kind``
    data (``None``: it can): missing, another profile or data source, or made by other
    data code or another version of its producing notebook (looked for in ``notebook_dir``).

    >>> stale_reason("a2_best", "smoke", "embedded", "/no/such/folder", "/nowhere")
    '/no/such/folder/a2_best.json does not exist'
    """
    path = result_path(name, folder)
    if not path.is_file():
        return f"{path} does not exist"
    stored = load_result(name, folder)
    if stored.get("profile") != profile:
        return f"{path} is from the {stored.get('profile')} profile, not {profile}"
    if stored.get("data_kind") != data_kind:
        return f"{path} was trained on {stored.get('data_kind')} data, this run uses {data_kind}"
    if stored.get("data_code") != data_code_fingerprint():
        return f"{path} was made with another version of the data code (course_utils.data)"
    producer = producer_fingerprint(name, notebook_dir)
    if (
        stored.get("producer") is not None
        and producer is not None
        and stored["producer"] != producer
    ):
        return f"{path} was made by another version of {PRODUCERS[name]}"
    return None


def ask_to_go_on(question: str) -> bool:
    """Ask ``question`` (yes is the default) where someone can answer it.

    A run that nobody watches (``course run``, nbval, a script without input) goes on:
    Jupyter refuses input to a notebook run headlessly, pytest to a test.

    >>> ask_to_go_on("Run it now? [Y/n] ")  # under pytest, which gives no input
    Run it now? [Y/n] True
    """
    try:
        answer = input(question)
    except (EOFError, OSError, NotImplementedError):  # IPython's StdinNotImplementedError
        return True
    return answer.strip().lower() in ("", "y", "yes")


def require_result(
    name: str, run: config.Run, folder: str | Path = DEFAULT_FOLDER, notebook_dir: str | Path = "."
) -> dict:
    """Load result ``name`` for a comparison with ``run``, producing it first if need be.

    When the file is missing, or was made in another profile, on another data source
    or by other code (see :func:`save_result`), the notebook that writes it
    (:data:`PRODUCERS`, looked for in ``notebook_dir``) is executed headlessly in
    ``run``'s profile and the fresh result is loaded. A NOTICE says why and how long that
    notebook took when the course was built; where someone can answer
    (:func:`ask_to_go_on`), they choose whether to run it now. Without that notebook,
    when it fails or when they decline, the error says what to do.

    >>> run = config.start_run(profile="smoke", quiet=True)
    >>> require_result("a2_best", run, folder="/no/such/folder",
    ...                notebook_dir="/nowhere")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    FileNotFoundError: /no/such/folder/a2_best.json does not exist, and /nowhere/a2_t3_...
    """
    reason = _stale_reason(name, run, folder, notebook_dir)
    if reason is None:
        return load_result(name, folder)
    if name not in PRODUCERS:
        raise FileNotFoundError(f"{reason}; write it with results.save_result({name!r}, ...).")
    notebook = Path(notebook_dir) / PRODUCERS[name]
    if not notebook.is_file():
        raise FileNotFoundError(
            f"{reason}, and {notebook}, which writes it, is not there either: put the "
            f"course's notebooks next to this one, or copy {name}.json from a run of that "
            f"notebook into {folder}."
        )
    minutes = PRODUCER_QUICK_CPU_MINUTES.get(name)
    cost = (
        f" When the course was built it took about {minutes:.0f} min in the quick profile "
        "on a 2-core CPU."
        if minutes
        else ""
    )
    print(
        f"NOTICE: {reason}. To make it, {notebook.name} runs from top to bottom in the "
        f"{run.profile.name} profile, without showing its cells.{cost}",
        flush=True,
    )
    if not ask_to_go_on(f"Run {notebook.name} now? [Y/n] "):
        raise RuntimeError(
            f"{notebook.name} was not run, so there is no up-to-date {name!r} result. Open "
            f"and run {notebook.name} yourself (it saves the result), then this cell again."
        )
    # Imported here: the notebook runner (nbclient, nbconvert) is needed only now.
    import nbformat

    from course_utils.notebooks import execute_notebook, kernel_env

    nb = nbformat.read(notebook, as_version=4)
    env = kernel_env({"COURSE_PROFILE": run.profile.name, "COURSE_LIVE_PLOT": "0"})
    error = execute_notebook(nb, notebook.parent, PRODUCER_CELL_TIMEOUT, env)
    if error is not None:
        raise RuntimeError(
            f"{notebook} failed ({error}), so there is no {name!r} result to "
            f"compare with. Open and run that notebook to see the failing cell."
        )
    stale = _stale_reason(name, run, folder, notebook_dir)
    if stale is not None:
        raise RuntimeError(
            f"{notebook} ran, but {stale}: does it call "
            f"results.save_result({name!r}, ...) and write into {folder}?"
        )
    return load_result(name, folder)
