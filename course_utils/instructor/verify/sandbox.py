"""The sandbox: the student's kernel under bubblewrap, driven by the grader from outside.

Each run gets (see :func:`bwrap_command` for the exact command line):

- a read-only view of the system (``/usr`` and the ``/lib*``, ``/bin`` links), of
  Python and the environment, and of the course package; not of the checkout around it,
  the host's ``/etc`` (a few files only: ``ld.so.cache``, fonts, time zone, and a
  ``passwd`` of its own), ``/run``, the host's ``/tmp`` or anyone's home;
- no notebook and no file of the grader's: only the kernel's connection file, read-only;
  the grader sends the cells one by one (:mod:`.kernel`); and the files the notebook
  reads that the course supplies (another notebook's result, :mod:`.prerequisites`),
  each mounted read-only at its place in the working folder;
- a private tmpfs at ``/tmp`` (also ``HOME``, the working folder and the kernel's socket
  files) and a small one at ``/dev/shm``, both with a size limit: the only writable
  places, gone when it ends;
- new user, PID, network, IPC, UTS and cgroup namespaces: no network but its own
  loopback, no host Unix socket (abstract sockets belong to the network namespace, and
  no socket file of the host is mounted), no process of the host to see or signal;
  ``--die-with-parent`` and the end of the PID namespace kill every process it started;
- no descriptor of the grader's: stdin and stdout are ``/dev/null``, stderr a pipe the
  grader reads (capped) for bubblewrap's own messages; bubblewrap's small init is PID 1
  and reaps orphans, and holds nothing a student could use;
- limits: rlimits on the data segment, processes, file size and core dumps, set by the
  worker before the kernel starts; where a writable cgroup exists, a memory cgroup for
  the whole sandbox (shared memory and tmpfs included) and a pids cgroup.

The grader's own process runs the grader-side cells (:mod:`.grader`) while the kernel
runs the notebook: what decides points never runs in the sandbox.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Protocol, TypeVar

from nbformat import NotebookNode

import course_utils
from course_utils.instructor.verify.cgroups import Cgroup
from course_utils.instructor.verify.kernel import (
    KernelGone,
    KernelRequests,
    SandboxManager,
    connection_info,
    interrupt_children,
    new_key,
    run_cells,
    wait_for_sockets,
)
from course_utils.instructor.verify.proxy import Channel
from course_utils.instructor.verify.verdict import Limits

BWRAP = "bwrap"
MISSING_BWRAP = (
    "course verify runs each submission in a bubblewrap sandbox, and `bwrap` "
    "is not installed. Install it (Debian/Ubuntu: sudo apt-get install "
    "bubblewrap; Fedora: sudo dnf install bubblewrap), or "
    "set COURSE_VERIFY_UNSAFE=1 to run submissions without one (their code then "
    "runs as you, with your files and network)."
)
SCRATCH = Path("/tmp")  # the sandbox's private tmpfs
CONNECTION = Path("/kernel.json")  # the kernel's connection file, as the sandbox sees it
IPC_INSIDE = SCRATCH / "kernel" / "ipc"  # its socket files: ipc-1 ... ipc-5
SANDBOX_UID = 65534  # "nobody" inside the sandbox's user namespace
HOST_ETC = ("ld.so.cache", "fonts", "localtime", "mime.types", "ssl/certs")
SYSTEM = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64")
# Seconds a run gets after SIGTERM before everything is killed.
STOP_GRACE_S = 5
# Characters of bubblewrap's stderr kept (its start-up errors); the rest is read and dropped.
MAX_LOG_CHARS = 4000
INPUTS = "inputs"  # the stage's folder of the files supplied to the notebook


class SandboxUnavailable(RuntimeError):
    """bubblewrap is missing or cannot create namespaces here."""


@dataclass
class Execution:
    """What came back from one sandboxed re-execution."""

    notebook: NotebookNode | None  # None when the kernel never started
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


def bwrap_command(
    stage: Path, limits: Limits, info_fd: int, inputs: Sequence[str] = ()
) -> list[str]:
    """The bubblewrap command line that runs the worker with ``stage``'s connection file.

    bubblewrap writes the host PID of the sandbox's first process to ``info_fd``. Each
    of ``inputs`` (paths relative to the working folder, their files staged under
    ``stage/inputs``) is mounted read-only there.

    >>> cmd = bwrap_command(Path("/tmp/stage"), Limits(), 5)
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
        "--info-fd",
        str(info_fd),
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
        "--dir",
        str(IPC_INSIDE.parent),
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
        str(stage / "kernel.json"),
        str(CONNECTION),
    ]
    for relative in inputs:
        command += ["--ro-bind", str(stage / INPUTS / relative), str(SCRATCH / "work" / relative)]
    command += [
        "--chdir",
        str(SCRATCH / "work"),
        "--",
    ]
    return command


def worker_command(connection_file: Path, limits: Limits) -> list[str]:
    """The worker's own command line (``-I``: no user site, no cwd on ``sys.path``).

    >>> worker_command(CONNECTION, Limits())[4:6]
    ['course_utils.instructor.verify', '/kernel.json']
    """
    return [
        sys.executable,
        "-I",
        "-B",
        "-m",
        "course_utils.instructor.verify",
        str(connection_file),
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
            "namespaces (sysctl kernel.unprivileged_userns_clone=1), or "
            "set COURSE_VERIFY_UNSAFE=1"
        )
    return None


T = TypeVar("T")


class Session(Protocol):
    """The grader's side of a run: called after each cell, then once at the end."""

    def after_cell(self, index: int) -> None: ...

    def finish(self) -> None: ...


def stage_inputs(folder: Path, inputs: Mapping[str, str]) -> None:
    """Write each of ``inputs`` (relative path -> text) under ``folder``, read-only.

    >>> folder = Path(tempfile.mkdtemp())
    >>> stage_inputs(folder, {"results/a.json": "{}"})
    >>> path = folder / "results/a.json"
    >>> path.read_text(), oct(path.stat().st_mode & 0o777)
    ('{}', '0o444')
    """
    for relative, text in inputs.items():
        if Path(relative).is_absolute() or ".." in Path(relative).parts:
            raise ValueError(f"{relative!r} is not a path inside the working folder")
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        path.chmod(0o444)


def make_stage(key: str, ipc_prefix: str) -> Path:
    """A fresh host folder with the kernel's connection file and the sandbox's passwd, group."""
    stage = Path(tempfile.mkdtemp(prefix="course-verify-"))
    (stage / "kernel.json").write_text(json.dumps(connection_info(ipc_prefix, key)))
    (stage / "passwd").write_text(
        f"student:x:{SANDBOX_UID}:{SANDBOX_UID}::{SCRATCH}/home:/bin/sh\n"
    )
    (stage / "group").write_text(f"student:x:{SANDBOX_UID}:\n")
    return stage


class StartLog:
    """Reads a stream to its end in a thread, keeping only its first characters."""

    def __init__(self, stream: IO[bytes]):
        self.kept = b""
        self.thread = threading.Thread(target=self.read, args=(stream,), daemon=True)
        self.thread.start()

    def read(self, stream: IO[bytes]) -> None:
        with contextlib.suppress(OSError, ValueError):
            for chunk in iter(lambda: stream.read(4096), b""):
                if len(self.kept) < MAX_LOG_CHARS:
                    self.kept += chunk[: MAX_LOG_CHARS - len(self.kept)]

    def text(self) -> str:
        return self.kept.decode(errors="replace")


def read_child_pid(fd: int, alive: Callable[[], bool], timeout: float) -> int:
    """The host PID of the sandbox's first process, from bubblewrap's ``--info-fd``."""
    deadline, data = time.monotonic() + timeout, b""
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            chunk = os.read(fd, 4096)
            if not chunk:
                break
            data += chunk
            with contextlib.suppress(ValueError):
                return int(json.loads(data)["child-pid"])
        elif not alive():
            break
    raise KernelGone("bubblewrap did not start the sandbox")


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


def run_sandboxed(
    nb: NotebookNode,
    limits: Limits,
    unsafe: bool = False,
    grading: Callable[[Channel], Session] | None = None,
    inputs: Mapping[str, str] | None = None,
) -> Execution:
    """Run ``nb`` in a fresh sandboxed kernel (or, ``unsafe``, in a bare temporary folder).

    ``grading(channel)`` makes the grader's session for this run; the channel reaches the
    kernel's globals as data. ``inputs`` (relative path -> text) are files placed
    read-only in the working folder before the kernel starts. ``nb`` gets the outputs
    of the run.

    >>> run_sandboxed(nbformat.v4.new_notebook(), Limits())  # doctest: +SKIP
    Execution(notebook={...}, error=None, cell=None, killed=False, ...)
    """
    key = new_key()
    ipc_inside = str(IPC_INSIDE)
    stage = make_stage(key, ipc_inside)
    inputs = dict(inputs or {})
    cgroup = None
    info_read, info_write = os.pipe()
    try:
        if unsafe:
            scratch = stage / "scratch"
            for folder in (scratch / "work", scratch / "home", scratch / "kernel"):
                folder.mkdir(parents=True)
            stage_inputs(scratch / "work", inputs)
            ipc_inside = str(scratch / "kernel" / "ipc")
            (stage / "kernel.json").write_text(json.dumps(connection_info(ipc_inside, key)))
            command = worker_command(stage / "kernel.json", limits)
            cwd: Path | None = scratch / "work"
        else:
            scratch, cwd = SCRATCH, None
            stage_inputs(stage / INPUTS, inputs)
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
                *bwrap_command(stage, limits, info_write, sorted(inputs)),
                *worker_command(CONNECTION, limits),
            ]
        start = time.perf_counter()
        process = subprocess.Popen(
            command,
            cwd=cwd,
            env=sandbox_env(scratch, limits.profile),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            pass_fds=() if unsafe else (info_write,),
            start_new_session=True,
        )
        os.close(info_write)
        info_write = -1
        assert process.stderr is not None
        log = StartLog(process.stderr)
        killed = threading.Event()

        def time_up() -> None:
            killed.set()
            stop(process, cgroup)

        timer = threading.Timer(limits.notebook_timeout, time_up)
        timer.start()
        cell: list[int] = []
        error: str | None = None
        started = False
        try:
            alive = lambda: process.poll() is None  # noqa: E731
            if unsafe:
                host_prefix = ipc_inside
                interrupt = functools.partial(os.kill, process.pid, signal.SIGINT)
            else:
                first = read_child_pid(info_read, alive, limits.notebook_timeout)
                host_prefix = f"/proc/{first}/root{ipc_inside}"
                interrupt = functools.partial(interrupt_children, first)
            started, error = in_own_thread(
                functools.partial(
                    drive, nb, limits, host_prefix, key, alive, interrupt, grading, cell.append
                )
            )
        except KernelGone as exc:
            error = str(exc)
        finally:
            timer.cancel()
            stop(process, cgroup)
            log.thread.join(timeout=STOP_GRACE_S)
        return Execution(
            nb if started else None,
            error,
            cell[-1] if cell else None,
            killed.is_set(),
            cgroup.out_of_memory() if cgroup else False,
            time.perf_counter() - start,
            log.text(),
        )
    finally:
        os.close(info_read)
        if info_write >= 0:
            os.close(info_write)
        if cgroup is not None:
            cgroup.remove()
        shutil.rmtree(stage, ignore_errors=True)


def in_own_thread(work: Callable[[], T]) -> T:
    """Run ``work`` in a fresh thread and return what it returns (or raise what it raised).

    nbclient and jupyter_client run their coroutines on the calling thread's event loop,
    found by the thread's name; a Dask worker's threads may share one that is running.
    A fresh thread has a loop of its own.

    >>> in_own_thread(lambda: threading.current_thread().name.startswith("course-verify"))
    True
    """
    outcome: list = []

    def target() -> None:
        try:
            outcome.append((True, work()))
        except BaseException as exc:  # handed to the caller's thread
            outcome.append((False, exc))

    thread = threading.Thread(target=target, name=f"course-verify-{uuid.uuid4().hex}")
    thread.start()
    thread.join()
    ok, value = outcome[0]
    if not ok:
        raise value
    return value


def drive(
    nb: NotebookNode,
    limits: Limits,
    host_prefix: str,
    key: str,
    alive: Callable[[], bool],
    interrupt: Callable[[], None],
    grading: Callable[[Channel], Session] | None,
    on_cell: Callable[[int], None],
) -> tuple[bool, str | None]:
    """Connect to the started kernel, run the notebook and the grader's session.

    Every socket is connected before the first cell runs (see :mod:`.kernel`). Returns
    whether the kernel started, and the error that stopped the run.
    """
    wait_for_sockets(host_prefix, alive, limits.notebook_timeout)
    info = connection_info(host_prefix, key)
    requests = KernelRequests(info, limits.cell_timeout, interrupt, alive)
    try:
        # The first answer: the kernel is up, and its side of the proxy is imported
        # before any of the student's code runs.
        requests.request({"op": "get", "name": "__name__"})
        session = grading(Channel(requests.request)) if grading is not None else None
        error = run_cells(
            nb,
            SandboxManager(info, alive, interrupt),
            limits.cell_timeout,
            on_cell,
            session.after_cell if session is not None else lambda index: None,
        )
        if session is not None:
            session.finish()
        return True, error
    finally:
        requests.close()
