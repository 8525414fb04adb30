"""A large conversation continued in a notebook: its tail under a new id, the full file kept as it was.

In a plain IPython shell (the worker-thread path) against the loopback server; the size
limits are made small so that the files are too.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from IPython.core.interactiveshell import InteractiveShell

from codetether_magics import load_ipython_extension, unload_ipython_extension
from codetether_magics.messages import Message, TextPart
from codetether_magics.session import resume
from codetether_magics.session.session import Session
from codetether_magics.testing import Turn


@pytest.fixture
def shell(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)  # the fallback notebook, notebook.ipynb, is here
    monkeypatch.setattr(resume, "WHOLE_BELOW_BYTES", 20_000)
    monkeypatch.setattr(resume, "RESUME_WINDOW", 4)
    ip = InteractiveShell.instance()
    load_ipython_extension(ip)
    yield ip
    unload_ipython_extension(ip)


async def large_session(path: Path | None = None) -> Session:
    session = await Session.new()
    session.title = "Sales study"
    for i in range(30):
        session.add_message(Message.user(f"question {i} " + "q" * 400))
        session.add_message(Message(role="assistant", content=[TextPart(text=f"answer {i} " + "a" * 400)]))
    await session.save(path)
    return session


def user_texts(request) -> list[str]:
    return [m["content"] for m in request.body["messages"] if m["role"] == "user"]


async def test_the_notebook_s_large_transcript_is_continued_from_its_tail(shell, server, tmp_path):
    transcript = tmp_path / "notebook.codetether.json"
    original = await large_session(transcript)
    before = transcript.read_bytes()
    server.enqueue(Turn.text("Continued from the tail.", expect_user_text="Next question."))
    shell.run_cell("%%codetether\nNext question.")
    assert [t.split(" ")[:2] for t in user_texts(server.model_requests[-1])] == [
        ["question", "28"], ["question", "29"], ["Next", "question."]]  # the tail, not all 30 turns
    now = json.loads(transcript.read_text())
    assert now["id"] != original.id and now["title"] == "Sales study (continued)"
    assert len(now["messages"]) == 4 + 2
    kept = tmp_path / f"notebook.codetether.{original.id}.json"
    assert kept.read_bytes() == before  # renamed, never rewritten
    assert len((await Session.load(original.id)).messages) == 60


async def test_resume_id_of_a_large_session_continues_its_tail(shell, server, tmp_path, isolated_environment):
    original = await large_session()
    before = original.path.read_bytes()
    shell.run_line_magic("codetether", f"resume {original.id}")
    now = json.loads((tmp_path / "notebook.codetether.json").read_text())
    assert now["id"] != original.id and now["title"] == "Sales study (continued)" and len(now["messages"]) == 4
    assert original.path.read_bytes() == before
    server.enqueue(Turn.text("Go on."))
    shell.run_cell("%%codetether\nAnd then?")
    assert len(user_texts(server.model_requests[-1])) == 3


async def test_a_small_transcript_is_continued_whole_under_its_own_id(shell, server, tmp_path):
    transcript = tmp_path / "notebook.codetether.json"
    session = await Session.new()
    session.title = "Short"
    session.add_message(Message.user("first"))
    await session.save(transcript)
    server.enqueue(Turn.text("ok"))
    shell.run_cell("%%codetether\nsecond")
    assert json.loads(transcript.read_text())["id"] == session.id
    assert user_texts(server.model_requests[-1]) == ["first", "second"]
    assert list(tmp_path.glob("notebook.codetether.*.json")) == []
