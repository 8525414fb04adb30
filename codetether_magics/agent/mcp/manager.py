"""The MCP servers of one kernel (or one Python process): started once, lazily, reused, stopped at exit.

    manager = McpManager(load_config(find_config(folder)))
    await manager.start()            # every server at once; each fails alone, with a reason
    tools = manager.tools()          # mcp__<server>__<tool>, never read-only
    print(*manager.take_notices(), sep="\\n")   # one line per server that failed since last asked
    manager.close()                  # also done at interpreter exit

Connections live on one background loop (``loop_thread``), so they outlive the cell (or
event loop) that started them, and ``%codetether mcp`` can ask from synchronous code.
The SDK is imported by ``start()``, never by building a manager with no servers.
"""

from __future__ import annotations

import atexit
import logging
import os
import weakref
from dataclasses import dataclass
from typing import Any

from ...errors import McpConfigError
from ..tools.base import Tool
from .config import McpConfig, ServerConfig, scrub
from .loop_thread import McpLoop
from .names import tool_names
from .results import to_tool_result

__all__ = ["CALL_TIMEOUT_ENV", "START_TIMEOUT_ENV", "McpManager", "ServerStatus"]

log = logging.getLogger(__name__)

START_TIMEOUT_ENV, CALL_TIMEOUT_ENV = "CODETETHER_MCP_START_TIMEOUT", "CODETETHER_MCP_CALL_TIMEOUT"
DEFAULT_START_TIMEOUT = 30.0  # seconds for a server to start and list its tools
DEFAULT_CALL_TIMEOUT = 300.0  # seconds for one tool call
CLOSE_TIMEOUT = 15.0  # seconds for every server to stop (the SDK's own escalation takes up to ~5 s)

_LOOP = McpLoop()  # one thread for every manager of the process
_OPEN: "weakref.WeakSet[McpManager]" = weakref.WeakSet()


@dataclass(frozen=True)
class ServerStatus:
    name: str
    key: str
    state: str  # "not started", "starting", "running", "failed", "stopped"
    reason: str | None
    tools: tuple[str, ...]  # model-facing names
    target: str  # the command line or URL (no env or header values)


class McpManager:
    def __init__(self, config: McpConfig, *, start_timeout: float | None = None,
                 call_timeout: float | None = None) -> None:
        self.config = config
        self.start_timeout = start_timeout or _seconds(START_TIMEOUT_ENV, DEFAULT_START_TIMEOUT)
        self.call_timeout = call_timeout or _seconds(CALL_TIMEOUT_ENV, DEFAULT_CALL_TIMEOUT)
        self._connections: dict[str, Any] = {}  # key -> ServerConnection, made on the MCP loop
        self._reported: set[tuple[str, str]] = set()
        self._tools: dict[str, list[Tool]] = {}

    # -- lifecycle ----------------------------------------------------------------

    async def start(self) -> None:
        """Start every server not started yet and wait until each runs or failed (bounded by ``start_timeout``)."""
        if self.config.servers:
            await _LOOP.run(self._start_all())

    def start_sync(self) -> None:
        if self.config.servers:
            _LOOP.run_sync(self._start_all(), timeout=self.start_timeout + CLOSE_TIMEOUT)

    async def restart(self, key: str | None = None) -> None:
        await _LOOP.run(self._restart(key))

    def restart_sync(self, key: str | None = None) -> None:
        _LOOP.run_sync(self._restart(key), timeout=self.start_timeout + 2 * CLOSE_TIMEOUT)

    def close(self) -> None:
        """Stop every server (blocking, bounded); safe to call twice and at interpreter exit."""
        _OPEN.discard(self)
        if not self._connections:
            return
        try:
            _LOOP.run_sync(self._stop_all(), timeout=CLOSE_TIMEOUT)
        except Exception:  # noqa: BLE001 - a stop that fails must not stop the others or the kernel's exit
            log.warning("stopping the MCP servers took longer than %s s", CLOSE_TIMEOUT)

    async def _start_all(self) -> None:
        import asyncio

        from .connection import ServerConnection  # the SDK is imported here, on first start

        _install_log_scrubber()
        for server in self.config.servers:
            if server.key not in self._connections:
                self._connections[server.key] = ServerConnection(
                    server, self.config.secrets, start_timeout=self.start_timeout, call_timeout=self.call_timeout)
        _watch_at_exit(self)
        await asyncio.gather(*(connection.start() for connection in self._connections.values()))

    async def _restart(self, key: str | None) -> None:
        if key is not None and self.config.server(key) is None:
            raise McpConfigError(f"no MCP server {key!r} in {self.config.path}; known: {self._known()}")
        for name in [key] if key else list(self._connections):
            connection = self._connections.pop(name, None)
            if connection is not None:
                await connection.stop()
            self._tools.pop(name, None)
            self._reported = {(k, r) for k, r in self._reported if k != name}
        await self._start_all()

    async def _stop_all(self) -> None:
        import asyncio

        connections, self._connections = list(self._connections.values()), {}
        self._tools.clear()
        await asyncio.gather(*(connection.stop() for connection in connections), return_exceptions=True)

    # -- what the agent and the user see ------------------------------------------

    def tools(self) -> list[Tool]:
        """The tools of every running server, as ``mcp__<server>__<tool>``."""
        tools: list[Tool] = []
        for key, connection in list(self._connections.items()):
            if connection.state != "running":
                continue
            if key not in self._tools:
                self._tools[key] = self._make_tools(connection)
            tools.extend(self._tools[key])
        return tools

    def deferred_tools(self, names: list[str]) -> list[Tool]:
        """Tools of these names (``mcp__<server>__<tool>`` of configured servers) whose server starts only
        when a call of theirs runs, after its approval: a replay needs no server unless it runs a call."""
        keys = {server.key for server in self.config.servers}
        return [self._deferred(name) for name in dict.fromkeys(names)
                if name.count("__") >= 2 and name.split("__")[1] in keys]

    def _deferred(self, name: str) -> Tool:
        key = name.split("__")[1]

        async def handler(arguments: dict[str, Any]) -> Any:
            from ...errors import ToolError

            await self.start()
            tool = next((tool for tool in self.tools() if tool.name == name), None)
            if tool is None:
                row = next(row for row in self.status() if row.key == key)
                why = f"{row.state}: {row.reason}" if row.reason else f"{row.state}, without a tool of that name"
                raise ToolError(f"MCP tool {name} is not available now (server '{row.name}' {why}).")
            return await tool.handler(arguments)

        return Tool(name=name, description=f"MCP tool of server '{key}' (started when called)",
                    parameters={"type": "object", "properties": {}}, handler=handler, read_only=False)

    def status(self) -> list[ServerStatus]:
        rows = []
        for server in self.config.servers:
            connection = self._connections.get(server.key)
            state = connection.state if connection is not None else "not started"
            reason = connection.reason if connection is not None else None
            names = tuple(tool.name for tool in self._tools.get(server.key, []))
            if connection is not None and state == "running" and not names:
                names = tuple(tool_names(server.key, [t.name for t in connection.tools]))
            rows.append(ServerStatus(server.name, server.key, state, reason, names, _target(server)))
        return rows

    def take_notices(self) -> list[str]:
        """One line per server that failed or stopped since the last call (each reported once)."""
        notices = []
        for key, connection in list(self._connections.items()):
            if connection.state == "failed" and (key, connection.reason) not in self._reported:
                self._reported.add((key, connection.reason))
                notices.append(f"MCP server '{connection.name}' {connection.reason}; the agent goes on without "
                               f"its tools (`%codetether mcp restart {key}` tries again).")
        return notices

    async def call(self, key: str, tool: str, arguments: dict[str, Any]) -> Any:
        connection = self._connections.get(key)
        if connection is None:
            from ...errors import McpError

            raise McpError(f"MCP server {key!r} is not started.")
        return await _LOOP.run(connection.call(tool, arguments))

    def _make_tools(self, connection: Any) -> list[Tool]:
        key = connection.server.key
        by_name = {tool.name: tool for tool in connection.tools}
        return [self._tool(key, connection.name, name, by_name[original])
                for name, original in tool_names(key, list(by_name)).items()]

    def _tool(self, key: str, server_name: str, name: str, listed: Any) -> Tool:
        original = listed.name

        async def handler(arguments: dict[str, Any]) -> Any:
            from ...errors import McpError, ToolError

            try:
                result = await self.call(key, original, arguments)
            except McpError as exc:
                raise ToolError(str(exc)) from None
            converted = to_tool_result(result)
            converted.output = scrub(converted.output, self.config.secrets)
            return converted

        description = (listed.description or "").strip()
        origin = f"(MCP server '{server_name}', tool '{original}')"
        return Tool(name=name, description=f"{description} {origin}".strip(), parameters=_schema(listed),
                    handler=handler, read_only=False)  # an MCP tool can do anything: it always asks

    def _known(self) -> str:
        return ", ".join(server.key for server in self.config.servers) or "none"


def _schema(listed: Any) -> dict[str, Any]:
    """The tool's input schema, as an object schema both APIs accept."""
    schema = getattr(listed, "input_schema", None) or getattr(listed, "inputSchema", None)
    if not isinstance(schema, dict) or schema.get("type") != "object":
        return {"type": "object", "properties": {}}
    schema = {k: v for k, v in schema.items() if k not in ("$schema", "title")}
    schema.setdefault("properties", {})
    return schema


def _target(server: ServerConfig) -> str:
    return server.describe()


def _seconds(variable: str, default: float) -> float:
    raw = os.environ.get(variable, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise McpConfigError(f"{variable}={raw!r} is not a number of seconds.") from None
    if not value > 0:
        raise McpConfigError(f"{variable} must be more than 0 seconds, got {raw!r}.")
    return value


# -- process-wide -------------------------------------------------------------------


def _watch_at_exit(manager: McpManager) -> None:
    if not _OPEN:
        atexit.register(_close_all)
    _OPEN.add(manager)


def _close_all() -> None:
    for manager in list(_OPEN):
        manager.close()


def _install_log_scrubber() -> None:
    """Scrub secrets from the SDK's log lines and ours (a filter on a logger does not reach its children,
    so every logger of the SDK that exists once it is imported gets one)."""
    from ...redaction import scrubbing_logger

    ours = ("mcp.", __package__ or "codetether_magics.agent.mcp")
    names = [name for name in logging.root.manager.loggerDict if name == "mcp" or name.startswith(ours)]
    for name in [*names, __name__]:
        scrubbing_logger(name)
