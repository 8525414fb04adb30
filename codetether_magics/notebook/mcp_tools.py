"""The kernel's MCP servers, as the notebook sees them.

The config is the one that applies to the bound notebook (``$CODETETHER_MCP_CONFIG``, else
``mcp.json`` beside it, else the user's); it is read again when that file changes, and
the servers of the old one are stopped. Servers start on the first cell that builds its
tools and serve every later cell; they stop on ``%unload_ext`` and when the kernel exits.
A server that fails, or dies mid-turn, is reported once, as one line on the cell's stderr
after its record (``print_notices``).
No config anywhere: nothing of the ``mcp`` SDK is imported.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from ..agent.mcp.config import McpConfig, find_config, load_config
from ..agent.tools.base import Tool
from .redact import redact

__all__ = ["NotebookMcp", "status_lines"]


class NotebookMcp:
    def __init__(self, magics: Any) -> None:
        self.magics = magics
        self._manager: Any = None  # agent.mcp.McpManager of the current config
        self._stamp: tuple[str, int, int] | None = None  # (path, mtime_ns, size) it was read from

    def manager(self) -> Any:
        """The manager for the config that applies now (None without one); ``McpConfigError`` if it is bad."""
        path = find_config(self.notebook_folder())
        stamp = _stamp(path)
        if stamp != self._stamp or (path is not None and self._manager is None):
            self.close()
            if path is not None:
                from ..agent.mcp.manager import McpManager

                self._manager = McpManager(load_config(path))  # its secrets are known from now on
            self._stamp = stamp
        return self._manager

    @property
    def config(self) -> McpConfig:
        manager = self.manager()
        return manager.config if manager is not None else McpConfig(None)

    async def tools(self, replaying: list[str] | None = None) -> list[Tool]:
        """The tools of every running server, starting the servers not started yet.

        ``replaying``: the tool names a recorded turn called. A replay gets just those MCP tools, and their
        server starts only if a call is allowed to run: replaying a notebook on a machine that cannot
        start its servers (offline CI) shows the recorded answer, with no start-up failure.
        """
        manager = self.manager()
        if manager is None:
            return []
        if replaying is not None:
            return manager.deferred_tools(replaying)
        await manager.start()
        return manager.tools()

    def take_notices(self) -> list[str]:
        return self._manager.take_notices() if self._manager is not None else []

    def print_notices(self) -> None:
        for line in self.take_notices():
            print(redact(line), file=sys.stderr)

    def close(self) -> None:
        manager, self._manager, self._stamp = self._manager, None, None
        if manager is not None:
            manager.close()

    def notebook_folder(self) -> Path:
        return self.magics.state.location().path.parent


def _stamp(path: Path | None) -> tuple[str, int, int] | None:
    if path is None:
        return None
    try:
        info = path.stat()
    except OSError:
        return (str(path), 0, 0)
    return (str(path), info.st_mtime_ns, info.st_size)


def status_lines(mcp: NotebookMcp) -> list[str]:
    """What ``%codetether mcp`` prints: the config file, then each server, its state and its tools."""
    manager = mcp.manager()
    if manager is None:
        from ..agent.mcp.config import CONFIG_ENV, USER_CONFIG

        return [f"No MCP servers: no ${CONFIG_ENV}, no mcp.json beside the notebook ({mcp.notebook_folder()}), "
                f"no {USER_CONFIG}.",
                'Write {"mcpServers": {"name": {"command": "...", "args": [...]}}} in one of them.']
    lines = [f"MCP config: {manager.config.path}"]
    rows = manager.status()
    if not manager.config.servers:
        lines.append("  (no servers in it)")
    for row in rows:
        state = f"{row.state}: {row.reason}" if row.reason else row.state
        lines.append(f"  {row.key}  [{state}]  {row.target}")
        lines.extend(f"    {name}" for name in row.tools)
    if any(row.state == "not started" for row in rows):
        lines.append("Servers start with the first %%codetether cell, or now with %codetether mcp start.")
    return [redact(line) for line in lines]
