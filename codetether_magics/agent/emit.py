"""Where a running prompt's events go: nowhere, an ``asyncio.Queue`` or a callable.

    sink = EventSink(events)        # None, a Queue (put_nowait) or fn(event) / async fn(event)
    await sink.emit(TextChunkEvent(text="Hel"))

(The bus is not here: the loop calls ``session.publish``, a no-op without a bus, and the
bus itself logs and survives a failing subscriber.)
"""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

__all__ = ["EventSink"]


class EventSink:
    def __init__(self, target: Any) -> None:
        if target is not None and not isinstance(target, asyncio.Queue) and not callable(target):
            raise TypeError(
                f"events must be None, an asyncio.Queue or a callable taking one event, "
                f"not {type(target).__name__}"
            )
        self._target = target

    async def emit(self, event: Any) -> None:
        target = self._target
        if target is None:
            return
        if isinstance(target, asyncio.Queue):
            target.put_nowait(event)
            return
        result = target(event)
        if inspect.isawaitable(result):
            await result

