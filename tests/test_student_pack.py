"""The student pack, tried as a student would: built by `course release`, installed with a
plain, non-editable `pip install` into a fresh venv, its notebooks run with that venv's
kernel.

To stay within `make test`'s budget the fresh venv does not download PyTorch again: a .pth
file puts this project's site-packages after its own, for the dependencies only (a path
that a .pth file adds is no site folder, so the editable install of `course_utils` there
stays inactive). `course_utils` itself comes from the pack, installed into the fresh venv's
site-packages.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

import pytest

from course_utils.instructor.release import build_release

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
# The solution notebook copied into the installed pack, which must pass there.
SOLUTION = ROOT / "notebooks" / "a1_t1_convolution_arithmetic.ipynb"
SOLUTION_COPY = "solution_" + SOLUTION.name
CELL_TIMEOUT = 600

# Run by the fresh venv's interpreter: where the package comes from, what is installed,
# and how each notebook of the pack ends (None when it ran through).
DRIVER = """
import importlib.util, json, shutil, sys, sysconfig
from pathlib import Path

import nbformat

import course_utils
from course_utils import config
from course_utils.notebooks import execute_notebook, kernel_env

folder = Path(sys.argv[1])
report = {
    "package": course_utils.__file__,
    "purelib": sysconfig.get_paths()["purelib"],
    "instructor": importlib.util.find_spec("course_utils.instructor") is not None,
    "data_dir": str(config.data_dir()),
    "course_command": shutil.which("course"),
    "errors": {},
}
probe = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
    "import sys, course_utils; print(sys.executable); print(course_utils.__file__)")])
execute_notebook(probe, folder, int(sys.argv[2]), kernel_env({}))
report["kernel"] = probe.cells[0].outputs[0]["text"].split()
for path in sorted(folder.glob("*.ipynb")):
    nb = nbformat.read(path, as_version=4)
    report["errors"][path.name] = execute_notebook(nb, folder, int(sys.argv[2]), kernel_env({}))
print("REPORT " + json.dumps(report))
"""


def run(command: list[str], env: dict[str, str], cwd: Path, timeout: int) -> str:
    """Run ``command``; fail the test with its output if it fails."""
    done = subprocess.run(
        command, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def student_env(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Build the pack, install it into a fresh venv, run every notebook there."""
    base = tmp_path_factory.mktemp("student")
    pack = base / "cnn-course"
    build_release(ROOT / "notebooks", pack, results_file=base / "no-results.json")

    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    purelib = Path(
        run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            os.environ.copy(),
            base,
            60,
        ).strip()
    )
    (purelib / "course_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")

    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "JUPYTER_PATH")
    }
    env.update(
        PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}",
        # The fresh venv's own kernel: the one `ipykernel install --sys-prefix` made.
        JUPYTER_PATH=str(venv / "share" / "jupyter"),
        XDG_CACHE_HOME=str(base / "cache"),
        COURSE_PROFILE="smoke",
        COURSE_LIVE_PLOT="0",
    )
    env.pop("COURSE_DATA_DIR", None)
    # Plain pip, not editable: this project's pip working on the fresh interpreter.
    run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            str(pack),
        ],
        env,
        base,
        600,
    )
    run(
        [str(python), "-m", "ipykernel", "install", "--sys-prefix", "--name", "python3"],
        env,
        base,
        120,
    )

    shutil.copy2(SOLUTION, pack / "notebooks" / SOLUTION_COPY)
    (base / "driver.py").write_text(DRIVER)
    # From outside the pack: the data folder must not fall back inside site-packages.
    output = run(
        [str(python), str(base / "driver.py"), str(pack / "notebooks"), str(CELL_TIMEOUT)],
        env,
        base,
        3000,
    )
    report = json.loads(output.split("REPORT ", 1)[1])
    return {"pack": pack, "venv": venv, "purelib": purelib, "report": report}


pytestmark = pytest.mark.slow


def test_course_utils_comes_from_the_installed_pack(student_env: dict) -> None:
    report = student_env["report"]
    purelib = student_env["purelib"].resolve()
    package = Path(report["package"]).resolve()
    assert package.is_relative_to(purelib), package
    kernel_python, kernel_package = report["kernel"]  # what the notebooks' kernel imports
    assert Path(kernel_python).is_relative_to(student_env["venv"]), kernel_python
    assert Path(kernel_package).resolve().is_relative_to(purelib), kernel_package
    assert not (student_env["purelib"] / "__editable__.course_utils-0.1.0.pth").exists()


def test_no_instructor_tools_are_installed(student_env: dict) -> None:
    report = student_env["report"]
    assert not report["instructor"], "course_utils.instructor is importable"
    assert report["course_command"] is None or not Path(report["course_command"]).is_relative_to(
        student_env["venv"]
    )
    assert not (student_env["venv"] / "bin" / "course").exists()
    assert not list(student_env["purelib"].glob("course_utils/instructor"))


def test_data_folder_is_outside_site_packages(student_env: dict) -> None:
    data_dir = Path(student_env["report"]["data_dir"])
    assert not data_dir.is_relative_to(student_env["purelib"]), data_dir
    assert data_dir == student_env["pack"].parent / "cache" / "course_utils" / "data"


def test_installed_package_data(student_env: dict) -> None:
    installed = student_env["purelib"] / "course_utils"
    assert (installed / "py.typed").is_file()
    shipped = {
        p.relative_to(student_env["pack"])
        for p in (student_env["pack"] / "course_utils").rglob("*")
        if p.is_file() and p.suffix not in (".py", ".pyc")
    }
    assert shipped, "the pack ships data files"
    for relative in shipped:
        assert (student_env["purelib"] / relative).is_file(), f"{relative} is not installed"


def test_jupyterlab_of_the_venv_saves_widget_state(student_env: dict) -> None:
    # So that a reopened notebook shows its explorers (tests/test_browser_reopen.py).
    overrides = student_env["venv"] / "share/jupyter/lab/settings/overrides.d"
    settings = json.loads((overrides / "course_utils.json").read_text())
    assert settings["@jupyter-widgets/jupyterlab-manager:plugin"] == {"saveState": True}


@pytest.mark.parametrize("name", [p.name for p in NOTEBOOKS])
def test_student_notebook_fails_only_with_not_implemented(student_env: dict, name: str) -> None:
    error = student_env["report"]["errors"][name]
    assert error is not None and error.startswith("NotImplementedError"), error


def test_solution_notebook_passes_in_the_installed_pack(student_env: dict) -> None:
    assert student_env["report"]["errors"][SOLUTION_COPY] is None


def test_pack_lists_every_dependency_extra_in_dev() -> None:
    """`.[dev]` installs everything: it repeats the `lab` and `instructor` extras."""
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    missing = [
        text for name in ("lab", "instructor") for text in extras[name] if text not in extras["dev"]
    ]
    assert not missing, f"in an extra but not in dev: {missing}"
