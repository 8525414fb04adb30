"""How often a turn rewrites the transcript, and that the user message's save is not on the first token's path.

Every write is counted at ``storage.write_atomic`` (the one place session files are written),
against the scripted loopback server with the real OpenAI provider.
"""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from codetether_magics.agent.loop import run_prompt
from codetether_magics.errors import ProviderHTTPError, SessionError
from codetether_magics.providers.openai import OpenAIProvider
from codetether_magics.session import files
from codetether_magics.session.session import Session
from codetether_magics.testing import FakeRegistry, ScriptedModelServer, ToolCallStep, Turn

API_KEY = "sk-test-saves-0b7e41c9"


class Writes:
    """Wraps the storage write: counts writes, can slow or fail the first one, and checks none overlap."""

    def __init__(self, first_delay: float = 0.0, first_error: OSError | None = None) -> None:
        self.first_delay, self.first_error = first_delay, first_error
        self.paths: list[Path] = []
        self.ended: list[float] = []
        self.in_flight = 0
        self.overlapped = False
        self._lock = threading.Lock()

    def __call__(self, path: Path, data: Any, durable: bool = True) -> Any:
        with self._lock:
            self.in_flight += 1
            self.overlapped |= self.in_flight > 1
            first = not self.paths
            self.paths.append(path)
        try:
            if first and self.first_delay:
                time.sleep(self.first_delay)
            if first and self.first_error is not None:
                raise self.first_error
            return files.write_atomic(path, data, durable)
        finally:
            with self._lock:
                self.in_flight -= 1
                self.ended.append(time.perf_counter())


@pytest.fixture
def writes(monkeypatch):
    def install(**options: Any) -> Writes:
        spy = Writes(**options)
        monkeypatch.setattr("codetether_magics.session.storage.write_atomic", spy)
        return spy
    return install


def registry(server: ScriptedModelServer) -> FakeRegistry:
    return FakeRegistry(OpenAIProvider("openai", API_KEY, server.openai_base_url), "openai/gpt-4o")


def three_reads() -> Turn:
    return Turn([ToolCallStep("read", {"path": name}, f"call_{name[0]}") for name in ("a.txt", "b.txt", "c.txt")])


async def turn(session: Session, server: ScriptedModelServer, **options: Any) -> tuple[Any, list[tuple[float, Any]]]:
    events: list[tuple[float, Any]] = []
    result = await run_prompt(session, options.pop("message", "read the three files"), [],
                              lambda event: events.append((time.perf_counter(), event)), registry(server),
                              retry_delays=(0.0, 0.0, 0.0), **options)
    return result, events


def files_for(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # the built-in tools work in the cwd
    for name in ("a.txt", "b.txt", "c.txt"):
        (tmp_path / name).write_text(f"{name} holds {name[0] * 3}\n")


async def test_three_tool_calls_in_one_step_cost_one_write_per_step(tmp_path, writes, monkeypatch):
    files_for(tmp_path, monkeypatch)
    spy = writes()
    session = await Session.new(tmp_path)  # first turn: the heuristic title, then the model's one
    turns = [three_reads(), Turn.text("All three read.", expect_tool_result="ccc"), Turn.text("Reading files")]
    with ScriptedModelServer(turns) as server:
        result, events = await turn(session, server)
    assert server.errors == [] and result.text == "All three read."
    assert [e.type for _, e in events].count("tool_call_complete") == 3
    # the user message, step 1 (the model's calls and their 3 results), step 2, the new title
    assert len(spy.paths) == 4 and set(spy.paths) == {session.path}
    assert not spy.overlapped
    saved = orjson.loads(session.path.read_bytes())
    assert [m["role"] for m in saved["messages"]] == ["user", "assistant", "tool", "tool", "tool", "assistant"]
    assert saved["title"] == "Reading files" and len(saved["tool_uses"]) == 3


async def test_later_turns_write_once_for_the_message_and_once_per_step(tmp_path, writes, monkeypatch):
    files_for(tmp_path, monkeypatch)
    session = await Session.new(tmp_path)
    session.title = "known"
    spy = writes()
    with ScriptedModelServer([three_reads(), three_reads(), Turn.text("done")]) as server:
        await turn(session, server)
    assert len(spy.paths) == 1 + 3  # no title call on a titled session
    assert len((await Session.load(session.id)).messages) == 1 + 4 + 4 + 1


async def test_the_first_text_streams_while_the_user_message_is_still_being_saved(tmp_path, writes):
    spy = writes(first_delay=1.0)
    session = await Session.new(tmp_path)
    session.title = "slow disk"
    with ScriptedModelServer([Turn.text("Hello while the disk is busy")]) as server:
        started = time.perf_counter()
        result, events = await turn(session, server, message="hi")
    first_text = next(at for at, e in events if e.type == "text_chunk")
    assert first_text < spy.ended[0]  # the answer was streaming before the first save ended
    assert first_text - started < 0.9
    assert result.text == "Hello while the disk is busy"
    assert len(spy.paths) == 2 and not spy.overlapped  # the step's save waited for the first one
    assert [m.role for m in (await Session.load(session.id)).messages] == ["user", "assistant"]


async def test_a_failed_save_of_the_user_message_ends_the_turn_with_its_error(tmp_path, writes, monkeypatch):
    files_for(tmp_path, monkeypatch)
    spy = writes(first_error=OSError(28, "No space left on device"))
    session = await Session.new(tmp_path)
    session.title = "full disk"
    slow = Turn([ToolCallStep("write", {"path": "x.txt", "content": "never"}, "call_w")], chunk_delay=0.3)
    events: list[Any] = []
    with ScriptedModelServer([slow, Turn.text("unreachable")]) as server:
        with pytest.raises(SessionError, match="No space left on device"):
            await run_prompt(session, "write x", [], events.append, registry(server),
                             approver=lambda request: True, retry_delays=(0.0,))
    assert [e.type for e in events][-1] == "error" and "No space left" in events[-1].message
    assert "tool_call_start" not in [e.type for e in events]  # the call was stopped: nothing ran unsaved
    assert not (tmp_path / "x.txt").exists()
    assert len(spy.paths) == 2 and not spy.overlapped  # the way out saved again, after the failed write
    assert [m.role for m in (await Session.load(session.id)).messages] == ["user"]


async def test_a_failed_model_call_waits_for_the_user_message_save(tmp_path, writes):
    spy = writes(first_delay=0.5)
    session = await Session.new(tmp_path)
    session.title = "bad request"
    with ScriptedModelServer([Turn.error(400, "no such model")]) as server:
        with pytest.raises(ProviderHTTPError, match="no such model"):
            await turn(session, server)
        raised = time.perf_counter()
    assert spy.ended and spy.ended[0] < raised  # the error came out only once the save had ended
    assert len(spy.paths) == 1  # the way out found the same bytes on disk and wrote nothing
    assert [m.role for m in (await Session.load(session.id)).messages] == ["user"]


async def test_an_interrupt_during_the_first_save_leaves_a_consistent_file(tmp_path, writes):
    spy = writes(first_delay=0.6)
    session = await Session.new(tmp_path)
    session.title = "interrupted"
    events: list[Any] = []
    streaming = asyncio.Event()

    def on_event(event: Any) -> None:
        events.append(event)
        if event.type == "text_chunk":
            streaming.set()

    long = Turn.text(" ".join(f"word{i}" for i in range(400)), chunk_delay=0.01)
    with ScriptedModelServer([long]) as server:
        task = asyncio.ensure_future(run_prompt(session, "talk", [], on_event, registry(server)))
        await asyncio.wait_for(streaming.wait(), 5)
        task.cancel()  # as an interrupt of the cell does, while the first write is still going
        with pytest.raises(asyncio.CancelledError):
            await task
    assert not spy.overlapped and len(spy.paths) == 2  # the first write ended before the way-out save began
    saved = await Session.load(session.id)
    assert [m.role for m in saved.messages] == ["user", "assistant"]
    assert saved.messages[1].text.startswith("word0") and "[interrupted by the user]" in saved.messages[1].text


async def test_a_save_that_would_conflict_stops_the_turn_before_its_request(tmp_path, writes):
    from codetether_magics.errors import SessionConflictError

    session = await Session.new(tmp_path)
    session.title = "two writers"
    await session.save()
    other = await Session.load(session.id)
    other.add_message(_user("the other writer's turn"))
    await other.save()  # the file changed under ``session``
    spy = writes()
    with ScriptedModelServer([Turn.text("never asked")]) as server:
        with pytest.raises(SessionConflictError, match="changed by another writer"):
            await turn(session, server, message="mine")
        assert server.model_requests == []  # found by a stat, before any token was paid for
    assert spy.paths == []
    assert [m.text for m in (await Session.load(session.id)).messages] == ["the other writer's turn"]


def _user(text: str) -> Any:
    from codetether_magics.messages import Message

    return Message.user(text)
