"""Wire quirks beyond the recorded set, on the real HTTP path (a loopback server serving the bytes):
two signed thinking blocks, redacted thinking sent back intact, tool-call fragments without an index,
and tool-call ids from another provider made valid for Anthropic."""

from __future__ import annotations

import json
import re

from codetether_magics.agent.message_builder import MessageBuilder
from codetether_magics.providers.anthropic import AnthropicProvider, tool_id
from codetether_magics.providers.base import ModelRequest
from codetether_magics.providers.openai import OpenAIProvider
from codetether_magics.messages import Message, TextPart, ThinkingPart, ToolCallPart, ToolResultPart
from codetether_magics.testing.recorded_server import RecordedServer, Reply

SSE = {"content-type": "text/event-stream"}


def sse(*events: tuple[str | None, dict]) -> list[bytes]:
    return [((f"event: {name}\n" if name else "") + f"data: {json.dumps(data)}\n\n").encode() for name, data in events]


def anthropic_stream(*blocks: tuple[str, dict]) -> list[bytes]:
    return sse(("message_start", {"type": "message_start", "message": {"usage": {"input_tokens": 3}}}), *blocks,
               ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn"},
                                  "usage": {"output_tokens": 2}}),
               ("message_stop", {"type": "message_stop"}))


async def build(provider, request: ModelRequest) -> MessageBuilder:
    builder = MessageBuilder()
    async for delta in provider.stream(request):
        builder.feed(delta)
    return builder


def ask(*messages: Message) -> ModelRequest:
    return ModelRequest(model="m", messages=list(messages) or [Message.user("hi")])


async def test_two_thinking_blocks_keep_their_own_signatures_and_go_back_as_two():
    body = anthropic_stream(
        ("content_block_start", {"type": "content_block_start", "index": 0,
                                 "content_block": {"type": "thinking", "thinking": ""}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                 "delta": {"type": "thinking_delta", "thinking": "first idea"}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                 "delta": {"type": "signature_delta", "signature": "SIG-ONE"}}),
        ("content_block_start", {"type": "content_block_start", "index": 1,
                                 "content_block": {"type": "thinking", "thinking": ""}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 1,
                                 "delta": {"type": "thinking_delta", "thinking": "second idea"}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 1,
                                 "delta": {"type": "signature_delta", "signature": "SIG-TWO"}}),
        ("content_block_start", {"type": "content_block_start", "index": 2,
                                 "content_block": {"type": "redacted_thinking", "data": "OPAQUE+/=="}}),
        ("content_block_start", {"type": "content_block_start", "index": 3, "content_block": {"type": "text"}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 3,
                                 "delta": {"type": "text_delta", "text": "Answer."}}),
    )
    with RecordedServer([Reply(200, SSE, body), Reply(200, SSE, anthropic_stream())]) as server:
        provider = AnthropicProvider("anthropic", "sk-ant-0000", server.url)
        message = (await build(provider, ask())).message()
        thinking = [p for p in message.content if isinstance(p, ThinkingPart)]
        assert [(p.text, p.signature) for p in thinking] == [("first idea", "SIG-ONE"), ("second idea", "SIG-TWO"),
                                                             ("", None)]
        assert thinking[2].model_extra == {"redacted": "OPAQUE+/=="}
        # The transcript round trip (the file keeps the extra field), then the next request.
        restored = Message.model_validate_json(message.model_dump_json())
        await build(provider, ask(Message.user("hi"), restored, Message.user("and?")))
        sent = server.requests[1].body["messages"][1]["content"]
    assert sent == [{"type": "thinking", "thinking": "first idea", "signature": "SIG-ONE"},
                    {"type": "thinking", "thinking": "second idea", "signature": "SIG-TWO"},
                    {"type": "redacted_thinking", "data": "OPAQUE+/=="},
                    {"type": "text", "text": "Answer."}]


async def test_redacted_thinking_is_never_sent_to_another_protocol():
    history = Message(role="assistant", content=[ThinkingPart(text="", signature=None, redacted="OPAQUE"),
                                                 TextPart(text="Answer.")])
    done = sse((None, {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}))
    with RecordedServer([Reply(200, SSE, done)]) as server:
        await build(OpenAIProvider("openai", "sk-0000", server.url + "/v1"), ask(Message.user("hi"), history))
        body = json.dumps(server.requests[0].body)
    assert "OPAQUE" not in body and "Answer." in body


async def test_tool_call_fragments_without_index_are_not_merged():
    call = lambda cid, name, args: {"id": cid, "type": "function",  # noqa: E731
                                    "function": {"name": name, "arguments": args}}
    body = sse((None, {"choices": [{"index": 0, "delta": {"tool_calls": [call("aaa111", "read", '{"path"')]}}]}),
               (None, {"choices": [{"index": 0, "delta": {"tool_calls": [{"function": {"arguments": ': "x"}'}}]}}]}),
               (None, {"choices": [{"index": 0, "delta": {"tool_calls": [call("bbb222", "grep", '{"q": 1}')]}}]}),
               (None, {"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]}))
    with RecordedServer([Reply(200, SSE, body)]) as server:
        message = (await build(OpenAIProvider("mistral", "k-0000", server.url + "/v1"), ask())).message()
    assert [(c.id, c.name, json.loads(c.arguments)) for c in message.tool_calls] == [
        ("aaa111", "read", {"path": "x"}), ("bbb222", "grep", {"q": 1})]


async def test_tool_call_ids_from_another_provider_are_made_valid_for_anthropic():
    ids = ["llm_version:0", "call.1 two", "", "ok_id-9", "llm_version_0"]
    history = [Message.user("hi"),
               Message(role="assistant", content=[ToolCallPart(id=i, name="t", arguments="{}") for i in ids]),
               Message(role="tool", content=[ToolResultPart(tool_call_id=i, content=f"r{n}")
                                             for n, i in enumerate(ids)])]
    with RecordedServer([Reply(200, SSE, anthropic_stream())]) as server:
        await build(AnthropicProvider("anthropic", "sk-ant-0000", server.url), ask(*history))
        messages = server.requests[0].body["messages"]
    uses = [b["id"] for b in messages[1]["content"]]
    results = [b["tool_use_id"] for b in messages[2]["content"]]
    assert all(re.fullmatch(r"[a-zA-Z0-9_-]+", i) for i in uses)
    assert uses == results  # each result still names its call
    assert len(set(uses)) == len(ids)  # "llm_version:0" and "llm_version_0" stay two calls
    assert uses[3] == "ok_id-9" and tool_id("toolu_01ABC") == "toolu_01ABC"  # valid ids are left alone
