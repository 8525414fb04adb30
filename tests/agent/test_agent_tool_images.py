"""A tool's images: ToolResult.images -> the transcript (image parts after the result) -> each protocol.

Anthropic carries them inside the tool_result; Chat Completions tool messages carry text only, so the
images follow every tool message of the step in one user message. Also the request seam: the
notebook context joins the newest user message of the request, never the transcript.
"""

from __future__ import annotations

import json

import pytest

from codetether_magics.agent.loop import request_messages, run_prompt
from codetether_magics.agent.tools.base import Tool, ToolResult
from codetether_magics.notebook.redact import redacting
from codetether_magics.providers.anthropic import AnthropicProvider
from codetether_magics.providers.base import ModelRequest
from codetether_magics.providers.openai import OpenAIProvider
from codetether_magics.providers.registry import ProviderRegistry
from codetether_magics.session.session import Session
from codetether_magics.messages import ImageAttachment, ImagePart, Message, TextPart, ToolCallPart, ToolResultPart
from codetether_magics.testing import ScriptedModelServer, Turn
from tests.providers.test_providers_mapping import ANTHROPIC_DONE, OPENAI_DONE, capturing, run

URL = "data:image/png;base64,iVBORw0KGgo="
STEP = [
    Message.user("look"),
    Message(role="assistant", content=[ToolCallPart(id="c1", name="img", arguments="{}"),
                                       ToolCallPart(id="c2", name="txt", arguments="{}")]),
    Message(role="tool", content=[ToolResultPart(tool_call_id="c1", content=""),
                                  ImagePart(url=URL, mime_type="image/png")]),
    Message(role="tool", content=[ToolResultPart(tool_call_id="c2", content="plain")]),
    Message(role="assistant", content=[TextPart(text="seen")]),
]


async def test_openai_puts_a_tools_images_after_all_tool_messages_of_the_step():
    client, sent = capturing(OPENAI_DONE)
    await run(OpenAIProvider("openai", "k", "http://h/v1", http_client=client), ModelRequest(model="m", messages=STEP))
    wire = json.loads(sent[0].content)["messages"]
    assert [m["role"] for m in wire] == ["user", "assistant", "tool", "tool", "user", "assistant"]
    images = wire[4]["content"]
    assert images[0] == {"type": "text", "text": "The image output of the tool call above:"}
    assert images[1] == {"type": "image_url", "image_url": {"url": URL}}


async def test_openai_trailing_tool_images_are_sent_too():
    client, sent = capturing(OPENAI_DONE)
    await run(OpenAIProvider("openai", "k", "http://h/v1", http_client=client),
              ModelRequest(model="m", messages=STEP[:3]))
    wire = json.loads(sent[0].content)["messages"]
    assert [m["role"] for m in wire] == ["user", "assistant", "tool", "user"]


async def test_anthropic_nests_images_in_their_tool_result_without_empty_text():
    client, sent = capturing(ANTHROPIC_DONE)
    await run(AnthropicProvider("anthropic", "k", "http://h", http_client=client),
              ModelRequest(model="c", messages=STEP))
    wire = json.loads(sent[0].content)["messages"]
    assert [m["role"] for m in wire] == ["user", "assistant", "user", "assistant"]
    first, second = wire[2]["content"]
    assert first == {"type": "tool_result", "tool_use_id": "c1", "content": [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}}]}
    assert second == {"type": "tool_result", "tool_use_id": "c2", "content": "plain"}


def test_request_messages_copies_and_leaves_the_transcript_alone():
    transcript = [Message.user("first"), Message.assistant("a"), Message.user("second"),
                  Message(role="tool", content=[ToolResultPart(tool_call_id="x", content="r")])]
    wire = request_messages(transcript, "CONTEXT")
    assert wire[2].content[0].text == "CONTEXT\n\n" and wire[2].content[1].text == "second"
    assert transcript[2].content == [TextPart(text="second")] and wire[0] is transcript[0]
    assert request_messages(transcript, "") == transcript


def test_redacting_keeps_a_tools_images(monkeypatch):
    monkeypatch.setenv("SOME_API_KEY", "secret-value-42")

    async def handler(arguments):
        return ToolResult("key secret-value-42", images=[ImageAttachment(data_url=URL)])

    import asyncio

    result = asyncio.run(redacting(Tool("t", "d", {"type": "object"}, handler, read_only=True)).handler({}))
    assert result.output == "key [redacted]" and result.images == [ImageAttachment(data_url=URL)]


@pytest.mark.parametrize("protocol", ["openai", "anthropic"])
async def test_the_loop_carries_tool_images_and_context_to_the_server(protocol, tmp_path, monkeypatch):
    monkeypatch.setenv("CODETETHER_DISABLE_ENV_FALLBACK", "1")

    async def picture(arguments):
        return ToolResult("a picture", images=[ImageAttachment(data_url=URL, mime_type="image/png")])

    tool = Tool("picture", "shows a picture", {"type": "object"}, picture, read_only=True)
    turns = [Turn.tool_call("picture", {}, expect_user_text="CTX-1"),
             Turn.text("I see it.", expect_image=True, expect_tool_result="a picture")]
    with ScriptedModelServer(turns) as server:
        registry = ProviderRegistry()
        if protocol == "openai":
            registry.register(OpenAIProvider("openai", "k", server.openai_base_url))
        else:
            registry.register(AnthropicProvider("anthropic", "k", server.anthropic_base_url))
        session = await Session.new(tmp_path)
        calls = []
        result = await run_prompt(session, "hello", [], None, registry, model=f"{protocol}/m", tools=[tool],
                                  title_model_call=False, save=False,
                                  notebook_context=lambda: calls.append(1) or "CTX-1 notebook")
        assert server.errors == []
        second = json.dumps(server.requests[1].body)
    assert second.count("CTX-1 notebook") == 1  # every step's request carries it, once
    assert result.text == "I see it." and calls == [1]  # built once per turn, sent with every step
    assert [p.type for p in session.messages[2].content] == ["tool_result", "image"]
    assert "CTX-1" not in session.model_dump_json()
