"""Finding the latest session of a directory from headers, with the workspace index as a cache."""

from __future__ import annotations

import builtins
import os
import random

import orjson
import pytest

from codetether_magics import Message, Session
from codetether_magics.errors import SessionNotFoundError
from codetether_magics.session import header, listing
from codetether_magics.session.paths import sessions_dir
from codetether_magics.session.session import list_sessions, list_sessions_for_directory
from tests.support.session_factory import session_document, times, write_document


@pytest.fixture
def workspaces(tmp_path):
    folders = [tmp_path / name for name in ("alpha", "beta", "gamma", "delta")]
    for folder in folders:
        folder.mkdir()
    return folders


def _populate(workspaces, count=300, seed=7, padding=3000):
    """``count`` files spread over the workspaces, in random order; returns id of latest per folder."""
    rng = random.Random(seed)
    stamps = times(count)
    order = list(range(count))
    rng.shuffle(order)
    latest = {}
    for i in order:
        folder = workspaces[i % len(workspaces)]
        doc = session_document(f"s{i:04d}", str(folder), stamps[i], n_messages=3, padding=rng.randint(padding // 2, padding))
        write_document(sessions_dir(), doc)
        if folder not in latest or i > latest[folder][0]:
            latest[folder] = (i, doc["id"])
    return {folder: sid for folder, (_, sid) in latest.items()}


async def test_latest_for_each_directory_among_hundreds_of_files(workspaces):
    expected = _populate(workspaces)
    for folder, session_id in expected.items():
        found = await Session.last_for_directory(str(folder))
        assert found.id == session_id
        assert found.metadata.directory == str(folder)
    assert (await Session.last()).id == "s0299"
    assert (await Session.last_for_directory(None)).id == "s0299"


class _CountingFile:
    def __init__(self, handle, counts):
        self._handle, self._counts = handle, counts

    def read(self, size=-1):
        data = self._handle.read(size)
        self._counts.append(len(data))
        return data

    def __getattr__(self, name):
        return getattr(self._handle, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._handle.close()


async def test_latest_reads_headers_not_transcripts(workspaces, monkeypatch):
    _populate(workspaces, count=120, padding=20_000)
    counts = []
    monkeypatch.setattr(header, "open", lambda path, mode="r": _CountingFile(builtins.open(path, mode), counts),
                        raising=False)
    found = listing.latest_summary(str(workspaces[1]))
    assert found is not None and len(counts) == 120
    total = sum(p.stat().st_size for p in sessions_dir().glob("*.json"))
    assert sum(counts) <= 120 * 4096 < total / 5  # one 4 KiB read per file


async def test_listing_without_counts_reads_headers_only(workspaces, monkeypatch):
    expected = _populate(workspaces, count=40, padding=20_000)
    counted = await list_sessions()
    counts = []
    monkeypatch.setattr(header, "open", lambda path, mode="r": _CountingFile(builtins.open(path, mode), counts),
                        raising=False)
    listed = await list_sessions(count_messages=False)
    assert [s.id for s in listed] == [s.id for s in counted] and len(listed) == 40
    assert {s.message_count for s in listed} == {None} and {s.message_count for s in counted} == {3}
    assert sum(counts) <= 40 * 4096 < sum(s.file_bytes for s in listed) / 5  # one 4 KiB read per file
    alpha = await list_sessions_for_directory(str(workspaces[0]), count_messages=False)
    assert alpha[0].id == expected[workspaces[0]] and len(alpha) == 10


async def test_headers_of_files_in_another_key_order_are_still_read(workspaces):
    stamp = times(1)[0]
    seed_order = session_document("seed-layout", str(workspaces[0]), stamp, n_messages=50, padding=1000)
    reordered = {key: seed_order[key] for key in ("messages", "tool_uses", "id", "title", "created_at",
                                                  "updated_at", "usage", "agent", "metadata")}
    write_document(sessions_dir(), reordered)
    nested = session_document("nested-key", str(workspaces[1]), stamp)
    nested["metadata"]["messages"] = {"looks": "like the transcript key"}
    write_document(sessions_dir(), nested)
    assert (await Session.last_for_directory(str(workspaces[0]))).id == "seed-layout"
    assert (await Session.last_for_directory(str(workspaces[1]))).id == "nested-key"
    listed = {s.id: s.message_count for s in await list_sessions()}
    assert listed == {"seed-layout": 50, "nested-key": 1}


async def test_index_is_used_and_stays_correct_as_files_change(workspaces, monkeypatch):
    expected = _populate(workspaces, count=60)
    alpha = workspaces[0]
    assert (await Session.last_for_directory(str(alpha))).id == expected[alpha]
    index_file = sessions_dir().parent / "index.json"
    assert orjson.loads(index_file.read_bytes())["signature"][0] == 60

    # A newer session saved through storage: the files changed, so it is found by a new scan.
    newer = await Session.new(str(alpha))
    newer.add_message(Message.user("newest"))
    await newer.save()
    assert (await Session.last_for_directory(str(alpha))).id == newer.id
    # A file dropped in by another program: the folder changed, so the index is not trusted.
    doc = session_document("dropped-in", str(alpha), times(1, start=newer.updated_at.replace(year=2099))[0])
    write_document(sessions_dir(), doc)
    assert (await Session.last_for_directory(str(alpha))).id == "dropped-in"
    # Deleting the latest falls back to the one before.
    await Session.delete("dropped-in")
    assert (await Session.last_for_directory(str(alpha))).id == newer.id
    # While the files are unchanged the index is used: one header read instead of a scan.
    reads = []
    real = listing.try_read_header
    monkeypatch.setattr(listing, "try_read_header", lambda path, *a: reads.append(path) or real(path, *a))
    assert (await Session.last_for_directory(str(alpha))).id == newer.id
    assert len(reads) == 1
    # A file edited in place (same inode, no rename) by another program is noticed too.
    older = sessions_dir() / f"{expected[workspaces[1]]}.json"
    doc = orjson.loads(older.read_bytes())
    doc["metadata"]["directory"] = str(alpha)
    doc["updated_at"] = "2100-01-01T00:00:00Z"
    with open(older, "r+b") as handle:
        handle.write(orjson.dumps(doc))
        handle.truncate()
    assert (await Session.last_for_directory(str(alpha))).id == doc["id"]
    # A broken index is ignored.
    index_file.write_bytes(b"{broken")
    assert (await Session.last_for_directory(str(alpha))).id == doc["id"]


async def test_directory_matching_resolves_symlinks_and_skips_broken_files(workspaces, tmp_path):
    target = workspaces[2]
    link = tmp_path / "link-to-gamma"
    os.symlink(target, link)
    session = await Session.new(str(link))
    await session.save()
    (sessions_dir() / "broken.json").write_bytes(b'{"id":"broken","title":nul')
    (sessions_dir() / "empty.json").write_bytes(b"")
    assert (await Session.last_for_directory(str(target))).id == session.id
    assert (sessions_dir() / "broken.json").read_bytes() == b'{"id":"broken","title":nul'
    with pytest.raises(SessionNotFoundError) as caught:
        await Session.last_for_directory(str(workspaces[3]))
    assert str(workspaces[3]) in str(caught.value)


async def test_notebook_sessions_count_for_their_directory(workspaces):
    alpha = workspaces[0]
    old = await Session.new(str(alpha))
    await old.save()
    notebook_session = await Session.new(str(alpha))
    notebook_session.add_message(Message.user("from the notebook"))
    await notebook_session.save(path=alpha / "analysis.codetether.json")
    assert (await Session.last_for_directory(str(alpha))).id == notebook_session.id


async def test_listing_with_message_counts(workspaces):
    first = await Session.new(str(workspaces[0]))
    first.add_message(Message.user("one"))
    await first.generate_title()
    await first.save()
    second = await Session.new(str(workspaces[1]))
    for text in ("a", "b", "c"):
        second.add_message(Message.user(text))
    await second.save()
    everything = await list_sessions()
    assert [s.id for s in everything] == [second.id, first.id]  # newest first
    assert [s.message_count for s in everything] == [3, 1]
    only_alpha = await list_sessions_for_directory(str(workspaces[0]))
    assert [(s.id, s.title, s.message_count) for s in only_alpha] == [(first.id, "one", 1)]
    assert only_alpha[0].directory == str(workspaces[0]) and only_alpha[0].file_bytes > 0


def test_times_from_other_writers_parse_and_order_correctly():
    parsed = [header.parse_time(v) for v in ("2026-01-01T00:00:00.123456789Z", "2026-01-01T00:00:00.5Z",
                                               "2026-01-01T00:00:00Z", "2026-01-01T00:00:00.123+00:00")]
    assert [p.microsecond for p in parsed] == [123456, 500000, 0, 123000]
    assert header.parse_time("yesterday") < parsed[2] and header.parse_time(None) < parsed[2]
