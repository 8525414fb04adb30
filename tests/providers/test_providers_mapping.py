"""Edge cases of each protocol's message mapping and event parsing (httpx.MockTransport unit tests;
the loopback-server tests in test_providers_streaming.py cover the real wire)."""

from __future__ import annotations

import json

import httpx
import pytest

from codetether_magics.errors import ProviderHTTPError, ProviderStreamError
from codetether_magics.messages import (
    FilePart,
    ImagePart,
    Message,
    TextPart,
    ThinkingPart,
    ToolCallPart,
    ToolResultPart,
)
from codetether_magics.providers.anthropic import AnthropicProvider
from codetether_magics.providers.base import Finish, ModelRequest, TextDelta, ThinkingDelta, ToolSpec, UsageDelta
from codetether_magics.providers.openai import OpenAIProvider

OPENAI_DONE = b'data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\ndata: [DONE]\n\n'
ANTHROPIC_DONE = (b'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"max_tokens"},'
                  b'"usage":{"output_tokens":3}}\n\nevent: message_stop\ndata: {"type":"message_stop"}\n\n')


def capturing(body: bytes):
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200, content=body, headers={"content-type": "text/event-stream"})

    return httpx.AsyncClient(transport=httpx.MockTransport(handler)), sent


async def run(provider, request: ModelRequest) -> list:
    return [d async for d in provider.stream(request)]


HISTORY = [
    Message(role="developer", content=[TextPart(text="Prefer pandas.")]),
    Message.user("plot it"),
    Message(role="assistant", content=[ThinkingPart(text="unsigned idea"), ThinkingPart(text="signed", signature="s1"),
                                       ToolCallPart(id="c1", name="run", arguments='{"code": "1+1"}'),
                                       ToolCallPart(id="c2", name="run", arguments="not json")]),
    Message(role="tool", content=[ToolResultPart(tool_call_id="c1", content="2"),
                                  ToolResultPart(tool_call_id="c2", content="error")]),
    Message(role="user", content=[TextPart(text="and this file"), FilePart(path="data.csv"),
                                  ImagePart(url="https://example.com/x.png")]),
]


async def test_openai_mapping_for_a_compatible_server():
    client, sent = capturing(OPENAI_DONE)
    provider = OpenAIProvider("groq", "k", "http://h/v1", http_client=client)
    await run(provider, ModelRequest(model="m", messages=HISTORY, system="Be brief.", max_tokens=50,
                                     tools=[ToolSpec("run", "Run code", {"type": "object"})]))
    body = json.loads(sent[0].content)
    assert body["max_tokens"] == 50 and "max_completion_tokens" not in body
    roles = [m["role"] for m in body["messages"]]
    assert roles == ["system", "system", "user", "assistant", "tool", "tool", "user"]
    assistant = body["messages"][3]
    assert assistant["content"] is None and [c["id"] for c in assistant["tool_calls"]] == ["c1", "c2"]
    assert body["messages"][-1]["content"][1] == {"type": "text", "text": "[attached file: data.csv]"}
    assert body["tools"] == [{"type": "function", "function": {"name": "run", "description": "Run code",
                                                               "parameters": {"type": "object"}}}]


async def test_openai_itself_gets_developer_role_and_max_completion_tokens():
    client, sent = capturing(OPENAI_DONE)
    await run(OpenAIProvider("openai", "k", "https://api.openai.com/v1", http_client=client, organization="org-1"),
              ModelRequest(model="gpt-4.1", messages=HISTORY[:2], max_tokens=10))
    body = json.loads(sent[0].content)
    assert body["messages"][0]["role"] == "developer" and body["max_completion_tokens"] == 10
    assert sent[0].headers["openai-organization"] == "org-1"
    assert str(sent[0].url) == "https://api.openai.com/v1/chat/completions"


async def test_openai_base_url_at_a_compatible_server_gets_system_role_and_max_tokens():
    # OPENAI_BASE_URL=http://vllm:8000/v1 registers as "openai", but vLLM/llama.cpp speak the older dialect.
    client, sent = capturing(OPENAI_DONE)
    await run(OpenAIProvider("openai", "k", "http://h/v1", http_client=client),
              ModelRequest(model="m", messages=HISTORY[:2], max_tokens=10))
    body = json.loads(sent[0].content)
    assert body["messages"][0]["role"] == "system" and body["max_tokens"] == 10
    assert "max_completion_tokens" not in body


async def test_openai_parses_reasoning_field_and_plain_usage():
    stream = (b'data: {"choices":[{"index":0,"delta":{"reasoning":"hmm"}}]}\n\n'
              b'data: {"choices":[{"index":0,"delta":{"content":"ok"},"finish_reason":"length"}],'
              b'"usage":{"prompt_tokens":3,"completion_tokens":1}}\n\ndata: [DONE]\n\n')
    client, _ = capturing(stream)
    deltas = await run(OpenAIProvider("openrouter", "k", "http://h/v1", http_client=client),
                       ModelRequest(model="m", messages=[Message.user("x")]))
    assert deltas == [ThinkingDelta(text="hmm"), TextDelta("ok"), Finish("length"),
                      UsageDelta(prompt_tokens=3, completion_tokens=1)]


async def test_openai_stream_ending_after_finish_without_done_is_accepted():
    client, _ = capturing(b'data: {"choices":[{"index":0,"delta":{"content":"x"},"finish_reason":"stop"}]}\n\n')
    deltas = await run(OpenAIProvider("llamacpp", None, "http://h/v1", http_client=client),
                       ModelRequest(model="m", messages=[Message.user("x")]))
    assert deltas == [TextDelta("x"), Finish("stop")]


async def test_anthropic_mapping():
    client, sent = capturing(ANTHROPIC_DONE)
    provider = AnthropicProvider("anthropic", "k", "http://h/v1", http_client=client)
    deltas = await run(provider, ModelRequest(model="c", messages=HISTORY, system="Be brief.", temperature=0.2))
    assert str(sent[0].url) == "http://h/v1/messages"  # a base URL ending in /v1 is accepted
    body = json.loads(sent[0].content)
    assert body["system"] == [{"type": "text", "text": "Be brief.\n\nPrefer pandas.",
                               "cache_control": {"type": "ephemeral"}}]
    assert body["max_tokens"] == 8192 and body["temperature"] == 0.2
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "user"]
    assistant = body["messages"][1]["content"]
    assert assistant[0] == {"type": "thinking", "thinking": "signed", "signature": "s1"}  # unsigned one dropped
    assert assistant[1]["input"] == {"code": "1+1"} and assistant[2]["input"] == {"_raw_arguments": "not json"}
    last = body["messages"][2]["content"]  # tool results first, then the user's own blocks, merged
    assert [b["type"] for b in last] == ["tool_result", "tool_result", "text", "text", "image"]
    assert last[-1] == {"type": "image", "source": {"type": "url", "url": "https://example.com/x.png"},
                        "cache_control": {"type": "ephemeral"}}
    assert Finish("length") in deltas and UsageDelta(completion_tokens=3) in deltas


async def test_json_instead_of_a_stream_is_a_clear_error():
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"choices": [{"message": {"content": "whole answer"}}]})

    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    with pytest.raises(ProviderStreamError, match="expected a streamed answer") as caught:
        await run(OpenAIProvider("proxy", "k", "http://h/v1", http_client=client),
                  ModelRequest(model="m", messages=[Message.user("x")]))
    assert caught.value.partial is False


async def test_html_error_page_is_reduced_to_its_title():
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(502, html="<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>")

    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    with pytest.raises(ProviderHTTPError) as caught:
        await run(AnthropicProvider("anthropic", "k", "http://h", http_client=client),
                  ModelRequest(model="m", messages=[Message.user("x")]))
    assert caught.value.message == "502 Bad Gateway" and caught.value.retryable
