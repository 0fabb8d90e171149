"""The nbval guard fails a dead kernel in seconds; the sanitizer hides what varies."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook
from nbval.plugin import get_sanitize_patterns

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `tests.nbval_guard` imports as `-p tests.nbval_guard` does
    sys.path.insert(0, str(ROOT))

from tests.nbval_guard import describe_exit  # noqa: E402

SANITIZE_CFG = ROOT / "course_utils" / "sanitize.cfg"


def write_notebook(path: Path, *sources: str) -> Path:
    """Write a notebook whose code cells are ``sources``."""
    nbformat.write(new_notebook(cells=[new_code_cell(s) for s in sources]), path)
    return path


def run_nbval(notebook: Path, cell_timeout: int = 600) -> tuple[subprocess.CompletedProcess, float]:
    """Run nbval with the guard on one notebook, as `make nbval` does; return result and time."""
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "--nbval-lax",
        "--nbval-current-env",
        f"--nbval-cell-timeout={cell_timeout}",
        "--nbval-sanitize-with",
        str(SANITIZE_CFG),
        "-p",
        "tests.nbval_guard",
        "-p",
        "no:cacheprovider",
        "-rs",
        "--rootdir",
        str(notebook.parent),
        str(notebook),
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    start = time.monotonic()
    result = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
    return result, time.monotonic() - start


@pytest.mark.parametrize(
    "death",
    [
        "import os; os._exit(1)",
        "import os, signal; os.kill(os.getpid(), signal.SIGKILL)",
    ],
    ids=["os_exit", "sigkill"],
)
def test_dead_kernel_fails_within_seconds(tmp_path: Path, death: str) -> None:
    nb = write_notebook(
        tmp_path / "dies.ipynb",
        "print('before')",
        f"print('dying', flush=True)\n{death}",
        "print('never runs')",
    )
    result, seconds = run_nbval(nb)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert seconds < 60, f"took {seconds:.0f} s with a 600 s cell timeout:\n{output}"
    assert "kernel died while executing the cell" in output
    assert re.search(r"1 failed, 1 passed, 1 skipped", output), output


def test_healthy_notebook_passes(tmp_path: Path) -> None:
    nb = write_notebook(tmp_path / "fine.ipynb", "x = 21", "print(x * 2)")
    result, _ = run_nbval(nb)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout


def test_real_cell_timeout_still_applies(tmp_path: Path) -> None:
    nb = write_notebook(tmp_path / "slow.ipynb", "import time; time.sleep(60)")
    result, seconds = run_nbval(nb, cell_timeout=3)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert seconds < 45, output
    assert "Timeout of 3 seconds exceeded" in output
    assert "kernel died" not in output


def test_describe_exit_names_the_signal() -> None:
    assert describe_exit(-9) == "exit status -9: killed by SIGKILL, often the out-of-memory killer"
    assert describe_exit(-11) == "exit status -11: killed by SIGSEGV"
    assert describe_exit(3) == "exit status 3"


def sanitize(text: str) -> str:
    """Apply course_utils/sanitize.cfg the way nbval does."""
    for regex, replacement in get_sanitize_patterns(SANITIZE_CFG.read_text()):
        text = re.sub(regex, replacement, text)
    return text


@pytest.mark.parametrize(
    "first, second",
    [
        ("<Net object at 0x7f3a2c1d0e50>", "<Net object at 0x55d0c0ffee00>"),
        ("epoch done in 1.23 s", "epoch done in 17.9 s"),
        ("step 45ms", "step 3ms"),
        (
            " 50%|#####     | 5/10 [00:01<00:01,  4.99it/s]",
            "100%|##########| 10/10 [00:03<00:00, 3.1it/s]",
        ),
        ("RUN RECORD | profile=smoke | device=cpu", "RUN RECORD | profile=full | device=cuda"),
        ("saved to /home/ana/course/data/x.pt", "saved to /builds/ci/repo/data/x.pt"),
    ],
)
def test_sanitizer_hides_what_varies(first: str, second: str) -> None:
    assert first != second
    assert sanitize(first) == sanitize(second)


@pytest.mark.parametrize(
    "text",
    [
        "torch.Size([64, 1, 28, 28])",
        "parameters: 431,080",
        "accuracy 0.98 (3/4 correct)",
        "conv2s and 10 samples",
        "PASS: conv2d matches F.conv2d",
    ],
)
def test_sanitizer_keeps_facts(text: str) -> None:
    assert sanitize(text) == text
