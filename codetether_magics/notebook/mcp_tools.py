"""The kernel's MCP servers, as the notebook sees them.

The config is the one that applies to the bound notebook (``$CODETETHER_MCP_CONFIG``, else
``mcp.json`` beside it, else the user's); it is read again when that file changes, and
the servers of the old one are stopped. Servers start on the first cell that builds its
tools and serve every later cell; they stop on ``%unload_ext`` and when the kernel exits.
A server that fails, or dies mid-turn, is reported once, as one line on the cell's stderr
after its record (``print_notices``).
No config anywhere: nothing of the ``mcp`` SDK is imported.

An ``mcp.json`` beside the notebook travels with it (a cloned repository, a shared folder), and
starting a stdio server runs its command: so that file's servers start only once the user says
so in this kernel, with ``%codetether mcp start`` / ``restart`` or a cell that allows MCP tools
(``--allow mcp``, ``mcp__<server>``, ``all``, or ``auto_approve``). Until then a live cell offers
no MCP tools and says once how to start them. A changed file needs that consent again. The
files the user chose (``$CODETETHER_MCP_CONFIG``, the one in their home) are trusted as they are.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from ..agent.mcp.config import CONFIG_ENV, McpConfig, find_config, load_config
from ..agent.tools.base import Tool
from .redact import redact

__all__ = ["NotebookMcp", "status_lines"]


class NotebookMcp:
    def __init__(self, magics: Any) -> None:
        self.magics = magics
        self._manager: Any = None  # agent.mcp.McpManager of the current config
        self._stamp: tuple[str, int, int] | None = None  # (path, mtime_ns, size) it was read from
        self._trusted: tuple[str, int, int] | None = None  # the folder config the user agreed to start
        self._told: tuple[str, int, int] | None = None  # the folder config whose refusal was said once
        self._waiting: list[str] = []  # the refusal notice, printed after the cell's record

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

    async def tools(self, replaying: list[str] | None = None, *, consent: bool = False) -> list[Tool]:
        """The tools of every running server, starting the servers not started yet.

        ``replaying``: the tool names a recorded turn called. A replay gets just those MCP tools, and their
        server starts only if a call is allowed to run: replaying a notebook on a machine that cannot
        start its servers (offline CI) shows the recorded answer, with no start-up failure.
        ``consent``: the cell allows MCP tools, which agrees to start a config found beside the notebook.
        """
        manager = self.manager()
        if manager is None:
            return []
        if replaying is not None:
            return manager.deferred_tools(replaying)  # a call starts its server only once it is allowed
        if consent:
            self.trust()
        if self.untrusted():
            self._refuse_once(manager)
            return []
        await manager.start()
        return manager.tools()

    def trust(self) -> None:
        """The user agreed to start the servers of the config that applies now."""
        self.manager()
        self._trusted = self._stamp

    def untrusted(self) -> bool:
        """Whether the config is an ``mcp.json`` beside the notebook that the user has not agreed to start."""
        manager = self.manager()
        if manager is None or manager.config.path is None or not manager.config.servers:
            return False
        folder_file = Path(manager.config.path) == self.notebook_folder() / "mcp.json"
        chosen = bool(os.environ.get(CONFIG_ENV, "").strip())
        return folder_file and not chosen and self._trusted != self._stamp

    def _refuse_once(self, manager: Any) -> None:
        if self._told == self._stamp:
            return
        self._told = self._stamp
        names = ", ".join(server.name for server in manager.config.servers)
        self._waiting.append(
            f"MCP servers of {manager.config.path} not started ({names}): a notebook's folder can come from "
            "anyone, and starting a server runs its command. Read the file, then start them with "
            "%codetether mcp start, or run the cell with --allow mcp.")

    def take_notices(self) -> list[str]:
        waiting, self._waiting = self._waiting, []
        return waiting + (self._manager.take_notices() if self._manager is not None else [])

    def print_notices(self) -> None:
        for line in self.take_notices():
            print(redact(line), file=sys.stderr)

    def close(self) -> None:
        manager, self._manager, self._stamp = self._manager, None, None  # _trusted stays: it names a stamp
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
    if mcp.untrusted():
        lines.append("This file is beside the notebook, so its servers start only when you say so: "
                     "%codetether mcp start, or a cell with --allow mcp.")
    elif any(row.state == "not started" for row in rows):
        lines.append("Servers start with the first %%codetether cell, or now with %codetether mcp start.")
    return [redact(line) for line in lines]
