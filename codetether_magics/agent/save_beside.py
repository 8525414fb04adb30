"""The save of a turn's user message, run beside the turn's first model call.

A save encodes and writes the whole transcript, so it costs in proportion to the session's
size; run before the request it would delay the first streamed text by that much. Run beside
it, the request goes out at once and the save writes while the model thinks
(docs/design.md, "Saves").

The two must still end together before the step changes the session (the save thread reads
it): ``call_beside_save`` waits for both. A save that would conflict with another writer is
found before the request (a stat); a failed save surfaces (and stops the call: a turn that
cannot be kept should not run tools); a failed call wins over a failed save, which is
logged and retried by the turn's own save on the way out. On cancellation the save is waited
out too, because its thread keeps writing whatever happens to the awaiting task, and the
next save of the same file must not start before it ends.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Coroutine, TypeVar

__all__ = ["call_beside_save", "wait_out"]

log = logging.getLogger(__name__)

T = TypeVar("T")


async def wait_out(future: "asyncio.Future[Any]") -> bool:
    """Wait until ``future`` is done, through cancellations of this task; True when one came."""
    cancelled = False
    while not future.done():
        try:
            await asyncio.wait({future})  # unlike wait_for, never cancels ``future`` itself
        except asyncio.CancelledError:
            cancelled = True
    return cancelled


def _failure(future: "asyncio.Future[Any]") -> BaseException | None:
    return None if future.cancelled() else future.exception()


async def call_beside_save(call: Coroutine[Any, Any, T], session: Any, enabled: bool = True) -> T:
    """Run the model ``call`` and ``session.save()`` at once (the call first); return the call's result.

    First ``session.check_save()``: a save that would conflict with another writer fails in a stat,
    before the request is paid for. ``enabled`` False: the call alone.
    """
    if enabled:
        try:
            await session.check_save()
        except BaseException:
            call.close()  # never started
            raise
    else:
        return await call
    task = asyncio.ensure_future(call)  # first, so the request is built and sent before the save competes
    pending = asyncio.ensure_future(session.save())
    try:
        await asyncio.wait({task, pending}, return_when=asyncio.FIRST_EXCEPTION)
    except asyncio.CancelledError:
        task.cancel()
        await wait_out(task)
        await wait_out(pending)
        _log_save_failure(pending, "a cancelled turn")
        raise
    if not task.done():  # the save failed first
        task.cancel()
        await wait_out(task)
        raise pending.exception()  # type: ignore[misc]
    if await wait_out(pending):
        raise asyncio.CancelledError
    if _failure(task) is not None:
        _log_save_failure(pending, "a failed model call")
        return task.result()  # raises the call's error
    pending.result()  # raises the save's error
    return task.result()


def _log_save_failure(pending: "asyncio.Future[Any]", during: str) -> None:
    if _failure(pending) is not None:
        log.error("saving the user's message failed during %s", during, exc_info=_failure(pending))
