"""One MCP server, through the official ``mcp`` SDK: start it, list its tools, call them, stop it.

An owner task on the MCP loop enters the transport and the ``ClientSession`` and stays
inside them until the server stops: the SDK's anyio task groups are entered and left by
that one task, while calls come from other tasks of the same loop. The owner also watches
the transport's read stream, so a server that dies between calls is noticed at once.
Importing this module imports the SDK; ``manager`` does so only when a server starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import tempfile
import time
from typing import Any, AsyncIterator

import anyio
from mcp import ClientSession, MCPError, StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.types import Implementation, PaginatedRequestParams

from ...errors import McpError
from .config import HttpServer, ServerConfig, StdioServer, scrub

__all__ = ["FAILED", "NOT_STARTED", "RUNNING", "STARTING", "STOPPED", "ServerConnection"]

NOT_STARTED, STARTING, RUNNING, FAILED, STOPPED = "not started", "starting", "running", "failed", "stopped"
STDERR_TAIL = 4096  # bytes of a server's stderr read back to explain a failure
STDERR_LIMIT = 1024 * 1024  # a chatty server's stderr is cut back to its tail past this size
CLIENT_INFO = Implementation(name="codetether-magics", version="0.1.0")

# Linux: the server gets SIGTERM when the kernel dies, even by SIGKILL, so none is orphaned.
# (The SDK starts servers in their own session, out of reach of the kernel's process group.)
_DEATH_GUARD = (
    "import ctypes,os,signal,sys\n"
    "ctypes.CDLL(None).prctl(1,signal.SIGTERM)\n"  # PR_SET_PDEATHSIG
    "os.getppid()==int(sys.argv[1]) or os._exit(1)\n"  # the kernel died before prctl
    "try: os.execvp(sys.argv[2],sys.argv[2:])\n"
    "except OSError as e: sys.stderr.write(f'cannot run {sys.argv[2]!r}: {e.strerror}\\n'); os._exit(127)\n"
)


class ServerConnection:
    def __init__(self, server: ServerConfig, secrets: frozenset[str], *, start_timeout: float,
                 call_timeout: float) -> None:
        self.server = server
        self.secrets = secrets
        self.start_timeout = start_timeout
        self.call_timeout = call_timeout
        self.state = NOT_STARTED
        self.reason: str | None = None
        self.tools: list[Any] = []  # mcp.types.Tool, as listed at start
        self._session: ClientSession | None = None
        self._owner: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._ended = anyio.Event()  # the read stream ended, or stop() was asked
        self._stopping = False
        self._started_at = 0.0
        self._stderr: Any = None

    @property
    def name(self) -> str:
        return self.server.name

    # -- lifecycle --------------------------------------------------------------

    async def start(self) -> None:
        """Start the server if it was not, and wait (at most ``start_timeout`` s) until it runs or fails."""
        if self.state == NOT_STARTED:
            self.state, self._started_at = STARTING, time.monotonic()
            self._owner = asyncio.get_running_loop().create_task(self._own(), name=f"mcp-{self.server.key}")
        if self.state != STARTING:
            return
        left = self.start_timeout - (time.monotonic() - self._started_at)
        try:
            await asyncio.wait_for(asyncio.shield(self._ready.wait()), max(left, 0.0))
        except asyncio.TimeoutError:
            self._fail(f"did not start within {self.start_timeout:g} s")
            await self._end_owner(cancel=True)

    async def stop(self) -> None:
        if self._owner is None:
            return
        self._stopping = True
        self._ended.set()
        await self._end_owner(cancel=False)
        if self.state != FAILED:
            self.state = STOPPED

    async def _end_owner(self, *, cancel: bool) -> None:
        owner = self._owner
        if owner is None or owner.done():
            return
        if not cancel:  # a clean exit closes stdin, then the SDK escalates to SIGTERM/SIGKILL (bounded)
            done, _ = await asyncio.wait({owner}, timeout=8.0)
            if done:
                return
        owner.cancel()
        await asyncio.wait({owner}, timeout=8.0)

    async def _own(self) -> None:
        try:
            async with contextlib.AsyncExitStack() as stack:
                read, write = await stack.enter_async_context(self._transport())
                read = await stack.enter_async_context(_watch_end(read, self._ended))
                session = await stack.enter_async_context(ClientSession(read, write, client_info=CLIENT_INFO))
                await session.initialize()
                self.tools = await _list_tools(session)
                self._session, self.state = session, RUNNING
                self._ready.set()
                await self._ended.wait()
                if not self._stopping:
                    self._fail(self._why_stopped("stopped unexpectedly"))
        except asyncio.CancelledError:
            if not self._stopping and self.state != FAILED:
                self._fail("start was cancelled")
        except BaseException as exc:  # noqa: BLE001 - any failure of a server is reported, never raised
            self._fail(self._why_stopped(_describe(exc, self.server)))
        finally:
            self._session = None
            self._ready.set()
            if self._stderr is not None:  # the reason, with the stderr line it needs, is set by now
                self._stderr.close()
                self._stderr = None

    @contextlib.asynccontextmanager
    async def _transport(self) -> AsyncIterator[tuple[Any, Any]]:
        server = self.server
        if isinstance(server, StdioServer):
            self._stderr = _append_only_file()
            async with stdio_client(_stdio_parameters(server), errlog=self._stderr) as streams:
                yield streams
            return
        import httpx2  # the SDK's own HTTP client

        timeout = httpx2.Timeout(30.0, read=max(self.call_timeout, 30.0))
        async with httpx2.AsyncClient(headers=dict(server.headers), timeout=timeout) as client:
            async with streamable_http_client(server.url, http_client=client) as streams:
                yield streams

    def _fail(self, reason: str) -> None:
        if self.state == FAILED:
            return
        self.state, self.reason, self.tools = FAILED, scrub(reason, self.secrets), []
        self._ready.set()

    def _why_stopped(self, what: str) -> str:
        tail = self.stderr_tail()
        return f"{what} ({tail})" if tail else what

    def stderr_tail(self) -> str:
        """The last line the server wrote on stderr (a traceback's last line says most), scrubbed."""
        raw = self._stderr_bytes(STDERR_TAIL)
        lines = [line.strip() for line in raw.decode("utf-8", "replace").splitlines() if line.strip()]
        return scrub(lines[-1][:300], self.secrets) if lines else ""

    def trim_stderr(self) -> None:
        """Keep a long-lived server's stderr file small: past ``STDERR_LIMIT``, only its tail stays."""
        if self._stderr is None or self._stderr_size() <= STDERR_LIMIT or not _appends(self._stderr):
            return
        tail = self._stderr_bytes(STDERR_TAIL)
        try:
            os.ftruncate(self._stderr.fileno(), 0)
            os.write(self._stderr.fileno(), tail)
        except OSError:
            pass

    def _stderr_size(self) -> int:
        try:
            return os.fstat(self._stderr.fileno()).st_size if self._stderr is not None else 0
        except (OSError, ValueError):
            return 0

    def _stderr_bytes(self, count: int) -> bytes:
        size = self._stderr_size()
        try:
            return os.pread(self._stderr.fileno(), count, max(size - count, 0)) if size else b""
        except (OSError, ValueError):
            return b""

    # -- calls ------------------------------------------------------------------

    async def call(self, tool: str, arguments: dict[str, Any]) -> Any:
        """``tools/call``; raises ``McpError`` naming the server when it is not running or stops meanwhile."""
        session = self._session
        if self.state != RUNNING or session is None:
            raise McpError(self._not_running())
        try:
            result = await session.call_tool(tool, arguments, read_timeout_seconds=self.call_timeout)
            self.trim_stderr()
            return result
        except MCPError as exc:
            if self._ended.is_set() or self.state != RUNNING:
                await self._settle()
                raise McpError(f"MCP server '{self.name}' {self.reason or 'stopped'} during the call.") from None
            raise McpError(scrub(f"MCP server '{self.name}': {exc}", self.secrets)) from None
        except anyio.ClosedResourceError:
            await self._settle()
            raise McpError(self._not_running()) from None

    async def _settle(self) -> None:
        """Let the owner record why the server stopped (its stderr, its exit) before the caller reports it."""
        if self._owner is not None and not self._owner.done():
            await asyncio.wait({self._owner}, timeout=3.0)

    def _not_running(self) -> str:
        state = f"{self.state}: {self.reason}" if self.reason else self.state
        return f"MCP server '{self.name}' is not running ({state}); its tools are unavailable."


@contextlib.asynccontextmanager
async def _watch_end(read: Any, ended: anyio.Event) -> AsyncIterator[Any]:
    """A read stream that sets ``ended`` when the server's stream ends (the process died, the HTTP session closed)."""
    send, receive = anyio.create_memory_object_stream[Any](0)

    async def relay() -> None:
        try:
            async with send:
                async for item in read:
                    await send.send(item)
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            pass
        finally:
            ended.set()

    async with anyio.create_task_group() as group:
        group.start_soon(relay)
        try:
            yield receive
        finally:
            group.cancel_scope.cancel()


async def _list_tools(session: ClientSession) -> list[Any]:
    listed = await session.list_tools()
    tools = list(listed.tools)
    while listed.next_cursor:  # a server may page its tools
        listed = await session.list_tools(params=PaginatedRequestParams(cursor=listed.next_cursor))
        tools.extend(listed.tools)
    return tools


def _append_only_file() -> Any:
    """A temporary file whose every write lands at its end (O_APPEND, shared with the server's copy of
    the descriptor), so ``trim_stderr`` can cut it while the server keeps writing. (``open(fd, "a")``
    does not set O_APPEND on a descriptor that exists already: fcntl does.)"""
    handle = tempfile.TemporaryFile("wb+")
    try:
        import fcntl

        flags = fcntl.fcntl(handle.fileno(), fcntl.F_GETFL)
        fcntl.fcntl(handle.fileno(), fcntl.F_SETFL, flags | os.O_APPEND)
    except (ImportError, OSError):  # Windows: no trimming, the file just grows
        pass
    return handle


def _appends(handle: Any) -> bool:
    try:
        import fcntl

        return bool(fcntl.fcntl(handle.fileno(), fcntl.F_GETFL) & os.O_APPEND)
    except (ImportError, OSError, ValueError):
        return False


def _stdio_parameters(server: StdioServer) -> StdioServerParameters:
    command, args = server.command, list(server.args)
    if sys.platform.startswith("linux"):
        command, args = sys.executable, ["-I", "-S", "-c", _DEATH_GUARD, str(os.getpid()), command, *args]
    return StdioServerParameters(command=command, args=args, env=dict(server.env) or None, cwd=server.cwd)


def _describe(exc: BaseException, server: ServerConfig) -> str:
    """One line for why a server failed, from the innermost error of the SDK's exception groups."""
    while getattr(exc, "exceptions", None):  # an ExceptionGroup (a backport on Python 3.10)
        exc = exc.exceptions[0]  # type: ignore[attr-defined]
    if isinstance(exc, FileNotFoundError) and isinstance(server, StdioServer):
        return f"cannot run {server.command!r}: no such program (is it installed and on PATH?)"
    if isinstance(exc, MCPError):
        if "closed" in str(exc).lower():
            return "exited before it answered"
        where = f"{server.url} answered" if isinstance(server, HttpServer) else "refused to start"
        return f"{where}: {exc}"
    if isinstance(server, HttpServer):
        return f"cannot connect to {server.url}: {type(exc).__name__}: {exc}"
    return f"{type(exc).__name__}: {exc}"
