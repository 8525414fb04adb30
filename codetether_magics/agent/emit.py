"""Where a running prompt's events go: nowhere, an ``asyncio.Queue`` or a callable.

    sink = EventSink(events)        # None, a Queue (put_nowait) or fn(event) / async fn(event)
    await sink.emit(TextChunkEvent(text="Hel"))

Also the bus helper: the loop publishes thinking, tool requests and responses on the
session's bus when it has one (a no-op otherwise).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from typing import Any

__all__ = ["EventSink", "publish"]

log = logging.getLogger(__name__)


class EventSink:
    def __init__(self, target: Any) -> None:
        if target is not None and not isinstance(target, asyncio.Queue) and not callable(target):
            raise TypeError(
                f"events must be None, an asyncio.Queue or a callable taking one event, "
                f"not {type(target).__name__}"
            )
        self._target = target
        self.count = 0

    async def emit(self, event: Any) -> None:
        self.count += 1
        target = self._target
        if target is None:
            return
        if isinstance(target, asyncio.Queue):
            target.put_nowait(event)
            return
        result = target(event)
        if inspect.isawaitable(result):
            await result


def publish(session: Any, kind: str, message: dict[str, Any]) -> None:
    """Publish ``message`` on the session's bus as ``agent.{agent}.{kind}`` (a no-op without a bus).

    Uses ``session.publish(kind, message)`` when the session provides it, else the bus's own
    ``publish(topic, message)``. A failing subscriber must not stop the agent: it is logged.
    """
    try:
        publisher = getattr(session, "publish", None)
        if callable(publisher):
            publisher(kind, message)
            return
        bus = getattr(session, "bus", None)
        if bus is not None and callable(getattr(bus, "publish", None)):
            bus.publish(f"agent.{session.agent}.{kind}", message)
    except Exception:  # noqa: BLE001 - a subscriber's bug is reported, never fatal to the run
        log.exception("publishing agent.%s.%s on the session bus failed", getattr(session, "agent", "?"), kind)
