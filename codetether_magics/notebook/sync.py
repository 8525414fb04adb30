"""Run a coroutine to the end from synchronous code: the magics outside ipykernel, and subcommands."""

from __future__ import annotations

import asyncio
import threading
from typing import Any, Awaitable, Callable, TypeVar

__all__ = ["run_sync"]

T = TypeVar("T")


def run_sync(make_coroutine: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine to the end from synchronous code, even inside a running loop.

    It runs on a worker thread with its own loop (a kernel's loop is busy running this
    very cell); Ctrl-C in the calling thread cancels it and waits for its cleanup.
    """
    loop = asyncio.new_event_loop()
    started, finished = threading.Event(), threading.Event()
    box: dict[str, Any] = {}

    def work() -> None:
        asyncio.set_event_loop(loop)
        box["task"] = loop.create_task(make_coroutine())
        started.set()
        try:
            box["result"] = loop.run_until_complete(box["task"])
        except BaseException as exc:  # handed to the calling thread below
            box["error"] = exc
        finally:
            loop.close()
            finished.set()

    threading.Thread(target=work, name="codetether-run", daemon=True).start()
    started.wait()
    # Wait on an Event, not Thread.join: on Python 3.11 a Ctrl-C inside join() can mark a
    # still-running thread as finished (bpo-45274), and the cleanup would be skipped.
    try:
        while not finished.wait(0.1):
            pass
    except KeyboardInterrupt:
        loop.call_soon_threadsafe(box["task"].cancel)
        finished.wait()
        if "error" not in box:
            raise
    error = box.get("error")
    if isinstance(error, asyncio.CancelledError):
        raise KeyboardInterrupt from None
    if error is not None:
        raise error
    return box["result"]
