"""The student's kernel in the sandbox, driven from the grader's process by data alone.

Why this design: what decides a grade must run where no code of the student's can reach
it. So the grader does not run inside the sandbox at all. Bubblewrap starts an IPython
kernel (and nothing else) in its own user, PID, mount, network and IPC namespaces; the
grader, on the host, talks to it over ZeroMQ ``ipc`` sockets that the kernel binds in
the sandbox's private ``/tmp``. The grader reaches those socket files through
``/proc/PID/root`` of the sandbox's first process (its host PID comes from bubblewrap's
``--info-fd``), so no host folder is writable from the sandbox and no descriptor of the
grader's is inherited into it (stdin and stdout are ``/dev/null``; stderr is a pipe read
for bubblewrap's own start-up messages, capped).

A socket path inside the sandbox is the student's to change once their code runs (it
could become a symlink to a host socket). So the grader connects each socket once,
before the first cell, after checking that it is a socket; ZeroMQ's automatic reconnect
is switched off, and the heartbeat channel (which reconnects by design) is not used:
the kernel is alive while its sandbox process is. Each incoming message is capped in
size (``MAXMSGSIZE``) and each cell's outputs in characters, so a flood of output costs
the grader neither memory nor more than the time limits.

Everything that comes back is data: cell outputs (compared, never trusted) and the
answers of :class:`KernelRequests` (decoded by :mod:`.codec`).
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import secrets
import signal
import stat
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import zmq
import zmq.asyncio
from jupyter_client.asynchronous.client import AsyncKernelClient
from jupyter_client.blocking.client import BlockingKernelClient
from jupyter_client.connect import KernelConnectionInfo
from nbclient import NotebookClient
from nbformat import NotebookNode

from course_utils import pysource

SOCKETS = ("shell", "iopub", "stdin", "control", "hb")
PORTS = {name: index + 1 for index, name in enumerate(SOCKETS)}
MAX_MESSAGE_BYTES = 96 * 2**20  # one message from the kernel, arrays included
MAX_CELL_OUTPUT_CHARS = 4 * 2**20  # the outputs of one cell, images included
MAX_REPLY_CHARS = 90 * 2**20
SEND_TIMEOUT_MS = 10_000


class KernelGone(RuntimeError):
    """The kernel did not answer: dead, stuck past the time limit, or disconnected."""


def connection_info(ipc_prefix: str, key: str) -> KernelConnectionInfo:
    """A kernel connection file's contents for ``ipc`` sockets at ``ipc_prefix-N``.

    >>> info = connection_info("/tmp/kernel/ipc", "k")
    >>> info["transport"], info["ip"], info["shell_port"]
    ('ipc', '/tmp/kernel/ipc', 1)
    """
    info: KernelConnectionInfo = {
        "transport": "ipc",
        "ip": ipc_prefix,
        "key": key,
        "signature_scheme": "hmac-sha256",
        "kernel_name": "python3",
    }
    info.update({f"{name}_port": port for name, port in PORTS.items()})  # type: ignore[typeddict-item]
    return info


def new_key() -> str:
    """A fresh HMAC key for one kernel's messages."""
    return secrets.token_hex(32)


def strict_context(context: zmq.Context) -> zmq.Context:
    """``context`` with the socket defaults of a client to an untrusted kernel."""
    context.setsockopt(zmq.RECONNECT_IVL, -1)  # never re-resolve a socket path
    context.setsockopt(zmq.MAXMSGSIZE, MAX_MESSAGE_BYTES)
    context.setsockopt(zmq.LINGER, 0)
    # A send to a kernel that is gone waits for a peer forever: give up instead.
    context.setsockopt(zmq.SNDTIMEO, SEND_TIMEOUT_MS)
    return context


def wait_for_sockets(prefix: str, alive: Callable[[], bool], timeout: float) -> None:
    """Wait until the kernel has bound all its sockets at ``prefix-N``; check they are sockets.

    Raises :class:`KernelGone` when the sandbox ends or the time runs out first.
    """
    deadline = time.monotonic() + timeout
    paths = [f"{prefix}-{port}" for port in PORTS.values()]
    while True:
        modes = []
        for path in paths:
            try:
                modes.append(os.lstat(path).st_mode)
            except OSError:
                break
        if len(modes) == len(paths):
            if not all(stat.S_ISSOCK(mode) for mode in modes):
                raise KernelGone("the kernel's sockets are not sockets")
            return
        if not alive():
            raise KernelGone("the sandbox ended before its kernel started")
        if time.monotonic() > deadline:
            raise KernelGone(f"the kernel did not start within {timeout:.0f} s")
        time.sleep(0.05)


class _Client(AsyncKernelClient):
    """nbclient's client: no heartbeat, and alive while the sandbox is."""

    alive: Callable[[], bool] = staticmethod(lambda: True)

    def start_channels(self, *args: Any, **kwargs: Any) -> None:
        super().start_channels(shell=True, iopub=True, stdin=True, hb=False, control=True)

    async def _async_is_alive(self) -> bool:
        return self.alive()

    is_alive = _async_is_alive


class SandboxManager:
    """What nbclient needs of a kernel manager, for a kernel someone else started.

    The sandbox (:mod:`.sandbox`) owns the kernel's process; this only hands out clients
    and interrupts.
    """

    has_kernel = True

    def __init__(
        self,
        info: KernelConnectionInfo,
        alive: Callable[[], bool],
        interrupt: Callable[[], None],
    ):
        self.info, self.alive, self.interrupt = info, alive, interrupt

    def client(self) -> _Client:
        client = _Client(context=strict_context(zmq.asyncio.Context()))
        client.load_connection_info(self.info)
        client.alive = self.alive
        return client

    def is_alive(self) -> bool:
        return self.alive()

    def interrupt_kernel(self) -> None:
        self.interrupt()

    def shutdown_kernel(self, now: bool = False) -> None:
        """The sandbox stops the kernel."""

    def cleanup_resources(self) -> None:
        """Nothing to clean: the sandbox's folder goes with it."""


class CappedNotebookClient(NotebookClient):
    """nbclient with a cap on each cell's outputs and without widget state."""

    def output(
        self, outs: list[NotebookNode], msg: dict, display_id: str | None, cell_index: int
    ) -> NotebookNode | None:
        used = sum(len(json.dumps(out)) for out in outs)
        if used > MAX_CELL_OUTPUT_CHARS:
            return None
        out = super().output(outs, msg, display_id, cell_index)
        if out is not None and used + len(json.dumps(out)) > MAX_CELL_OUTPUT_CHARS:
            outs.remove(out)
            outs.append(
                NotebookNode(
                    output_type="stream",
                    name="stderr",
                    text=f"\n[course verify: output beyond {MAX_CELL_OUTPUT_CHARS:,} "
                    "characters dropped]\n",
                )
            )
        return out

    def handle_comm_msg(self, outs: list, msg: dict, cell_index: int) -> None:
        """Widgets' messages are not kept: their state is the kernel's, never graded."""


def run_cells(
    nb: NotebookNode,
    manager: SandboxManager,
    cell_timeout: int,
    on_cell: Callable[[int], None],
    after_cell: Callable[[int], None],
) -> str | None:
    """Execute ``nb``'s cells in the sandboxed kernel; errors in cells are recorded.

    ``on_cell(index)`` runs before and ``after_cell(index)`` after each cell (the grader's
    own cells run there). Returns ``None``, or the error that stopped the run (a cell
    time limit, a dead kernel).
    """
    from course_utils.notebooks import describe_error

    client = CappedNotebookClient(
        nb,
        km=manager,  # type: ignore[arg-type]  # duck-typed: the sandbox owns the kernel
        timeout=cell_timeout,
        startup_timeout=cell_timeout,
        record_timing=False,
        allow_errors=True,
        iopub_timeout=10,
    )
    client.on_cell_start = lambda cell, cell_index: on_cell(cell_index)
    client.on_cell_executed = lambda cell, cell_index, execute_reply: after_cell(cell_index)
    try:
        client.execute()
    except Exception as exc:
        return describe_error(exc)
    finally:
        if client.kc is not None:
            client.kc.stop_channels()
    return None


class KernelRequests:
    """Requests to the kernel's :mod:`.remote` server, one at a time, each with a time limit.

    The answer comes back as a user expression's ``text/plain`` (a string's repr), which
    is parsed with :func:`ast.literal_eval`, never evaluated.
    """

    def __init__(
        self,
        info: KernelConnectionInfo,
        timeout: float,
        interrupt: Callable[[], None],
        alive: Callable[[], bool],
    ):
        self.client = BlockingKernelClient(context=strict_context(zmq.Context()))
        self.client.load_connection_info(info)
        self.client.start_channels(shell=True, iopub=False, stdin=False, hb=False, control=False)
        self.timeout, self.interrupt, self.alive = timeout, interrupt, alive
        self.broken: str | None = None

    def request(self, payload: dict) -> str:
        """Send one request; return the server's JSON answer (untrusted)."""
        if self.broken is None and not self.alive():
            self.broken = "the kernel has ended"
        if self.broken:
            raise KernelGone(self.broken)
        call = (
            "__import__('course_utils.instructor.verify.remote', fromlist=['serve'])"
            f".serve(get_ipython().user_ns, {json.dumps(payload)!r})"
        )
        try:
            msg_id = self.client.execute(
                "",
                silent=True,
                store_history=False,
                user_expressions={"r": call},
                allow_stdin=False,
            )
        except zmq.Again:
            self.broken = "the kernel does not take requests"
            raise KernelGone(self.broken) from None
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                left = deadline - time.monotonic()
                reply = self.client.get_shell_msg(timeout=max(0.0, min(1.0, left)))
            except queue.Empty:
                if self.alive() and time.monotonic() < deadline:
                    continue
                if self.alive():
                    self.interrupt()
                self.broken = f"no answer within {self.timeout:.0f} s"
                raise KernelGone(self.broken) from None
            if reply.get("parent_header", {}).get("msg_id") == msg_id:
                break
        expression = reply.get("content", {}).get("user_expressions", {}).get("r", {})
        if expression.get("status") != "ok":
            raise KernelGone(f"the request failed: {str(expression.get('ename'))[:100]}")
        text = expression.get("data", {}).get("text/plain", "")
        if not isinstance(text, str) or len(text) > MAX_REPLY_CHARS:
            raise KernelGone("the answer is not a string of bounded size")
        try:
            answer = pysource.literal_eval(text)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            raise KernelGone("the answer is not a string") from None
        if not isinstance(answer, str):
            raise KernelGone("the answer is not a string")
        return answer

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.client.stop_channels()


def interrupt_children(init_pid: int) -> None:
    """SIGINT to the children of the sandbox's first process (the kernel), as a cell timeout."""
    with contextlib.suppress(OSError, ValueError):
        children = Path(f"/proc/{init_pid}/task/{init_pid}/children").read_text().split()
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGINT)
