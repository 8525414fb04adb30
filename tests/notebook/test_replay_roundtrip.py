"""Record a turn live against the loopback model server, save it, replay it offline: same output."""

from __future__ import annotations

import secrets
import socket

import httpx

from codetether_magics.agent.tools.base import Tool, ToolResult
from codetether_magics.notebook.replay import replay_turn
from codetether_magics.notebook.turn_usage import remember_usage
from codetether_magics.notebook.view import ViewState, record_bundle, text_bundle
from codetether_magics.providers.registry import ProviderRegistry
from codetether_magics.session.session import Session
from codetether_magics.testing import ScriptedModelServer, TextStep, ThinkingStep, ToolCallStep, Turn

PROMPT = "Add up 1..10 with python, then answer in Markdown."
ANSWER = "The sum is **55**.\n\n<b>raw html</b> stays inert, and `code` stays code."


def _python_tool(ran: list[str]) -> Tool:
    async def handler(arguments: dict) -> ToolResult:
        ran.append(arguments["code"])
        return ToolResult(str(sum(range(1, 11))))

    return Tool("python", "run python", {"type": "object", "properties": {"code": {"type": "string"}}},
                handler, read_only=False)


async def _approve(request) -> bool:
    return True


def _turns() -> list[Turn]:
    return [
        Turn([ThinkingStep("I should use the tool."), TextStep("Let me add them."),
              ToolCallStep("python", {"code": "sum(range(1, 11))"})], expect={"tools": ["python"]}),
        Turn.text(ANSWER, usage=(90, 20), expect_tool_result="55"),
        Turn.text("Adding numbers", expect_system="title"),
    ]


def _shown(events: list) -> list[tuple]:
    """What the view shows, without durations: completed texts and tool calls with their results."""
    shown = []
    for event in events:
        if event.type in ("text_complete", "thinking_complete"):
            shown.append((event.type, event.text))
        elif event.type == "tool_call_start":
            shown.append((event.type, event.name, event.arguments))
        elif event.type == "tool_call_complete":
            shown.append((event.type, event.name, event.output, event.success))
    return shown


async def test_a_live_turn_replays_to_the_identical_final_output(tmp_path, monkeypatch):
    key = "sk-test-" + secrets.token_hex(12)
    ran_live: list[str] = []
    live_events: list = []
    with ScriptedModelServer(_turns(), api_key=key) as server:
        registry = await ProviderRegistry.from_vault(
            environ={"OPENAI_API_KEY": key, "OPENAI_BASE_URL": server.openai_base_url})
        session = await Session.new(tmp_path)
        def on_live_event(event) -> None:  # as the cell does: each step's usage goes on its message
            live_events.append(event)
            if event.type == "usage_report":
                remember_usage(session, event)

        live = await session.prompt_with_events_and_images(
            PROMPT, [], on_live_event, registry, tools=[_python_tool(ran_live)], approver=_approve)
        assert server.errors == [] and server.remaining == 0
    transcript = tmp_path / "analysis.codetether.json"
    await session.save(transcript)
    saved = transcript.read_bytes()
    assert key.encode() not in saved

    # Offline from here on: any connection or HTTP client fails the test.
    monkeypatch.setattr(socket.socket, "connect", lambda self, address: (_ for _ in ()).throw(
        AssertionError(f"replay connected to {address}")))
    monkeypatch.setattr(httpx.AsyncClient, "__init__", lambda self, *a, **k: (_ for _ in ()).throw(
        AssertionError("replay created an HTTP client")))
    loaded = await Session.load_path(transcript)
    ran_replay: list[str] = []
    replay_events: list = []
    replayed = await replay_turn(loaded, PROMPT, [], replay_events.append, tools=[_python_tool(ran_replay)],
                                 approver=_approve)  # the recording's approval never counts: approve now

    assert text_bundle(replayed.text) == text_bundle(live.text)
    assert replayed.text == live.text == "Let me add them.\n\n" + ANSWER
    assert ran_replay == ran_live == ["sum(range(1, 11))"]
    assert _shown(replay_events) == _shown(live_events)
    assert transcript.read_bytes() == saved  # replay never writes

    # The cell's record of the replay is the live one, byte for byte: thinking, the python call as
    # code, the answer, and the footer with the recorded model and tokens.
    records = []
    for events in (live_events, replay_events):
        state = ViewState()
        for event in events:
            state.apply(event)
        state.end()
        records.append(record_bundle(state, {c.id: c.arguments for m in loaded.messages for c in m.tool_calls}))
    assert records[0] == records[1]
    assert "<summary>Thinking</summary>" in records[0]["text/markdown"]
    assert "```python\nsum(range(1, 11))\n```" in records[0]["text/markdown"]
    assert " · 110 tokens (90 in, 20 out)" in records[0]["text/plain"]
