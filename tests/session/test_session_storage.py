"""Storage: ids, data dir, typed errors that leave files alone, conflicts,
skipped unchanged saves, notebook files and delete."""

from __future__ import annotations

import os
from pathlib import Path

import orjson
import pytest

from codetether_magics import Message, Session
from codetether_magics.errors import (
    InvalidSessionIdError,
    SessionConflictError,
    SessionCorruptError,
    SessionError,
    SessionIdMismatchError,
    SessionNotFoundError,
    SessionTooLargeError,
)
from codetether_magics.session import files
from codetether_magics.session.paths import data_dir, notebook_session_path, session_path
from tests.support.session_factory import session_with_every_part


@pytest.mark.parametrize("bad_id", ["../x", "a/b", "", "x" * 129, "a b", "a.json", "é", "..", "a\x00b", None, 7])
async def test_bad_ids_are_refused_before_touching_the_disk(bad_id, isolated_environment):
    sessions = isolated_environment / "sessions"
    (isolated_environment / "x.json").parent.mkdir(parents=True)
    (isolated_environment / "x.json").write_text("{}")  # what "../x" would reach
    for call in (lambda: Session.load(bad_id), lambda: Session.delete(bad_id)):
        with pytest.raises(InvalidSessionIdError) as caught:
            await call()
        assert "1 to 128 characters" in str(caught.value)
    session = await Session.new()
    session.id = bad_id
    with pytest.raises(InvalidSessionIdError):
        await session.save()
    assert not sessions.exists()


async def test_ids_of_1_and_128_characters_are_fine():
    for good in ("a", "A-b_9" * 25 + "xyz"):
        assert len(good) <= 128
        session = await Session.new()
        session.id = good
        await session.save()
        assert (await Session.load(good)).id == good


def test_data_dir_rules(tmp_path, monkeypatch):
    monkeypatch.setenv("CODETETHER_DATA_DIR", str(tmp_path / "explicit"))
    assert data_dir() == tmp_path / "explicit"
    monkeypatch.setenv("CODETETHER_DATA_DIR", "")
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    (repo / "src" / "deep").mkdir(parents=True)
    assert data_dir(repo / "src" / "deep") == repo.resolve() / ".codetether-agent"
    plain = tmp_path / "plain"
    plain.mkdir()
    assert data_dir(plain) == plain.resolve() / ".codetether-agent"
    monkeypatch.setenv("HOME", str(repo))  # a repository at $HOME is never the data dir
    assert data_dir(repo / "src") == (repo / "src").resolve() / ".codetether-agent"
    assert notebook_session_path(tmp_path / "analysis.ipynb") == tmp_path / "analysis.codetether.json"


def _snapshot(path: Path) -> tuple[bytes, int]:
    return path.read_bytes(), path.stat().st_mtime_ns


@pytest.mark.parametrize("content, detail", [
    (b"", "empty"),
    (b"   \n", "empty"),
    (b'{"id":"s1","title":null,"created_at":"2026-01-01T00:00:00Z","updated_at":"2026-01-0', "not JSON"),
    (bytes(range(256)) * 4, "not JSON"),
    (b'\xff\xfe{"id":"s1"}', "not JSON"),
    (b'{"id":"s1","messages":"not a list"}', "messages"),
    (b'{"id":"s1","messages":[{"role":"user","content":[{"type":"text","text":5}]}]}', "messages.0.content.0"),
    (b'{"id":5}', "id"),
    (b'[1,2,3]', "expected a JSON object"),
])
async def test_broken_files_give_a_clear_error_and_stay_untouched(content, detail, isolated_environment):
    path = session_path("s1")
    path.parent.mkdir(parents=True)
    path.write_bytes(content)
    before = _snapshot(path)
    with pytest.raises(SessionCorruptError) as caught:
        await Session.load("s1")
    message = str(caught.value)
    assert str(path) in message and detail in message and "left untouched" in message
    # Saving another session under that id must not overwrite it either.
    intruder = await Session.new()
    intruder.id = "s1"
    with pytest.raises(SessionConflictError):
        await intruder.save()
    with pytest.raises(SessionCorruptError):
        await Session.delete("s1")
    assert _snapshot(path) == before


async def test_oversized_file_is_refused_without_reading_it(isolated_environment):
    path = session_path("huge")
    path.parent.mkdir(parents=True)
    with open(path, "wb") as handle:  # sparse: no disk space used
        handle.truncate(files.MAX_SESSION_BYTES + 1)
    with pytest.raises(SessionTooLargeError) as caught:
        await Session.load("huge")
    assert str(path) in str(caught.value) and "512 MiB" in str(caught.value)
    assert "last_for_directory_tail" in str(caught.value)
    assert path.stat().st_size == files.MAX_SESSION_BYTES + 1


async def test_missing_session_and_id_mismatch():
    with pytest.raises(SessionNotFoundError) as caught:
        await Session.load("nope")
    assert "nope" in str(caught.value) and "%codetether list" in str(caught.value)
    session = await Session.new()
    await session.save()
    other = session_path("other")
    os.rename(session.path, other)
    with pytest.raises(SessionIdMismatchError) as caught:
        await Session.load("other")
    assert str(other) in str(caught.value) and session.id in str(caught.value)


async def test_unchanged_save_is_skipped_and_changes_are_written():
    session = await session_with_every_part()
    assert await session.save() is True
    before = _snapshot(session.path)
    assert await session.save() is False
    loaded = await Session.load(session.id)
    assert await loaded.save() is False  # what was loaded is what is on disk
    assert _snapshot(session.path) == before
    loaded.title = "Resid_als"  # a change of the same length is still a change
    assert await loaded.save() is True
    assert (await Session.load(session.id)).title == "Resid_als"
    loaded.add_message(Message.user("more"))
    assert await loaded.save() is True
    assert (await Session.load(session.id)).messages[-1].text == "more"
    assert not session.path.with_name(session.path.name + ".tmp").exists()


async def test_second_writer_gets_a_conflict_instead_of_losing_a_turn():
    original = await Session.new()
    await original.save()
    first = await Session.load(original.id)
    second = await Session.load(original.id)
    first.add_message(Message.user("turn from the first writer"))
    await first.save()
    second.add_message(Message.user("turn from the second writer"))
    with pytest.raises(SessionConflictError) as caught:
        await second.save()
    assert str(second.path) in str(caught.value) and "Reload" in str(caught.value)
    on_disk = await Session.load(original.id)
    assert [m.text for m in on_disk.messages] == ["turn from the first writer"]
    # The loser reloads, repeats its step, and both turns are kept.
    on_disk.add_message(Message.user("turn from the second writer"))
    await on_disk.save()
    assert [m.text for m in (await Session.load(original.id)).messages] == [
        "turn from the first writer", "turn from the second writer"]


async def test_notebook_session_lives_beside_the_notebook(tmp_path):
    notebook = tmp_path / "work" / "analysis.ipynb"
    notebook.parent.mkdir()
    target = notebook_session_path(notebook)
    session = await Session.new(str(notebook.parent))
    session.metadata.notebook = notebook.name
    session.add_message(Message.user("hello notebook"))
    await session.save(path=target)
    assert session.path == target and target.exists()
    assert not session_path(session.id).exists()
    again = await Session.load_path(target)
    assert again.messages[0].text == "hello notebook" and again.path == target
    found = await Session.load(session.id)  # through the workspace index
    assert found.path == target
    again.add_message(Message.assistant("hi"))
    await again.save()  # writes back to the notebook file
    assert len((await Session.load_path(target)).messages) == 2

    # A new conversation never silently replaces the earlier one.
    fresh = await Session.new(str(notebook.parent))
    with pytest.raises(SessionConflictError):
        await fresh.save(path=target)
    assert (await Session.load_path(target)).id == session.id
    # Replacing it on purpose names the version being replaced (no forced saves: contract change).
    assert await fresh.save(path=target, replaces=again) is True
    assert (await Session.load_path(target)).id == fresh.id


async def test_delete_removes_the_file_and_its_index_entry(tmp_path):
    session = await Session.new()
    await session.save()
    path = session.path
    assert await Session.delete(session.id) == path
    assert not path.exists()
    with pytest.raises(SessionNotFoundError):
        await Session.load(session.id)
    with pytest.raises(SessionNotFoundError):
        await Session.delete(session.id)
    nb = await Session.new()
    await nb.save(path=tmp_path / "x.codetether.json")
    await Session.delete(nb.id)
    assert not (tmp_path / "x.codetether.json").exists()
    with pytest.raises(SessionNotFoundError):
        await Session.load(nb.id)


async def test_saves_do_not_block_the_event_loop(monkeypatch):
    import asyncio
    import threading

    loop_thread = threading.get_ident()
    seen = []
    real = files.write_atomic

    def spy(*args, **kwargs):
        seen.append(threading.get_ident())
        return real(*args, **kwargs)

    monkeypatch.setattr("codetether_magics.session.storage.write_atomic", spy)
    session = await Session.new()
    await asyncio.wait_for(session.save(), 10)
    assert seen and loop_thread not in seen
    assert orjson.loads(session.path.read_bytes())["id"] == session.id


async def test_unreadable_and_unwritable_places_give_a_clear_error(tmp_path):
    folder = session_path("folder")
    folder.mkdir(parents=True)
    with pytest.raises(SessionError) as caught:
        await Session.load("folder")
    assert str(folder) in str(caught.value) and "Cannot read" in str(caught.value)
    not_a_folder = tmp_path / "plain-file"
    not_a_folder.write_text("x")
    session = await Session.new()
    with pytest.raises(SessionError) as caught:
        await session.save(path=not_a_folder / "x.codetether.json")
    assert "Cannot write session file" in str(caught.value) and str(not_a_folder) in str(caught.value)
    assert not_a_folder.read_text() == "x"


async def test_a_session_whose_id_changed_saves_to_the_file_of_its_new_id():
    session = await Session.new()
    await session.save()
    old_path, old_bytes = session.path, session.path.read_bytes()
    session.id = "renamed-session"
    await session.save()
    assert session.path == session_path("renamed-session")
    assert old_path.read_bytes() == old_bytes
    assert (await Session.load("renamed-session")).id == "renamed-session"


async def test_a_session_in_two_places_loads_and_lists_as_its_newest_copy(tmp_path):
    from codetether_magics.session.session import list_sessions

    session = await Session.new(str(tmp_path))
    session.add_message(Message.user("in the data dir"))
    await session.save()
    notebook_copy = session.model_copy(deep=True)
    notebook_copy.add_message(Message.assistant("continued in the notebook"))
    await notebook_copy.save(path=tmp_path / "nb.codetether.json")
    loaded = await Session.load(session.id)
    assert loaded.path == tmp_path / "nb.codetether.json" and len(loaded.messages) == 2
    listed = await list_sessions()
    assert [(s.id, s.message_count) for s in listed] == [(session.id, 2)]
    session.add_message(Message.user("newer again in the data dir"))
    await session.save()
    assert (await Session.load(session.id)).path == session_path(session.id)


async def test_loading_through_a_subclass_builds_the_subclass(tmp_path):
    class Recording(Session):
        pass

    session = await Session.new(str(tmp_path))
    await session.save(path=tmp_path / "nb.codetether.json")
    assert type(await Recording.load(session.id)) is Recording
    assert type(await Recording.load_path(tmp_path / "nb.codetether.json")) is Recording
    assert type(await Recording.last_for_directory(str(tmp_path))) is Recording
    assert type((await Recording.last_for_directory_tail(str(tmp_path), 5)).session) is Recording
    assert type(await Session.load(session.id)) is Session
