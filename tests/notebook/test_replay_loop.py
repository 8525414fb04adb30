"""Replaying a recorded turn through the real agent loop: same answer, tools re-run, no network.

A recorded call that changes things re-runs only when the approver of now says yes; the
recording's own approvals never count (the contract changed: tests that expect a tool to
run again pass an approver).
"""

from __future__ import annotations

import socket

import httpx
import pytest

from codetether_magics.agent.tools.base import Tool, ToolResult
from codetether_magics.errors import ReplayError
from codetether_magics.messages import Message, TextPart, ToolCallPart, ToolResultPart, ToolUse, Usage
from codetether_magics.notebook.replay import find_recorded_turn, recorded_statuses, replay_turn
from codetether_magics.session.session import Session

REFUSED = "The user did not approve this `python` call, so it was not run."


def _call(call_id: str, code: str, text: str = "") -> Message:
    parts = [TextPart(text=text)] if text else []
    return Message(role="assistant", content=[*parts, ToolCallPart(id=call_id, name="python",
                                                                   arguments=f'{{"code": "{code}"}}')])


def _result(call_id: str, content: str) -> Message:
    return Message(role="tool", content=[ToolResultPart(tool_call_id=call_id, content=content)])


def _recorded_session() -> Session:
    session = Session(
        title="Squares",
        messages=[
            Message.user("make squares"),
            _call("call_1", "squares = 385", text="Computing."),
            _result("call_1", "385"),
            Message.assistant("Their sum is **385**."),
            Message.user("delete everything"),
            _call("call_2", "reset()"),
            _result("call_2", REFUSED),
            Message.assistant("I did not delete anything."),
            Message.user("make squares"),
            Message.assistant("Again: 385."),
        ],
        tool_uses=[
            ToolUse(id="call_1", name="python", input={"code": "squares = 385"}, output="385", status="succeeded"),
            ToolUse(id="call_2", name="python", input={"code": "reset()"}, output=REFUSED, success=False,
                    status="denied"),
        ],
        usage=Usage(prompt_tokens=100, completion_tokens=20, total_tokens=120),
    )
    session.metadata.model = "openai/gpt-4o"
    return session


class _FakePython:
    """A `python` tool that changes things (so it needs approval) and records what it ran."""

    def __init__(self) -> None:
        self.ran: list[str] = []

    def tool(self) -> Tool:
        async def handler(arguments: dict) -> ToolResult:
            self.ran.append(arguments["code"])
            return ToolResult("385")

        return Tool("python", "run python", {"type": "object", "properties": {"code": {"type": "string"}}},
                    handler, read_only=False)


async def _approve(request) -> bool:
    return True


@pytest.fixture
def no_network(monkeypatch):
    """Any socket connect or HTTP client creation fails the test."""

    def refuse_connect(self, address):
        raise AssertionError(f"replay tried to connect to {address}")

    def refuse_client(self, *args, **kwargs):
        raise AssertionError("replay created an HTTP client")

    monkeypatch.setattr(socket.socket, "connect", refuse_connect)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse_connect)
    monkeypatch.setattr(httpx.AsyncClient, "__init__", refuse_client)


async def test_replay_streams_the_recorded_answer_and_reruns_tools(no_network, isolated_environment):
    session = _recorded_session()
    before = session.model_dump_json()
    python = _FakePython()
    events: list = []

    result = await replay_turn(session, "make squares", [], events.append, tools=[python.tool()],
                               approver=_approve)

    assert result.text == "Computing.\n\nTheir sum is **385**."
    recorded = find_recorded_turn(session, "make squares").assistant_messages
    assert result.text == "\n\n".join(m.text for m in recorded)  # every recorded step's text, as recorded
    assert result.session_id == session.id
    assert python.ran == ["squares = 385"]  # the tool really ran again
    kinds = [event.type for event in events]
    assert kinds[-1] == "done"
    assert kinds.count("text_chunk") >= 2  # the answer streamed, not one block
    assert "tool_call_start" in kinds and "tool_call_complete" in kinds
    complete = next(e for e in events if e.type == "tool_call_complete")
    assert (complete.output, complete.success) == ("385", True)
    assert session.model_dump_json() == before  # the session itself is untouched
    assert not isolated_environment.exists() or not any(isolated_environment.rglob("*.json"))


async def test_a_recorded_refusal_stays_a_refusal(no_network):
    """Even with an approver that says yes to everything, a call the recording shows as denied is not run."""
    python = _FakePython()
    events: list = []
    result = await replay_turn(_recorded_session(), "delete everything", [], events.append,
                               tools=[python.tool()], approver=_approve)
    assert result.text == "I did not delete anything."
    assert python.ran == []
    complete = next(e for e in events if e.type == "tool_call_complete")
    assert (complete.success, complete.status) == (False, "denied")
    assert "refused when this turn was recorded" in complete.output


async def test_without_approval_now_a_recorded_call_is_not_run_and_says_how_to_allow(no_network):
    """The recording says the call succeeded: that approves nothing. No approver: refused, and the
    error names the flag that allows it; the recorded answer is still streamed first."""
    python = _FakePython()
    events: list = []
    with pytest.raises(ReplayError) as info:
        await replay_turn(_recorded_session(), "make squares", [], events.append, tools=[python.tool()])
    assert python.ran == []
    assert "re-run the cell with `--allow python`" in str(info.value)
    assert "auto_approve" in str(info.value)
    complete = next(e for e in events if e.type == "tool_call_complete")
    assert (complete.success, complete.status) == (False, "denied")
    assert [e.text for e in events if e.type == "text_complete"][-1].endswith("Their sum is **385**.")

    async def deny(request) -> bool:
        return False

    with pytest.raises(ReplayError, match="--allow python"):  # a user's Deny is a refusal too
        await replay_turn(_recorded_session(), "make squares", [], None, tools=[python.tool()], approver=deny)
    assert python.ran == []


async def test_the_second_run_of_a_prompt_replays_the_second_recording(no_network):
    result = await replay_turn(_recorded_session(), "make squares", [], None, occurrence=1, tools=[])
    assert result.text == "Again: 385."


async def test_no_recorded_turn_names_the_cell_and_how_to_record(no_network):
    session = _recorded_session()
    session.metadata.notebook = "analysis.ipynb"
    with pytest.raises(ReplayError) as info:
        await replay_turn(session, "make squares", [], None, occurrence=2, tools=[])
    message = str(info.value)
    assert "'make squares'" in message and "analysis.ipynb" in message
    assert "has 2 recorded answer(s)" in message and "already run that prompt 2 time(s)" in message
    assert "--live" in message and "OPENAI_API_KEY" in message

    with pytest.raises(ReplayError, match="'never asked'"):
        await replay_turn(session, "never asked", [], None, tools=[])


async def test_an_old_transcript_without_statuses_needs_approval_for_every_call(no_network):
    """Files written before statuses existed: an unknown outcome must be approved now, whatever
    the recorded text says (a refusal's wording is never parsed)."""
    session = _recorded_session()
    session.tool_uses = []
    turn = find_recorded_turn(session, "delete everything")
    assert recorded_statuses(session, turn) == {"call_2": None}
    python = _FakePython()
    with pytest.raises(ReplayError, match="--allow python"):
        await replay_turn(session, "delete everything", [], None, tools=[python.tool()])
    assert python.ran == []
    await replay_turn(session, "delete everything", [], None, tools=[python.tool()], approver=_approve)
    assert python.ran == ["reset()"]  # allowed now, by the user of now


def test_statuses_pair_with_their_own_turn_when_a_provider_reuses_call_ids():
    session = Session(
        messages=[Message.user("a"), _call("call_0", "x = 1"), _result("call_0", "ok"), Message.assistant("A"),
                  Message.user("b"), _call("call_0", "rm()"), _result("call_0", REFUSED), Message.assistant("B")],
        tool_uses=[ToolUse(id="call_0", name="python", status="succeeded"),
                   ToolUse(id="call_0", name="python", success=False, status="denied")],
    )
    assert recorded_statuses(session, find_recorded_turn(session, "a")) == {"call_0": "succeeded"}
    assert recorded_statuses(session, find_recorded_turn(session, "b")) == {"call_0": "denied"}
    session.tool_uses[1] = ToolUse(id="call_0", name="python", status="approved-by-the-attacker")
    assert recorded_statuses(session, find_recorded_turn(session, "b")) == {"call_0": None}


def _stopped_session() -> Session:
    """Recorded with --max-steps 1: one tool call, then the loop stopped before an answer."""
    session = Session(title="t", messages=[Message.user("go"), _call("call_9", "x = 1", text="Working."),
                                           _result("call_9", "385")])
    session.metadata.model = "openai/gpt-4o"
    return session


async def test_a_turn_stopped_by_max_steps_replays_with_the_same_limit(no_network):
    python = _FakePython()
    result = await replay_turn(_stopped_session(), "go", [], None, tools=[python.tool()], approver=_approve,
                               max_steps=1)
    assert result.text.startswith("Working.\n\n[Stopped after 1 step (max_steps)")
    assert python.ran == ["x = 1"]


async def test_asking_for_more_answers_than_recorded_is_a_clear_replay_error(no_network):
    with pytest.raises(ReplayError, match="has 1 model answer\\(s\\) but the replay asked for one more"):
        await replay_turn(_stopped_session(), "go", [], None, tools=[_FakePython().tool()], approver=_approve,
                          max_steps=5)


async def test_a_transcript_that_never_named_a_model_still_replays(no_network):
    session = Session(title="t", messages=[Message.user("q"), Message.assistant("a")])
    events: list = []
    result = await replay_turn(session, "q", [], events.append, tools=[])
    assert result.text == "a"
    assert session.metadata.model is None  # the caller's session is untouched
    assert [e.model for e in events if e.type == "usage_report"] == ["replay/recorded"]


async def test_replaying_an_untitled_first_turn_makes_no_title_call(no_network, monkeypatch):
    """A first turn's title request is no part of the recording: the replay never sends one."""
    from codetether_magics.notebook.replay import ReplayProvider

    requests: list = []
    recorded_stream = ReplayProvider.stream

    def stream(self, request):
        requests.append(request)
        return recorded_stream(self, request)

    monkeypatch.setattr(ReplayProvider, "stream", stream)
    session = Session(messages=[Message.user("q"), Message.assistant("a")])
    assert session.title is None
    result = await replay_turn(session, "q", [], None, tools=[])
    assert result.text == "a"
    assert [r.messages[-1].text for r in requests] == ["q"]  # one step, no title request after it
    assert session.title is None  # the caller's session is untouched
