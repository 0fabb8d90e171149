"""Run profile, data mode, device choice, seeding and the run record.

Every notebook starts with::

    from course_utils import config
    run = config.start_run(dataset="mnist", seed=0)

which picks the profile and device, seeds everything, decides where the data comes
from, and prints a one-line *run record* so that anyone reading the executed notebook
knows how it was produced.

Environment variables (all optional):

``COURSE_PROFILE``   ``smoke`` | ``quick`` | ``full`` | ``auto`` (default ``auto``:
                     ``full`` on a GPU, ``quick`` on a CPU)
``COURSE_DATA``      ``auto`` | ``real`` | ``embedded`` (default ``auto``)
``COURSE_DATA_DIR``  where real datasets live (default: see :func:`data_dir`)
"""

from __future__ import annotations

import os
import platform
import random
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torchvision

PROFILE_NAMES = ("smoke", "quick", "full")
DATA_MODES = ("auto", "real", "embedded")


@dataclass(frozen=True)
class Profile:
    """Concrete sizes for one run profile.

    ``train_size``/``val_size``/``test_size`` of ``None`` mean "the whole split".
    """

    name: str
    epochs: int
    train_size: int | None
    val_size: int | None
    test_size: int | None
    batch_size: int
    image_size: int
    seeds: tuple[int, ...]
    patience: int


PROFILES: dict[str, Profile] = {
    # CI: seconds per notebook, always on embedded data.
    "smoke": Profile(
        "smoke",
        epochs=1,
        train_size=512,
        val_size=128,
        test_size=256,
        batch_size=64,
        image_size=32,
        seeds=(0,),
        patience=1,
    ),
    # Laptop CPU: minutes per notebook.
    "quick": Profile(
        "quick",
        epochs=5,
        train_size=8_000,
        val_size=1_000,
        test_size=2_000,
        batch_size=64,
        image_size=32,
        seeds=(0, 1),
        patience=2,
    ),
    # The assignments' real sizes; meant for a GPU.
    "full": Profile(
        "full",
        epochs=10,
        train_size=None,
        val_size=None,
        test_size=None,
        batch_size=64,
        image_size=224,
        seeds=(0, 1, 2),
        patience=4,
    ),
}

# Hosts torchvision downloads each dataset from; used only to decide whether a
# download can work before trying one.
DATASET_HOSTS: dict[str, str] = {
    "mnist": "ossci-datasets.s3.amazonaws.com",
    "cifar10": "www.cs.toronto.edu",
    "oxford_pet": "www.robots.ox.ac.uk",
}

# Files whose presence means a real dataset is already on disk.
DATASET_MARKERS: dict[str, tuple[str, ...]] = {
    "mnist": ("MNIST/raw/train-images-idx3-ubyte", "MNIST/raw/train-images-idx3-ubyte.gz"),
    "cifar10": ("cifar-10-batches-py/data_batch_1", "cifar-10-python.tar.gz"),
    "oxford_pet": ("oxford-iiit-pet/annotations/trimaps",),
}


def pick_device() -> torch.device:
    """Return the best available device: CUDA, then Apple's MPS, then CPU.

    >>> pick_device().type in {"cuda", "mps", "cpu"}
    True
    """
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def resolve_profile(name: str | None = None, device: torch.device | None = None) -> Profile:
    """Return the :class:`Profile` for ``name`` (default: ``$COURSE_PROFILE`` or ``auto``).

    ``auto`` means ``full`` on a CUDA GPU and ``quick`` everywhere else.

    >>> resolve_profile("smoke").epochs
    1
    """
    name = (name or os.environ.get("COURSE_PROFILE") or "auto").strip().lower()
    if name == "auto":
        device = device or pick_device()
        name = "full" if device.type == "cuda" else "quick"
    if name not in PROFILES:
        raise ValueError(
            f"Unknown profile {name!r}: COURSE_PROFILE must be one of "
            f"{', '.join(PROFILE_NAMES)} or auto."
        )
    return PROFILES[name]


def data_mode(mode: str | None = None) -> str:
    """Return the data mode (``$COURSE_DATA`` by default): auto, real or embedded.

    >>> data_mode("embedded")
    'embedded'
    """
    mode = (mode or os.environ.get("COURSE_DATA") or "auto").strip().lower()
    if mode not in DATA_MODES:
        raise ValueError(f"Unknown data mode {mode!r}: COURSE_DATA must be one of {DATA_MODES}.")
    return mode


def data_dir() -> Path:
    """Return the dataset cache root.

    In order: ``$COURSE_DATA_DIR``; the ``data/`` folder of the course folder (a checkout
    of the repository or an unpacked student pack: ``pyproject.toml``, ``course_utils/``
    and ``data/`` side by side) that holds the imported package or the working directory
    (a notebook's folder) or one of its parents; otherwise ``course_utils/data`` in the
    user's cache folder (``$XDG_CACHE_HOME``, by default ``~/.cache``), never a folder
    inside the installed package.

    >>> data_dir().name
    'data'
    """
    configured = os.environ.get("COURSE_DATA_DIR")
    if configured:
        return Path(configured).expanduser()
    package_root = Path(__file__).resolve().parent.parent
    cwd = Path.cwd().resolve()
    for folder in (package_root, cwd, *cwd.parents):
        if all((folder / name).exists() for name in ("pyproject.toml", "course_utils", "data")):
            return folder / "data"
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser()
    return cache / "course_utils" / "data"


def network_available(host: str, port: int = 443, timeout: float = 3.0) -> bool:
    """Return whether a TCP connection to ``host`` can be opened within ``timeout`` s."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def dataset_on_disk(dataset: str, root: Path | None = None) -> bool:
    """Return whether the real ``dataset`` ("mnist" or "cifar10") is already cached."""
    root = root or data_dir()
    return any((root / marker).exists() for marker in DATASET_MARKERS[dataset])


@dataclass(frozen=True)
class DataSource:
    """Where a notebook's data comes from, and why."""

    kind: str  # "real", "embedded" or "none"
    reason: str

    def __str__(self) -> str:
        return f"{self.kind} ({self.reason})" if self.reason else self.kind


def resolve_data_source(
    dataset: str | None, profile: Profile, mode: str | None = None, root: Path | None = None
) -> DataSource:
    """Decide between the real dataset and its embedded substitute.

    The smoke profile always uses embedded data. ``real`` mode never falls back;
    ``auto`` uses real data when it is cached or downloadable.

    >>> resolve_data_source("mnist", PROFILES["smoke"]).kind
    'embedded'
    """
    if dataset is None:
        return DataSource("none", "")
    if dataset not in DATASET_MARKERS:
        raise ValueError(f"Unknown dataset {dataset!r}: expected one of {sorted(DATASET_MARKERS)}.")
    mode = data_mode(mode)
    root = root or data_dir()
    if profile.name == "smoke":
        return DataSource("embedded", "smoke profile always uses embedded data")
    if mode == "embedded":
        return DataSource("embedded", "COURSE_DATA=embedded")
    if dataset_on_disk(dataset, root):
        return DataSource("real", f"cached in {root}")
    if mode == "real":
        return DataSource("real", f"will download into {root}")
    if network_available(DATASET_HOSTS[dataset]):
        return DataSource("real", f"downloading into {root}")
    return DataSource("embedded", f"OFFLINE: {dataset} not in {root} and not downloadable")


def seed_worker(worker_id: int) -> None:
    """``DataLoader`` ``worker_init_fn`` that derives NumPy/random seeds from torch's.

    Pass it together with a seeded ``generator`` so that loader workers are
    reproducible too.
    """
    worker_seed = torch.initial_seed() % 2**32
    # The legacy global generator on purpose: it is what np.random.* in user code draws from.
    np.random.seed(worker_seed)  # noqa: NPY002
    random.seed(worker_seed)


# How many times seed_everything has run in this process: the course's loaders restart
# their pass count after each (course_utils.data.PassSeeds), so that a run seeded anew
# sees the same batches whatever ran before it in the same kernel.
_seedings = 0


def seedings() -> int:
    """How many times :func:`seed_everything` has run in this process.

    >>> before = seedings(); _ = seed_everything(3); seedings() - before
    1
    """
    return _seedings


def seed_everything(seed: int, deterministic: bool = True) -> torch.Generator:
    """Seed Python, NumPy and torch, and return a seeded generator for loaders.

    With ``deterministic=True`` the same seed gives bit-identical results on CPU
    (and asks cuDNN for deterministic kernels on a GPU). The course's loaders start
    their sequence of passes over (see :class:`course_utils.data.PassSeeds`).

    >>> g = seed_everything(0)
    >>> a = torch.rand(2); _ = seed_everything(0); bool((a == torch.rand(2)).all())
    True
    """
    global _seedings
    _seedings += 1
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 (the global generator user code draws from)
    torch.manual_seed(seed)
    if deterministic:
        # Needed by cuBLAS for deterministic matrix products; harmless on CPU.
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
        torch.use_deterministic_algorithms(True, warn_only=True)
    generator = torch.Generator()
    generator.manual_seed(seed)
    return generator


@dataclass(frozen=True)
class Run:
    """Everything a notebook needs to know about how it is being run."""

    profile: Profile
    data: DataSource
    device: torch.device
    seed: int
    data_mode: str
    generator: torch.Generator = field(compare=False, repr=False)
    # Where a pretrained model's weights come from, for notebooks that use one
    # (see course_utils.models.transfer): "imagenet (...)" or "random-init (...)".
    weights: str | None = None

    @property
    def record(self) -> str:
        """The one-line run record printed at the top of every notebook.

        >>> run = start_run(profile="smoke", quiet=True, weights="random-init (test)")
        >>> run.record.split(" | ")[-1]
        'weights=random-init (test)'
        """
        record = (
            f"RUN RECORD | profile={self.profile.name} | data={self.data} | "
            f"device={self.device.type} | seed={self.seed} | torch={torch.__version__} | "
            f"torchvision={torchvision.__version__} | python={platform.python_version()}"
        )
        return record if self.weights is None else f"{record} | weights={self.weights}"

    def with_data(self, data: DataSource) -> Run:
        """Return a copy with another data source (used when real data fails to load)."""
        return replace(self, data=data)

    def seeds(self, count: int) -> tuple[int, ...]:
        """``count`` consecutive seeds starting at this run's seed, for repeated runs.

        >>> start_run(profile="smoke", seed=7, quiet=True).seeds(3)
        (7, 8, 9)
        """
        if count < 1:
            raise ValueError(f"count is a number of seeds and must be at least 1, got {count}.")
        return tuple(range(self.seed, self.seed + count))

    def settings(self, **per_profile: Mapping[str, Any]) -> Settings:
        """Pick this run's notebook settings from one mapping per profile, by name.

        Every profile (``smoke``, ``quick``, ``full``) must be given, with the same
        names in each, so that a notebook cannot forget one. The result reads by
        attribute (``settings.epochs``) and prints as a table of all the profiles,
        with this run's marked, for the top of the notebook.

        >>> run = start_run(profile="smoke", quiet=True)
        >>> settings = run.settings(smoke={"epochs": 1, "images": 512},
        ...                         quick={"epochs": 5, "images": 8_000},
        ...                         full={"epochs": 10, "images": None})
        >>> settings.epochs, settings.images
        (1, 512)
        >>> run.settings(smoke={"epochs": 1}, quick={"epochs": 5})
        Traceback (most recent call last):
        ...
        ValueError: settings for the profiles full are missing; give smoke=, quick= and full=.
        """
        return Settings(self.profile.name, per_profile)


class Settings:
    """One profile's notebook settings, chosen by :meth:`Run.settings`.

    ``None`` as a value means "everything" (all images, no limit) and prints as ``all``.
    """

    def __init__(self, profile: str, per_profile: Mapping[str, Mapping[str, Any]]) -> None:
        missing = [name for name in PROFILES if name not in per_profile]
        unknown = sorted(set(per_profile) - set(PROFILES))
        if missing:
            raise ValueError(
                f"settings for the profiles {', '.join(missing)} are missing; "
                "give smoke=, quick= and full=."
            )
        if unknown:
            raise ValueError(f"unknown profiles {unknown}; the profiles are {list(PROFILES)}.")
        names = list(per_profile[profile])
        for name, values in per_profile.items():
            if list(values) != names:
                raise ValueError(
                    f"the {name} settings have {list(values)}, but the {profile} "
                    f"settings have {names}: give every profile the same names."
                )
        self._profile = profile
        self._per_profile = {name: dict(per_profile[name]) for name in PROFILES}
        self._values = self._per_profile[profile]

    def __getattr__(self, name: str) -> Any:
        values = self.__dict__.get("_values", {})
        if name in values:
            return values[name]
        raise AttributeError(f"no setting {name!r}; the settings are {list(values)}.")

    def as_dict(self) -> dict[str, Any]:
        """This profile's settings as a plain dict.

        >>> Settings("quick", {p: {"epochs": i} for i, p in enumerate(PROFILES)}).as_dict()
        {'epochs': 1}
        """
        return dict(self._values)

    def __repr__(self) -> str:
        """All profiles side by side, this run's marked with ``*``.

        >>> Settings("quick", {"smoke": {"epochs": 1}, "quick": {"epochs": 5},
        ...                    "full": {"epochs": 10}})
        setting  smoke  quick*  full
        epochs   1      5       10
        """

        def show(value: Any) -> str:
            if value is None:
                return "all"
            if isinstance(value, (tuple, list)):
                return ", ".join(map(show, value))
            return (
                f"{value:,}"
                if isinstance(value, int) and not isinstance(value, bool)
                else str(value)
            )

        header = ["setting", *(f"{p}*" if p == self._profile else p for p in PROFILES)]
        rows = [
            [name, *(show(self._per_profile[p][name]) for p in PROFILES)] for name in self._values
        ]
        widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
        return "\n".join(
            "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
            for row in [header, *rows]
        )


def start_run(
    dataset: str | None = None,
    seed: int = 0,
    profile: str | None = None,
    data: str | None = None,
    quiet: bool = False,
    weights: str | None = None,
) -> Run:
    """Resolve profile, device and data source, seed everything, print the run record.

    ``profile`` and ``data`` default to ``$COURSE_PROFILE`` and ``$COURSE_DATA``.
    ``weights`` says where a pretrained model's weights come from (for example
    ``course_utils.models.transfer.imagenet_weights().description``); the record shows it.

    >>> run = start_run(profile="smoke", quiet=True)
    >>> run.profile.name, run.data.kind
    ('smoke', 'none')
    """
    device = pick_device()
    chosen = resolve_profile(profile, device)
    source = resolve_data_source(dataset, chosen, data)
    generator = seed_everything(seed)
    run = Run(
        profile=chosen,
        data=source,
        device=device,
        seed=seed,
        data_mode=data_mode(data),
        generator=generator,
        weights=weights,
    )
    if not quiet:
        print(run.record)
        if source.reason.startswith("OFFLINE"):
            print(
                f"NOTICE: using the embedded substitute for {dataset}; "
                f"put the real files in {data_dir()} or go online for the real dataset."
            )
    return run
