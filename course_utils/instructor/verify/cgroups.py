"""A control group per sandbox, where the machine lets us make one: memory and process caps.

A memory cgroup counts what rlimits cannot: shared memory, tmpfs pages, memfd files, for
every process of the sandbox together. It needs a writable cgroup hierarchy (cgroup v1
``memory`` and ``pids``, or a delegated cgroup v2 subtree). Where there is none, the
sandbox falls back to rlimits alone (see :mod:`.sandbox` for what those leave unbounded).
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

ROOT = Path("/sys/fs/cgroup")


def own_cgroup(controller: str, proc_cgroup: str | None = None) -> Path | None:
    """The folder of this process's cgroup for ``controller`` (v1), or of its v2 cgroup.

    >>> own_cgroup("memory", "4:memory:/jobs/7\\n0::/\\n")
    PosixPath('/sys/fs/cgroup/memory/jobs/7')
    """
    if proc_cgroup is None:
        try:
            proc_cgroup = Path("/proc/self/cgroup").read_text()
        except OSError:
            return None
    unified = None
    for line in proc_cgroup.splitlines():
        _, controllers, path = line.split(":", 2)
        if controller in controllers.split(","):
            return ROOT / controller / path.lstrip("/")
        if controllers == "":
            unified = ROOT / path.lstrip("/")
    return unified if unified is not None and (unified / "cgroup.controllers").is_file() else None


@dataclass
class Cgroup:
    """The cgroup folders of one sandbox; its processes join by writing ``cgroup.procs``."""

    folders: list[Path]

    @classmethod
    def create(cls, memory_bytes: int, processes: int) -> Cgroup | None:
        """Make the sandbox's cgroups with both limits, or return ``None`` where we cannot."""
        name = f"course-verify-{uuid.uuid4().hex[:12]}"
        wanted = {
            "memory": [
                ("memory.limit_in_bytes", memory_bytes),
                ("memory.memsw.limit_in_bytes", memory_bytes),
                ("memory.max", memory_bytes),
                ("memory.swap.max", 0),
            ],
            "pids": [("pids.max", processes)],
        }
        folders: dict[Path, None] = {}
        try:
            for controller, settings in wanted.items():
                parent = own_cgroup(controller)
                if parent is None:
                    raise OSError(f"no {controller} cgroup")
                folder = parent / name
                folder.mkdir(exist_ok=True)
                folders[folder] = None
                written = [key for key, value in settings if write_setting(folder / key, value)]
                if not any(
                    key.startswith(controller) and "swap" not in key and "memsw" not in key
                    for key in written
                ):
                    raise OSError(f"{controller} limit not settable in {folder}")
        except OSError:
            Cgroup(list(folders)).remove()
            return None
        return cls(list(folders))

    @property
    def procs_files(self) -> list[Path]:
        """The ``cgroup.procs`` files a process writes its pid to, to join."""
        return [folder / "cgroup.procs" for folder in self.folders]

    def out_of_memory(self) -> bool:
        """Whether the memory limit was hit (v1 ``failcnt``, v2 ``oom_kill`` events)."""
        for folder in self.folders:
            for name in ("memory.oom_control", "memory.events"):
                with contextlib.suppress(OSError, ValueError):
                    fields = dict(
                        line.split()
                        for line in (folder / name).read_text().splitlines()
                        if len(line.split()) == 2
                    )
                    if int(fields.get("oom_kill", 0)) > 0:
                        return True
        return False

    def kill_all(self) -> None:
        """SIGKILL every process still in the cgroup (a run stopped from outside)."""
        for procs in self.procs_files:
            with contextlib.suppress(OSError):
                for pid in procs.read_text().split():
                    with contextlib.suppress(ProcessLookupError, ValueError):
                        os.kill(int(pid), signal.SIGKILL)

    def remove(self, wait_s: float = 5.0) -> None:
        """Delete the cgroup folders once their processes are gone."""
        deadline = time.monotonic() + wait_s
        for folder in self.folders:
            while folder.exists():
                try:
                    folder.rmdir()
                except OSError:
                    if time.monotonic() > deadline:
                        break
                    self.kill_all()
                    time.sleep(0.05)


def write_setting(path: Path, value: int) -> bool:
    """Write one cgroup setting; ``False`` where the file is absent or refuses it."""
    try:
        path.write_text(str(value))
    except OSError:
        return False
    return True
