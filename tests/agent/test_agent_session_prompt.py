"""``Session.prompt*`` with no registry given: the loop loads ``ProviderRegistry.from_vault()``,
which falls back to the environment (no Vault here), and talks to the loopback server."""

from __future__ import annotations

import asyncio

import pytest

from codetether_magics import ImageAttachment, Session
from codetether_magics.errors import NoProviderConfiguredError
from codetether_magics.testing import ScriptedModelServer, Turn

PNG = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="


async def test_prompt_uses_the_environment_registry_and_stores_the_model(tmp_path, monkeypatch):
    with ScriptedModelServer([Turn.text("Hi from the loopback"), Turn.text("Loopback greeting")]) as server:
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test-env-key")
        monkeypatch.setenv("OPENAI_BASE_URL", server.openai_base_url)
        session = await Session.new(tmp_path)
        result = await session.prompt("Say hi")
    assert server.errors == []
    assert result.text == "Hi from the loopback" and result.session_id == session.id
    assert session.metadata.model == "openai/gpt-4o"  # CodeTether's default model for openai
    assert server.model_requests[0].body["model"] == "gpt-4o"
    # the first turn's title request came last and named the session
    assert session.title == "Loopback greeting"
    assert (await Session.load(session.id)).title == "Loopback greeting"


async def test_prompt_with_events_and_images_over_anthropic(tmp_path, monkeypatch):
    turns = [Turn.text("A single pixel.", expect_image=True)]
    with ScriptedModelServer(turns) as server:
        monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-key")
        monkeypatch.setenv("ANTHROPIC_BASE_URL", server.anthropic_base_url)
        session = await Session.new(tmp_path)
        session.title = "pixel"
        queue: asyncio.Queue = asyncio.Queue()
        result = await session.prompt_with_events_and_images(
            "What is in this image?", [ImageAttachment(data_url=PNG)], queue)
    assert server.errors == []
    assert result.text == "A single pixel."
    got = [queue.get_nowait() for _ in range(queue.qsize())]
    assert got[-1].type == "done" and any(e.type == "text_chunk" for e in got)
    assert session.metadata.model.startswith("anthropic/")
    assert session.messages[0].content[1].type == "image"


async def test_no_provider_configured_is_a_clear_error_event_and_exception(tmp_path, monkeypatch):
    monkeypatch.setenv("CODETETHER_DISABLE_ENV_FALLBACK", "1")
    session = await Session.new(tmp_path)
    events = []
    with pytest.raises(NoProviderConfiguredError) as caught:
        await session.prompt_with_events("hi", events.append)
    assert events and events[-1].type == "error" and events[-1].message == str(caught.value)
    assert "OPENAI_API_KEY" in str(caught.value)  # says how to configure one


async def test_unknown_provider_in_the_model_names_the_available_ones(tmp_path):
    from codetether_magics.agent.loop import run_prompt
    from codetether_magics.errors import ProviderNotFoundError
    from codetether_magics.providers.registry import ProviderRegistry

    registry = ProviderRegistry.from_env({"OPENAI_API_KEY": "sk-test-x"})
    session = await Session.new(tmp_path)
    events = []
    with pytest.raises(ProviderNotFoundError, match="Provider 'nope' not found. Available: openai"):
        await run_prompt(session, "hi", [], events.append, registry, model="nope/model")
    assert [e.type for e in events] == ["error"] and session.messages == []  # nothing was sent or recorded
