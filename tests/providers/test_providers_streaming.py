"""Both streaming wire protocols against the real loopback scripted model server."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import socket
import time
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from codetether_magics.errors import ProviderConnectionError, ProviderHTTPError, ProviderStreamError
from codetether_magics.messages import ImagePart, Message, TextPart, ToolCallPart, ToolResultPart
from codetether_magics.providers.anthropic import AnthropicProvider
from codetether_magics.providers.base import (Finish, ModelRequest, TextDelta, ThinkingDelta, ToolCallDelta, ToolSpec,
                                              UsageDelta)
from codetether_magics.providers.openai import OpenAIProvider
from codetether_magics.testing import ScriptedModelServer, Turn

API_KEY = "sk-test-SECRET-0123456789abcdef"
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 16).decode()
CALC = ToolSpec("calc", "Evaluate arithmetic", {"type": "object", "properties": {"expr": {"type": "string"}}})


@dataclass
class Case:
    protocol: str
    server: ScriptedModelServer

    def provider(self, **options: Any):
        if self.protocol == "openai":
            return OpenAIProvider("openai", API_KEY, self.server.openai_base_url, **options)
        return AnthropicProvider("anthropic", API_KEY, self.server.anthropic_base_url, **options)


@pytest.fixture(params=["openai", "anthropic"])
def case(request):
    with ScriptedModelServer(api_key=API_KEY) as server:
        yield Case(request.param, server)


async def collect(provider, request: ModelRequest) -> list:
    return [delta async for delta in provider.stream(request)]


def ask(text: str = "hi", **options: Any) -> ModelRequest:
    return ModelRequest(model="test-model", messages=[Message.user(text)], **options)


def text_of(deltas: list) -> str:
    return "".join(d.text for d in deltas if isinstance(d, TextDelta))


def join_tool_calls(deltas: list) -> dict[int, dict]:
    calls: dict[int, dict] = {}
    for d in deltas:
        if isinstance(d, ToolCallDelta):
            call = calls.setdefault(d.index, {"id": None, "name": None, "arguments": ""})
            call["id"] = d.id or call["id"]
            call["name"] = d.name or call["name"]
            call["arguments"] += d.arguments
    return calls


async def test_streamed_text_answer(case):
    case.server.enqueue(Turn.text("Hello there, notebook user", expect_user_text="hi"))
    deltas = await collect(case.provider(), ask(system="Be brief."))
    assert text_of(deltas) == "Hello there, notebook user"
    assert len([d for d in deltas if isinstance(d, TextDelta)]) >= 4  # it streamed, word by word
    assert Finish("stop") in deltas
    (request,) = case.server.model_requests
    assert request.body["stream"] is True and request.body["model"] == "test-model"
    if case.protocol == "openai":
        assert request.headers["authorization"] == f"Bearer {API_KEY}"
        assert request.body["stream_options"] == {"include_usage": True}
        assert request.body["messages"][0] == {"role": "system", "content": "Be brief."}
    else:
        assert request.headers["x-api-key"] == API_KEY
        assert request.headers["anthropic-version"] == "2023-06-01"
        # The system prompt is a text block with a prompt-caching breakpoint.
        assert request.body["system"] == [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}]
    assert case.server.errors == []


async def test_tool_call_round_trip(case):
    case.server.enqueue(Turn.tool_call("calc", {"expr": "6*7"}, text="Let me compute.", expect_tools=["calc"]),
                        Turn.text("It is 42.", expect_tool_result="42"))
    provider = case.provider()
    first = await collect(provider, ask("what is 6*7?", tools=[CALC]))
    (call,) = join_tool_calls(first).values()
    assert call["name"] == "calc" and json.loads(call["arguments"]) == {"expr": "6*7"}
    assert call["id"]
    assert Finish("tool_calls") in first
    history = [Message.user("what is 6*7?"),
               Message(role="assistant", content=[TextPart(text="Let me compute."),
                                                  ToolCallPart(id=call["id"], name="calc",
                                                               arguments=call["arguments"])]),
               Message(role="tool", content=[ToolResultPart(tool_call_id=call["id"], content="42")])]
    second = await collect(provider, ModelRequest(model="test-model", messages=history, tools=[CALC]))
    assert text_of(second) == "It is 42."
    assert case.server.errors == []  # the server found the tool result, matched to its call, in its own format
    body = case.server.model_requests[1].body
    if case.protocol == "openai":
        assert body["messages"][-1] == {"role": "tool", "tool_call_id": call["id"], "content": "42"}
    else:
        assert body["messages"][-1] == {"role": "user", "content": [  # the newest turn: a caching breakpoint
            {"type": "tool_result", "tool_use_id": call["id"], "content": "42",
             "cache_control": {"type": "ephemeral"}}]}


async def test_image_arrives_in_the_protocols_own_format(case):
    case.server.enqueue(Turn.text("A fan shape.", expect_image=True))
    message = Message(role="user", content=[TextPart(text="What is in this plot?"),
                                            ImagePart(url=f"data:image/png;base64,{PNG}", mime_type="image/png")])
    await collect(case.provider(), ModelRequest(model="test-model", messages=[message]))
    assert case.server.errors == []
    content = case.server.model_requests[0].body["messages"][-1]["content"]
    if case.protocol == "openai":
        assert {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}} in content
    else:
        image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}}
        assert {**image, "cache_control": {"type": "ephemeral"}} in content  # the last block of the newest turn


async def test_thinking_streams_before_text(case):
    case.server.enqueue(Turn.text("Answer.", thinking="First I consider the residuals."))
    deltas = await collect(case.provider(), ask())
    thinking = "".join(d.text for d in deltas if isinstance(d, ThinkingDelta))
    assert thinking == "First I consider the residuals."
    first_text = next(i for i, d in enumerate(deltas) if isinstance(d, TextDelta))
    assert all(not isinstance(d, ThinkingDelta) for d in deltas[first_text:])
    if case.protocol == "anthropic":  # signed thinking, so it can be sent back
        assert any(d.signature for d in deltas if isinstance(d, ThinkingDelta))


async def test_usage_is_reported(case):
    case.server.enqueue(Turn([{"type": "text", "text": "ok"},
                              {"type": "usage", "prompt_tokens": 120, "completion_tokens": 7,
                               "cache_read_tokens": 100}]))
    deltas = await collect(case.provider(), ask())
    usage = [d for d in deltas if isinstance(d, UsageDelta)]
    assert usage[0].prompt_tokens == 120 and usage[-1].completion_tokens == 7
    assert any(u.cache_read_tokens == 100 for u in usage)


async def test_429_carries_retry_after_and_the_servers_message(case):
    case.server.enqueue(Turn.error(429, "Rate limit reached for requests", retry_after=2))
    with pytest.raises(ProviderHTTPError) as caught:
        await collect(case.provider(), ask())
    error = caught.value
    assert (error.status_code, error.retry_after, error.retryable) == (429, 2.0, True)
    assert error.message == "Rate limit reached for requests"
    assert error.provider == case.protocol


async def test_500_is_a_retryable_http_error(case):
    case.server.enqueue(Turn.error(500, "The server had an error"))
    with pytest.raises(ProviderHTTPError) as caught:
        await collect(case.provider(), ask())
    assert caught.value.status_code == 500 and caught.value.retryable
    assert "The server had an error" in str(caught.value)


async def test_400_is_raised_with_the_servers_message_and_is_not_retryable(case):
    case.server.enqueue(Turn.error(400, "model 'nope' does not exist"))
    with pytest.raises(ProviderHTTPError) as caught:
        await collect(case.provider(), ask())
    assert not caught.value.retryable and "model 'nope' does not exist" in str(caught.value)


async def test_connection_dropped_mid_stream_keeps_what_arrived(case):
    case.server.enqueue(Turn.dropped("The residuals fan out because"))
    received = []
    with pytest.raises(ProviderStreamError) as caught:
        async for delta in case.provider().stream(ask()):
            received.append(delta)
    assert caught.value.partial is True
    assert text_of(received) == "The residuals fan out because"


async def test_connection_dropped_before_any_answer_is_a_connection_error(case):
    case.server.enqueue(Turn.dropped())
    with pytest.raises(ProviderConnectionError):
        await collect(case.provider(), ask())


async def test_malformed_sse_is_a_stream_error(case):
    case.server.enqueue(Turn.malformed())
    with pytest.raises(ProviderStreamError, match="malformed event") as caught:
        await collect(case.provider(), ask())
    assert caught.value.partial is False


async def test_malformed_sse_after_text_is_partial(case):
    case.server.enqueue(Turn.malformed("Some text"))
    with pytest.raises(ProviderStreamError) as caught:
        await collect(case.provider(), ask())
    assert caught.value.partial is True


async def test_error_event_before_content_is_a_retryable_http_error(case):
    case.server.enqueue(Turn([{"type": "error_event", "message": "Overloaded", "error_type": "overloaded_error"}]))
    with pytest.raises(ProviderHTTPError, match="Overloaded") as caught:
        await collect(case.provider(), ask())
    assert caught.value.retryable


async def test_error_event_for_a_bad_request_is_not_retryable(case):
    case.server.enqueue(Turn([{"type": "error_event", "message": "prompt is too long",
                               "error_type": "invalid_request_error"}]))
    with pytest.raises(ProviderHTTPError, match="prompt is too long") as caught:
        await collect(case.provider(), ask())
    assert caught.value.status_code == 400 and not caught.value.retryable


async def test_read_timeout_is_a_connection_error(case):
    case.server.enqueue(Turn.hang())
    async with httpx.AsyncClient(timeout=httpx.Timeout(5.0, read=0.3)) as client:
        with pytest.raises(ProviderConnectionError, match="timed out"):
            await collect(case.provider(http_client=client), ask())


async def test_connection_refused_is_a_connection_error(case):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    cls = type(case.provider())
    provider = cls(case.protocol, API_KEY, f"http://127.0.0.1:{port}" + ("/v1" if case.protocol == "openai" else ""))
    with pytest.raises(ProviderConnectionError, match=f"127.0.0.1:{port}"):
        await collect(provider, ask())


async def test_key_never_in_errors_repr_or_logs(case, caplog):
    caplog.set_level(logging.DEBUG)
    case.server.enqueue(Turn.error(400, f"Key {API_KEY} may not use this model"))  # servers do echo keys
    provider = case.provider()
    with pytest.raises(ProviderHTTPError) as caught:
        await collect(provider, ask())
    assert "may not use this model" in caught.value.message
    for text in (str(caught.value), caught.value.message, repr(provider), repr(caught.value), caplog.text):
        assert API_KEY not in text


@pytest.mark.parametrize("text_first", ["", "Some text"])
async def test_key_echoed_in_an_error_event_never_reaches_the_error(case, caplog, text_first):
    caplog.set_level(logging.DEBUG)
    steps = [{"type": "text", "text": text_first}] if text_first else []
    case.server.enqueue(Turn([*steps, {"type": "error_event", "message": f"Key {API_KEY} is over its quota",
                                       "error_type": "rate_limit_error"}]))
    with pytest.raises((ProviderHTTPError, ProviderStreamError)) as caught:
        await collect(case.provider(), ask())
    assert "is over its quota" in str(caught.value) and "[redacted]" in str(caught.value)
    assert getattr(caught.value, "partial", False) is bool(text_first)
    for text in (str(caught.value), getattr(caught.value, "message", ""), repr(caught.value), caplog.text):
        assert API_KEY not in text


async def test_credential_sent_as_an_extra_header_is_scrubbed_too(case):
    token = "proxy-token-SECRET-4242"
    case.server.enqueue(Turn.error(403, f"token {token} is not allowed here"))
    provider = case.provider(headers={"X-Proxy-Token": token, "X-Team": "notebooks"})
    with pytest.raises(ProviderHTTPError) as caught:
        await collect(provider, ask())
    assert "is not allowed here" in str(caught.value) and token not in str(caught.value)
    assert case.server.model_requests[0].headers["x-proxy-token"] == token  # it was sent, only not shown


async def test_wrong_key_gets_the_servers_401(case):
    cls = type(case.provider())
    base = case.server.openai_base_url if case.protocol == "openai" else case.server.anthropic_base_url
    with pytest.raises(ProviderHTTPError) as caught:
        await collect(cls(case.protocol, "sk-wrong-key-000", base), ask())
    assert caught.value.status_code == 401 and not caught.value.retryable
    assert "Incorrect API key" in str(caught.value)


async def test_injected_client_is_used_and_left_open(case):
    case.server.enqueue(Turn.text("one"), Turn.text("two"))
    sent: list[httpx.Request] = []

    async def record(request: httpx.Request) -> None:
        sent.append(request)

    async with httpx.AsyncClient(event_hooks={"request": [record]}) as client:
        provider = case.provider(http_client=client)
        assert text_of(await collect(provider, ask())) == "one"
        assert text_of(await collect(provider, ask())) == "two"
        assert not client.is_closed
    assert len(sent) == 2 and all(r.url.host == "127.0.0.1" for r in sent)


async def test_consumer_stopping_early_closes_the_stream(case):
    case.server.enqueue(Turn.hang(text="first words then nothing"), Turn.text("next"))
    provider = case.provider()
    stream = provider.stream(ask())
    first = await stream.__anext__()
    assert isinstance(first, (TextDelta, UsageDelta))
    await stream.aclose()  # what an interrupt does; must not wait for the hanging server
    assert text_of(await collect(provider, ask())) == "next"


async def test_closing_a_stream_early_gives_its_connection_back(case):
    case.server.enqueue(Turn.hang(text="first words then nothing"), Turn.text("next"))
    # One connection only: a stream left open would hold it, and the next request would time out.
    limits, timeout = httpx.Limits(max_connections=1), httpx.Timeout(5.0, pool=1.0)
    async with httpx.AsyncClient(limits=limits, timeout=timeout) as client:
        provider = case.provider(http_client=client)
        stream = provider.stream(ask())
        await stream.__anext__()
        await stream.aclose()
        assert text_of(await collect(provider, ask())) == "next"


async def test_cancelling_a_hanging_stream_returns_promptly(case):
    case.server.enqueue(Turn.hang(text="started then silence"), Turn.text("still serving"))
    got_text = asyncio.Event()

    async def consume():
        async for delta in case.provider().stream(ask()):
            if isinstance(delta, TextDelta):
                got_text.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(got_text.wait(), 5)
    task.cancel()  # what a kernel interrupt does to the running prompt
    started = time.monotonic()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert time.monotonic() - started < 1.0
    assert text_of(await collect(case.provider(), ask())) == "still serving"
