"""The ``bash`` tool: one shell command in the session directory, with a timeout.

The command starts in the root directory but a shell can reach anything the user
can, which is why ``bash`` always goes through the approver. On timeout or
cancellation the whole process group is killed so no child outlives the call.
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


def _kill_group(process: asyncio.subprocess.Process) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


async def run_command(command: str, cwd: Path, timeout: float) -> ToolResult:
    process = await asyncio.create_subprocess_exec(
        "bash", "-c", command,
        cwd=str(cwd),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,  # its own process group, so a kill reaches its children
    )
    try:
        raw, _ = await asyncio.wait_for(process.communicate(), timeout)
    except asyncio.TimeoutError:
        _kill_group(process)
        await process.wait()
        raise ToolError(f"Command timed out after {timeout:g} s and was killed: {command}") from None
    except asyncio.CancelledError:
        _kill_group(process)
        await process.wait()  # reap it (at once after SIGKILL) so no process or pipe outlives the call
        raise
    output = raw.decode("utf-8", errors="replace")
    code = process.returncode
    return ToolResult(output=f"{output}{'' if output.endswith(chr(10)) or not output else chr(10)}[exit code {code}]",
                      success=code == 0)


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
