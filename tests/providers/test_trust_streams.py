"""A model server that goes silent, pings forever, or never stops talking cannot hold the kernel:
idle timeout (keep-alive comments are silence), total call time, the 4 MB answer cap, and a per-chunk
cost that does not grow with the answer. Real loopback servers, real HTTP."""

from __future__ import annotations

import time

import pytest

from codetether_magics.agent.message_builder import MAX_ANSWER_BYTES
from codetether_magics.events import ErrorEvent, StreamRetryEvent, TextChunkEvent, TextCompleteEvent
from codetether_magics.agent.loop import run_prompt
from codetether_magics.agent.model_call import StepStream
from codetether_magics.errors import ProviderError, ProviderStreamError, ProviderTimeoutError
from codetether_magics.providers.anthropic import AnthropicProvider
from codetether_magics.providers.base import ModelRequest, TextDelta
from codetether_magics.providers.openai import OpenAIProvider
from codetether_magics.providers.registry import ProviderRegistry
from codetether_magics.session.session import Session
from codetether_magics.messages import Message
from codetether_magics.testing.recorded_server import (RecordedServer, Reply, endless_text, keepalive_forever,
                                                       silence_forever)

SSE = {"content-type": "text/event-stream"}
FIRST_TEXT = b'data: {"choices":[{"index":0,"delta":{"content":"Hello"}}]}\n\n'


def ask() -> ModelRequest:
    return ModelRequest(model="m", messages=[Message.user("hi")])


async def drain(provider) -> list:
    return [delta async for delta in provider.stream(ask())]


def openai_at(server: RecordedServer) -> OpenAIProvider:
    return OpenAIProvider("openai", "sk-idle-test-0000", server.url + "/v1")


@pytest.mark.parametrize("protocol", ["openai", "anthropic"])
async def test_keepalive_comments_forever_end_with_the_idle_timeout(protocol, monkeypatch):
    monkeypatch.setenv("CODETETHER_STREAM_IDLE_TIMEOUT", "0.6")
    with RecordedServer([Reply(200, SSE, keepalive_forever(0.05))]) as server:
        provider = (openai_at(server) if protocol == "openai"
                    else AnthropicProvider("anthropic", "sk-ant-idle-0000", server.url))
        started = time.monotonic()
        with pytest.raises(ProviderTimeoutError) as caught:
            await drain(provider)
        elapsed = time.monotonic() - started
    assert 0.5 <= elapsed < 3.0, elapsed  # ~12 comments arrived meanwhile and did not reset the clock
    message = str(caught.value)
    assert "no data" in message and "0.6 s" in message and "keep-alive" in message
    assert "CODETETHER_STREAM_IDLE_TIMEOUT" in message and not caught.value.retryable


async def test_a_server_sending_nothing_ends_with_the_idle_timeout(monkeypatch):
    monkeypatch.setenv("CODETETHER_STREAM_IDLE_TIMEOUT", "0.5")
    with RecordedServer([Reply(200, SSE, silence_forever())]) as server:
        started = time.monotonic()
        with pytest.raises(ProviderTimeoutError, match="no data"):
            await drain(openai_at(server))
        assert time.monotonic() - started < 3.0


async def test_silence_after_some_text_keeps_the_text(monkeypatch):
    monkeypatch.setenv("CODETETHER_STREAM_IDLE_TIMEOUT", "0.5")
    body = _then(FIRST_TEXT, keepalive_forever(0.05))
    with RecordedServer([Reply(200, SSE, body)]) as server:
        deltas = []
        with pytest.raises(ProviderStreamError) as caught:
            async for delta in openai_at(server).stream(ask()):
                deltas.append(delta)
    assert caught.value.partial and "no data" in str(caught.value)
    assert [d.text for d in deltas if isinstance(d, TextDelta)] == ["Hello"]


def _then(first: bytes, rest):
    yield first
    yield from rest


async def test_total_call_time_is_bounded_even_while_data_flows(monkeypatch):
    monkeypatch.setenv("CODETETHER_MODEL_CALL_TIMEOUT", "0.8")
    with RecordedServer([Reply(200, SSE, endless_text("tick ", interval=0.05))]) as server:
        started = time.monotonic()
        with pytest.raises(ProviderStreamError) as caught:
            await drain(openai_at(server))
        elapsed = time.monotonic() - started
    assert 0.7 <= elapsed < 3.0, elapsed
    assert caught.value.partial and "longer than 0.8 s" in str(caught.value)
    assert "CODETETHER_MODEL_CALL_TIMEOUT" in str(caught.value)


@pytest.mark.parametrize("value", ["0", "-3", "soon", "inf"])
async def test_a_bad_timeout_value_is_a_clear_error(value, monkeypatch):
    monkeypatch.setenv("CODETETHER_STREAM_IDLE_TIMEOUT", value)
    with RecordedServer([Reply(200, SSE, [FIRST_TEXT])]) as server:
        with pytest.raises(ProviderError, match="CODETETHER_STREAM_IDLE_TIMEOUT must be a number of seconds"):
            await drain(openai_at(server))


async def test_an_interrupt_while_waiting_stays_a_cancellation(monkeypatch):
    import asyncio

    monkeypatch.setenv("CODETETHER_STREAM_IDLE_TIMEOUT", "30")
    with RecordedServer([Reply(200, SSE, keepalive_forever(0.05))]) as server:
        task = asyncio.create_task(drain(openai_at(server)))
        await asyncio.sleep(0.3)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_the_loop_does_not_retry_an_idle_timeout_and_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("CODETETHER_STREAM_IDLE_TIMEOUT", "0.4")
    with RecordedServer([Reply(200, SSE, keepalive_forever(0.05)) for _ in range(4)]) as server:
        registry = ProviderRegistry.from_env({"OPENAI_BASE_URL": server.url + "/v1", "OPENAI_API_KEY": "sk-x-123456"},
                                             config_path=tmp_path / "none.toml")
        session = await Session.new(tmp_path)
        events: list = []
        with pytest.raises(ProviderTimeoutError):
            await run_prompt(session, "hi", [], events.append, registry, model="openai/m", tools=[],
                             title_model_call=False, retry_delays=(0.0, 0.0, 0.0))
        assert len(server.requests) == 1  # a stuck server is not waited on four times
    assert not [e for e in events if isinstance(e, StreamRetryEvent)]
    (error,) = [e for e in events if isinstance(e, ErrorEvent)]
    assert "CODETETHER_STREAM_IDLE_TIMEOUT" in error.message


async def test_an_endless_answer_is_cut_at_4_mb_with_a_note(tmp_path):
    chunk = "y" * 65536
    with RecordedServer([Reply(200, SSE, endless_text(chunk))]) as server:
        registry = ProviderRegistry.from_env({"OPENAI_BASE_URL": server.url + "/v1"}, config_path=tmp_path / "n.toml")
        session = await Session.new(tmp_path)
        events: list = []
        result = await run_prompt(session, "hi", [], events.append, registry, model="openai/m", tools=[],
                                  title_model_call=False, save=False)
    answer = session.messages[-1].text
    assert answer.startswith("y" * 1000) and answer.count("y") == MAX_ANSWER_BYTES
    assert "4 MB" in answer and "cut" in answer  # the note, in the transcript and the result
    assert result.text.count("y") == MAX_ANSWER_BYTES and "4 MB" in result.text
    completes = [e for e in events if isinstance(e, TextCompleteEvent)]
    assert completes and completes[-1].text.count("y") == MAX_ANSWER_BYTES
    assert any(isinstance(e, ErrorEvent) and "cut" in e.message for e in events)


class _Deltas:
    """Yields ``count`` small text deltas after ``start`` bytes of answer: the loop's own per-chunk work,
    with no network in the way, is what this measures."""

    name = "fake"

    def __init__(self, start_bytes: int, count: int, piece: str = "word ") -> None:
        self.start, self.count, self.piece = start_bytes, count, piece
        self.times: list[float] = []

    async def stream(self, request):
        yield TextDelta("z" * self.start)
        for _ in range(self.count):
            self.times.append(time.perf_counter())
            yield TextDelta(self.piece)
        self.times.append(time.perf_counter())


async def _per_chunk_seconds(start_bytes: int, count: int = 4000) -> float:
    received: list = []
    source = _Deltas(start_bytes, count)

    async def sink(event):
        if isinstance(event, TextChunkEvent):
            received.append(len(event.text))  # what a live view reads: the whole text so far

    from codetether_magics.events import EventSink

    await StepStream(source, EventSink(sink), retry_delays=(), sleep=None).run(ask(), "")  # type: ignore[arg-type]
    assert received and received[-1] == start_bytes + count * len(source.piece)  # the last text is complete
    return (source.times[-1] - source.times[1]) / count


async def test_per_chunk_cost_does_not_grow_with_the_answer():
    small = min([await _per_chunk_seconds(100_000) for _ in range(3)])
    large = min([await _per_chunk_seconds(4_000_000) for _ in range(3)])
    print(f"per-chunk: {small * 1e6:.1f} us at 0.1 MB, {large * 1e6:.1f} us at 4 MB")
    # A copy of a 4 MB text per chunk would cost ~40x the 0.1 MB one; coalescing keeps it flat.
    assert large < small * 3 + 5e-6, (small, large)
