"""The explorers and progress bars with ipywidgets 7.7.1, the version Colab ships.

pyproject.toml accepts ipywidgets 7.7 and 8 so that pip keeps a host's widgets (Colab's
frontend does not fully support 8). This venv holds ipywidgets 7.7.1 (and the
ipython_genutils it imports) and reuses this project's site-packages for everything else
through a .pth file, so no PyTorch is downloaded again; there, the widget and progress-bar
tests and the modules' doctests run as they do here with ipywidgets 8.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
WIDGETS7 = ["ipywidgets==7.7.1", "ipython_genutils==0.2.0"]
TESTS = [
    "tests/test_widgets.py",
    "tests/test_progress.py",
    "course_utils/widgets.py",
    "course_utils/progress.py",
]


@pytest.fixture(scope="module")
def python7(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The interpreter of a venv with ipywidgets 7.7.1 over this project's packages."""
    venv = tmp_path_factory.mktemp("widgets7") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    # After the venv's own site-packages: its ipywidgets 7 comes first.
    (Path(purelib) / "course_dependencies.pth").write_text(sysconfig.get_paths()["purelib"])
    pip = [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet"]
    subprocess.run([*pip, "--no-deps", *WIDGETS7], check=True, capture_output=True)
    return python


def test_explorers_and_progress_bars_work_with_ipywidgets_7(python7: Path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    version = subprocess.run(
        [str(python7), "-c", "import ipywidgets; print(ipywidgets.__version__)"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    ).stdout.strip()
    assert version == "7.7.1"
    # `python -m pytest` from the checkout imports course_utils from it (the .pth file's
    # folder is no site folder, so the editable install there stays inactive).
    done = subprocess.run(
        [str(python7), "-m", "pytest", "-q", "-p", "no:cacheprovider", "--doctest-modules"] + TESTS,
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert " passed" in done.stdout and "skipped" not in done.stdout
