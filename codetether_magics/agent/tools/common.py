"""What every built-in tool shares: its JSON schema shape and a worker thread for blocking work.

Each call of a threaded tool gets a thread of its own, not one from asyncio's default pool:
a pool keeps its idle threads, and a call that never returned would hold a pool slot for
good (six of them wedged every later ``to_thread`` in the kernel). A thread cannot be killed
from outside, so cancelling is cooperative: the work calls ``checkpoint()`` between its
bounded steps, and cancelling the handler sets the call's stop flag and waits (at most
``STOP_GRACE`` seconds) until the thread has ended. Every step is bounded (files are
opened with ``O_NONBLOCK``, reads are capped, walks check in per entry), so the wait is
short and no thread outlives its call. ``checkpoint()`` also ends a call that runs past
``TOOL_TIME_LIMIT`` with an error the model can act on.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any, Callable, Sequence

from ...errors import ToolError
from .base import Tool

__all__ = ["STOP_GRACE", "TOOL_TIME_LIMIT", "checkpoint", "object_schema", "run_in_thread", "threaded_tool"]

TOOL_TIME_LIMIT = 60.0  # seconds a threaded tool may run
STOP_GRACE = 1.0  # seconds a cancelled call waits for its thread to reach a checkpoint

_current = threading.local()


class _Stopped(BaseException):
    """Raised by ``checkpoint()`` in a cancelled call (a BaseException: tool code must not swallow it)."""


class _Stop:
    def __init__(self, name: str, limit: float) -> None:
        self.name = name
        self.limit = limit
        self.deadline = time.monotonic() + limit
        self.flag = threading.Event()

    def check(self) -> None:
        if self.flag.is_set():
            raise _Stopped
        if time.monotonic() > self.deadline:
            raise ToolError(f"`{self.name}` stopped after {self.limit:g} s without finishing; "
                            "narrow the path or the pattern and try again.")


def checkpoint() -> None:
    """In a threaded tool's work: stop here if the call was cancelled or ran out of time."""
    stop = getattr(_current, "stop", None)
    if stop is not None:
        stop.check()


def object_schema(properties: dict[str, Any], required: Sequence[str] = ()) -> dict[str, Any]:
    """A JSON schema for an object with exactly these properties."""
    return {"type": "object", "properties": properties, "required": list(required), "additionalProperties": False}


def _settle(future: asyncio.Future, outcome: tuple[bool, Any]) -> None:
    if future.done():
        return
    ok, value = outcome
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)


async def run_in_thread(name: str, work: Callable[..., Any], *args: Any, limit: float = TOOL_TIME_LIMIT) -> Any:
    """``work(*args)`` in a thread of its own; cancelling waits until that thread has ended."""
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    stop = _Stop(name, limit)

    def target() -> None:
        _current.stop = stop
        try:
            outcome: tuple[bool, Any] = (True, work(*args))
        except _Stopped:
            outcome = (False, asyncio.CancelledError())
        except BaseException as exc:  # noqa: BLE001 - handed to the awaiting coroutine
            outcome = (False, exc)
        try:
            loop.call_soon_threadsafe(_settle, done, outcome)
        except RuntimeError:  # the loop closed meanwhile: nobody waits for the outcome
            pass

    thread = threading.Thread(target=target, name=f"codetether-tool-{name}", daemon=True)
    thread.start()
    try:
        # wait() never cancels ``done`` and raises nothing of its outcome: a tool's error (its time
        # limit) must still reach the join below, or the thread outlives the call that ran it.
        await asyncio.wait({done})
    except asyncio.CancelledError:
        stop.flag.set()
        await asyncio.wait({done}, timeout=STOP_GRACE)
        thread.join(0.05)  # it settled ``done``: only its return is left
        if done.done():
            done.exception()  # retrieved, so asyncio does not log it as lost
        raise
    thread.join()  # as above: returns at once
    return done.result()


def threaded_tool(
    name: str,
    description: str,
    work: Callable[[dict[str, Any]], str],
    *,
    properties: dict[str, Any],
    required: Sequence[str] = (),
    read_only: bool,
) -> Tool:
    """A ``Tool`` whose blocking ``work(args)`` runs in a worker thread; the event loop (and a view) keeps running."""

    async def handler(args: dict[str, Any]) -> str:
        return await run_in_thread(name, work, args)

    return Tool(name=name, description=description, parameters=object_schema(properties, required),
                handler=handler, read_only=read_only)
