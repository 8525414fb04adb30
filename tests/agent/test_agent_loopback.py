"""The agent loop end to end: real providers over HTTP against the scripted loopback server, both protocols.

Each test runs once per wire protocol (OpenAI Chat Completions and Anthropic Messages).
The server checks every request the way the real API would and records failures of each
turn's ``expect`` in ``server.errors``; a tool round trip is proven by the server finding
the tool's result in the NEXT request.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from codetether_magics.agent.loop import run_prompt
from codetether_magics.errors import ProviderHTTPError
from codetether_magics.events import SessionEventAdapter
from codetether_magics.providers.anthropic import AnthropicProvider
from codetether_magics.providers.openai import OpenAIProvider
from codetether_magics.session.session import Session
from codetether_magics.testing import FakeRegistry, ScriptedModelServer, Turn

API_KEY = "sk-test-loopback-4f9c2e7a1b"  # must never show up in events, files, logs or errors


@pytest.fixture(autouse=True)
def tools_work_in_tmp_path(tmp_path, monkeypatch):
    """The built-in tools work in the cwd, never in a transcript's directory: run each test in tmp_path."""
    monkeypatch.chdir(tmp_path)


@pytest.fixture(params=["openai", "anthropic"])
def protocol(request) -> str:
    return request.param


def registry_for(server: ScriptedModelServer, protocol: str) -> FakeRegistry:
    """A registry of one real provider talking to the loopback server."""
    if protocol == "openai":
        return FakeRegistry(OpenAIProvider("openai", API_KEY, server.openai_base_url), "openai/gpt-4o")
    provider = AnthropicProvider("anthropic", API_KEY, server.anthropic_base_url)
    return FakeRegistry(provider, "anthropic/claude-sonnet-4-20250514")


async def new_session(tmp_path: Path) -> Session:
    session = await Session.new(tmp_path)
    session.title = "loopback test"  # the first-turn title call has its own test
    return session


async def prompt(session, server, protocol, message="hello", **options) -> tuple[Any, list[Any]]:
    events: list[Any] = []
    options.setdefault("retry_delays", (0.0, 0.0, 0.0))
    images = options.pop("images", [])
    result = await run_prompt(session, message, images, events.append, registry_for(server, protocol), **options)
    return result, events


def types(events) -> list[str]:
    return [e.type for e in events]


async def test_streamed_text_answer(tmp_path, protocol):
    session = await new_session(tmp_path)
    with ScriptedModelServer([Turn.text("Hello there from the loopback", usage=(11, 4),
                                        expect_user_text="hello")]) as server:
        result, events = await prompt(session, server, protocol)
    assert server.errors == []
    order = types(events)
    assert order[0] == "thinking" and order[-1] == "done"
    assert order[-3:] == ["text_complete", "usage_report", "done"]
    chunks = [e.text for e in events if e.type == "text_chunk"]
    assert len(chunks) >= 5  # streamed word by word
    assert all(b.startswith(a) for a, b in zip(chunks, chunks[1:]))  # cumulative
    assert chunks[-1] == result.text == "Hello there from the loopback"
    usage = next(e for e in events if e.type == "usage_report")
    assert (usage.prompt_tokens, usage.completion_tokens) == (11, 4)
    assert usage.model == session.metadata.model
    assert session.usage.total_tokens == 15


async def test_tool_call_round_trip(tmp_path, protocol):
    (tmp_path / "data.csv").write_text("height,weight\n1.8,80\n")
    session = await new_session(tmp_path)
    turns = [
        Turn.tool_call("read", {"path": "data.csv"}, id="call_read_1", text="Let me read the file.",
                       expect_tools=("read", "write", "bash")),
        Turn.text("It has two columns: height and weight.", expect_tool_result="height,weight"),
    ]
    with ScriptedModelServer(turns) as server:
        result, events = await prompt(session, server, protocol, message="What columns does data.csv have?")
    assert server.errors == []  # includes: the second request carried the tool result
    assert len(server.model_requests) == 2
    assert result.text == "Let me read the file.\n\nIt has two columns: height and weight."
    order = types(events)
    assert order.index("text_complete") < order.index("tool_call_start") < order.index("tool_call_complete")
    start = next(e for e in events if e.type == "tool_call_start")
    assert (start.tool_call_id, start.name, json.loads(start.arguments)) == ("call_read_1", "read", {"path": "data.csv"})
    assert [m.role for m in session.messages] == ["user", "assistant", "tool", "assistant"]
    assert session.tool_uses[0].input == {"path": "data.csv"} and session.tool_uses[0].success


async def test_429_with_retry_after(tmp_path, protocol):
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    session = await new_session(tmp_path)
    with ScriptedModelServer([Turn.error(429, "Rate limit reached, slow down", retry_after=2),
                              Turn.text("Fine now")]) as server:
        result, events = await prompt(session, server, protocol, retry_delays=(0.01, 0.02, 0.04), sleep=sleep)
    assert waits == [2.0]  # the server's Retry-After, not the planned 0.01 s
    retry = next(e for e in events if e.type == "stream_retry")
    assert (retry.attempt, retry.max_restarts) == (1, 3) and "slow down" in retry.reason
    assert result.text == "Fine now" and len(server.model_requests) == 2


async def test_429_retry_after_really_waits(tmp_path, protocol):
    import time

    session = await new_session(tmp_path)
    with ScriptedModelServer([Turn.error(429, "slow down", retry_after=1), Turn.text("ok")]) as server:
        started = time.monotonic()
        result, _ = await prompt(session, server, protocol)
        assert time.monotonic() - started >= 1.0
    assert result.text == "ok"


async def test_500_is_retried_then_gives_up_with_the_providers_message(tmp_path, protocol, caplog):
    session = await new_session(tmp_path)
    with ScriptedModelServer([Turn.error(500, "upstream exploded"), Turn.text("recovered")]) as server:
        result, events = await prompt(session, server, protocol)
    assert result.text == "recovered" and types(events).count("stream_retry") == 1

    caplog.set_level(logging.DEBUG)
    events = []
    with ScriptedModelServer([Turn.error(500, "still exploding") for _ in range(4)]) as server:
        with pytest.raises(ProviderHTTPError, match="still exploding") as caught:
            await run_prompt(session, "again", [], events.append, registry_for(server, protocol),
                             retry_delays=(0.0, 0.0, 0.0))
    assert len(server.model_requests) == 4  # the first try and three retries
    assert caught.value.status_code == 500
    assert types(events).count("stream_retry") == 3 and events[-1].type == "error"
    assert "still exploding" in events[-1].message
    assert API_KEY not in str(caught.value) and API_KEY not in caplog.text
    assert API_KEY not in events[-1].message


async def test_connection_dropped_mid_stream_keeps_what_arrived(tmp_path, protocol):
    session = await new_session(tmp_path)
    with ScriptedModelServer([Turn.dropped("The residuals fan out because the variance grows")]) as server:
        result, events = await prompt(session, server, protocol)
    assert len(server.model_requests) == 1  # data had arrived: not retried
    assert result.text.startswith("The residuals fan out because the variance grows")
    assert "cut off" in result.text
    error = next(e for e in events if e.type == "error")
    assert "cut off" in error.message and types(events)[-1] == "done"
    saved = await Session.load(session.id)
    assert saved.messages[-1].role == "assistant"
    assert saved.messages[-1].text.startswith("The residuals fan out because the variance grows")


async def test_an_answer_cut_by_the_output_token_limit_says_so(tmp_path, protocol):
    session = await new_session(tmp_path)
    turn = Turn.text("The residuals fan out because", finish_reason="length", usage=(20, 7))
    with ScriptedModelServer([turn]) as server:
        result, events = await prompt(session, server, protocol)
    assert server.errors == [] and len(server.model_requests) == 1  # a length finish is not retried
    assert result.text.startswith("The residuals fan out because\n\n[answer cut off: the model hit its output "
                                  "token limit")
    completed = [e.text for e in events if e.type == "text_complete"]
    chunks = [e.text for e in events if e.type == "text_chunk"]
    assert completed == [result.text] and chunks[-1] == result.text  # the live view shows the note
    assert types(events)[-1] == "done" and "error" not in types(events)
    saved = await Session.load(session.id)  # and the transcript keeps it, so a replay shows it too
    assert saved.messages[-1].text == result.text


async def test_a_normal_finish_gets_no_note(tmp_path, protocol):
    session = await new_session(tmp_path)
    with ScriptedModelServer([Turn.text("Complete answer.", finish_reason="stop")]) as server:
        result, _ = await prompt(session, server, protocol)
    assert result.text == "Complete answer."


async def test_max_steps_reached(tmp_path, protocol):
    session = await new_session(tmp_path)
    turns = [Turn.tool_call("list", {}, id=f"call_{i}") for i in range(3)]
    with ScriptedModelServer(turns) as server:
        result, events = await prompt(session, server, protocol, max_steps=2)
    assert server.errors == [] and len(server.model_requests) == 2 and server.remaining == 1
    assert "Stopped after 2 steps (max_steps)" in result.text
    assert types(events).count("tool_call_complete") == 2 and types(events)[-1] == "done"


async def test_tool_refused_by_the_approver(tmp_path, protocol):
    asked = []

    async def approver(request) -> bool:
        asked.append(request.name)
        return False

    session = await new_session(tmp_path)
    turns = [Turn.tool_call("write", {"path": "out.txt", "content": "x"}, id="call_w"),
             Turn.text("Understood, I will not write it.", expect_tool_result="did not approve")]
    with ScriptedModelServer(turns) as server:
        result, events = await prompt(session, server, protocol, approver=approver)
    assert server.errors == [] and asked == ["write"]
    assert not (tmp_path / "out.txt").exists()
    assert types(events).count("approval_request") == 1
    complete = next(e for e in events if e.type == "tool_call_complete")
    assert complete.success is False and "did not approve" in complete.output
    assert result.text == "Understood, I will not write it."


async def test_first_turn_title_call_comes_last(tmp_path, protocol):
    session = await Session.new(tmp_path)
    turns = [Turn.text("Residuals grow with x."), Turn.text("Residual plot fan-out", expect_system="six words")]
    with ScriptedModelServer(turns) as server:
        result, events = await prompt(session, server, protocol, message="Why does the residual plot fan out?")
    assert server.errors == [] and len(server.model_requests) == 2
    assert session.title == "Residual plot fan-out" and result.text == "Residuals grow with x."
    assert types(events)[-1] == "done"


async def test_the_key_never_reaches_events_or_the_session_file(tmp_path, protocol):
    session = await new_session(tmp_path)
    turns = [Turn.tool_call("list", {}), Turn.text("done", usage=(3, 1))]
    with ScriptedModelServer(turns) as server:
        _, events = await prompt(session, server, protocol)
        assert all(r.headers.get("authorization", r.headers.get("x-api-key", "")).endswith(API_KEY)
                   for r in server.model_requests)  # the key was really sent...
    dumped = b"".join(SessionEventAdapter.dump_json(e) for e in events).decode()
    assert API_KEY not in dumped  # ...but never shown
    assert session.path is not None and API_KEY not in session.path.read_text()


async def test_connection_dropped_before_any_data_is_retried(tmp_path, protocol):
    session = await new_session(tmp_path)
    with ScriptedModelServer([Turn.dropped(), Turn.text("second try worked")]) as server:
        result, events = await prompt(session, server, protocol)
    assert result.text == "second try worked" and len(server.model_requests) == 2
    assert types(events).count("stream_retry") == 1


async def test_malformed_stream_is_an_error_not_a_retry(tmp_path, protocol):
    from codetether_magics.errors import ProviderStreamError

    session = await new_session(tmp_path)
    events: list[Any] = []
    with ScriptedModelServer([Turn.malformed()]) as server:
        with pytest.raises(ProviderStreamError):
            await run_prompt(session, "hi", [], events.append, registry_for(server, protocol))
    assert len(server.model_requests) == 1 and events[-1].type == "error"


async def test_two_tool_calls_in_one_response(tmp_path, protocol):
    from codetether_magics.testing import ToolCallStep

    (tmp_path / "a.txt").write_text("alpha\n")
    (tmp_path / "b.txt").write_text("beta\n")
    session = await new_session(tmp_path)
    both = Turn([ToolCallStep("read", {"path": "a.txt"}, "call_a"), ToolCallStep("read", {"path": "b.txt"}, "call_b")])
    turns = [both, Turn.text("alpha and beta", expect_tool_result="beta")]
    with ScriptedModelServer(turns) as server:
        result, events = await prompt(session, server, protocol)
    assert server.errors == [] and result.text == "alpha and beta"
    second = json.dumps(server.model_requests[1].body)
    assert "call_a" in second and "call_b" in second and "alpha" in second
    starts = [e.tool_call_id for e in events if e.type == "tool_call_start"]
    assert starts == ["call_a", "call_b"]


async def test_user_turn_with_an_image(tmp_path, protocol):
    from codetether_magics.messages import ImageAttachment

    png = ("data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJ"
           "RU5ErkJggg==")
    session = await new_session(tmp_path)
    with ScriptedModelServer([Turn.text("One pixel.", expect_image=True, expect_user_text="What is this?")]) as server:
        result, _ = await prompt(session, server, protocol, message="What is this?",
                                 images=[ImageAttachment(data_url=png)])
    assert server.errors == [] and result.text == "One pixel."
    assert png in json.dumps(server.model_requests[0].body) or png.split(",", 1)[1] in json.dumps(
        server.model_requests[0].body)
