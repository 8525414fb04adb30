"""``AgentBus``: a small in-process publish/subscribe bus for what agents say and do.

Envelopes have the shape CodeTether workers read: ``{id, topic, sender_id, correlation_id,
timestamp, message}``; ``message`` is a dict tagged by ``kind``. A session with a bus
(``session.with_bus(bus)``) publishes on ``agent.{agent}.user``, ``.assistant``,
``.thinking``, ``.tool.request`` and ``.tool.response``::

    bus = AgentBus()
    seen = []
    bus.subscribe(seen.append, "agent.build.")
    session = (await Session.new()).with_bus(bus)
    session.add_message(Message.user("hi"))      # -> seen[0].topic == "agent.build.user"

Delivery is synchronous, in publish order; a subscriber that raises is logged and
skipped, never allowed to break the agent that published.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable

from .times import format_time, utc_now

__all__ = ["AgentBus", "BusEnvelope", "Subscription"]

log = logging.getLogger(__name__)

# The ``kind`` a message gets by default on each session topic (the tags CodeTether workers dispatch on).
DEFAULT_KINDS = {
    "user": "user_prompt",
    "assistant": "agent_message",
    "thinking": "agent_thinking",
    "tool.request": "tool_request",
    "tool.response": "tool_response",
}


@dataclass(frozen=True)
class BusEnvelope:
    id: str
    topic: str
    sender_id: str
    correlation_id: str | None
    timestamp: datetime
    message: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape: ``{id, topic, sender_id, correlation_id, timestamp, message}``."""
        return {
            "id": self.id,
            "topic": self.topic,
            "sender_id": self.sender_id,
            "correlation_id": self.correlation_id,
            "timestamp": format_time(self.timestamp),
            "message": self.message,
        }


@dataclass
class Subscription:
    callback: Callable[[BusEnvelope], Any]
    prefix: str
    _bus: "AgentBus" = field(repr=False)

    def close(self) -> None:
        self._bus.unsubscribe(self)


class AgentBus:
    """Topic-prefix pub/sub; ``recent`` keeps the last ``history`` envelopes for inspection."""

    def __init__(self, history: int = 1024) -> None:
        self._subscriptions: list[Subscription] = []
        self._lock = threading.Lock()
        self.recent: deque[BusEnvelope] = deque(maxlen=history)

    def subscribe(self, callback: Callable[[BusEnvelope], Any], prefix: str = "") -> Subscription:
        """Call ``callback(envelope)`` for every envelope whose topic starts with ``prefix``."""
        if not callable(callback):
            raise TypeError(f"subscribe needs a callable, not {type(callback).__name__}")
        subscription = Subscription(callback, prefix, self)
        with self._lock:
            self._subscriptions.append(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        with self._lock:
            if subscription in self._subscriptions:
                self._subscriptions.remove(subscription)

    def publish(
        self,
        topic: str,
        message: dict[str, Any],
        sender_id: str = "",
        correlation_id: str | None = None,
    ) -> BusEnvelope:
        envelope = BusEnvelope(
            id=str(uuid.uuid4()), topic=topic, sender_id=sender_id,
            correlation_id=correlation_id, timestamp=utc_now(), message=dict(message),
        )
        with self._lock:
            self.recent.append(envelope)
            targets = [s for s in self._subscriptions if topic.startswith(s.prefix)]
        for subscription in targets:
            try:
                subscription.callback(envelope)
            except Exception:  # noqa: BLE001 - a subscriber's bug must not stop the agent
                log.exception("Bus subscriber %r failed on %s", subscription.callback, topic)
        return envelope
