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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def stop_kernels(url: str) -> None:
    """What *Kernel → Shut Down All Kernels* does: the widgets' models are gone."""
    sessions = json.load(urllib.request.urlopen(f"{url}/api/sessions?token={TOKEN}"))
    for session in sessions:
        request = urllib.request.Request(
            f"{url}/api/sessions/{session['id']}?token={TOKEN}", method="DELETE"
        )
        urllib.request.urlopen(request)


@dataclass
class Page:
    """The browser a test drives, and the folder where a failed wait leaves what it saw."""

    driver: Any
    evidence: Path


@pytest.fixture
def page(tmp_path: Path) -> Iterator[Page]:
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
    yield Page(driver, tmp_path)
    driver.quit()


# The notebook JupyterLab shows: opened by its URL, it is the main area's current widget.
PANEL = "window.jupyterapp?.shell.currentWidget"
# The toolbar names the kernel as soon as the session is *requested*; until the server has
# started it the session has no kernel, and "run all" then runs nothing, silently. This
# race, more likely on a slow first start, left a fresh clone waiting for cells that never
# ran (the only save in its log was JupyterLab's 2-minute autosave).
KERNEL_IDLE = f"{PANEL}?.sessionContext?.session?.kernel?.status === 'idle'"
CODE_CELLS = f"[...({PANEL}?.content?.model?.cells ?? [])].filter(c => c.type === 'code')"
# What makes waiting pointless: a dialog waits for a click, a cell failed, the kernel died.
BLOCKER = f"""(() => {{
  const dialog = document.querySelector('.jp-Dialog');
  if (dialog) return 'a dialog is open: ' + dialog.innerText;
  if ({PANEL}?.sessionContext?.session?.kernel?.status === 'dead') return 'the kernel died';
  for (const cell of {CODE_CELLS}) {{
    const error = cell.outputs.toJSON().find(o => o.output_type === 'error');
    if (error) return `a cell failed: ${{error.ename}}: ${{error.evalue}}`;
  }}
  return '';
}})()"""


def wait_for(page: Page, script: str, what: str, timeout: float = 60) -> None:
    """Poll a JavaScript expression in the page until it is truthy.

    Fails at once when something blocks it (:data:`BLOCKER`), else after ``timeout``
    seconds; either way it saves a screenshot and the page's text beside the test.
    """
    deadline = time.monotonic() + timeout
    while True:
        done, blocker = page.driver.execute_script(f"return [!!({script}), {BLOCKER}];")
        if done:
            return
        if blocker or time.monotonic() > deadline:
            screenshot, text = page.evidence / "page.png", page.evidence / "page.txt"
            page.driver.save_screenshot(str(screenshot))
            text.write_text(page.driver.execute_script("return document.body.innerText"))
            why = blocker or f"not within {timeout:.0f} s"
            pytest.fail(f"waiting for {what}: {why} (the page: {screenshot}, {text})")
        time.sleep(0.5)


def open_notebook(page: Page, url: str, name: str = NOTEBOOK) -> None:
    """Open ``name`` and wait until its kernel is connected and idle."""
    page.driver.get(f"{url}/lab/tree/{name}?token={TOKEN}")
    wait_for(page, f"{PANEL}?.content?.model", f"JupyterLab to show {name}")
    wait_for(page, KERNEL_IDLE, f"{name}'s kernel to start")


def run_command(page: Page, command: str) -> None:
    """Run a JupyterLab command as its menu item does (without waiting for it to finish)."""
    page.driver.execute_script(f"window.jupyterapp.commands.execute('{command}')")


def run_save_and_close(page: Page, url: str, saved: Path) -> None:
    """Run all cells in the browser, save, close the tab and stop the kernel."""
    open_notebook(page, url)
    run_command(page, "notebook:run-all-cells")
    prompts = "[...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')]"
    wait_for(page, f"{prompts}.every(p => p.textContent.trim() !== '[ ]:')", "run all to start")
    wait_for(
        page,
        f"{CODE_CELLS}.every(c => c.executionCount !== null) && {KERNEL_IDLE}",
        "every cell to run",
        timeout=300,  # importing torch and drawing take minutes on a loaded 2-core machine
    )
    wait_for(
        page,
        "document.querySelectorAll('.jp-OutputArea-output progress').length === 1"
        " && document.querySelectorAll('.jp-OutputArea-output img').length"
        f" === {EXPLORERS}",
        "the explorers' figures and the progress bar",
    )
    run_command(page, "docmanager:save")
    wait_for(page, f"{PANEL}.context.model.dirty === false", "the save")
    on_disk = nbformat.read(saved, as_version=4)
    assert all(cell.execution_count for cell in on_disk.cells), "the save missed the run"
    run_command(page, "application:close-all")
    wait_for(page, "!document.querySelector('.jp-NotebookPanel')", "the notebook to close")
    stop_kernels(url)


def reopened_outputs(page: Page, url: str) -> dict:
    """Open the notebook again, with no kernel behind its widgets, and read its outputs."""
    page.driver.get(f"{url}/lab/tree/{NOTEBOOK}?token={TOKEN}")
    wait_for(page, "document.querySelectorAll('.jp-OutputArea-output').length >= 3", "outputs")
    time.sleep(5)  # the widget manager gives up on a missing model after about 2 s
    return page.driver.execute_script(
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
    tmp_path: Path, page: Page
) -> None:
    assert LAB_SETTINGS.is_file(), f"{LAB_SETTINGS} missing: run `make setup` or pip install"
    saved = write_notebook(tmp_path / "work")
    with jupyterlab(saved.parent, tmp_path / "student", course_settings=True) as url:
        run_save_and_close(page, url, saved)
        state = nbformat.read(saved, as_version=4).metadata.get("widgets", {})
        assert "application/vnd.jupyter.widget-state+json" in state
        reopened = reopened_outputs(page, url)
    assert "Error displaying widget" not in reopened["text"]
    assert reopened["images"] == EXPLORERS
    assert reopened["sliders"] >= 5  # W, F, S, P and the channel
    assert reopened["bars"] == 1 and "epoch 1/1: 100%" in reopened["text"]


def test_opened_elsewhere_each_explorer_shows_its_picture(tmp_path: Path, page: Page) -> None:
    saved = write_notebook(tmp_path / "work")
    with jupyterlab(saved.parent, tmp_path / "student", course_settings=False) as url:
        run_save_and_close(page, url, saved)
    assert "widgets" not in nbformat.read(saved, as_version=4).metadata
    with jupyterlab(saved.parent, tmp_path / "grader", course_settings=False) as url:
        reopened = reopened_outputs(page, url)
    assert "Error displaying widget" not in reopened["text"]
    assert reopened["images"] == EXPLORERS
    assert reopened["bars"] == 1


def test_a_released_notebook_opens_unmodified(tmp_path: Path, page: Page) -> None:
    # JupyterLab rewrites a kernelspec that is not as ipykernel writes it (and then asks to
    # save a notebook the student never touched). Every notebook has the same kernelspec
    # (tests/test_release.py), so one stands for all.
    from course_utils.instructor.release import build_release

    pack = tmp_path / "pack"
    build_release(Path(__file__).resolve().parents[1] / "notebooks", pack)
    name = sorted(path.name for path in (pack / "notebooks").glob("*.ipynb"))[0]
    with jupyterlab(pack / "notebooks", tmp_path / "student", course_settings=True) as url:
        open_notebook(page, url, name)
        time.sleep(3)  # the kernel's info (language_info) arrives just after it starts
        modified = page.driver.execute_script(f"return {PANEL}.context.model.dirty")
    assert not modified, f"{name} is modified as soon as it opens"
