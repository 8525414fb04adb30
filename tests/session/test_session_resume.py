"""Resuming: small sessions whole; large ones as a forked tail, the full file left as it was."""

from __future__ import annotations

import pytest

from codetether_magics.errors import InvalidSessionIdError, SessionNotFoundError
from codetether_magics.messages import Message, TextPart, ToolCallPart, ToolResultPart
from codetether_magics.session import resume
from codetether_magics.session.session import Session


async def saved_session(turns: int, title: str = "Long analysis") -> Session:
    session = await Session.new()
    session.title = title
    for i in range(turns):  # user, assistant calling a tool, the tool's result, the answer
        session.add_message(Message.user(f"question {i} " + "q" * 500))
        session.add_message(Message(role="assistant", content=[ToolCallPart(id=f"c{i}", name="python",
                                                                             arguments="{}")]))
        session.add_message(Message(role="tool", content=[ToolResultPart(tool_call_id=f"c{i}", content="42")]))
        session.add_message(Message(role="assistant", content=[TextPart(text=f"answer {i}")]))
    await session.save()
    return session


@pytest.fixture
def small_limits(monkeypatch):
    monkeypatch.setattr(resume, "WHOLE_BELOW_BYTES", 20_000)
    monkeypatch.setattr(resume, "RESUME_WINDOW", 6)


async def test_a_small_session_resumes_whole_under_its_own_id(small_limits):
    original = await saved_session(3)
    loaded = await Session.resume(original.id)
    assert loaded.dropped == 0 and loaded.session.id == original.id and loaded.session.title == "Long analysis"
    assert loaded.session.messages == original.messages and loaded.session.path == original.path


async def test_a_large_session_resumes_as_its_tail_under_a_new_id(small_limits):
    original = await saved_session(40)
    before = original.path.read_bytes()
    assert len(before) > 20_000
    loaded = await Session.resume(original.id)
    fork = loaded.session
    assert fork.id != original.id and fork.title == "Long analysis (continued)"
    assert fork.metadata.provenance.session_id == fork.id
    # the last 6 messages start with a tool result whose call was left out: it goes too
    assert [m.role for m in fork.messages] == ["assistant", "user", "assistant", "tool", "assistant"]
    assert fork.messages == original.messages[-5:]
    assert loaded.dropped == 160 - 5  # (no tool uses recorded in this session)
    await fork.save()  # the fork is saved under its own id: the full file is untouched
    assert fork.path != original.path and original.path.read_bytes() == before
    assert len((await Session.load(original.id)).messages) == 160


async def test_resume_path_of_a_large_file_forks_too(small_limits):
    original = await saved_session(40)
    loaded = await Session.resume_path(original.path)
    assert loaded.dropped > 0 and loaded.session.id != original.id


async def test_resume_refuses_bad_ids_and_missing_sessions():
    with pytest.raises(InvalidSessionIdError):
        await Session.resume("../etc/passwd")
    with pytest.raises(SessionNotFoundError, match="No session 'nope'"):
        await Session.resume("nope")


async def test_move_aside_renames_without_reading_and_keeps_the_session_findable(tmp_path):
    session = await Session.new()
    session.title = "notebook's"
    session.add_message(Message.user("hello"))
    transcript = tmp_path / "analysis.codetether.json"
    await session.save(transcript)
    data = transcript.read_bytes()
    moved = resume.move_aside(transcript, session.id)
    assert moved == tmp_path / f"analysis.codetether.{session.id}.json"
    assert not transcript.exists() and moved.read_bytes() == data
    assert (await Session.load(session.id)).messages == session.messages  # found through the index
    transcript.write_bytes(data)
    assert resume.move_aside(transcript, session.id).name == f"analysis.codetether.{session.id}.2.json"


async def test_bind_path_binds_only_where_no_file_is(tmp_path):
    session = await Session.new()
    target = tmp_path / "analysis.codetether.json"
    assert session.bind_path(target) is True
    assert session.path == target and not target.exists()  # nothing written yet
    session.add_message(Message.user("hi"))
    await session.save()
    assert (await Session.load_path(target)).messages == session.messages
    other = await Session.new()
    assert other.bind_path(target) is False and other.path is None  # a file is there: save explicitly
