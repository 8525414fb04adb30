"""The OpenAI Responses API: the scripted server's third protocol read by the official ``openai`` SDK,
and the provider's own path (request mapping, streamed events, tool round trip, errors, the choice
between Responses and Chat Completions)."""

from __future__ import annotations

import base64

import pytest

from codetether_magics.agent.loop import run_prompt
from codetether_magics.agent.tools.base import Tool
from codetether_magics.errors import ProviderError, ProviderHTTPError, ProviderStreamError
from codetether_magics.providers.base import (Finish, ModelRequest, TextDelta, ThinkingDelta, ToolCallDelta, ToolSpec,
                                              UsageDelta)
from codetether_magics.providers.openai import OpenAIProvider
from codetether_magics.providers.openai_responses import REASONING_KEY, uses_responses_api
from codetether_magics.providers.registry import ProviderRegistry
from codetether_magics.session.session import Session
from codetether_magics.messages import ImagePart, Message, TextPart, ToolCallPart, ToolResultPart
from codetether_magics.testing import ScriptedModelServer, Turn
from tests.support.provider_config import registry_from_config

openai_sdk = pytest.importorskip("openai")

KEY = "sk-responses-test-0123456789"
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 16).decode()
FULL_TURN = [{"type": "thinking", "text": "Check the numbers first."}, {"type": "text", "text": "Computing it now."},
             {"type": "tool_call", "name": "calc", "arguments": {"expr": "6*7"}, "id": "call_sdk_1"},
             {"type": "usage", "prompt_tokens": 40, "completion_tokens": 9, "cache_read_tokens": 16}]


def provider(server: ScriptedModelServer, name: str = "openai") -> OpenAIProvider:
    return OpenAIProvider(name, KEY, server.openai_base_url)


async def collect(p: OpenAIProvider, request: ModelRequest) -> list:
    return [d async for d in p.stream(request)]


# -- the scripted server, checked by the official SDK's stream parser -----------------------------


def test_the_official_sdk_parses_and_accumulates_the_scripted_stream():
    with ScriptedModelServer([Turn(FULL_TURN)], api_key=KEY) as server:
        client = openai_sdk.OpenAI(api_key=KEY, base_url=server.openai_base_url, max_retries=0)
        tools = [{"type": "function", "name": "calc", "parameters": {"type": "object", "properties": {}}}]
        with client.responses.stream(model="gpt-5", input=[{"role": "user", "content": "6*7?"}], tools=tools) as s:
            events = list(s)
            final = s.get_final_response()
        assert server.errors == []
    kinds = {type(e).__name__ for e in events}  # the SDK's own typed events, one class per event type
    assert {"ResponseTextDeltaEvent", "ResponseReasoningSummaryTextDeltaEvent", "ResponseCompletedEvent",
            "ResponseFunctionCallArgumentsDeltaEvent", "ResponseOutputItemAddedEvent"} <= kinds
    text = [e for e in events if e.type == "response.output_text.delta"]
    assert text[-1].snapshot == "Computing it now."  # the SDK's accumulator joined our deltas
    assert [e.sequence_number for e in events] == sorted(e.sequence_number for e in events)
    assert final.output_text == "Computing it now."
    reasoning, message, call = final.output
    assert reasoning.summary[0].text == "Check the numbers first." and reasoning.encrypted_content
    assert (call.call_id, call.name, call.arguments) == ("call_sdk_1", "calc", '{"expr": "6*7"}')
    assert (final.usage.input_tokens, final.usage.output_tokens, final.usage.total_tokens) == (40, 9, 49)
    assert final.usage.input_tokens_details.cached_tokens == 16


def test_the_sdk_sees_a_length_cut_as_incomplete_and_an_error_event_as_an_error():
    from openai.types.responses import ResponseErrorEvent, ResponseIncompleteEvent

    cut = Turn([{"type": "text", "text": "partial"}], finish_reason="length")
    failing = Turn([{"type": "error_event", "message": "Rate limit reached", "error_type": "rate_limit_error"}])
    with ScriptedModelServer([cut, failing], api_key=KEY) as server:
        client = openai_sdk.OpenAI(api_key=KEY, base_url=server.openai_base_url, max_retries=0)
        events = list(client.responses.create(model="gpt-5", input="hi", stream=True))
        assert isinstance(events[-1], ResponseIncompleteEvent)
        assert events[-1].response.incomplete_details.reason == "max_output_tokens"
        *_, error = list(client.responses.create(model="gpt-5", input="hi", stream=True))
        assert isinstance(error, ResponseErrorEvent)
        assert (error.code, error.message) == ("rate_limit_exceeded", "Rate limit reached")


def test_the_scripted_server_rejects_chat_fields_on_the_responses_path():
    import httpx

    with ScriptedModelServer([Turn.text("never")]) as server:
        answer = httpx.post(server.openai_base_url + "/responses", json={"model": "m", "stream": True,
                                                                        "messages": [{"role": "user"}]})
    assert answer.status_code == 400 and "'messages' is a Chat Completions field" in answer.text


# -- the provider -------------------------------------------------------------------------------


async def test_reasoning_text_and_tool_calls_stream_as_deltas():
    with ScriptedModelServer([Turn(FULL_TURN)], api_key=KEY) as server:
        image = ImagePart(url=f"data:image/png;base64,{PNG}", mime_type="image/png")
        request = ModelRequest(model="gpt-5", system="Be brief.", temperature=0.3, max_tokens=500,
                               tools=[ToolSpec("calc", "Evaluate", {"type": "object"})], thinking_budget=8000,
                               messages=[Message(role="user", content=[TextPart(text="6*7?"), image])])
        deltas = await collect(provider(server), request)
        (sent,) = server.model_requests
        assert server.errors == []
    assert sent.path == "/v1/responses"
    body = sent.body
    assert body["instructions"] == "Be brief." and body["store"] is False and body["max_output_tokens"] == 500
    assert body["input"] == [{"role": "user", "content": [
        {"type": "input_text", "text": "6*7?"},
        {"type": "input_image", "image_url": f"data:image/png;base64,{PNG}", "detail": "auto"}]}]
    assert body["tools"] == [{"type": "function", "name": "calc", "description": "Evaluate",
                              "parameters": {"type": "object"}}]
    assert body["reasoning"] == {"summary": "auto", "effort": "medium"} and "temperature" not in body
    assert body["include"] == ["reasoning.encrypted_content"]
    assert "".join(d.text for d in deltas if isinstance(d, ThinkingDelta)) == "Check the numbers first."
    assert "".join(d.text for d in deltas if isinstance(d, TextDelta)) == "Computing it now."
    calls = [d for d in deltas if isinstance(d, ToolCallDelta)]
    assert calls[0].id == "call_sdk_1" and calls[0].name == "calc"
    assert "".join(d.arguments for d in calls) == '{"expr": "6*7"}'
    assert UsageDelta(prompt_tokens=40, completion_tokens=9, cache_read_tokens=16, total_tokens=49) in deltas
    assert deltas[-1] == Finish("tool_calls")


async def test_a_tool_round_trip_sends_function_call_output_and_the_encrypted_reasoning_back(tmp_path):
    async def calc(arguments: dict) -> str:
        return "42"

    turns = [Turn(FULL_TURN), Turn.text("It is 42.", expect_tool_result="42")]
    with ScriptedModelServer(turns, api_key=KEY) as server:
        registry = ProviderRegistry.from_env({"OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": server.openai_base_url},
                                             config_path=tmp_path / "none.toml")
        session = await Session.new(tmp_path)
        result = await run_prompt(session, "6*7?", [], None, registry, model="openai/gpt-5-codex",
                                  tools=[Tool("calc", "Evaluate", {"type": "object"}, calc, read_only=True)], title_model_call=False)
        assert server.errors == []  # the output matched its call, as the real API checks
        second = server.model_requests[1].body["input"]
    assert "It is 42." in result.text
    kinds = [item.get("type") or item["role"] for item in second]
    assert kinds == ["user", "reasoning", "assistant", "function_call", "function_call_output"]
    reasoning = second[1]
    assert reasoning["encrypted_content"] and reasoning["summary"][0]["text"] == "Check the numbers first."
    assert second[3] == {"type": "function_call", "call_id": "call_sdk_1", "name": "calc",
                         "arguments": '{"expr": "6*7"}'}
    assert second[4] == {"type": "function_call_output", "call_id": "call_sdk_1", "output": "42"}
    thinking = session.messages[1].content[0]
    assert (thinking.model_extra or {})[REASONING_KEY]["encrypted_content"] == reasoning["encrypted_content"]


async def test_errors_on_the_responses_path():
    turns = [Turn.error(429, "Slow down", retry_after=2),
             Turn([{"type": "error_event", "message": "Overloaded right now", "error_type": "overloaded_error"}]),
             Turn([{"type": "text", "text": "half"},
                   {"type": "error_event", "message": f"key {KEY} revoked", "error_type": "invalid_request_error"}]),
             Turn([{"type": "text", "text": "cut"}], finish_reason="length")]
    with ScriptedModelServer(turns) as server:
        p, ask = provider(server), ModelRequest(model="o4-mini", messages=[Message.user("hi")])
        with pytest.raises(ProviderHTTPError) as caught:
            await collect(p, ask)
        assert caught.value.status_code == 429 and caught.value.retry_after == 2 and "Slow down" in str(caught.value)
        with pytest.raises(ProviderHTTPError) as caught:
            await collect(p, ask)
        assert caught.value.retryable and "Overloaded right now" in str(caught.value)
        with pytest.raises(ProviderStreamError) as partial:
            await collect(p, ask)
        assert partial.value.partial and "revoked" in str(partial.value) and KEY not in str(partial.value)
        assert (await collect(p, ask))[-1] == Finish("length")


@pytest.mark.parametrize("model, expected", [
    ("gpt-4o", False), ("gpt-4.1-mini", False), ("o3", True), ("o4-mini", True), ("o1-pro", True),
    ("gpt-5", True), ("gpt-5-mini", True), ("gpt-5-codex", True), ("codex-mini-latest", True),
])
def test_provider_openai_chooses_the_api_by_model(model, expected):
    assert uses_responses_api("openai", None, model, {}) is expected


def test_the_choice_can_be_configured():
    assert uses_responses_api("openai", None, "gpt-4o", {"CODETETHER_OPENAI_API": "responses"})
    assert not uses_responses_api("openai", None, "gpt-5", {"CODETETHER_OPENAI_API": "chat"})
    assert not uses_responses_api("openrouter", None, "openai/gpt-5", {"CODETETHER_OPENAI_API": "responses"})
    assert uses_responses_api("azure", "responses", "my-deployment", {})
    assert not uses_responses_api("openai", "chat", "o3", {"CODETETHER_OPENAI_API": "responses"})
    with pytest.raises(ProviderError, match='CODETETHER_OPENAI_API must be "responses" or "chat"'):
        uses_responses_api("openai", None, "gpt-4o", {"CODETETHER_OPENAI_API": "grpc"})


async def test_api_responses_in_the_config_file_sends_a_compatible_provider_there(tmp_path):
    with ScriptedModelServer([Turn.text("via responses")]) as server:
        reg = registry_from_config(tmp_path, f'[providers.gateway]\nbase_url = "{server.openai_base_url}"\n'
                                   'api = "responses"\ndefault_model = "any-model"\n')
        p, model = reg.resolve_model("gateway")
        deltas = await collect(p, ModelRequest(model=model, messages=[Message.user("hi")]))
        assert server.model_requests[0].path == "/v1/responses"
    assert "".join(d.text for d in deltas if isinstance(d, TextDelta)) == "via responses"
    with pytest.raises(ProviderError, match=r'api of \[providers.gateway\] in the config file must be'):
        registry_from_config(tmp_path, '[providers.gateway]\nbase_url = "http://127.0.0.1:9/v1"\napi = "soap"\n')


async def test_a_tool_results_image_goes_as_input_image_after_its_output():
    history = [Message.user("plot it"),
               Message(role="assistant", content=[ToolCallPart(id="call_p", name="python", arguments="{}")]),
               Message(role="tool", content=[ToolResultPart(tool_call_id="call_p", content="Figure shown"),
                                             ImagePart(url=f"data:image/png;base64,{PNG}", mime_type="image/png")])]
    with ScriptedModelServer([Turn.text("A line.", expect_image=True)]) as server:
        await collect(provider(server), ModelRequest(model="gpt-5", messages=history))
        items = server.model_requests[0].body["input"]
        assert server.errors == []  # the server found the image, and the output matched its call
    assert items[2] == {"type": "function_call_output", "call_id": "call_p", "output": "Figure shown"}
    assert items[3]["content"][0] == {"type": "input_text", "text": "The image output of the tool call above:"}
    assert items[3]["role"] == "user" and items[3]["content"][1] == {
        "type": "input_image", "image_url": f"data:image/png;base64,{PNG}", "detail": "auto"}
