"""The ``bash`` tool: one shell command in the session directory, with a timeout.

The command starts in the root directory but a shell can reach anything the user
can, which is why ``bash`` always goes through the approver. On timeout or
cancellation the whole process group is killed so no child outlives the call; so is
a background child still holding the output open ``EXIT_GRACE`` after the shell exited
(one whose output is redirected elsewhere is left running). Output is read as it comes
and only its head and tail are kept, so a command printing for ever costs the kernel
``BASH_HEAD_BYTES + BASH_TAIL_BYTES`` of memory, not all it printed.
"""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path
from typing import Any

from ...errors import ToolError
from .base import Tool, ToolResult
from .common import object_schema

__all__ = ["BASH_TIMEOUT", "bash_tool"]

BASH_TIMEOUT = 120.0  # seconds
BASH_HEAD_BYTES = 64 * 1024  # output kept from the start ...
BASH_TAIL_BYTES = 8 * 1024  # ... and from the end; what lies between is only counted
EXIT_GRACE = 1.0  # seconds the output may stay open after the shell has exited


def _kill_group(process: asyncio.subprocess.Process) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


class _Capped:
    """The first ``BASH_HEAD_BYTES`` and the last ``BASH_TAIL_BYTES`` of a stream, and its full size."""

    def __init__(self) -> None:
        self.head = bytearray()
        self.tail = bytearray()
        self.total = 0

    def add(self, chunk: bytes) -> None:
        self.total += len(chunk)
        room = BASH_HEAD_BYTES - len(self.head)
        if room > 0:
            self.head += chunk[:room]
            chunk = chunk[room:]
        if chunk:
            self.tail += chunk
            del self.tail[:-BASH_TAIL_BYTES]

    def text(self) -> str:
        cut = self.total - len(self.head) - len(self.tail)
        middle = f"\n… [{cut} bytes of output cut; {self.total} in all] …\n" if cut else ""
        return self.head.decode("utf-8", errors="replace") + middle + self.tail.decode("utf-8", errors="replace")


async def _drain(stream: asyncio.StreamReader, capped: _Capped) -> None:
    while chunk := await stream.read(64 * 1024):
        capped.add(chunk)


def _with_exit_code(output: str, code: int | None) -> str:
    return f"{output}{'' if output.endswith(chr(10)) or not output else chr(10)}[exit code {code}]"


async def _shell_exit(process: asyncio.subprocess.Process, reader: asyncio.Future) -> None:
    """Until the shell itself has exited. ``process.wait()`` alone also waits for the output
    to close, which a background child can hold open for as long as it likes."""
    while process.returncode is None:
        if reader.done():  # the output closed: wait() now ends with the shell
            await process.wait()
            return
        await asyncio.wait({reader}, timeout=0.05)


async def _spawn(command: str, cwd: Path) -> asyncio.subprocess.Process:
    """Start the shell in a process group of its own, so a kill reaches its children.

    A cancellation while asyncio is still setting the process up would leave it (and any child
    it started) running, since asyncio then kills only the shell: the start is shielded, and a
    cancelled start kills the whole group like any cancelled command.
    """
    starting = asyncio.ensure_future(asyncio.create_subprocess_exec(
        "bash", "-c", command,
        cwd=str(cwd),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,
    ))
    try:
        return await asyncio.shield(starting)
    except asyncio.CancelledError:
        process = await starting
        _kill_group(process)
        await _reap(process)
        transport = getattr(process, "_transport", None)  # see _release
        if transport is not None:
            transport.close()
        raise


async def _reap(process: asyncio.subprocess.Process) -> None:
    """Until the watcher has reaped the shell (at once after SIGKILL), 5 s at most.

    Polls ``returncode`` rather than awaiting ``wait()``, which would also wait for a pipe that a
    holder outside the process group (one that left with setsid) can keep open for ever.
    """
    for _ in range(500):
        if process.returncode is not None:
            return
        await asyncio.sleep(0.01)


async def _release(process: asyncio.subprocess.Process, reader: asyncio.Future) -> None:
    """Wait for the shell to be reaped and close its pipe, so nothing outlives the call."""
    await _reap(process)
    if not (await asyncio.wait({reader}, timeout=EXIT_GRACE))[1]:
        return
    reader.cancel()
    await asyncio.gather(reader, return_exceptions=True)
    transport = getattr(process, "_transport", None)  # no public way to drop our end of the pipe
    if transport is not None:
        transport.close()


async def run_command(command: str, cwd: Path, timeout: float) -> ToolResult:
    process = await _spawn(command, cwd)
    capped = _Capped()
    reader = asyncio.ensure_future(_drain(process.stdout, capped))
    try:
        await asyncio.wait_for(_shell_exit(process, reader), timeout)
        # A background child may still hold the output open: give it a moment, then stop it.
        if (await asyncio.wait({reader}, timeout=EXIT_GRACE))[1]:
            _kill_group(process)
    except asyncio.TimeoutError:
        _kill_group(process)
        raise ToolError(f"Command timed out after {timeout:g} s and was killed: {command}\n"
                        + _with_exit_code(capped.text(), None)) from None
    except asyncio.CancelledError:
        _kill_group(process)
        raise
    finally:
        await _release(process, reader)
    code = process.returncode
    return ToolResult(output=_with_exit_code(capped.text(), code), success=code == 0)


def bash_tool(root: Path, *, timeout: float = BASH_TIMEOUT) -> Tool:
    async def handler(args: dict[str, Any]) -> ToolResult:
        command = args.get("command")
        if not isinstance(command, str) or not command.strip():
            raise ToolError("'command' must be a non-empty shell command.")
        return await run_command(command, root.resolve(), timeout)

    return Tool(
        name="bash",
        description=f"Run a bash command in the session directory (stdout and stderr together; "
        f"killed after {timeout:g} s). Needs the user's approval.",
        parameters=object_schema({"command": {"type": "string", "description": "The command line to run."}},
                                 ["command"]),
        handler=handler,
        read_only=False,
    )
