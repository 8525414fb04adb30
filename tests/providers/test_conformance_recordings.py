"""Every response recorded from the real APIs (the conformance set: its manifest names the source of
each recording and what it must yield) goes through the real provider HTTP path: a loopback server
serves the recorded bytes, the provider parses them, the shared accumulator builds the message, and
for errors and round trips the agent's own retry loop and tool loop run."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from codetether_magics.agent.message_builder import MessageBuilder
from codetether_magics.events import EventSink
from codetether_magics.agent.loop import run_prompt
from codetether_magics.events import UsageReportEvent
from codetether_magics.agent.model_call import StepStream
from codetether_magics.agent.tools.base import Tool
from codetether_magics.errors import ProviderError, ProviderHTTPError, ProviderStreamError
from codetether_magics.providers.anthropic import AnthropicProvider
from codetether_magics.providers.base import ModelRequest, RefusalDelta, TextDelta, ThinkingDelta, ToolCallDelta
from codetether_magics.providers.openai import OpenAIProvider
from codetether_magics.session.session import Session
from codetether_magics.messages import Message, TextPart, ThinkingPart, ToolCallPart
from codetether_magics.testing.recorded_server import RecordedServer, Reply

def _recordings() -> Path:
    """``$CODETETHER_CONFORMANCE_DIR``, else the first ``shared/conformance`` above this file (the layout
    the project is developed in), else ``/work/shared/conformance`` (a clone checked out elsewhere)."""
    if os.environ.get("CODETETHER_CONFORMANCE_DIR"):
        return Path(os.environ["CODETETHER_CONFORMANCE_DIR"])
    for folder in (*Path(__file__).resolve().parents, Path("/work")):  # /work: where CI mounts shared/
        if (folder / "shared" / "conformance" / "manifest.json").is_file():
            return folder / "shared" / "conformance"
    return Path("shared/conformance")


ROOT = _recordings()
MANIFEST = json.loads((ROOT / "manifest.json").read_text()) if (ROOT / "manifest.json").is_file() else None
FIXTURES = MANIFEST["fixtures"] if MANIFEST else []
pytestmark = pytest.mark.skipif(MANIFEST is None, reason=f"no conformance recordings at {ROOT}")

# The raw finish reasons of the manifest, as the providers normalise them.
FINISH = {"end_turn": "stop", "stop_sequence": "stop", "tool_use": "tool_calls", "max_tokens": "length",
          "refusal": "refusal"}


def by_kind(kind: str) -> list:
    return [pytest.param(f, id=f["id"]) for f in FIXTURES if f["kind"] == kind]


def replies(fixture: dict) -> list[Reply]:
    return [Reply.from_file(ROOT / r["file"], r["status"], r.get("headers")) for r in fixture["responses"]]


def provider_for(fixture: dict, server: RecordedServer):
    key = fixture.get("api_key", "sk-conformance-0000")
    if fixture["protocol"] == "anthropic":
        return AnthropicProvider(fixture["provider"], key, server.url)
    return OpenAIProvider(fixture["provider"], key, server.url + "/v1")


def request() -> ModelRequest:
    return ModelRequest(model="recorded", messages=[Message.user("hi")])


async def stream_fixture(fixture: dict) -> tuple[list, MessageBuilder, ProviderError | None]:
    deltas: list = []
    builder = MessageBuilder()
    error = None
    with RecordedServer(replies(fixture)) as server:
        try:
            async for delta in provider_for(fixture, server).stream(request()):
                deltas.append(delta)
                builder.feed(delta)
        except ProviderError as exc:
            error = exc
    return deltas, builder, error


def check_step(expect: dict, builder: MessageBuilder, protocol: str, deltas: list | None = None, *,
               whole: bool = True) -> None:
    message = builder.message()
    parts = message.content[:-1] if builder.refusal is not None else message.content  # the refusal note
    text = "".join(p.text for p in parts if isinstance(p, TextPart))
    assert text == expect["text"]
    assert builder.thinking == expect["thinking"]
    if deltas is not None:  # what streamed is what was kept
        assert "".join(d.text for d in deltas if isinstance(d, TextDelta)) == expect["text"]
        assert "".join(d.text for d in deltas if isinstance(d, ThinkingDelta)) == expect["thinking"]
    check_refusal(expect, builder, deltas)
    calls = [(c.id, c.name, json.loads(c.arguments)) for c in message.tool_calls]
    assert calls == [(c["id"], c["name"], c["arguments"]) for c in expect["tool_calls"]]
    if protocol == "anthropic":
        check_anthropic_blocks(expect, parts)
    if not whole:  # a step read back from the transcript: no finish reason or usage in it
        return
    reason = expect["finish_reason"]
    assert builder.finish_reason == FINISH.get(reason, reason)
    if "usage" in expect:
        check_usage(expect["usage"], builder, protocol)


def check_refusal(expect: dict, builder: MessageBuilder, deltas: list | None) -> None:
    refused = expect.get("refusal") or expect["finish_reason"] == "refusal"
    if not refused:
        assert builder.refusal is None
        return
    assert builder.refusal == expect.get("refusal", builder.refusal)
    if deltas is not None and expect.get("refusal"):
        assert "".join(d.text for d in deltas if isinstance(d, RefusalDelta)) == expect["refusal"]
    # It reaches the user as a refusal, never as an empty success.
    assert builder.text.strip() and "refused" in builder.text
    assert "refused" in builder.message().text


def check_usage(usage: dict, builder: MessageBuilder, protocol: str) -> None:
    got = builder.usage
    if protocol == "anthropic":
        read, write = usage.get("cache_read_input_tokens") or 0, usage.get("cache_creation_input_tokens") or 0
        prompt = usage["input_tokens"] + read + write  # the whole prompt, cached parts included
        assert (got.prompt_tokens, got.completion_tokens) == (prompt, usage["output_tokens"])
        assert (got.cache_read_tokens, got.cache_write_tokens) == (read, write)
        assert got.total_tokens == prompt + usage["output_tokens"]
        return
    assert (got.prompt_tokens, got.completion_tokens, got.total_tokens) == (
        usage["prompt_tokens"], usage["completion_tokens"], usage["total_tokens"])
    assert got.cache_read_tokens == (usage.get("cached_tokens") or 0)


def check_anthropic_blocks(expect: dict, parts: list) -> None:
    def kind(part: Any) -> str:
        if isinstance(part, ThinkingPart):
            return "redacted_thinking" if (part.model_extra or {}).get("redacted") else "thinking"
        return "tool_use" if isinstance(part, ToolCallPart) else "text"

    assert [kind(p) for p in parts] == expect["blocks"]
    thinking = [p for p in parts if isinstance(p, ThinkingPart)]
    assert [p.signature for p in thinking if p.signature] == expect["signatures"]
    assert [p.model_extra["redacted"] for p in thinking if (p.model_extra or {}).get("redacted")] == \
        expect["redacted_thinking"]


@pytest.mark.parametrize("fixture", by_kind("stream"))
async def test_stream_recording(fixture):
    deltas, builder, error = await stream_fixture(fixture)
    expected_error = fixture.get("expect_error")
    if expected_error is None:
        assert error is None, error
    elif expected_error["kind"] == "stream_error_after_content":
        assert isinstance(error, ProviderStreamError) and error.partial, error
        assert expected_error["message_contains"] in str(error)
    else:
        assert isinstance(error, ProviderHTTPError), error
        assert error.status_code == expected_error["status"]
        assert error.retryable is expected_error["retryable"]
        assert expected_error["message_contains"] in str(error)
    check_step(fixture["expect"], builder, fixture["protocol"], deltas)


@pytest.mark.parametrize("fixture", by_kind("error"))
async def test_error_recording(fixture):
    expected = fixture["expect_error"]
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    with RecordedServer(replies(fixture)) as server:
        stream = StepStream(provider_for(fixture, server), EventSink(None), retry_delays=(1.0, 2.0, 4.0),
                            sleep=sleep)
        with pytest.raises(ProviderHTTPError) as caught:
            await stream.run(request(), "")
        attempts = len(server.requests)
    error = caught.value
    assert error.status_code == expected["status"] and error.retryable is expected["retryable"]
    assert expected["message_contains"] in str(error)
    assert attempts == expected["attempts"]
    if "retry_after" in expected:
        assert error.retry_after == expected["retry_after"]
        assert waits == ([expected["retry_after"]] * 3 if expected["retry_after"] else [1.0, 2.0, 4.0])
    if "secret_must_not_appear" in expected:
        assert expected["secret_must_not_appear"] not in f"{error} {error!r} {error.message}"


def tools_for(fixture: dict) -> list[Tool]:
    tools = []
    for name, spec in fixture["tools"].items():
        results = list(spec.get("results") or [spec.get("result")])

        async def handler(arguments: dict, results: list = results) -> str:
            return results.pop(0)

        tools.append(Tool(name, f"recorded tool {name}", {"type": "object", "properties": {}}, handler, read_only=True))
    return tools


@pytest.mark.parametrize("fixture", by_kind("roundtrip"))
async def test_roundtrip_recording(fixture, tmp_path):
    session = await Session.new(tmp_path)
    events: list = []
    with RecordedServer(replies(fixture)) as server:
        registry = _Registry(provider_for(fixture, server))
        await run_prompt(session, fixture["recorded_prompt"], [], events.append, registry, model="p/recorded",
                         tools=tools_for(fixture), title_model_call=False, save=False)
        second = server.requests[1].body
    steps = [m for m in session.messages if m.role == "assistant"]
    usages = [e for e in events if isinstance(e, UsageReportEvent)]
    assert len(steps) == len(usages) == len(fixture["expect_steps"]) == 2
    for expect, message, usage in zip(fixture["expect_steps"], steps, usages):
        builder = MessageBuilder()  # the step as the transcript holds it, read back through the accumulator
        for index, part in enumerate(message.content):
            builder.feed(_as_delta(part, index))
        check_step(expect, builder, fixture["protocol"], whole=False)
        check_reported_usage(expect["usage"], usage, fixture["protocol"])
    check_second_request(fixture, second)


def _as_delta(part: Any, index: int) -> Any:
    if isinstance(part, TextPart):
        return TextDelta(part.text)
    if isinstance(part, ThinkingPart):
        return ThinkingDelta(part.text, part.signature, block=index, redacted=(part.model_extra or {}).get("redacted"))
    return ToolCallDelta(index, id=part.id, name=part.name, arguments=part.arguments)


def check_reported_usage(usage: dict, event: UsageReportEvent, protocol: str) -> None:
    if protocol == "anthropic":
        prompt = usage["input_tokens"] + (usage.get("cache_read_input_tokens") or 0) + \
            (usage.get("cache_creation_input_tokens") or 0)
        assert (event.prompt_tokens, event.completion_tokens) == (prompt, usage["output_tokens"])
    else:
        assert (event.prompt_tokens, event.completion_tokens) == (usage["prompt_tokens"], usage["completion_tokens"])


def check_second_request(fixture: dict, body: dict) -> None:
    """The second request carries the step-1 calls and their results as the recorded one did."""
    recorded = fixture["recorded_second_request_messages"]
    if fixture["protocol"] == "openai":
        sent = [m for m in body["messages"] if m["role"] != "system"]
        calls = [c for m in sent if m["role"] == "assistant" for c in m.get("tool_calls") or []]
        want = [c for m in recorded if m["role"] == "assistant" for c in m.get("tool_calls") or []]
        assert [(c["id"], c["function"]["name"], json.loads(c["function"]["arguments"])) for c in calls] == \
            [(c["id"], c["function"]["name"], json.loads(c["function"]["arguments"])) for c in want]
        assert [(m["tool_call_id"], m["content"]) for m in sent if m["role"] == "tool"] == \
            [(m["tool_call_id"], m["content"]) for m in recorded if m["role"] == "tool"]
        return
    sent = body["messages"]
    assert [m["role"] for m in sent] == [m["role"] for m in recorded]
    sent_blocks = [b for b in sent[1]["content"] if b["type"] != "text"]
    want_blocks = [b for b in recorded[1]["content"] if b["type"] != "text"]
    assert sent_blocks == want_blocks  # thinking (with its signature, intact) before tool_use, ids kept
    assert [(b["tool_use_id"], b["content"]) for b in sent[2]["content"]] == \
        [(b["tool_use_id"], b["content"]) for b in recorded[2]["content"]]  # all results in ONE user message


class _Registry:
    """The one provider under test, under any model name (what resolve_model gives the loop)."""

    def __init__(self, provider: Any) -> None:
        self.provider = provider

    def resolve_model(self, model: str | None) -> tuple[Any, str]:
        return self.provider, "recorded"

    def default_model(self) -> str:
        return "p/recorded"


def test_the_whole_set_is_here():
    assert len(FIXTURES) == 51 and {f["kind"] for f in FIXTURES} == {"stream", "error", "roundtrip"}


@pytest.mark.parametrize("fixture_id, reason", [("openai_refusal", "I'm sorry, I can't assist with that request."),
                                                ("anthropic_refusal_no_content", "Usage Policy")])
async def test_a_recorded_refusal_reaches_the_user_as_a_refusal(fixture_id, reason, tmp_path):
    (fixture,) = [f for f in FIXTURES if f["id"] == fixture_id]
    session, events = await Session.new(tmp_path), []
    with RecordedServer(replies(fixture)) as server:
        result = await run_prompt(session, "something refused", [], events.append,
                                  _Registry(provider_for(fixture, server)), model="p/recorded", tools=[],
                                  title_model_call=False, save=False)
    assert result.text.startswith("[The model refused") and reason in result.text
    assert session.messages[-1].text == result.text  # the transcript says so too
    assert any(getattr(e, "type", "") == "text_complete" and "refused" in e.text for e in events)
