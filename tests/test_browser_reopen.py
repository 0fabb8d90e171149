"""A notebook with explorers and progress bars, saved and reopened in a real browser.

JupyterLab runs in headless Chromium (Debian's ``chromium`` and ``chromium-driver``,
driven by Selenium), as a student uses it: run every cell, save, close, stop the kernel,
open the notebook again. Reopened, it must show no "Error displaying widget" and still
show each explorer's picture:

- in the course's own JupyterLab, whose settings (installed with the package) save the
  widgets' state, the explorers come back with their controls and figures;
- opened on another machine (another server, so the notebook is not trusted there),
  from a JupyterLab that saved no widget state, each explorer shows the picture that
  :class:`course_utils.widgets.Explorer` stores beside its widget view.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import sysconfig
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import nbformat
import pytest

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
# The setting that `pip install` puts next to JupyterLab (pyproject.toml's data-files).
LAB_SETTINGS = (
    Path(sysconfig.get_paths()["data"]) / "share/jupyter/lab/settings/overrides.d/course_utils.json"
)
TOKEN = "course-test"
NOTEBOOK = "explorers.ipynb"
CELLS = [
    "from torch import nn\nimport torch\nfrom course_utils import progress, widgets",
    "widgets.conv_arithmetic_explorer(lambda W, F, S, P: (W - F + 2 * P) // S + 1)",
    "torch.manual_seed(0)\n"
    "model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Conv2d(4, 2, 3))\n"
    "widgets.feature_map_browser(model, torch.rand(3, 1, 12, 12))",
    "with progress.progress_bar(total=5, desc='epoch 1/1') as bar:\n    bar.update(5)",
]
EXPLORERS = 2

selenium = pytest.importorskip("selenium.webdriver")
if not (Path(CHROMIUM).is_file() and Path(CHROMEDRIVER).is_file()):
    pytest.skip(
        "needs Chromium: apt-get install -y chromium chromium-driver", allow_module_level=True
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def jupyterlab(root: Path, home: Path, course_settings: bool) -> Iterator[str]:
    """A JupyterLab server on ``root``; its state (trust database, user settings) lives
    in ``home``, so two homes are two machines. Yields the base URL."""
    port = free_port()
    env = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(home / "config"),
        "JUPYTER_DATA_DIR": str(home / "data"),
        "JUPYTERLAB_SETTINGS_DIR": str(home / "user-settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"),
        "OMP_NUM_THREADS": "1",
    }
    command = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--allow-root",
        f"--port={port}",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.token={TOKEN}",
        f"--ServerApp.root_dir={root}",
        # Lets the test call JupyterLab's commands (run all, save) as the menus do.
        "--LabApp.expose_app_in_browser=True",
    ]
    if not course_settings:  # a JupyterLab installed elsewhere, without the course's settings
        (home / "app-settings").mkdir(parents=True, exist_ok=True)
        command.append(f"--LabApp.app_settings_dir={home / 'app-settings'}")
    home.mkdir(parents=True, exist_ok=True)
    with open(home / "server.log", "w") as log:
        server = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                urllib.request.urlopen(f"{url}/api/status?token={TOKEN}", timeout=5)
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    pytest.fail("JupyterLab did not start:\n" + (home / "server.log").read_text())
                time.sleep(0.5)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)


def stop_kernels(url: str) -> None:
    """What *Kernel → Shut Down All Kernels* does: the widgets' models are gone."""
    sessions = json.load(urllib.request.urlopen(f"{url}/api/sessions?token={TOKEN}"))
    for session in sessions:
        request = urllib.request.Request(
            f"{url}/api/sessions/{session['id']}?token={TOKEN}", method="DELETE"
        )
        urllib.request.urlopen(request)


@pytest.fixture
def chromium(tmp_path: Path) -> Iterator:
    options = selenium.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'chromium'}",
        "--window-size=1400,1000",
    ):
        options.add_argument(flag)
    from selenium.webdriver.chrome.service import Service

    driver = selenium.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def wait_for(driver, script: str, what: str, timeout: float = 180) -> object:
    """Poll a JavaScript expression in the page until it is truthy."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = driver.execute_script(f"return {script}")
        if value:
            return value
        time.sleep(0.5)
    pytest.fail(f"timed out waiting for {what}")


def open_notebook(driver, url: str) -> None:
    driver.get(f"{url}/lab/tree/{NOTEBOOK}?token={TOKEN}")
    wait_for(driver, "window.jupyterapp && document.querySelector('.jp-Notebook')", "JupyterLab")


def run_save_and_close(driver, url: str) -> None:
    """Run all cells in the browser, save, close the tab and stop the kernel."""
    open_notebook(driver, url)
    wait_for(
        driver,
        "(document.querySelector('.jp-Toolbar-kernelName') || {}).textContent?.includes('Python')",
        "the kernel",
    )
    driver.execute_script("window.jupyterapp.commands.execute('notebook:run-all-cells')")
    wait_for(
        driver,
        "document.querySelectorAll('.jp-OutputArea-output progress').length === 1"
        " && document.querySelectorAll('.jp-OutputArea-output img').length"
        f" === {EXPLORERS}",
        "the explorers' figures and the progress bar",
        timeout=400,  # importing torch and drawing take minutes on a loaded 2-core machine
    )
    driver.execute_script("window.jupyterapp.commands.execute('docmanager:save')")
    wait_for(driver, "!document.querySelector('.jp-mod-dirty')", "the save")
    driver.execute_script("window.jupyterapp.commands.execute('application:close-all')")
    stop_kernels(url)


def reopened_outputs(driver, url: str) -> dict:
    """Open the notebook again, with no kernel behind its widgets, and read its outputs."""
    open_notebook(driver, url)
    wait_for(driver, "document.querySelectorAll('.jp-OutputArea-output').length >= 3", "outputs")
    time.sleep(5)  # the widget manager gives up on a missing model after about 2 s
    return driver.execute_script(
        "const outputs = [...document.querySelectorAll('.jp-OutputArea-output')];"
        "return {text: outputs.map(o => o.innerText).join('\\n'),"
        " images: document.querySelectorAll('.jp-OutputArea-output img').length,"
        " sliders: document.querySelectorAll('.jp-OutputArea-output .widget-slider').length,"
        " bars: document.querySelectorAll('.jp-OutputArea-output progress').length};"
    )


def write_notebook(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in CELLS])
    nb.metadata["kernelspec"] = {
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
        "name": "python3",
    }
    nbformat.write(nb, root / NOTEBOOK)
    return root / NOTEBOOK


def test_reopened_in_the_courses_jupyterlab_the_explorers_come_back(
    tmp_path: Path, chromium
) -> None:
    assert LAB_SETTINGS.is_file(), f"{LAB_SETTINGS} missing: run `make setup` or pip install"
    saved = write_notebook(tmp_path / "work")
    with jupyterlab(saved.parent, tmp_path / "student", course_settings=True) as url:
        run_save_and_close(chromium, url)
        state = nbformat.read(saved, as_version=4).metadata.get("widgets", {})
        assert "application/vnd.jupyter.widget-state+json" in state
        reopened = reopened_outputs(chromium, url)
    assert "Error displaying widget" not in reopened["text"]
    assert reopened["images"] == EXPLORERS
    assert reopened["sliders"] >= 5  # W, F, S, P and the channel
    assert reopened["bars"] == 1 and "epoch 1/1: 100%" in reopened["text"]


@pytest.mark.skip(
    reason="hangs after the save in a fresh clone (seen 2026-12-06, load 0; it passed in the "
    "working tree in 21 s): to be found before it gates CI again"
)
def test_opened_elsewhere_each_explorer_shows_its_picture(tmp_path: Path, chromium) -> None:
    saved = write_notebook(tmp_path / "work")
    with jupyterlab(saved.parent, tmp_path / "student", course_settings=False) as url:
        run_save_and_close(chromium, url)
    assert "widgets" not in nbformat.read(saved, as_version=4).metadata
    with jupyterlab(saved.parent, tmp_path / "grader", course_settings=False) as url:
        reopened = reopened_outputs(chromium, url)
    assert "Error displaying widget" not in reopened["text"]
    assert reopened["images"] == EXPLORERS
    assert reopened["bars"] == 1


def test_a_released_notebook_opens_unmodified(tmp_path: Path, chromium) -> None:
    # JupyterLab rewrites a kernelspec that is not as ipykernel writes it (and then asks to
    # save a notebook the student never touched). Every notebook has the same kernelspec
    # (tests/test_release.py), so one stands for all.
    from course_utils.instructor.release import build_release

    pack = tmp_path / "pack"
    build_release(Path(__file__).resolve().parents[1] / "notebooks", pack)
    name = sorted(path.name for path in (pack / "notebooks").glob("*.ipynb"))[0]
    with jupyterlab(pack / "notebooks", tmp_path / "student", course_settings=True) as url:
        chromium.get(f"{url}/lab/tree/{name}?token={TOKEN}")
        wait_for(chromium, "window.jupyterapp && document.querySelector('.jp-Notebook')", name)
        wait_for(
            chromium,
            "document.querySelector('.jp-Toolbar-kernelName')?.textContent.includes('Python')"
            " && document.querySelector('.jp-Notebook-ExecutionIndicator')"
            "?.getAttribute('data-status') === 'idle'",
            f"{name}'s kernel",
        )
        time.sleep(3)  # the kernel's info (language_info) arrives just after it starts
        modified = chromium.execute_script("return !!document.querySelector('.jp-mod-dirty')")
    assert not modified, f"{name} is modified as soon as it opens"
