"""The event loop MCP connections live on: one daemon thread per process, started on first use.

Why not the caller's loop: outside ipykernel every cell runs on a fresh loop that is
closed when the cell ends, and a line magic cannot await at all, yet a server must
outlive cells. The SDK's anyio task groups must also be entered and left by one task;
here each server's owner task lives as long as the server, whatever cell asks.
A caller awaits ``run(coro)``: cancelling it (a kernel interrupt) cancels only that
call on this loop, never the connection.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from typing import Any, Coroutine, TypeVar

__all__ = ["McpLoop"]

T = TypeVar("T")


class McpLoop:
    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None or self._loop.is_closed():
                self._loop = asyncio.new_event_loop()
                started = threading.Event()
                self._thread = threading.Thread(target=self._serve, args=(self._loop, started),
                                                name="codetether-mcp", daemon=True)
                self._thread.start()
                started.wait()
            return self._loop

    @staticmethod
    def _serve(loop: asyncio.AbstractEventLoop, started: threading.Event) -> None:
        asyncio.set_event_loop(loop)
        loop.call_soon(started.set)
        loop.run_forever()

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    async def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Await ``coro`` on the MCP loop from any other loop; cancelling the caller cancels it there."""
        return await asyncio.wrap_future(self.submit(coro))

    def run_sync(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Block until ``coro`` ends on the MCP loop (from synchronous code: a line magic, atexit)."""
        future = self.submit(coro)
        try:
            return future.result(timeout)
        except BaseException:
            future.cancel()
            raise
