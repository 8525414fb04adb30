"""No save overwrites turns it has not read, and the advice of a conflict works as written."""

from __future__ import annotations

import pytest

from codetether_magics.errors import SessionConflictError
from codetether_magics.session.session import Session
from codetether_magics.messages import Message


async def _saved(path, *texts: str) -> Session:
    session = await Session.new(str(path.parent))
    for text in texts:
        session.add_message(Message.user(text))
    await session.save(path=path)
    return session


def test_save_has_no_force_option():
    import inspect

    assert "force" not in inspect.signature(Session.save).parameters


async def test_the_advice_of_a_two_writer_conflict_works(tmp_path):
    path = tmp_path / "analysis.codetether.json"
    first = await _saved(path, "one")
    second = await Session.load_path(path)
    second.add_message(Message.user("two, from the second writer"))
    await second.save()
    first.add_message(Message.user("three, from the first writer"))
    with pytest.raises(SessionConflictError) as info:
        await first.save()
    message = str(info.value)
    assert "`await Session.load_path(path)`" in message and "`await session.save(path=...)`" in message

    # "save this copy elsewhere": works, and the file keeps the other writer's turn
    elsewhere = tmp_path / "mine.codetether.json"
    assert await first.save(path=elsewhere) is True
    assert [m.text for m in (await Session.load_path(elsewhere)).messages] == ["one", "three, from the first writer"]
    # "reload it and repeat your last step": works
    again = await Session.load_path(path)
    again.add_message(Message.user("three, from the first writer"))
    assert await again.save() is True
    assert [m.text for m in (await Session.load_path(path)).messages] == [
        "one", "two, from the second writer", "three, from the first writer"]


async def test_replaces_checks_the_version_the_replaced_session_read(tmp_path):
    path = tmp_path / "analysis.codetether.json"
    old = await _saved(path, "old turn")
    other = await Session.load_path(path)
    other.add_message(Message.user("a turn old never read"))
    await other.save()
    fresh = await Session.new(str(tmp_path))
    with pytest.raises(SessionConflictError):
        await fresh.save(path=path, replaces=old)  # old's version is gone: nothing replaced
    assert [m.text for m in (await Session.load_path(path)).messages] == ["old turn", "a turn old never read"]
    assert await fresh.save(path=path, replaces=other) is True  # other read what is there now


async def test_an_archive_replaces_only_an_older_copy_of_the_same_conversation(tmp_path):
    archive = tmp_path / "archive.json"
    session = await Session.new(str(tmp_path))
    session.add_message(Message.user("one"))
    await session.save_archive(archive)
    session.add_message(Message.user("two"))
    await session.save_archive(archive)  # the older copy is a prefix: replaced
    assert [m.text for m in (await Session.load_path(archive)).messages] == ["one", "two"]
    assert session.path is None  # archiving does not bind

    diverged = session.model_copy(deep=True)
    diverged.messages = diverged.messages[:1] + [Message.user("another second turn")]
    with pytest.raises(SessionConflictError):
        await diverged.save_archive(archive)
    assert [m.text for m in (await Session.load_path(archive)).messages] == ["one", "two"]

    archive.write_bytes(b'{"id": "broken')  # a corrupt file is never overwritten
    with pytest.raises(SessionConflictError):
        await session.save_archive(archive)
    assert archive.read_bytes() == b'{"id": "broken'
