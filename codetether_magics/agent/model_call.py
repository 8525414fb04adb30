"""One model call of the loop: stream a response, emit its events, retry what can be retried.

Before the first delta, ``ProviderHTTPError`` with a retryable status (429, 5xx) and
``ProviderConnectionError`` are retried (at most ``len(retry_delays)`` times, waiting
``Retry-After`` when the server sent one, else the next delay) with a ``stream_retry``
event each time; when the retries are used up the error says what to do next. Once
deltas have arrived nothing is retried: a cut stream returns what came, with ``cut`` set,
so the loop keeps it and says so. An answer past ``MAX_ANSWER_BYTES`` is cut there the
same way (the connection is closed, the note says why).

Cost per delta stays flat as the answer grows: the builder appends chunks, and the
cumulative ``text_chunk``/``thinking`` events (each carries the whole text so far, so each
costs a copy of it) are coalesced once the text is long: every delta gets its event while
the text is under ``COALESCE_FROM`` characters, then at most one event every
``COALESCE_INTERVAL`` seconds, plus one at the end. A live view refreshes about 20 times
a second anyway.
"""

from __future__ import annotations

import time
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Sequence

from ..errors import ProviderConnectionError, ProviderError, ProviderHTTPError, ProviderStreamError
from ..events import EventSink, StreamRetryEvent, TextChunkEvent, ThinkingCompleteEvent, ThinkingEvent
from ..providers.base import ModelRequest, Provider, TextDelta, ThinkingDelta
from .message_builder import MAX_ANSWER_BYTES, MessageBuilder

__all__ = ["COALESCE_FROM", "COALESCE_INTERVAL", "MAX_RETRY_AFTER", "StepStream", "StreamOutcome"]

MAX_RETRY_AFTER = 60.0  # seconds: a longer Retry-After is cut to this
COALESCE_FROM = 64 * 1024  # characters of cumulative text below which every delta gets its event
COALESCE_INTERVAL = 0.05  # seconds between cumulative events above that


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


class _Cumulative:
    """A text that grows by pieces, whose whole value is wanted now and then (not per piece)."""

    def __init__(self, start: str = "") -> None:
        self.value = start  # the whole text as last built
        self._pending: list[str] = []
        self.length = len(start)
        self.built_at = 0.0

    def add(self, piece: str) -> None:
        self._pending.append(piece)
        self.length += len(piece)

    @property
    def stale(self) -> bool:
        return bool(self._pending)

    def build(self, now: float) -> str:
        if self._pending:
            self.value += "".join(self._pending)  # one copy for all the pieces since the last build
            self._pending.clear()
        self.built_at = now
        return self.value


class _DeltaEvents:
    """Turns deltas into events: cumulative thinking and text (coalesced when long), thinking_complete once.

    The text starts as the turn's earlier text, so each event costs the one copy its cumulative
    text needs (not a second one to glue the prefix on).
    """

    def __init__(self, sink: EventSink, text_prefix: str, clock: Callable[[], float] = time.monotonic) -> None:
        self._sink = sink
        self._clock = clock
        self._text = _Cumulative(text_prefix)
        self._thinking = _Cumulative()
        self._thinking_open = False

    def _due(self, text: _Cumulative) -> bool:
        if text.length < COALESCE_FROM:
            return True
        return self._clock() - text.built_at >= COALESCE_INTERVAL

    async def on_delta(self, delta: Any) -> None:
        if isinstance(delta, ThinkingDelta):
            if delta.text:
                self._thinking.add(delta.text)
                self._thinking_open = True
                if self._due(self._thinking):
                    await self._sink.emit(ThinkingEvent(text=self._thinking.build(self._clock())))
            return
        if isinstance(delta, TextDelta) and delta.text:
            await self.close_thinking()
            self._text.add(delta.text)
            if self._due(self._text):
                await self._sink.emit(TextChunkEvent(text=self._text.build(self._clock())))

    async def finish(self) -> None:
        """The last coalesced text is shown, and open thinking is completed."""
        await self.close_thinking()
        if self._text.stale:
            await self._sink.emit(TextChunkEvent(text=self._text.build(self._clock())))

    async def close_thinking(self) -> None:
        if self._thinking_open:
            self._thinking_open = False
            if self._thinking.stale:
                await self._sink.emit(ThinkingEvent(text=self._thinking.build(self._clock())))
            await self._sink.emit(ThinkingCompleteEvent(text=self._thinking.build(self._clock())))


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
                cut = await self._stream_once(request, builder, events)
                await events.finish()
                return StreamOutcome(builder, _elapsed_ms(started), cut=cut)
            except ProviderError as exc:
                if builder.has_content() or (isinstance(exc, ProviderStreamError) and exc.partial):
                    await events.finish()
                    return StreamOutcome(builder, _elapsed_ms(started), cut=exc)
                delay = _retry_delay(exc, self._delays[attempt]) if attempt < len(self._delays) else None
                if delay is None:
                    raise _after_retries(exc, attempt) from None
                attempt += 1
                await self._sink.emit(
                    StreamRetryEvent(attempt=attempt, max_restarts=len(self._delays), reason=str(exc)))
                await self._sleep(delay)

    async def _stream_once(self, request: ModelRequest, builder: MessageBuilder,
                           events: _DeltaEvents) -> ProviderError | None:
        """Feed one response to ``builder``; the error to report when it was cut at the size limit."""
        async with aclosing(self._provider.stream(request)) as deltas:
            async for delta in deltas:
                kept = builder.feed(delta)
                if kept is not None:
                    await events.on_delta(kept)
                if builder.limit_reached:  # stop reading: aclosing() hangs up on the server
                    return ProviderStreamError(
                        f"the answer passed {MAX_ANSWER_BYTES // (1024 * 1024)} MB and was cut there", partial=True)
        return None


def _after_retries(exc: ProviderError, retries: int) -> ProviderError:
    """``exc`` as raised when it cannot be retried (again): a retryable failure that outlived the retries
    says what the user can do about it."""
    if not getattr(exc, "retryable", False):
        return exc
    tried = f" (still failing after {retries} retr{'y' if retries == 1 else 'ies'})" if retries else ""
    advice = (f"{tried}. The service may be overloaded or down: try again in a minute, or pick another model "
              "with -m provider/model.")
    if isinstance(exc, ProviderHTTPError):
        return type(exc)(exc.status_code, exc.message + advice, provider=exc.provider, retry_after=exc.retry_after)
    if isinstance(exc, ProviderConnectionError):
        return ProviderConnectionError(str(exc) + advice)
    return exc


def _elapsed_ms(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)
