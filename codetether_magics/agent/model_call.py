"""One model call of the loop: stream a response, emit its events, retry what is worth retrying.

Before the first delta, ``ProviderHTTPError`` with a retryable status (429, 5xx) and
``ProviderConnectionError`` are retried (at most ``len(retry_delays)`` times, waiting
``Retry-After`` when the server sent one, else the next delay) with a ``stream_retry``
event each time. Once deltas have arrived nothing is retried: a cut stream returns what
came, with ``cut`` set, so the loop keeps it and says so.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Sequence

from ..errors import ProviderError, ProviderStreamError
from ..events import EventSink, StreamRetryEvent, TextChunkEvent, ThinkingCompleteEvent, ThinkingEvent
from ..providers.base import ModelRequest, Provider, TextDelta, ThinkingDelta
from .message_builder import MessageBuilder

__all__ = ["MAX_RETRY_AFTER", "StepStream", "StreamOutcome"]

MAX_RETRY_AFTER = 60.0  # seconds: a longer Retry-After is cut to this


@dataclass
class StreamOutcome:
    builder: MessageBuilder
    duration_ms: int
    cut: ProviderError | None = None  # set when the stream broke after data arrived


def _retry_delay(exc: ProviderError, planned: float) -> float | None:
    """How long to wait before retrying ``exc``, or None when it is not retryable.

    The error says whether it is (``retryable``: a 429 or 5xx ``ProviderHTTPError``, any
    ``ProviderConnectionError``); the server's ``Retry-After`` wins over ``planned``.
    """
    if not getattr(exc, "retryable", False):
        return None
    retry_after = getattr(exc, "retry_after", None)
    return planned if retry_after is None else min(max(retry_after, 0.0), MAX_RETRY_AFTER)


class _DeltaEvents:
    """Turns deltas into events: cumulative thinking and text, thinking_complete once.

    ``_shown`` starts as the turn's earlier text, so each chunk costs the one copy its
    cumulative event needs (not a second one to glue the prefix on).
    """

    def __init__(self, sink: EventSink, text_prefix: str) -> None:
        self._sink = sink
        self._shown = text_prefix
        self._thinking = ""
        self._thinking_open = False

    async def on_delta(self, delta: Any) -> None:
        if isinstance(delta, ThinkingDelta):
            if delta.text:
                self._thinking += delta.text
                self._thinking_open = True
                await self._sink.emit(ThinkingEvent(text=self._thinking))
            return
        if isinstance(delta, TextDelta) and delta.text:
            await self.close_thinking()
            self._shown += delta.text
            await self._sink.emit(TextChunkEvent(text=self._shown))

    async def close_thinking(self) -> None:
        if self._thinking_open:
            self._thinking_open = False
            await self._sink.emit(ThinkingCompleteEvent(text=self._thinking))


class StepStream:
    """Streams one request with retries; ``builder`` is the live accumulator (read it on cancellation)."""

    def __init__(
        self,
        provider: Provider,
        sink: EventSink,
        *,
        retry_delays: Sequence[float],
        sleep: Callable[[float], Awaitable[Any]],
    ) -> None:
        self._provider = provider
        self._sink = sink
        self._delays = tuple(retry_delays)
        self._sleep = sleep
        self.builder = MessageBuilder()

    async def run(self, request: ModelRequest, text_prefix: str) -> StreamOutcome:
        started = time.perf_counter()
        attempt = 0
        while True:
            self.builder = builder = MessageBuilder()
            events = _DeltaEvents(self._sink, text_prefix)
            try:
                async for delta in self._provider.stream(request):
                    builder.feed(delta)
                    await events.on_delta(delta)
                await events.close_thinking()
                return StreamOutcome(builder, _elapsed_ms(started))
            except ProviderError as exc:
                if builder.has_content() or (isinstance(exc, ProviderStreamError) and exc.partial):
                    await events.close_thinking()
                    return StreamOutcome(builder, _elapsed_ms(started), cut=exc)
                delay = _retry_delay(exc, self._delays[attempt]) if attempt < len(self._delays) else None
                if delay is None:
                    raise
                attempt += 1
                await self._sink.emit(
                    StreamRetryEvent(attempt=attempt, max_restarts=len(self._delays), reason=str(exc)))
                await self._sleep(delay)


def _elapsed_ms(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)
