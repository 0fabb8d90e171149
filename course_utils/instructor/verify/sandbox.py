"""The sandbox: one notebook re-executed under bubblewrap, results back as JSON.

Each run gets (see :func:`bwrap_command` for the exact command line):

- a read-only view of the system (``/usr`` and the ``/lib*``, ``/bin`` links), of
  Python and the environment, and of the course package; not of the checkout around it,
  the host's ``/etc`` (a few files only: ``ld.so.cache``, fonts, time zone, and a
  ``passwd`` of its own), ``/run``, the host's ``/tmp`` or anyone's home;
- the one notebook to run, read-only; no other submission and no gradebook;
- a private tmpfs at ``/tmp`` (also ``HOME`` and the working folder) and a small one at
  ``/dev/shm``, both with a size limit: the only writable places, gone when it ends;
- new user, PID, network, IPC, UTS and cgroup namespaces: no network but its own
  loopback, no host Unix socket (abstract sockets belong to the network namespace, and
  no socket file of the host is mounted), no process of the host to see or signal;
  ``--die-with-parent`` and the end of the PID namespace kill every process it started;
- limits: rlimits on the data segment, processes, file size and core dumps, set by the
  worker before any submitted code runs; where a writable cgroup exists, a memory cgroup
  for the whole sandbox (shared memory and tmpfs included) and a pids cgroup.

The worker prints its result on a channel only it holds (see :mod:`.worker`), framed by
a random marker the parent passes on stdin; the parent reads it after the sandbox ended.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbformat import NotebookNode

import course_utils
from course_utils.instructor.verify.cgroups import Cgroup
from course_utils.instructor.verify.verdict import Limits

BWRAP = "bwrap"
MISSING_BWRAP = (
    "course verify runs each submission in a bubblewrap sandbox, and `bwrap` "
    "is not installed. Install it (Debian/Ubuntu: sudo apt-get install "
    "bubblewrap; Fedora: sudo dnf install bubblewrap), or pass "
    "--unsafe-no-sandbox to run submissions without one (their code then "
    "runs as you, with your files and network)."
)
INSIDE = Path("/submission.ipynb")  # the notebook to run, as the sandbox sees it
SCRATCH = Path("/tmp")  # the sandbox's private tmpfs
SANDBOX_UID = 65534  # "nobody" inside the sandbox's user namespace
HOST_ETC = ("ld.so.cache", "fonts", "localtime", "mime.types", "ssl/certs")
SYSTEM = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64")
# Seconds a run gets after SIGTERM before everything is killed.
STOP_GRACE_S = 5


class SandboxUnavailable(RuntimeError):
    """bubblewrap is missing or cannot create namespaces here."""


@dataclass
class Execution:
    """What came back from one sandboxed re-execution."""

    notebook: NotebookNode | None  # None when the worker was killed or crashed
    error: str | None  # the error that stopped the run (cell timeout, dead kernel)
    cell: int | None  # the cell that was running last
    killed: bool  # stopped by the notebook time limit
    out_of_memory: bool  # the sandbox's memory cgroup hit its limit
    wall_s: float
    log: str  # bubblewrap's own messages, for a failed start


def readonly_paths() -> list[Path]:
    """What the sandbox sees read-only besides the system: Python, the venv, the package.

    Only the package folder of ``course_utils`` is mounted, not the checkout around it.
    """
    package = Path(course_utils.__file__).resolve().parent
    paths = {Path(p).resolve() for p in (sys.base_prefix, sys.prefix, sys.exec_prefix)}
    paths.add(package)
    system = tuple(Path(p).resolve() for p in SYSTEM)
    return sorted(p for p in paths if not any(p == s or s in p.parents for s in system))


def bwrap_command(stage: Path, limits: Limits) -> list[str]:
    """The bubblewrap command line that runs the worker on ``stage``'s notebook.

    >>> cmd = bwrap_command(Path("/tmp/stage"), Limits())
    >>> cmd[:3], "--unshare-net" in cmd, cmd[cmd.index("--chdir") + 1]
    (['bwrap', '--unshare-user', '--unshare-pid'], True, '/tmp/work')
    """
    command = [
        BWRAP,
        "--unshare-user",
        "--unshare-pid",
        "--unshare-net",
        "--unshare-ipc",
        "--unshare-uts",
        "--unshare-cgroup-try",
        "--die-with-parent",
        "--new-session",
        "--cap-drop",
        "ALL",
        "--uid",
        str(SANDBOX_UID),
        "--gid",
        str(SANDBOX_UID),
        "--hostname",
        "sandbox",
    ]
    for path in SYSTEM:
        command += ["--ro-bind-try", path, path]
    # The private /tmp comes before the course's own paths: a checkout or venv under /tmp
    # (a CI clone) is then mounted on top of it, instead of being hidden by it.
    command += [
        "--size",
        str(limits.tmpfs_mb * 2**20),
        "--tmpfs",
        str(SCRATCH),
        "--dir",
        str(SCRATCH / "work"),
        "--dir",
        str(SCRATCH / "home"),
    ]
    for course_path in readonly_paths():
        command += ["--ro-bind", str(course_path), str(course_path)]
    for name in HOST_ETC:
        command += ["--ro-bind-try", f"/etc/{name}", f"/etc/{name}"]
    command += [
        "--ro-bind",
        str(stage / "passwd"),
        "/etc/passwd",
        "--ro-bind",
        str(stage / "group"),
        "/etc/group",
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        "--size",
        str(limits.shm_mb * 2**20),
        "--tmpfs",
        "/dev/shm",
        "--ro-bind",
        str(stage / "notebook"),
        str(INSIDE),
        "--chdir",
        str(SCRATCH / "work"),
        "--",
    ]
    return command


def worker_command(notebook: Path, limits: Limits) -> list[str]:
    """The worker's own command line (``-I``: no user site, no cwd on ``sys.path``)."""
    return [
        sys.executable,
        "-I",
        "-B",
        "-m",
        "course_utils.instructor.verify",
        str(notebook),
        "--cell-timeout",
        str(limits.cell_timeout),
        "--memory-mb",
        str(limits.memory_mb),
        "--processes",
        str(limits.processes),
        "--file-mb",
        str(limits.tmpfs_mb),
    ]


def sandbox_env(scratch: Path, profile: str) -> dict[str, str]:
    """Return the whole environment of a run: nothing of the instructor's leaks in.

    >>> sandbox_env(Path("/tmp"), "smoke")["HOME"]
    '/tmp/home'
    """
    return {
        "PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "USER": "student",
        "HOME": str(scratch / "home"),
        "TMPDIR": str(scratch),
        "COURSE_DATA_DIR": str(scratch / "home" / "data"),
        "COURSE_PROFILE": profile,
        "COURSE_LIVE_PLOT": "0",
        # On the CPU and one thread: checked outputs are device-independent, parallel
        # runs do not contend, and no memory limit could account for GPU memory.
        "CUDA_VISIBLE_DEVICES": "",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
    }


@functools.cache
def sandbox_problem() -> str | None:
    """Why bubblewrap cannot sandbox here, or ``None`` when it can (checked once)."""
    if shutil.which(BWRAP) is None:
        return MISSING_BWRAP
    probe = [
        BWRAP,
        "--unshare-user",
        "--unshare-pid",
        "--unshare-net",
        "--die-with-parent",
        "--ro-bind",
        "/",
        "/",
        "--",
        "true",
    ]
    try:
        done = subprocess.run(probe, capture_output=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"bwrap did not start: {exc}"
    if done.returncode != 0:
        return (
            "bwrap cannot create namespaces here ("
            f"{done.stderr.decode(errors='replace').strip()}): allow unprivileged user "
            "namespaces (sysctl kernel.unprivileged_userns_clone=1), or pass "
            "--unsafe-no-sandbox"
        )
    return None


def stage_notebook(nb: NotebookNode) -> Path:
    """A fresh host folder with the notebook to run and the sandbox's passwd and group."""
    stage = Path(tempfile.mkdtemp(prefix="course-verify-"))
    nbformat.write(nb, stage / "notebook")
    (stage / "passwd").write_text(
        f"student:x:{SANDBOX_UID}:{SANDBOX_UID}::{SCRATCH}/home:/bin/sh\n"
    )
    (stage / "group").write_text(f"student:x:{SANDBOX_UID}:\n")
    return stage


def parse_channel(output: bytes, marker: str) -> tuple[dict | None, int | None]:
    """The worker's result and the last cell it announced, from its marked lines.

    >>> parse_channel(b'k cell 3\\nforged\\nk result {"error": null}\\n', "k")
    ({'error': None}, 3)
    """
    result, cell = None, None
    for line in output.decode("utf-8", errors="replace").splitlines():
        kind, _, payload = line.removeprefix(f"{marker} ").partition(" ")
        if not line.startswith(f"{marker} "):
            continue
        if kind == "cell" and payload.isdigit():
            cell = int(payload)
        elif kind == "result" and result is None:
            with contextlib.suppress(ValueError):
                result = json.loads(payload)
    return result, cell


def stop(process: subprocess.Popen, cgroup: Cgroup | None) -> None:
    """Stop a sandbox: SIGTERM, then SIGKILL, to its session and its cgroup."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=STOP_GRACE_S)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    if cgroup is not None:
        cgroup.kill_all()


def run_sandboxed(nb: NotebookNode, limits: Limits, unsafe: bool = False) -> Execution:
    """Re-execute ``nb`` in a fresh sandbox (or, ``unsafe``, in a bare temporary folder).

    >>> run_sandboxed(nbformat.v4.new_notebook(), Limits())  # doctest: +SKIP
    Execution(notebook={...}, error=None, cell=None, killed=False, ...)
    """
    stage = stage_notebook(nb)
    cgroup = None
    try:
        if unsafe:
            scratch = stage / "scratch"
            for folder in (scratch / "work", scratch / "home"):
                folder.mkdir(parents=True)
            command = worker_command(stage / "notebook", limits)
            cwd = scratch / "work"
        else:
            scratch, cwd = SCRATCH, None
            cgroup = Cgroup.create(
                (limits.memory_mb + limits.tmpfs_mb + limits.shm_mb) * 2**20, limits.processes
            )
            # A shell joins the cgroups, then becomes bwrap: nothing starts outside them.
            joins = [str(p) for p in cgroup.procs_files] if cgroup else []
            command = [
                "/bin/sh",
                "-c",
                'while [ "$1" != -- ]; do echo $$ > "$1" || exit 97; shift; done; shift; exec "$@"',
                "sh",
                *joins,
                "--",
                *bwrap_command(stage, limits),
                *worker_command(INSIDE, limits),
            ]
        marker = secrets.token_hex(16)
        start = time.perf_counter()
        process = subprocess.Popen(
            command,
            cwd=cwd,
            env=sandbox_env(scratch, limits.profile),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        killed = False
        try:
            output, log = process.communicate(
                f"{marker}\n".encode(), timeout=limits.notebook_timeout
            )
        except subprocess.TimeoutExpired:
            stop(process, cgroup)
            output, log = process.communicate()
            killed = True
        wall_s = time.perf_counter() - start
        result, cell = parse_channel(output, marker)
        notebook = (
            nbformat.from_dict(result["notebook"])
            if result and isinstance(result.get("notebook"), dict)
            else None
        )
        return Execution(
            notebook,
            result.get("error") if result else None,
            cell,
            killed,
            cgroup.out_of_memory() if cgroup else False,
            wall_s,
            log.decode(errors="replace")[-2000:],
        )
    finally:
        if cgroup is not None:
            cgroup.remove()
        shutil.rmtree(stage, ignore_errors=True)
