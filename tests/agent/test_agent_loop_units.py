"""The agent loop with an in-test provider: event order, tools, approval, retries, cuts, limits, cancel.

The same behaviours run against the real loopback server in both wire protocols in
test_agent_loopback.py; these tests pin the details cheaply.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from codetether_magics.agent.loop import run_prompt
from codetether_magics.agent.title import TITLE_SYSTEM
from codetether_magics.agent.tools.base import Tool, ToolResult
from codetether_magics.errors import ProviderConnectionError, ProviderHTTPError, ProviderStreamError
from codetether_magics.events import SessionEventAdapter
from codetether_magics.messages import ImageAttachment, ImagePart, ToolResultPart
from codetether_magics.providers.base import Finish, TextDelta, ThinkingDelta, ToolCallDelta, UsageDelta
from codetether_magics.session.session import Session
from codetether_magics.testing import FakeRegistry, ScriptedProvider

# -- scripts for the shared ScriptedProvider -----------------------------------------------


@pytest.fixture(autouse=True)
def tools_work_in_tmp_path(tmp_path, monkeypatch):
    """The built-in tools work in the cwd, never in a transcript's directory: run each test in tmp_path."""
    monkeypatch.chdir(tmp_path)


def text(*chunks: str, usage=(7, 3)) -> list[Any]:
    return [*(TextDelta(c) for c in chunks), UsageDelta(*usage), Finish("stop")]


def tool_call(name: str, args: dict, call_id: str = "call_1", preamble: str = "") -> list[Any]:
    raw = json.dumps(args)
    head = [TextDelta(preamble)] if preamble else []
    return [*head, ToolCallDelta(0, id=call_id, name=name), ToolCallDelta(0, arguments=raw[:5]),
            ToolCallDelta(0, arguments=raw[5:]), UsageDelta(5, 2), Finish("tool_calls")]


def new_session(directory: Path, title: str | None = "existing") -> Session:
    session = Session()
    session.metadata.directory = str(directory)
    session.title = title  # most tests are not about the first turn's title call
    return session


async def run(session, provider, **options):
    events: list[Any] = []
    options.setdefault("retry_delays", (0.0, 0.0, 0.0))
    result = await run_prompt(session, options.pop("message", "hello"), options.pop("images", []),
                              events.append, FakeRegistry(provider), **options)
    return result, events


def types(events) -> list[str]:
    return [e.type for e in events]


# -- a plain streamed answer --------------------------------------------------------


async def test_streamed_text_answer_events_in_order(tmp_path):
    session = new_session(tmp_path)
    provider = ScriptedProvider([ThinkingDelta("Let me think"), ThinkingDelta("."), *text("Hel", "lo ", "there")])
    result, events = await run(session, provider)
    assert types(events) == ["thinking", "thinking", "thinking", "thinking_complete", "text_chunk", "text_chunk",
                             "text_chunk", "text_complete", "usage_report", "done"]
    assert [e.text for e in events if e.type == "text_chunk"] == ["Hel", "Hello ", "Hello there"]
    assert events[2].text == "Let me think." and events[3].text == "Let me think."
    assert events[-2].model == "fake/model-1" and events[-2].prompt_tokens == 7
    assert result.text == "Hello there" and result.session_id == session.id
    assert [m.role for m in session.messages] == ["user", "assistant"]
    assert session.messages[1].content[0].type == "thinking"
    assert session.usage.total_tokens == 10
    assert session.metadata.model == "fake/model-1"
    for event in events:  # every event survives its JSON round trip
        assert SessionEventAdapter.validate_json(SessionEventAdapter.dump_json(event)) == event


async def test_events_into_a_queue_and_an_async_callable(tmp_path):
    queue: asyncio.Queue = asyncio.Queue()
    await run_prompt(new_session(tmp_path), "hi", [], queue, FakeRegistry(ScriptedProvider(text("a"))))
    got = [queue.get_nowait().type for _ in range(queue.qsize())]
    assert got[-1] == "done" and "text_chunk" in got

    seen = []

    async def sink(event):
        await asyncio.sleep(0)
        seen.append(event.type)

    await run_prompt(new_session(tmp_path), "hi", [], sink, FakeRegistry(ScriptedProvider(text("b"))))
    assert seen[-1] == "done"


async def test_bad_events_target_is_refused(tmp_path):
    with pytest.raises(TypeError, match="events must be None, an asyncio.Queue or a callable"):
        await run_prompt(new_session(tmp_path), "hi", [], 42, FakeRegistry(ScriptedProvider()))


async def test_model_choice_order_and_images(tmp_path):
    session = new_session(tmp_path)
    session.metadata.model = "fake/from-session"
    provider = ScriptedProvider(text("ok"), text("ok"))
    image = ImageAttachment(data_url="data:image/png;base64,iVBORw0KGgo=")
    await run(session, provider, images=[image])
    assert provider.requests[0].model == "from-session"
    user = provider.requests[0].messages[-1]
    assert isinstance(user.content[1], ImagePart) and user.content[1].mime_type == "image/png"
    await run(session, provider, model="fake/explicit")
    assert provider.requests[1].model == "explicit" and session.metadata.model == "fake/explicit"
    with pytest.raises(ValueError, match="base64 data: URL"):
        await run(session, provider, images=[ImageAttachment(data_url="http://x/y.png")])


# -- tools ---------------------------------------------------------------------------


async def test_tool_round_trip_with_preamble(tmp_path):
    (tmp_path / "data.csv").write_text("a,b\n1,2\n")
    session = new_session(tmp_path)
    provider = ScriptedProvider(tool_call("read", {"path": "data.csv"}, preamble="Reading it."), text("Two columns."))
    result, events = await run(session, provider)
    order = types(events)
    # the text beside the tool call is completed before the tool runs (the step's preamble)
    assert order.index("text_complete") < order.index("tool_call_start") < order.index("tool_call_complete")
    assert order[-1] == "done"
    second = provider.requests[1].messages
    assert second[-1].role == "tool" and "a,b" in second[-1].content[0].content
    assert result.text == "Reading it.\n\nTwo columns."
    chunks = [e.text for e in events if e.type == "text_chunk"]
    assert chunks[-1] == "Reading it.\n\nTwo columns."  # cumulative over the whole turn
    use = session.tool_uses[0]
    assert (use.id, use.name, use.input, use.success) == ("call_1", "read", {"path": "data.csv"}, True)
    complete = next(e for e in events if e.type == "tool_call_complete")
    assert complete.success and complete.duration_ms >= 0 and "a,b" in complete.output
    assert session.usage.prompt_tokens == 12


async def test_unknown_tool_and_invalid_arguments_go_back_to_the_model(tmp_path):
    broken = [ToolCallDelta(0, id="c2", name="read", arguments='{"path": "x'), Finish("length")]
    provider = ScriptedProvider(tool_call("nope", {}), broken, text("sorry"))
    session = new_session(tmp_path)
    await run(session, provider)
    results = [m.content[0].content for m in session.messages if m.role == "tool"]
    assert results[0].startswith("Error: Unknown tool 'nope'. Available tools: bash, edit, glob")
    assert "not valid JSON" in results[1]
    assert [u.success for u in session.tool_uses] == [False, False]


async def test_tool_output_is_capped_for_the_model(tmp_path):
    # `read` keeps its own answers under the cap now (it reads at most what it returns): bash prints 20 KB.
    session = new_session(tmp_path)
    provider = ScriptedProvider(tool_call("bash", {"command": "head -c 20000 /dev/zero | tr '\\0' x"}), text("ok"))
    _, events = await run(session, provider, approver=lambda request: True)
    sent = provider.requests[1].messages[-1].content[0].content
    assert len(sent.encode()) <= 4096 and "bytes in all" in sent
    event_output = next(e for e in events if e.type == "tool_call_complete").output
    assert 4096 < len(event_output.encode()) <= 8192  # events carry up to 8 KiB


async def test_write_without_approver_is_refused(tmp_path):
    session = new_session(tmp_path)
    provider = ScriptedProvider(tool_call("write", {"path": "a.txt", "content": "hi"}), text("ok"))
    _, events = await run(session, provider)
    assert not (tmp_path / "a.txt").exists()
    assert types(events).count("approval_request") == 1
    refusal = provider.requests[1].messages[-1].content[0].content
    assert refusal.startswith("The user did not approve this `write` call, so it was not run.")
    assert session.tool_uses[0].success is False


@pytest.mark.parametrize("answer", [True, False])
async def test_approver_decides(tmp_path, answer):
    asked = []

    async def approver(request):
        asked.append((request.tool_call_id, request.name, request.arguments))
        return answer

    session = new_session(tmp_path)
    provider = ScriptedProvider(tool_call("write", {"path": "a.txt", "content": "hi"}), text("ok"))
    _, events = await run(session, provider, approver=approver)
    assert asked == [("call_1", "write", {"path": "a.txt", "content": "hi"})]
    assert (tmp_path / "a.txt").exists() is answer
    order = types(events)
    assert order.index("tool_call_start") < order.index("approval_request") < order.index("tool_call_complete")


async def test_read_only_tools_do_not_ask(tmp_path):
    async def approver(request):
        raise AssertionError("read-only tools must not ask")

    provider = ScriptedProvider(tool_call("list", {}), text("ok"))
    _, events = await run(new_session(tmp_path), provider, approver=approver)
    assert "approval_request" not in types(events)


async def test_heartbeat_while_a_tool_runs(tmp_path):
    async def slow(args):
        await asyncio.sleep(0.3)
        return ToolResult("finished")

    tool = Tool("slow", "takes a while", {"type": "object", "properties": {}}, slow, read_only=True)
    provider = ScriptedProvider(tool_call("slow", {}), text("ok"))
    _, events = await run(new_session(tmp_path), provider, tools=[tool], heartbeat_interval=0.05)
    beats = [e for e in events if e.type == "tool_heartbeat"]
    assert len(beats) >= 3 and all(b.name == "slow" and b.tool_call_id == "call_1" for b in beats)
    assert [b.elapsed_secs for b in beats] == sorted(b.elapsed_secs for b in beats)
    order = types(events)
    assert order.index("tool_call_start") < order.index("tool_heartbeat") < order.index("tool_call_complete")


async def test_max_steps_reached(tmp_path):
    session = new_session(tmp_path)
    provider = ScriptedProvider(*(tool_call("list", {}, call_id=f"c{i}") for i in range(3)))
    result, events = await run(session, provider, max_steps=2)
    assert len(provider.requests) == 2  # never a third model call
    assert "Stopped after 2 steps (max_steps)" in result.text
    assert types(events)[-1] == "done"
    assert [m.role for m in session.messages] == ["user", "assistant", "tool", "assistant", "tool"]


async def test_max_steps_from_the_session_and_validation(tmp_path):
    session = new_session(tmp_path)
    session.max_steps = 1
    provider = ScriptedProvider(tool_call("list", {}))
    result, _ = await run(session, provider)
    assert "Stopped after 1 step " in result.text
    with pytest.raises(ValueError, match="max_steps must be a whole number >= 1"):
        await run(session, provider, max_steps=0)


# -- retries, cuts, errors -------------------------------------------------------------


async def test_retry_after_is_honoured_and_delays_follow_the_plan(tmp_path):
    waits: list[float] = []

    async def sleep(seconds):
        waits.append(seconds)

    provider = ScriptedProvider([ProviderHTTPError(429, "slow down", retry_after=7.0)],
                            [ProviderHTTPError(503, "busy")], [ProviderConnectionError("reset")], text("fine"))
    result, events = await run(new_session(tmp_path), provider, retry_delays=(1.0, 2.0, 4.0), sleep=sleep)
    assert waits == [7.0, 2.0, 4.0]
    retries = [e for e in events if e.type == "stream_retry"]
    assert [(r.attempt, r.max_restarts) for r in retries] == [(1, 3), (2, 3), (3, 3)]
    assert "slow down" in retries[0].reason
    assert result.text == "fine"


async def test_retry_after_is_clamped_to_zero_and_sixty_seconds(tmp_path):
    waits: list[float] = []

    async def sleep(seconds):
        waits.append(seconds)

    provider = ScriptedProvider([ProviderHTTPError(429, "wait an hour", retry_after=3600.0)],
                            [ProviderHTTPError(503, "clock skew", retry_after=-5.0)], text("fine"))
    result, _ = await run(new_session(tmp_path), provider, retry_delays=(1.0, 2.0, 4.0), sleep=sleep)
    assert waits == [60.0, 0.0] and result.text == "fine"


async def test_retries_give_up_after_three(tmp_path):
    async def sleep(seconds):
        pass

    provider = ScriptedProvider(*([ProviderHTTPError(500, "boom")] for _ in range(4)))
    events: list[Any] = []
    session = new_session(tmp_path)
    with pytest.raises(ProviderHTTPError, match="boom"):
        await run_prompt(session, "hi", [], events.append, FakeRegistry(provider), sleep=sleep)
    assert len(provider.requests) == 4
    assert types(events).count("stream_retry") == 3 and events[-1].type == "error"
    assert "boom" in events[-1].message
    assert session.messages[-1].role == "user"  # the prompt is kept


async def test_client_errors_are_not_retried(tmp_path):
    provider = ScriptedProvider([ProviderHTTPError(400, "bad request: unknown model")])
    with pytest.raises(ProviderHTTPError, match="unknown model"):
        await run(new_session(tmp_path), provider)
    assert len(provider.requests) == 1


async def test_stream_cut_mid_answer_keeps_what_arrived(tmp_path):
    session = new_session(tmp_path)
    cut = ProviderStreamError("connection closed mid-stream", partial=True)
    provider = ScriptedProvider([TextDelta("The answer is "), TextDelta("4"),
                             ToolCallDelta(0, id="c9", name="list", arguments="{"), cut])
    result, events = await run(session, provider)
    assert result.text.startswith("The answer is 4") and "cut off" in result.text
    order = types(events)
    assert order[-1] == "done" and "error" in order
    assert "cut off" in next(e for e in events if e.type == "error").message
    kept = session.messages[-1]
    assert kept.role == "assistant" and kept.text.startswith("The answer is 4") and not kept.tool_calls
    assert len(provider.requests) == 1  # nothing retried after data arrived


async def test_first_turn_gets_a_model_title(tmp_path):
    session = new_session(tmp_path, title=None)
    provider = ScriptedProvider(text("Hi!"), [TextDelta('"Greeting the agent."\nmore'), Finish("stop")])
    result, events = await run(session, provider, message="  hello   agent  ")
    assert session.title == "Greeting the agent"
    title_request = provider.requests[-1]
    assert title_request.system == TITLE_SYSTEM and title_request.tools == []
    assert title_request.messages[-1].text == "  hello   agent  "
    assert result.text == "Hi!" and types(events)[-1] == "done"


def test_a_long_model_title_is_cut_like_the_heuristic_one():
    from codetether_magics.agent.title import clean_title

    raw = "`Investigating why the residual plot of the regression fans out.`\nsecond line"
    assert clean_title(raw) == "Investigating why the residual plot of the regr..."
    assert len(clean_title(raw)) == 47 + 3 and clean_title('""') == ""


async def test_title_falls_back_to_the_heuristic(tmp_path):
    session = new_session(tmp_path, title=None)
    provider = ScriptedProvider(text("Hi!"), [ProviderHTTPError(500, "no title for you")])
    await run(session, provider, message="Why does the residual plot fan out?")
    assert session.title == "Why does the residual plot fan out?"
    skipped = new_session(tmp_path, title=None)
    provider = ScriptedProvider(text("Hi!"))
    await run(skipped, provider, message="short one", title_model_call=False)
    assert len(provider.requests) == 1 and skipped.title == "short one"


# -- cancellation ---------------------------------------------------------------------


async def test_cancel_mid_stream_keeps_the_partial_answer(tmp_path):
    session = new_session(tmp_path)
    provider = ScriptedProvider([TextDelta("partial "), TextDelta("answer"), 30.0, *text("never")])
    queue: asyncio.Queue = asyncio.Queue()
    task = asyncio.ensure_future(run_prompt(session, "hi", [], queue, FakeRegistry(provider)))
    while True:
        event = await queue.get()
        if event.type == "text_chunk" and event.text == "partial answer":
            break
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    last = session.messages[-1]
    assert last.role == "assistant" and last.text.startswith("partial answer") and "interrupted" in last.text


async def test_cancel_during_a_tool_records_an_interrupted_result(tmp_path):
    started = asyncio.Event()

    async def forever(args):
        started.set()
        await asyncio.sleep(30)

    tool = Tool("forever", "never ends", {"type": "object", "properties": {}}, forever, read_only=True)
    session = new_session(tmp_path)
    provider = ScriptedProvider(tool_call("forever", {}))
    task = asyncio.ensure_future(run_prompt(session, "hi", [], None, FakeRegistry(provider), tools=[tool]))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    result = session.messages[-1].content[0]
    assert isinstance(result, ToolResultPart) and "interrupted" in result.content
    assert session.messages[-2].tool_calls[0].id == result.tool_call_id


# -- bus and saves --------------------------------------------------------------------


async def test_bus_gets_thinking_tool_request_response_and_assistant(tmp_path):
    from codetether_magics.session.bus import AgentBus

    bus = AgentBus()
    seen = []
    bus.subscribe(seen.append, "agent.build.")
    session = new_session(tmp_path).with_bus(bus)
    provider = ScriptedProvider([ThinkingDelta("hmm"), *tool_call("list", {})], text("done"))
    await run(session, provider)
    topics = [envelope.topic for envelope in seen]
    assert topics == ["agent.build.user", "agent.build.assistant", "agent.build.thinking",
                      "agent.build.tool.request", "agent.build.tool.response", "agent.build.assistant"]
    request = seen[3].message
    assert request["tool_name"] == "list" and request["request_id"] == "call_1"


async def test_a_failing_bus_subscriber_does_not_stop_the_turn(tmp_path, caplog):
    from codetether_magics.session.bus import AgentBus

    def broken(envelope):
        raise RuntimeError("subscriber bug")

    bus = AgentBus()
    bus.subscribe(broken, "agent.build.")
    session = new_session(tmp_path).with_bus(bus)
    provider = ScriptedProvider([ThinkingDelta("hmm"), *tool_call("list", {})], text("done"))
    result, events = await run(session, provider)
    assert result.text == "done" and types(events)[-1] == "done"
    assert session.tool_uses[0].success is True
    failed = [r.getMessage() for r in caplog.records if r.name == "codetether_magics.session.bus"]
    assert len(failed) == 6  # user, assistant, thinking, tool request and response, assistant: each logged


class CountingSession(Session):
    async def save(self, *args, **kwargs):
        self.__dict__.setdefault("_saved_lengths", []).append(len(self.messages))
        return await super().save(*args, **kwargs)


async def test_saved_once_per_step_and_loadable(tmp_path):
    session = CountingSession()
    session.metadata.directory = str(tmp_path)
    session.title = "t"
    provider = ScriptedProvider(tool_call("list", {}), text("done"))
    await run(session, provider)
    # user message, step 1 (assistant + its tool result), step 2: no second save of the same state
    assert session.__dict__["_saved_lengths"] == [1, 3, 4]
    loaded = await Session.load(session.id)
    assert [m.role for m in loaded.messages] == ["user", "assistant", "tool", "assistant"]
    assert loaded.tool_uses[0].name == "list" and loaded.usage.total_tokens == session.usage.total_tokens


async def test_first_turn_saves_the_model_title_once_it_arrives(tmp_path):
    session = CountingSession()
    session.metadata.directory = str(tmp_path)
    provider = ScriptedProvider(text("Hi!"), [TextDelta("Greeting"), UsageDelta(3, 1), Finish("stop")])
    await run(session, provider, message="hello agent")
    assert session.__dict__["_saved_lengths"] == [1, 2, 2]  # user message, the step, the title
    loaded = await Session.load(session.id)
    assert loaded.title == "Greeting" and loaded.usage.total_tokens == 10 + 4


async def test_save_false_writes_nothing(tmp_path, isolated_environment):
    session = new_session(tmp_path)
    await run(session, ScriptedProvider(text("x")), save=False)
    assert not list(isolated_environment.glob("**/*.json"))
    await run(session, ScriptedProvider(text("y")))  # the same turn with saving on does write
    assert [p.name for p in isolated_environment.glob("**/*.json") if p.stem == session.id] == [f"{session.id}.json"]


async def test_a_plain_function_approver_is_accepted(tmp_path):
    provider = ScriptedProvider(tool_call("write", {"path": "a.txt", "content": "hi"}), text("ok"))
    await run(new_session(tmp_path), provider, approver=lambda request: request.name == "write")
    assert (tmp_path / "a.txt").read_text() == "hi"


async def test_a_failing_save_on_the_way_out_does_not_hide_the_first_error(tmp_path, caplog):
    from codetether_magics.errors import SessionConflictError

    class FlakySession(Session):
        async def save(self, *args, **kwargs):
            calls = self.__dict__.setdefault("_calls", [])
            calls.append(1)
            if len(calls) > 1:
                raise SessionConflictError("someone else saved this session")

    session = FlakySession()
    session.metadata.directory = str(tmp_path)
    session.title = "t"
    with pytest.raises(ProviderHTTPError, match="bad request"):
        await run(session, ScriptedProvider([ProviderHTTPError(400, "bad request")]))
    assert "someone else saved" in caplog.text
