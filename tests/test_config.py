"""Profiles, data modes, device choice, seeding and the run record."""

import random

import numpy as np
import pytest
import torch

from course_utils import config


def test_profiles_have_growing_sizes():
    smoke, quick, full = (config.PROFILES[n] for n in config.PROFILE_NAMES)
    assert smoke.epochs < quick.epochs < full.epochs
    assert smoke.train_size < quick.train_size and full.train_size is None
    assert all(p.seeds and p.batch_size > 0 for p in (smoke, quick, full))


def test_auto_profile_depends_on_device(monkeypatch):
    monkeypatch.delenv("COURSE_PROFILE", raising=False)
    assert config.resolve_profile(device=torch.device("cpu")).name == "quick"
    assert config.resolve_profile(device=torch.device("cuda")).name == "full"
    monkeypatch.setenv("COURSE_PROFILE", "smoke")
    assert config.resolve_profile().name == "smoke"
    assert config.resolve_profile("full").name == "full"  # an explicit argument wins


def test_unknown_profile_and_data_mode_fail_clearly(monkeypatch):
    with pytest.raises(ValueError, match="COURSE_PROFILE must be one of smoke, quick, full"):
        config.resolve_profile("fast")
    monkeypatch.setenv("COURSE_DATA", "internet")
    with pytest.raises(ValueError, match="COURSE_DATA must be one of"):
        config.data_mode()


def test_data_dir_follows_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("COURSE_DATA_DIR", raising=False)
    assert config.data_dir().name == "data"
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    assert config.data_dir() == tmp_path


def test_pick_device_prefers_cuda_then_mps(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert config.pick_device().type == "cpu"
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert config.pick_device().type == "mps"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert config.pick_device().type == "cuda"


@pytest.mark.parametrize(
    "profile, mode, on_disk, online, expected",
    [
        ("smoke", "real", True, True, "embedded"),
        ("quick", "embedded", True, True, "embedded"),
        ("quick", "auto", True, False, "real"),
        ("quick", "auto", False, True, "real"),
        ("quick", "auto", False, False, "embedded"),
        ("quick", "real", False, False, "real"),
    ],
)
def test_data_source_decision(monkeypatch, tmp_path, profile, mode, on_disk, online, expected):
    if on_disk:
        (tmp_path / "MNIST" / "raw").mkdir(parents=True)
        (tmp_path / "MNIST" / "raw" / "train-images-idx3-ubyte.gz").touch()
    monkeypatch.setattr(config, "network_available", lambda host, **kw: online)
    source = config.resolve_data_source("mnist", config.PROFILES[profile], mode, root=tmp_path)
    assert source.kind == expected
    if expected == "embedded" and profile == "quick" and mode == "auto":
        assert source.reason.startswith("OFFLINE")


def test_network_check_is_false_for_unreachable_host():
    assert config.network_available("host.invalid", timeout=1) is False


def test_seed_everything_is_reproducible():
    config.seed_everything(7)
    first = (random.random(), np.random.rand(), torch.rand(3))  # noqa: NPY002 (seeded globally)
    generator = config.seed_everything(7)
    second = (random.random(), np.random.rand(), torch.rand(3))  # noqa: NPY002
    assert first[0] == second[0] and first[1] == second[1] and torch.equal(first[2], second[2])
    assert torch.equal(
        torch.randperm(10, generator=generator),
        torch.randperm(10, generator=config.seed_everything(7)),
    )


def test_seeded_loader_workers_are_reproducible():
    dataset = torch.utils.data.TensorDataset(torch.arange(20))

    def batches(seed):
        loader = torch.utils.data.DataLoader(
            dataset,
            batch_size=5,
            shuffle=True,
            num_workers=2,
            generator=config.seed_everything(seed),
            worker_init_fn=config.seed_worker,
        )
        return [b[0].tolist() for b in loader]

    assert batches(3) == batches(3)
    assert batches(3) != batches(4)


def test_run_record_is_one_line_with_everything(monkeypatch, capsys):
    monkeypatch.setattr(config, "network_available", lambda host, **kw: False)
    monkeypatch.setenv("COURSE_DATA_DIR", "/nonexistent")
    run = config.start_run(dataset="mnist", seed=3, profile="quick")
    out = capsys.readouterr().out.splitlines()
    assert out[0] == run.record
    for part in (
        "profile=quick",
        "data=embedded (OFFLINE",
        "device=",
        "seed=3",
        f"torch={torch.__version__}",
        "torchvision=",
    ):
        assert part in out[0]
    assert out[1].startswith("NOTICE: using the embedded substitute for mnist")


def test_run_seeds_count_from_the_run_seed() -> None:
    run = config.start_run(profile="smoke", seed=3, quiet=True)
    assert run.seeds(1) == (3,)
    assert run.seeds(3) == (3, 4, 5)
    with pytest.raises(ValueError, match="at least 1"):
        run.seeds(0)


def test_settings_pick_the_run_profile_and_reject_gaps() -> None:
    run = config.start_run(profile="smoke", quiet=True)
    per_profile = {
        "smoke": {"epochs": 1, "images": 500},
        "quick": {"epochs": 5, "images": 8_000},
        "full": {"epochs": 10, "images": None},
    }
    settings = run.settings(**per_profile)
    assert (settings.epochs, settings.images) == (1, 500)
    assert settings.as_dict() == {"epochs": 1, "images": 500}
    table = repr(settings)
    assert table.splitlines()[0].split() == ["setting", "smoke*", "quick", "full"]
    assert "8,000" in table and "all" in table
    with pytest.raises(AttributeError, match="no setting 'epoch'"):
        _ = settings.epoch
    with pytest.raises(ValueError, match="full are missing"):
        run.settings(smoke=per_profile["smoke"], quick=per_profile["quick"])
    with pytest.raises(ValueError, match="same names"):
        run.settings(**{**per_profile, "full": {"epochs": 10}})


def test_data_dir_outside_a_course_folder_is_the_user_cache(monkeypatch, tmp_path):
    """An installed package (in site-packages) keeps no data inside itself."""
    from pathlib import Path

    site_packages = tmp_path / "site-packages"
    (site_packages / "course_utils").mkdir(parents=True)
    (site_packages / "data").mkdir()  # a stray top-level `data` folder does not count
    monkeypatch.setattr(config, "__file__", str(site_packages / "course_utils" / "config.py"))
    monkeypatch.delenv("COURSE_DATA_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    elsewhere = tmp_path / "somewhere" / "notebooks"
    elsewhere.mkdir(parents=True)
    monkeypatch.chdir(elsewhere)
    assert config.data_dir() == tmp_path / "cache" / "course_utils" / "data"

    pack = tmp_path / "student"  # notebooks run inside an unpacked student pack
    for name in ("course_utils", "data", "notebooks"):
        (pack / name).mkdir(parents=True)
    (pack / "pyproject.toml").write_text("[project]\n")
    monkeypatch.chdir(pack / "notebooks")
    assert config.data_dir() == pack / "data"
    monkeypatch.setenv("COURSE_DATA_DIR", "~/datasets")
    assert config.data_dir() == Path.home() / "datasets"


def test_data_dir_in_a_checkout_is_its_data_folder(monkeypatch, tmp_path):
    from pathlib import Path

    monkeypatch.delenv("COURSE_DATA_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    checkout = Path(config.__file__).resolve().parent.parent
    assert (checkout / "pyproject.toml").is_file(), "the tests run from a checkout"
    assert config.data_dir() == checkout / "data"
