"""Tail loads (bounded memory, fork on truncation) and the streaming splitter under them."""

from __future__ import annotations

import io
import tracemalloc

import orjson
import pytest

from codetether_magics import Message, Session, TailLoad
from codetether_magics.errors import SessionCorruptError, SessionNotFoundError
from codetether_magics.messages import ToolUse
from codetether_magics.session.jsonstream import JsonStream, JsonStreamError
from codetether_magics.session.storage import tail_load_file
from tests.support.session_factory import session_with_every_part


async def _three_turns(directory) -> Session:
    session = await Session.new(str(directory))
    for text in ("first question", "an answer", "second question"):
        session.add_message(Message.user(text) if "question" in text else Message.assistant(text))
    await session.generate_title()
    await session.save()
    return session


async def test_window_2_of_3_drops_one_and_forks(tmp_path):
    original = await _three_turns(tmp_path)
    before = original.path.read_bytes()
    loaded = await Session.last_for_directory_tail(str(tmp_path), 2)
    assert isinstance(loaded, TailLoad)
    assert loaded.dropped == 1 and loaded.file_bytes == len(before)
    forked = loaded.session
    assert [m.text for m in forked.messages] == ["an answer", "second question"]
    assert forked.id != original.id and forked.title == "first question (continued)"
    assert forked.metadata.provenance.session_id == forked.id
    await forked.save()  # the truncated copy goes to its own file
    assert original.path.read_bytes() == before
    assert forked.path != original.path and len((await Session.load(original.id)).messages) == 3


async def test_window_covering_everything_keeps_the_id_and_can_save_back(tmp_path):
    original = await _three_turns(tmp_path)
    loaded = await Session.last_for_directory_tail(str(tmp_path), 3)
    assert loaded.dropped == 0 and loaded.session.id == original.id
    assert loaded.session.title == "first question"
    before = original.path.stat().st_mtime_ns
    assert await loaded.session.save() is False  # the file already holds these bytes: not rewritten
    assert original.path.stat().st_mtime_ns == before
    loaded.session.add_message(Message.user("third"))
    await loaded.session.save()
    assert len((await Session.load(original.id)).messages) == 4


async def test_tool_uses_are_windowed_too_and_counted(tmp_path):
    session = await session_with_every_part(str(tmp_path))
    session.tool_uses = [ToolUse(id=f"t{i}", name="bash", input={"i": i}) for i in range(5)]
    await session.save()
    loaded = await Session.last_for_directory_tail(str(tmp_path), 2)
    assert [t.id for t in loaded.session.tool_uses] == ["t3", "t4"]
    assert loaded.dropped == (len(session.messages) - 2) + 3
    whole = tail_load_file(session.path, 1000, model=Session)
    assert whole.dropped == 0 and whole.session.model_dump() == session.model_dump()


async def test_window_zero_and_bad_windows(tmp_path):
    await _three_turns(tmp_path)
    loaded = await Session.last_for_directory_tail(str(tmp_path), 0)
    assert loaded.session.messages == [] and loaded.dropped == 3
    for bad in (-1, 1.5, "2", True):
        with pytest.raises(ValueError):
            await Session.last_for_directory_tail(str(tmp_path), bad)
    with pytest.raises(SessionNotFoundError):
        await Session.last_for_directory_tail(str(tmp_path / "elsewhere"), 5)


async def test_tail_load_memory_is_bounded_by_the_window(tmp_path):
    session = await Session.new(str(tmp_path))
    for i in range(400):
        session.add_message(Message.user(f"{i} " + "z" * 50_000))  # ~20 MB
    await session.save()
    path = session.path
    size = path.stat().st_size
    del session
    tracemalloc.start()
    loaded = tail_load_file(path, 10, model=Session)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert loaded.dropped == 390 and loaded.session.messages[0].text.startswith("390 ")
    assert peak < size / 5, (peak, size)


async def test_broken_files_in_a_tail_load_are_reported_not_touched(tmp_path, isolated_environment):
    original = await _three_turns(tmp_path)
    raw = original.path.read_bytes()
    for broken in (raw[: len(raw) // 2], b"", raw + b"garbage", raw.replace(b'"messages":[', b'"messages":{', 1)):
        original.path.write_bytes(broken)
        with pytest.raises(SessionCorruptError) as caught:
            tail_load_file(original.path, 2, model=Session)
        assert str(original.path) in str(caught.value)
        assert original.path.read_bytes() == broken


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 64, 8192])
def test_splitter_handles_escapes_nesting_and_chunk_boundaries(chunk):
    doc = {
        "a": 'quote " backslash \\ both \\" end\\\\',
        "n": [1, -2.5e3, True, False, None, {"x": [[], {}, "]}"]}],
        "messages": [{"t": "}{]["}, "\\", 3, [1, [2]], {"k": "\\\\\""}, "ünï"],
        "z": {},
    }
    raw = orjson.dumps(doc, option=orjson.OPT_INDENT_2)  # whitespace everywhere
    stream = JsonStream(io.BytesIO(raw), first_chunk=chunk)
    stream._chunk = chunk  # keep chunks tiny for the whole document
    seen = {}
    for key in stream.iter_object_keys():
        if key == "messages":
            seen[key] = [orjson.loads(element) for element in stream.iter_array()]
        else:
            seen[key] = orjson.loads(stream.read_value())
    assert seen == doc and stream.at_end()
    counting = JsonStream(io.BytesIO(raw), first_chunk=chunk)
    counting._chunk = chunk
    counts = {}
    for key in counting.iter_object_keys():
        if key in ("n", "messages"):
            counts[key] = counting.skip_array()
        else:
            counting.read_value()
    assert counts == {"n": len(doc["n"]), "messages": len(doc["messages"])} and counting.at_end()


@pytest.mark.parametrize("raw", [b'{"a":', b'{"a":"unterminated', b'{"a":[1,2', b'{"a" 1}', b"[1]", b'{"a":1,}'])
def test_splitter_reports_truncated_or_malformed_input(raw):
    stream = JsonStream(io.BytesIO(raw))
    with pytest.raises(JsonStreamError):
        for _ in stream.iter_object_keys():
            stream.read_value()
