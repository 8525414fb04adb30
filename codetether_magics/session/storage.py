"""The one owner of session files: load, save, tail-load, list, find the latest, delete.

Everything here is blocking and runs in a worker thread (``Session`` wraps it with
``asyncio.to_thread``). Saving is atomic and fsync'd (see ``files.write_atomic``),
is skipped when the bytes are the ones already on disk, and refuses with
:class:`SessionConflictError` when the file changed since this session object loaded or
last saved it, so two writers of one session never silently lose a turn.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Generic

import orjson

from ..errors import CodeTetherError, SessionConflictError
from . import index
from .codec import check_id, corrupt_error, decode_session, encode_session_parts, session_from_dict
from .files import (
    DiskStamp,
    file_lock,
    not_found,
    open_for_reading,
    read_file,
    stamp_of,
    stamp_of_open,
    unwritable,
    write_atomic,
)
from .header import SessionSummary, read_header, try_read_header
from .jsonstream import JsonStream, JsonStreamError
from .paths import session_path, sessions_dir, validate_id
from .stored import StoredSession

__all__ = [
    "SessionSummary", "TailLoad", "archive_file", "bind", "check_save", "delete_file", "load_file", "resolve_path",
    "save_file", "save_target", "tail_load_file",
]


@dataclass(frozen=True)
class TailLoad(Generic[StoredSession]):
    """A session resumed with only its last ``window`` messages and tool uses in memory.

    ``dropped`` counts the messages plus tool uses left out; ``file_bytes`` is the file's size.
    """

    session: StoredSession
    dropped: int
    file_bytes: int


# -- the version of the file a session object knows -----------------------------


def bind(session: "StoredSession", path: Path, stamp: DiskStamp | None) -> None:
    """Remember which file (and which version of it) this session object corresponds to."""
    session._path = path
    session._disk_stamp = stamp


def _same_as_file(path: Path, parts: list[bytes | memoryview]) -> bool:
    # Cheaper than hashing every save: only reached when the length is unchanged,
    # and the file is fresh in the page cache.
    try:
        with open(path, "rb") as handle:
            return all(handle.read(len(part)) == part for part in parts) and not handle.read(1)
    except FileNotFoundError:
        return False


# -- where an id lives ----------------------------------------------------------


def resolve_path(session_id: str) -> Path:
    """``sessions/<id>.json`` or the notebook file the index knows for ``session_id``.

    When both hold the session (a notebook resumed a data-dir session, or archived a
    copy) the more recently updated one wins.
    """
    path = session_path(session_id)
    elsewhere = index.lookup_path(session_id)
    if elsewhere is None or elsewhere == path:
        return path
    other = try_read_header(elsewhere)
    if other is None or other.id != session_id:
        return path
    mine = try_read_header(path)  # None when there is no such file
    return path if mine is not None and mine.sort_key >= other.sort_key else elsewhere


def in_sessions_dir(path: Path) -> bool:
    return path.parent.resolve() == sessions_dir().resolve()


def save_target(session: "StoredSession", path: Path | None) -> Path:
    """Where ``save()`` writes: ``path``, else the bound file, else ``sessions/<id>.json``.

    A data-dir file is named after its id, so a session whose id changed since it was
    bound goes to the file of its new id (a notebook file keeps its name).
    """
    if path is not None:
        return path
    bound = session._path
    if bound is None or (in_sessions_dir(bound) and bound.name != f"{session.id}.json"):
        return session_path(session.id)
    return bound


# -- load -----------------------------------------------------------------------


def load_file(path: Path, expected_id: str | None = None, *, model: "type[StoredSession]") -> "StoredSession":
    what = repr(expected_id) if expected_id else f"file {path}"
    data, stamp = read_file(path, what)
    session = decode_session(data, path, expected_id, model=model)
    bind(session, path, stamp)
    return session


def tail_load_file(
    path: Path, window: int, expected_id: str | None = None, *, model: "type[StoredSession]"
) -> TailLoad:
    """Parse ``path`` keeping only the last ``window`` messages and tool uses (bounded memory)."""
    if window < 0:
        raise ValueError(f"window must be 0 or more, not {window}")
    fields: dict[str, object] = {}
    dropped = 0
    handle = open_for_reading(path, repr(expected_id) if expected_id else f"file {path}")
    with handle:
        stamp = stamp_of_open(handle)  # before reading: a change while we read shows up as a conflict later
        stream = JsonStream(handle)
        try:
            for key in stream.iter_object_keys():
                if key in ("messages", "tool_uses"):
                    kept: deque[bytes] = deque(maxlen=window)
                    total = 0
                    for raw in stream.iter_array():
                        kept.append(raw)
                        total += 1
                    dropped += total - len(kept)
                    fields[key] = [orjson.loads(raw) for raw in kept]
                else:
                    fields[key] = orjson.loads(stream.read_value())
            if not stream.at_end():
                raise JsonStreamError("unexpected data after the session object")
        except (JsonStreamError, ValueError) as exc:
            raise corrupt_error(path, str(exc) or "empty file") from None
    session = session_from_dict(fields, path, model)
    check_id(session.id, expected_id, path)
    bind(session, path, stamp)
    return TailLoad(session=session, dropped=dropped, file_bytes=stamp.size)


# -- save -----------------------------------------------------------------------


def _conflict(path: Path, known: bool) -> SessionConflictError:
    if not known:
        return SessionConflictError(
            f"Session file {path} already exists and holds a conversation this session object "
            "never loaded; saving would replace it. Load it with `await Session.load_path(path)` "
            "to continue it, or save this one elsewhere with `await session.save(path=...)`."
        )
    return SessionConflictError(
        f"Session file {path} was changed by another writer since this session was loaded or "
        "last saved; saving would overwrite that writer's turns. Reload it "
        "(`await Session.load_path(path)`) and repeat your last step, or save this copy "
        "elsewhere with `await session.save(path=...)`."
    )


def save_file(session: "StoredSession", path: Path, replaces: "StoredSession | None" = None) -> bool:
    """Write ``session`` to ``path``; False when the file already holds exactly these bytes.

    The file may be replaced only in the version this session object knows, or, with
    ``replaces``, in the version that other session object knows (a notebook starting a new
    conversation over the one it loaded). Anything else raises ``SessionConflictError``:
    no save overwrites turns it has not read.
    """
    validate_id(session.id)
    known = replaces if replaces is not None else session
    expected = known._disk_stamp if known._path == path else None
    try:
        return _save_locked(session, path, expected)
    except OSError as exc:
        raise unwritable(path, exc) from None


def check_save(session: "StoredSession", path: Path) -> None:
    """Raise now the ``SessionConflictError`` that ``save_file`` would (a stat and 256 bytes read,
    no encoding): a turn whose save beside its request would fail is stopped before the request."""
    expected = session._disk_stamp if session._path == path else None
    on_disk = stamp_of(path)
    if on_disk is not None and on_disk != expected:
        raise _conflict(path, known=expected is not None)


def _save_locked(session: "StoredSession", path: Path, expected: DiskStamp | None) -> bool:
    data = encode_session_parts(session)  # before the lock: it serialises every writer of the folder
    size = sum(len(part) for part in data)
    with file_lock(path):
        on_disk = stamp_of(path)
        if on_disk is not None and on_disk != expected:
            raise _conflict(path, known=expected is not None)
        unchanged = on_disk is not None and on_disk == expected and on_disk.size == size
        if unchanged and _same_as_file(path, data):
            bind(session, path, on_disk)
            return False
        stamp = write_atomic(path, data)
        bind(session, path, stamp)
    if not in_sessions_dir(path):  # so that Session.load(id) and listings find it
        index.record_location(session.id, path)
    return True


def archive_file(session: "StoredSession", path: Path) -> None:
    """Write a copy of ``session`` to ``path`` (``session`` stays bound where it was).

    An existing file there is replaced only when everything it holds is also in ``session``
    (an older copy of the same conversation): read under the lock, so no turn it held is
    lost. Otherwise ``SessionConflictError``; the caller archives under another id.
    """
    validate_id(session.id)
    data = encode_session_parts(session)
    try:
        with file_lock(path):
            if path.exists() and not _holds_only_turns_of(path, session):
                raise SessionConflictError(
                    f"Session file {path} holds turns that session {session.id} does not; it was not "
                    "replaced. Keep this conversation under another id (`%codetether new` does so).")
            write_atomic(path, data)
    except OSError as exc:
        raise unwritable(path, exc) from None
    if not in_sessions_dir(path):
        index.record_location(session.id, path)


def _holds_only_turns_of(path: Path, session: "StoredSession") -> bool:
    try:
        data, _ = read_file(path, f"file {path}")
        existing = decode_session(data, path, None, model=type(session))
    except CodeTetherError:  # corrupt or too large: never overwritten
        return False
    return (existing.id == session.id
            and existing.messages == session.messages[: len(existing.messages)]
            and existing.tool_uses == session.tool_uses[: len(existing.tool_uses)])


def delete_file(session_id: str) -> Path:
    """Delete the file of ``session_id`` after checking it really holds that session."""
    path = resolve_path(validate_id(session_id))
    if not path.exists():
        raise not_found(path, repr(session_id))
    try:
        header = read_header(path)
    except (OSError, ValueError, JsonStreamError) as exc:
        raise corrupt_error(path, f"{exc}; not deleted, remove it by hand if you mean to") from None
    check_id(header.id, session_id, path)
    with file_lock(path):
        path.unlink()
    path.with_name(path.name + ".tmp").unlink(missing_ok=True)
    index.forget(session_id)
    return path


