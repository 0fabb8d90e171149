"""Run a grid of configurations with several seeds, cached on disk, and rank the results.

A sweep needs a function that trains one configuration with one seed and returns its
results as a dict, optionally with the per-epoch records under ``"history"``::

    def train_config(config: dict, seed: int) -> dict:
        model = make_model(kernel_size=config["kernel_size"], stride=config["stride"])
        history = train.fit(model, loaders.train, loaders.val, epochs=run.profile.epochs,
                            device=run.device, progress=False)
        return {**train.evaluate(model, loaders.val), "history": history.epochs}

    table, runs = sweep.run_sweep(
        train_config, {"kernel_size": [3, 5, 7], "stride": [1, 2]}, seeds=run.profile.seeds,
        cache_dir=f"runs/{run.profile.name}-{run.data.kind}/kernel_stride", version="1",
        metric="acc", return_runs=True)

``table`` has one row per configuration, averaged over the seeds and sorted best first;
``runs`` has one row per run, histories included (:func:`history_frame` unrolls them
into one row per epoch, for curves with error bands).

Each finished run is saved in ``cache_dir`` as a JSON file named by a hash of its
configuration, seed and ``version``, and stamped with :func:`code_fingerprint`: the code
that decides its result (the course's data, training and model code, and the code and
plain settings of the notebook that ``train_fn`` comes from). Running the sweep again
loads finished runs instead of training them: an interrupted sweep resumes where it
stopped, and a new or changed configuration, or changed code, is a new run. What the
fingerprint cannot see (a dataset file on disk, the profile) belongs in ``cache_dir``
or ``version``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import itertools
import json
import os
import tempfile
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from course_utils import metrics
from course_utils.config import Settings, seed_everything
from course_utils.progress import progress_bar

Scalar = str | int | float | bool | None
Config = dict[str, Scalar]
Grid = Mapping[str, Iterable[Scalar]] | Sequence[Mapping[str, Scalar]]
TrainFn = Callable[[Config, int], Mapping[str, Any]]

HISTORY_KEY = "history"
DELTA_COLUMN = "Δ vs best"
# The course's own code behind every run's result: how the data is made, and how models
# are built and trained.
PACKAGE = Path(__file__).resolve().parent
COURSE_CODE = (PACKAGE / "data", PACKAGE / "models", PACKAGE / "train.py")


def _scalar(key: str, value: Any) -> Scalar:
    """A configuration value as a plain Python scalar, which hashes and tabulates cleanly."""
    if isinstance(value, np.generic):  # from np.linspace and friends
        value = value.item()
    if value is not None and not isinstance(value, (str, int, float, bool)):
        raise TypeError(
            f"Configuration value {key}={value!r} is a {type(value).__name__}; "
            "use a number, string, bool or None (for example 5 or '5x5' "
            "instead of (5, 5))."
        )
    return value


def _values(key: str, values: Any) -> list[Scalar]:
    """The list of values a grid gives for ``key``."""
    if isinstance(values, (str, bytes, Mapping)) or not isinstance(values, Iterable):
        raise TypeError(
            f"The grid's values for {key!r} must be a list, got {values!r}; "
            f"write [{values!r}] for a single value."
        )
    return [_scalar(key, value) for value in values]


def expand_grid(grid: Grid) -> list[Config]:
    """List the configurations of ``grid``, checked.

    ``grid`` is a dict of lists, meaning every combination (in order, the last key
    varying fastest), or a list of configuration dicts, for a hand-picked set.

    >>> expand_grid({"kernel_size": [3, 5], "stride": [1, 2]})  # doctest: +NORMALIZE_WHITESPACE
    [{'kernel_size': 3, 'stride': 1}, {'kernel_size': 3, 'stride': 2},
     {'kernel_size': 5, 'stride': 1}, {'kernel_size': 5, 'stride': 2}]
    >>> expand_grid([{"optimizer": "sgd", "lr": 0.1}, {"optimizer": "adam", "lr": 1e-3}])
    [{'optimizer': 'sgd', 'lr': 0.1}, {'optimizer': 'adam', 'lr': 0.001}]
    """
    if isinstance(grid, Mapping):
        values = [_values(key, grid[key]) for key in grid]
        configs = [
            dict(zip(grid, combination, strict=True)) for combination in itertools.product(*values)
        ]
    else:
        configs = [{key: _scalar(key, value) for key, value in config.items()} for config in grid]
    keys = {key for config in configs for key in config}
    if not configs or not keys:
        raise ValueError("The grid holds no configuration settings to sweep over.")
    if "seed" in keys:
        raise ValueError("'seed' cannot be a configuration setting: pass seeds=[...] instead.")
    canonical = [_canonical(config) for config in configs]
    repeated = sorted({text for text in canonical if canonical.count(text) > 1})
    if repeated:
        raise ValueError(f"The grid lists these configurations more than once: {repeated}.")
    return configs


def _canonical(value: Any) -> str:
    """One fixed JSON text per value: dict key order does not matter, 1 and 1.0 differ."""
    return json.dumps(value, sort_keys=True)


def run_key(config: Config, seed: int, version: str, code: str = "") -> str:
    """The stable name of one run's cache file: a hash of its config, seed, version and code.

    >>> run_key({"lr": 0.1, "kernel": 5}, 0, "1") == run_key({"kernel": 5, "lr": 0.1}, 0, "1")
    True
    >>> run_key({"lr": 0.1}, 0, "1") == run_key({"lr": 0.1}, 1, "1")
    False
    """
    identity = _canonical({"config": config, "seed": seed, "version": version, "code": code})
    return hashlib.sha256(identity.encode()).hexdigest()[:16]


def _source(thing: Any) -> str:
    """The source of a function or class, or for one whose source is gone, its compiled code."""
    try:
        return inspect.getsource(thing)
    except (OSError, TypeError):  # a class defined in a notebook cell has no source file
        if inspect.isclass(thing):
            return thing.__qualname__ + "".join(
                _source(member) for _, member in sorted(vars(thing).items()) if _is_code(member)
            )
        code = thing.__code__
        return f"{code.co_code.hex()}{code.co_consts!r}{code.co_names!r}"


def _is_code(value: Any) -> bool:
    return inspect.isfunction(value) or inspect.isclass(value)


def _names_used(thing: Any) -> set[str]:
    """The global names a function or class's methods read, nested functions included."""
    if inspect.isclass(thing):
        return set().union(*(_names_used(m) for m in vars(thing).values() if _is_code(m)))
    names: set[str] = set()
    pending = [thing.__code__]
    while pending:
        code = pending.pop()
        names.update(code.co_names)
        pending.extend(const for const in code.co_consts if inspect.iscode(const))
    return names


def _plain(value: Any) -> Any:
    """``value`` as JSON-ready numbers, strings, lists and dicts; ``None`` if it is not one."""
    if isinstance(value, Settings):
        value = value.as_dict()
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    try:
        return json.loads(json.dumps(value, sort_keys=True))
    except (TypeError, ValueError):
        return None


def code_fingerprint(train_fn: TrainFn) -> str:
    """A hash of the code that decides what ``train_fn`` returns.

    It covers the course's data, model and training code (:data:`COURSE_CODE`), and
    from the module or notebook that defines ``train_fn``: the source of every function
    and class defined there, and the values of the plain settings (numbers, strings,
    lists, dicts, ``run.settings``) that they read. So editing a model class, a learning
    rate constant or the stand-in dataset makes new runs; rewording markdown or
    changing a plot does not.

    >>> def train_fn(config, seed):
    ...     return {"val_acc": 0.5}
    >>> code_fingerprint(train_fn) == code_fingerprint(train_fn), len(code_fingerprint(train_fn))
    (True, 16)
    """
    function = train_fn if inspect.isfunction(train_fn) else type(train_fn)
    namespace = (
        function.__globals__
        if inspect.isfunction(function)
        else vars(inspect.getmodule(function) or object)
    )
    module = function.__module__
    defined = {
        name: value
        for name, value in namespace.items()
        if _is_code(value) and getattr(value, "__module__", None) == module
    }
    texts = [
        path.read_text(encoding="utf-8")
        for folder in COURSE_CODE
        for path in (sorted(folder.rglob("*.py")) if folder.is_dir() else [folder])
    ]
    texts += [f"{name}:{_source(value)}" for name, value in sorted(defined.items())]
    used = set().union(*(_names_used(value) for value in defined.values())) - set(defined)
    for name in sorted(used & set(namespace)):
        value = _plain(namespace[name])
        if value is not None:
            texts.append(f"{name}={_canonical(value)}")
    digest = hashlib.sha256()
    for text in texts:
        digest.update(text.encode("utf-8") + b"\0")
    return digest.hexdigest()[:16]


def _json_default(value: Any) -> Any:
    """Turn NumPy and torch scalars (zero dimensions) into numbers that JSON can store."""
    if getattr(value, "ndim", None) == 0:
        return value.item()
    raise TypeError(
        f"train_fn returned a {type(value).__name__}, which cannot be saved as "
        "JSON: return numbers, strings, and lists or dicts of them (for a "
        "train.History, its .epochs)."
    )


def _write_atomically(path: Path, record: Mapping[str, Any]) -> None:
    """Write ``record`` as JSON to ``path`` so that the file is either complete or absent."""
    text = json.dumps(record, indent=1, default=_json_default)
    # A temporary file renamed into place: an interrupted write never leaves a
    # half-written cache file under the final name.
    with tempfile.NamedTemporaryFile(
        "w", dir=path.parent, suffix=".partial", delete=False, encoding="utf-8"
    ) as file:
        file.write(text)
    os.replace(file.name, path)


def _load_cached(path: Path, identity: Mapping[str, Any]) -> dict[str, Any] | None:
    """The cached results in ``path`` if it holds this run; ``None`` if it must run."""
    if not path.exists():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        usable = (
            isinstance(record, dict)
            and isinstance(record.get("results"), dict)
            and all(_canonical(record.get(k)) == _canonical(v) for k, v in identity.items())
        )
    except ValueError:  # not JSON, or not text at all
        usable = False
    if not usable:
        warnings.warn(
            f"Cache file {path} is damaged or belongs to another run; running that run again.",
            RuntimeWarning,
            stacklevel=4,
        )
        return None
    return record["results"]


def _train(train_fn: TrainFn, config: Config, seed: int) -> dict[str, Any]:
    """Seed, run ``train_fn`` once and return its results as JSON would store them."""
    # Seeded here, so that a run's result does not depend on which runs before it came
    # from the cache.
    seed_everything(seed)
    results = train_fn(dict(config), seed)  # a copy: train_fn cannot alter the cache key
    if not isinstance(results, Mapping):
        raise TypeError(f"train_fn must return a dict of results, got {type(results).__name__}.")
    clashes = sorted(set(results) & {*config, "seed", "cached"})
    if clashes:
        raise ValueError(
            f"train_fn returned results named {clashes}, like configuration columns; rename them."
        )
    # Round-tripped, so a fresh run gives exactly what the cache will give back later.
    return json.loads(json.dumps(dict(results), default=_json_default))


def _one_run(
    train_fn: TrainFn, config: Config, seed: int, version: str, folder: Path, code: str
) -> tuple[dict[str, Any], bool]:
    """One run's results, and whether they came from the cache."""
    identity = {"version": version, "config": config, "seed": seed, "code": code}
    path = folder / f"{run_key(config, seed, version, code)}.json"
    results = _load_cached(path, identity)
    if results is not None:
        return results, True
    results = _train(train_fn, config, seed)
    _write_atomically(path, {**identity, "results": results})
    return results, False


def run_sweep(
    train_fn: TrainFn,
    grid: Grid,
    seeds: Sequence[int],
    cache_dir: str | Path,
    metric: str = "val_acc",
    maximize: bool = True,
    progress: bool = True,
    *,
    version: str = "1",
    return_runs: bool = False,
) -> pd.DataFrame | tuple[pd.DataFrame, pd.DataFrame]:
    """Run every configuration of ``grid`` with every seed and tabulate the results.

    - ``train_fn(config, seed)`` trains one run and returns a dict of results
      (numbers), optionally with a list of per-epoch dicts under ``"history"`` (such
      as ``train.fit(...).epochs``). Everything is seeded with ``seed`` just before.
    - ``grid`` is a dict of lists (every combination) or a list of configuration dicts;
      see :func:`expand_grid`.
    - Runs found in ``cache_dir`` for the same configuration, seed, ``version`` and
      code (:func:`code_fingerprint`) are loaded, not trained; each new run is saved
      there as soon as it ends. A damaged cache file, or one written by other code, is
      run again (a damaged one with a warning).
    - A progress bar counts the runs; its postfix says how many came from the cache.

    Returns :func:`summarize_runs`'s table: one row per configuration, the mean (and
    standard deviation) of ``metric`` over the seeds, sorted best first, with its
    difference from the best (``"Δ vs best"``), the means of the other numeric
    results and ``n_seeds``. With ``return_runs=True``, returns ``(table, runs)``, where
    ``runs`` has a row per run: configuration, ``seed``, results (``history``
    included) and ``cached``.

    >>> import tempfile
    >>> def train_fn(config, seed):
    ...     return {"val_acc": 0.9 - 0.1 * config["stride"] + 0.01 * seed}
    >>> table = run_sweep(train_fn, {"stride": [1, 2, 3]}, seeds=[0, 1],
    ...                   cache_dir=tempfile.mkdtemp(), progress=False)
    >>> table.round(3)
       stride  val_acc  val_acc_std  Δ vs best  n_seeds
    0       1    0.805        0.007        0.0        2
    1       2    0.705        0.007       -0.1        2
    2       3    0.605        0.007       -0.2        2
    """
    configs = expand_grid(grid)
    seeds = [int(seed) for seed in seeds]
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be a non-empty list of distinct seeds, got {seeds}.")
    folder = Path(cache_dir)
    folder.mkdir(parents=True, exist_ok=True)
    code = code_fingerprint(train_fn)

    rows, cached = [], 0
    with progress_bar(
        total=len(configs) * len(seeds), desc="sweep", unit="run", disable=not progress
    ) as bar:
        for config, seed in itertools.product(configs, seeds):
            results, was_cached = _one_run(train_fn, config, seed, version, folder, code)
            cached += was_cached
            rows.append({**config, "seed": seed, **results, "cached": was_cached})
            bar.set_postfix(cached=cached, refresh=False)
            bar.update()

    # Columns in a fixed order, configuration first, whichever keys each run has.
    config_keys = list(dict.fromkeys(key for config in configs for key in config))
    result_keys = list(
        dict.fromkeys(
            key for row in rows for key in row if key not in config_keys and key != "cached"
        )
    )
    runs = pd.DataFrame(rows, columns=[*config_keys, *result_keys, "cached"])
    table = summarize_runs(runs, metric, maximize)
    return (table, runs) if return_runs else table


def _config_columns(runs: pd.DataFrame) -> list[str]:
    """The configuration columns of a runs table: those before ``seed``."""
    return list(runs.columns[: runs.columns.get_loc("seed")])


def summarize_runs(
    runs: pd.DataFrame,
    metric: str = "val_acc",
    maximize: bool = True,
    by: Sequence[str] | None = None,
) -> pd.DataFrame:
    """One row per configuration, averaged over seeds, sorted by ``metric``, best first.

    ``runs`` is the per-run table of :func:`run_sweep` (``return_runs=True``), whose
    configuration columns come before ``seed``; ``by`` names them for any other table.
    Every numeric result becomes its mean over the seeds; ``metric`` also gets its
    sample standard deviation (``<metric>_std``, NaN for one seed) and ``"Δ vs best"``:
    its mean minus the best mean, in the metric's own units (so 0 for the best row,
    and negative below it when ``maximize``). Ties keep the grid's order.

    >>> runs = pd.DataFrame({"lr": [0.1, 0.1, 0.01, 0.01], "seed": [0, 1, 0, 1],
    ...                      "val_loss": [0.5, 0.7, 0.4, 0.4]})
    >>> summarize_runs(runs, "val_loss", maximize=False).round(3)
         lr  val_loss  val_loss_std  Δ vs best  n_seeds
    0  0.01       0.4         0.000        0.0        2
    1  0.10       0.6         0.141        0.2        2
    """
    by = _config_columns(runs) if by is None else list(by)
    if metric not in runs.columns:
        results = [c for c in runs.columns if c not in (*by, "seed", "cached", HISTORY_KEY)]
        raise KeyError(f"No result called {metric!r}; train_fn returned {results}.")
    table = metrics.aggregate_over_seeds(runs, by, spread=[metric])
    table = table.sort_values(
        metric, ascending=not maximize, kind="stable", na_position="last", ignore_index=True
    )
    delta = table[metric] - table[metric].iloc[0]
    table.insert(table.columns.get_loc(f"{metric}_std") + 1, DELTA_COLUMN, delta)
    return table


def history_frame(runs: pd.DataFrame, by: Sequence[str] | None = None) -> pd.DataFrame:
    """Unroll the runs' histories: one row per run and epoch, with config and seed.

    The result feeds :func:`course_utils.metrics.aggregate_over_seeds` with the epoch
    among the groups, for a mean curve and a band over the seeds per configuration.

    >>> runs = pd.DataFrame({"optimizer": ["sgd", "adam"], "seed": [0, 0],
    ...                      "history": [[{"epoch": 1, "val_loss": 0.9}],
    ...                                  [{"epoch": 1, "val_loss": 0.7}]]})
    >>> history_frame(runs)
      optimizer  seed  epoch  val_loss
    0       sgd     0      1       0.9
    1      adam     0      1       0.7
    """
    by = _config_columns(runs) if by is None else list(by)
    if HISTORY_KEY not in runs.columns or runs[HISTORY_KEY].isna().all():
        raise ValueError(
            f"No run has a {HISTORY_KEY!r}: make train_fn return one "
            f"(a list of per-epoch dicts, such as train.fit(...).epochs)."
        )
    records = [
        {**run[[*by, "seed"]].to_dict(), **epoch}
        for _, run in runs.iterrows()
        if isinstance(run[HISTORY_KEY], list)
        for epoch in run[HISTORY_KEY]
    ]
    return pd.DataFrame(records)
