"""pytest plugin: fail a notebook within seconds when its kernel dies.

nbval 0.11 waits for a cell's ``execute_reply`` on the shell channel for the whole
``--nbval-cell-timeout``. A kernel that dies (killed for memory, segfault,
``os._exit``) never replies, so without this plugin a dead kernel costs the full
timeout (600 s in ``make nbval``) before anything is reported.

The plugin patches nbval's ``RunningKernel``:

* ``await_reply`` waits in ~1 s slices and checks between slices that the kernel
  process is alive; the total timeout still ends in ``queue.Empty`` as before;
* ``get_message`` raises instead of returning ``Empty`` when the kernel has died, which
  also covers nbval's iopub loop (it would otherwise wait its 5 s output timeout and
  report a misleading "timeout");
* the remaining cells of a notebook whose kernel died are skipped with the reason.

The error names the exit status (a negative one is the signal, SIGKILL usually being
the out-of-memory killer) and the last lines the cell printed. Load it with::

    python -m pytest --nbval-lax -p tests.nbval_guard notebooks
"""

from __future__ import annotations

import signal
import time
from queue import Empty
from typing import Any

import pytest

POLL_S = 1.0  # how often a waiting test checks that the kernel is still alive
TAIL_LINES = 10  # how many lines of the dying cell's output the error shows

_originals: dict[str, Any] = {}


class KernelDiedError(RuntimeError):
    """The notebook's kernel process exited while nbval was waiting for it."""


def describe_exit(returncode: int | None) -> str:
    """Explain a kernel's exit status for people.

    >>> describe_exit(-9)
    'exit status -9: killed by SIGKILL, often the out-of-memory killer'
    >>> describe_exit(1)
    'exit status 1'
    """
    if returncode is None:
        return "exit status unknown"
    text = f"exit status {returncode}"
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        text += f": killed by {name}"
        if -returncode == signal.SIGKILL:
            text += ", often the out-of-memory killer"
    return text


def _exit_status(kernel: Any) -> int | None:
    """The kernel process's exit status, when jupyter_client still knows it."""
    process = getattr(getattr(getattr(kernel, "km", None), "provisioner", None), "process", None)
    return getattr(process, "returncode", None)


def _last_output(kernel: Any, seconds: float = 0.5) -> str:
    """Drain what the kernel published before dying; return its last text lines."""
    text = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            msg = kernel.kc.get_iopub_msg(timeout=0.05)
        except Exception:  # Empty, or channels already closed
            break
        content = msg.get("content", {})
        if msg.get("msg_type") == "stream":
            text.append(content.get("text", ""))
        elif msg.get("msg_type") == "error":
            text.append(f"{content.get('ename')}: {content.get('evalue')}\n")
    lines = "".join(text).splitlines()[-TAIL_LINES:]
    return "\n".join(lines)


def _kernel_died(kernel: Any) -> KernelDiedError:
    """Build the error for a dead kernel, remember it, and release its channels."""
    if getattr(kernel, "_guard_error", None) is None:
        message = (
            f"kernel died while executing the cell ({describe_exit(_exit_status(kernel))});"
            " failing now instead of waiting for the cell timeout."
        )
        tail = _last_output(kernel)
        if tail:
            message += "\nLast output before it died:\n" + tail
        kernel._guard_error = message
        try:  # nbval's teardown skips a dead kernel; close its sockets here
            kernel.kc.stop_channels()
            kernel.km.cleanup_resources()
        except Exception:
            pass
    return KernelDiedError(kernel._guard_error)


def guarded_get_message(self: Any, stream: str, timeout: float | None = None) -> dict:
    """nbval's ``get_message``, but a dead kernel raises instead of timing out."""
    try:
        return _originals["get_message"](self, stream, timeout=timeout)
    except Empty:
        if not self.is_alive():
            raise _kernel_died(self) from None
        raise


def guarded_await_reply(self: Any, msg_id: str, timeout: float | None = None) -> None:
    """nbval's ``await_reply`` in ``POLL_S`` slices, checking the kernel is alive.

    Raises :class:`KernelDiedError` as soon as the kernel is gone, and ``queue.Empty``
    once ``timeout`` seconds have passed, like the original.
    """
    deadline = None if timeout is None else time.monotonic() + float(timeout)
    while True:
        if not self.is_alive():
            raise _kernel_died(self)
        wait = POLL_S
        if deadline is not None:
            wait = min(wait, deadline - time.monotonic())
            if wait <= 0:
                raise Empty
        try:
            return _originals["await_reply"](self, msg_id, timeout=wait)
        except Empty:
            continue


def install() -> None:
    """Patch nbval's ``RunningKernel`` (idempotent; a no-op without nbval)."""
    try:
        from nbval.kernel import RunningKernel
    except ImportError:
        return
    if _originals:
        return
    _originals["await_reply"] = RunningKernel.await_reply
    _originals["get_message"] = RunningKernel.get_message
    RunningKernel.await_reply = guarded_await_reply
    RunningKernel.get_message = guarded_get_message


def uninstall() -> None:
    """Undo :func:`install`."""
    if not _originals:
        return
    from nbval.kernel import RunningKernel

    RunningKernel.await_reply = _originals.pop("await_reply")
    RunningKernel.get_message = _originals.pop("get_message")


def pytest_configure(config: pytest.Config) -> None:
    install()


def pytest_unconfigure(config: pytest.Config) -> None:
    uninstall()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Skip the rest of a notebook once its kernel has died (the failing cell says why)."""
    kernel = getattr(item.parent, "kernel", None)
    if getattr(kernel, "_guard_error", None):
        pytest.skip("the notebook's kernel died in an earlier cell")
