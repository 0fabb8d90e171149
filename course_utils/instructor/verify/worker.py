"""The first command inside the sandbox: set the limits, then become the student's kernel.

``python -m course_utils.instructor.verify CONNECTION_FILE --memory-mb N --processes N
--file-mb N`` caps itself (limits that everything it starts inherits and nothing inside
may raise again), then replaces itself with an IPython kernel that binds its sockets as
the connection file says. Nothing of the grader's runs in the sandbox: the grader
drives this kernel from outside (see :mod:`.kernel`).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

# Quiet kernel logs: ipykernel warns that its sockets are not encrypted.
KERNEL_ARGS = ["--IPKernelApp.log_level=ERROR"]


def set_limits(memory_mb: int, processes: int, file_mb: int) -> None:
    """Cap this process and everything it starts; nothing inside may raise the caps again.

    RLIMIT_DATA, not RLIMIT_AS: importing PyTorch reserves gigabytes of address space it
    never uses. RLIMIT_NPROC counts processes and threads of the sandbox's user (it does
    not bind a sandbox whose outside user is root; a pids cgroup does). RLIMIT_FSIZE caps
    any single file, memfd files included.
    """
    import resource  # POSIX only, like the sandbox

    for limit, value in (
        (resource.RLIMIT_DATA, memory_mb * 2**20),
        (resource.RLIMIT_NPROC, processes),
        (resource.RLIMIT_FSIZE, file_mb * 2**20),
        (resource.RLIMIT_CORE, 0),
    ):
        resource.setrlimit(limit, (value, value))


def kernel_command(connection_file: Path) -> list[str]:
    """The kernel this process becomes (``-I``: no user site, no cwd on ``sys.path``).

    >>> kernel_command(Path("/tmp/kernel.json"))[-3:-1]
    ['-f', '/tmp/kernel.json']
    """
    return [
        sys.executable,
        "-I",
        "-B",
        "-m",
        "ipykernel_launcher",
        "-f",
        str(connection_file),
        *KERNEL_ARGS,
    ]


def worker(argv: Sequence[str] | None = None) -> int:
    """Set the limits, then exec the kernel (returns only when that fails)."""
    parser = argparse.ArgumentParser(prog="python -m course_utils.instructor.verify")
    parser.add_argument("connection_file", type=Path)
    parser.add_argument("--memory-mb", type=int, required=True)
    parser.add_argument("--processes", type=int, required=True)
    parser.add_argument("--file-mb", type=int, required=True)
    args = parser.parse_args(argv)
    set_limits(args.memory_mb, args.processes, args.file_mb)
    command = kernel_command(args.connection_file)
    os.execv(command[0], command)
    return 1  # not reached: execv replaces this process or raises
