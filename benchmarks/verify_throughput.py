"""``course verify -j 2`` on a batch of honest a1_t1 submissions: the rate, and where the
time goes.

One genuine execution of a1_t1 (the solution notebook as a student runs it, in the
smoke profile) is handed in ``--submissions`` times, each copy under its own student
folder, and graded in one ``course verify -j JOBS`` batch in the sandbox. The batch
also re-executes the template once (the expected outputs). Then each part of one run is
measured on its own, wall time and CPU time (of this process and of every process it
starts, the sandbox's included):

1. ``kernel start``: a Python kernel started and stopped, nothing run;
2. ``imports``: a fresh Python that imports what a1_t1's imports cell imports;
3. ``notebook``: the notebook to run executed without a sandbox (kernel start,
   imports and the cells);
4. ``sandboxed run``: the same notebook through the sandbox, as the batch runs it;
5. ``alignment``: matching and aligning one submission with its template (in-process).

The cells' own share is (3) less (1) and (2); the sandbox's is (4) less (3). CPU time is
the honest measure on a shared machine: wall time grows with the load, CPU time barely.

Usage::

    python benchmarks/verify_throughput.py                  # 10 submissions, -j 2
    python benchmarks/verify_throughput.py --submissions 4 --jobs 2

The table is printed and written to ``build/benchmarks/verify_throughput.{md,json}``.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import nbformat
from jupyter_client.manager import start_new_kernel

from course_utils.instructor import cli
from course_utils.instructor.refresh import REFRESH_ENV
from course_utils.instructor.verify.sandbox import run_sandboxed
from course_utils.instructor.verify.template import (
    HIDDEN_TAG,
    Template,
    align,
    match_template,
)
from course_utils.instructor.verify.verdict import Limits
from course_utils.notebooks import KERNEL_NAME, execute_notebook, kernel_env

ROOT = Path(__file__).resolve().parent.parent
NAME = "a1_t1_convolution_arithmetic.ipynb"
OUT_DIR = ROOT / "build" / "benchmarks"
TARGET_PER_MINUTE = 10.0  # on the quiet 2-core machine
IMPORTS = (
    "import matplotlib.pyplot, numpy, torch, torch.nn.functional; "
    "from course_utils import checks, config, data, findings, viz, widgets; "
    "import course_utils.inspect"
)


class DescendantsCPU:
    """CPU seconds of this process's descendants, sampled from ``/proc`` while they run.

    The sandbox's processes live in their own PID namespace and are not all reaped
    through this process (``RUSAGE_CHILDREN`` misses them), but ``/proc`` shows them
    with their parents. A process that ends between two samples loses at most one
    interval of its CPU time.
    """

    def __init__(self, interval: float = 0.2):
        self.interval = interval
        self.seen: dict[tuple[int, str], float] = {}  # (pid, start time) -> CPU seconds
        self.done = threading.Event()
        self.ticks = os.sysconf("SC_CLK_TCK")

    def sample(self) -> None:
        """Record the CPU time of every descendant alive now."""
        parents: dict[int, int] = {}
        cpu: dict[tuple[int, str], float] = {}
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:  # it ended while we looked
                continue
            pid = int(stat.parent.name)
            parents[pid] = int(fields[1])
            cpu[(pid, fields[19])] = (int(fields[11]) + int(fields[12])) / self.ticks
        ours = {os.getpid()}
        for pid in sorted(parents):  # a child's pid may be lower than its parent's
            chain: list[int] = []
            at = pid
            while at in parents and at not in ours and at > 1 and len(chain) < 64:
                chain.append(at)
                at = parents[at]
            if at in ours:
                ours.update(chain)
        for (pid, start), seconds in cpu.items():
            if pid in ours and pid != os.getpid():
                self.seen[(pid, start)] = seconds

    def __enter__(self) -> DescendantsCPU:
        def watch() -> None:
            while not self.done.wait(self.interval):
                self.sample()

        self.thread = threading.Thread(target=watch, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        self.thread.join()

    @property
    def seconds(self) -> float:
        """CPU seconds seen so far, all descendants together."""
        return sum(self.seen.values())


def measured(action: Callable[[], object]) -> tuple[float, float]:
    """Wall and CPU seconds of ``action`` (this process's and its descendants' CPU)."""
    own, wall = time.process_time(), time.perf_counter()
    with DescendantsCPU() as descendants:
        action()
    return time.perf_counter() - wall, time.process_time() - own + descendants.seconds


def kernel_start() -> None:
    """Start a kernel, wait until it answers, stop it."""
    manager, client = start_new_kernel(kernel_name=KERNEL_NAME, env=kernel_env({}))
    client.stop_channels()
    manager.shutdown_kernel(now=False)


def genuine_run(folder: Path) -> nbformat.NotebookNode:
    """a1_t1 as a student hands it in: the solution notebook executed, no hidden tests."""
    nb = nbformat.read(ROOT / "notebooks" / NAME, as_version=4)
    nb.cells = [c for c in nb.cells if HIDDEN_TAG not in c.metadata.get("tags", [])]
    error = execute_notebook(nb, folder, 600, kernel_env(REFRESH_ENV))
    if error:
        raise SystemExit(f"a1_t1 does not run: {error}")
    return nb


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--submissions", type=int, default=10)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="verify-bench-") as work:
        top = Path(work)
        templates, folder = top / "templates", top / "submissions"
        templates.mkdir()
        shutil.copyfile(ROOT / "notebooks" / NAME, templates / NAME)
        genuine = genuine_run(top)
        for student in range(args.submissions):
            path = folder / f"student{student:03d}" / NAME
            path.parent.mkdir(parents=True)
            nbformat.write(genuine, path)
        out = top / "grades" / "gradebook.csv"
        command = ["verify", str(folder), "--template", str(templates), "--out", str(out)]
        batch_wall, batch_cpu = measured(lambda: cli.main([*command, "-j", str(args.jobs)]))
        rows = json.loads(out.with_suffix(".json").read_text())
        verdicts = rows if isinstance(rows, list) else rows.get("verdicts", [])
        statuses = sorted({str(v.get("status")) for v in verdicts})

        template = Template(templates / NAME, nbformat.read(templates / NAME, as_version=4))
        run_nb = align(template, genuine).run
        phases = {
            "kernel start": measured(kernel_start),
            "imports": measured(
                lambda: subprocess.run([sys.executable, "-c", IMPORTS], check=True)
            ),
            "notebook": measured(
                lambda: execute_notebook(
                    copy.deepcopy(run_nb), top, 600, kernel_env({"COURSE_PROFILE": "smoke"})
                )
            ),
            "sandboxed run": measured(lambda: run_sandboxed(copy.deepcopy(run_nb), Limits())),
            "alignment": measured(
                lambda: align(match_template(NAME, genuine, [template]), genuine)
            ),
        }
    load_after = os.getloadavg()
    rate = 60 * args.submissions / batch_wall
    kernel, imports, notebook, sandboxed, _ = (phases[name] for name in phases)
    shares = {
        "cells (notebook - kernel start - imports)": (
            notebook[0] - kernel[0] - imports[0],
            notebook[1] - kernel[1] - imports[1],
        ),
        "sandbox (sandboxed run - notebook)": (
            sandboxed[0] - notebook[0],
            sandboxed[1] - notebook[1],
        ),
    }
    lines = [
        f"# course verify -j {args.jobs}: {args.submissions} honest a1_t1 submissions",
        "",
        f"{platform.node()}, {os.cpu_count()} CPUs, load average {load_before[0]:.1f} before "
        f"and {load_after[0]:.1f} after (wall times grow with the load; CPU times barely)",
        "",
        f"Batch: {batch_wall:.0f} s wall, {batch_cpu:.0f} s CPU (the template's own run "
        f"included): {rate:.1f} submissions per minute (target {TARGET_PER_MINUTE:g} on the "
        f"quiet machine); statuses {statuses}.",
        "",
        "| one run, by part | wall s | CPU s |",
        "| --- | ---: | ---: |",
        *(f"| {name} | {wall:.1f} | {cpu:.1f} |" for name, (wall, cpu) in phases.items()),
        *(f"| {name} | {wall:.1f} | {cpu:.1f} |" for name, (wall, cpu) in shares.items()),
    ]
    report = "\n".join(lines)
    print(report)
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    (OUT_DIR / "verify_throughput.md").write_text(report + "\n")
    (OUT_DIR / "verify_throughput.json").write_text(
        json.dumps(
            {
                "submissions": args.submissions,
                "jobs": args.jobs,
                "load": [load_before, load_after],
                "batch": {"wall_s": batch_wall, "cpu_s": batch_cpu, "per_minute": rate},
                "statuses": statuses,
                "phases": {name: {"wall_s": w, "cpu_s": c} for name, (w, c) in phases.items()},
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
