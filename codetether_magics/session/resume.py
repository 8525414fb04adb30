"""Resuming a session whatever its size: the whole file when it is small, else its tail.

Decoding a session of hundreds of MB whole costs seconds and several times its size in
memory, and every later save would encode it all again. Above ``WHOLE_BELOW_BYTES`` a resume
keeps only the last ``RESUME_WINDOW`` messages and tool uses (``storage.tail_load_file``,
bounded memory); the caller forks such a copy (new id, "<title> (continued)") so it never
overwrites the full transcript, which stays where it was, or is moved aside unread
(``move_aside``) when its file is the notebook's own.

Blocking functions, run in a worker thread like the rest of storage.
"""

from __future__ import annotations

import os
from pathlib import Path

from . import index
from .files import file_lock, open_for_reading, unwritable
from .storage import TailLoad, load_file, tail_load_file
from .stored import StoredSession

__all__ = ["RESUME_WINDOW", "WHOLE_BELOW_BYTES", "move_aside", "resume_file"]

WHOLE_BELOW_BYTES = 32 * 2**20  # decoded whole in well under a second
RESUME_WINDOW = 200  # messages (and tool uses) a resumed large session keeps


def resume_file(path: Path, expected_id: str | None, *, model: "type[StoredSession]", window: int | None = None,
                whole_below: int | None = None) -> TailLoad:
    """``path`` loaded whole when under ``whole_below`` bytes, else its last ``window`` items
    (default: the module's ``WHOLE_BELOW_BYTES`` and ``RESUME_WINDOW``, read at each call).

    A kept window never starts with tool results whose call was left out (a provider refuses
    those): they are dropped too, and counted in ``dropped``.
    """
    with open_for_reading(path, repr(expected_id) if expected_id else f"file {path}") as handle:
        size = os.fstat(handle.fileno()).st_size
    whole_below = WHOLE_BELOW_BYTES if whole_below is None else whole_below
    window = RESUME_WINDOW if window is None else window
    if size < whole_below:
        return TailLoad(session=load_file(path, expected_id, model=model), dropped=0, file_bytes=size)
    loaded = tail_load_file(path, window, expected_id, model=model)
    orphans = _leading_tool_results(loaded.session)
    if orphans == 0:
        return loaded
    del loaded.session.messages[:orphans]
    return TailLoad(session=loaded.session, dropped=loaded.dropped + orphans, file_bytes=loaded.file_bytes)


def _leading_tool_results(session: "StoredSession") -> int:
    count = 0
    while count < len(session.messages) and session.messages[count].role == "tool":
        count += 1
    return count


def move_aside(path: Path, session_id: str) -> Path:
    """Rename ``path`` (holding ``session_id``) to ``<stem>.<id>.json`` in its folder, unread.

    Used when a notebook's own file was resumed as a forked tail: the fork takes the notebook's
    file name, and the full transcript keeps its id at the new name, where ``Session.load(id)``
    and listings find it (the workspace index records it). A rename in the same folder is one
    atomic step whatever the file's size.
    """
    stem = path.name[: -len(".json")] if path.name.endswith(".json") else path.name
    target = path.with_name(f"{stem}.{session_id}.json")
    number = 1
    while target.exists():
        number += 1
        target = path.with_name(f"{stem}.{session_id}.{number}.json")
    try:
        with file_lock(path):
            os.replace(path, target)
    except OSError as exc:
        raise unwritable(target, exc) from None
    index.record_location(session_id, target)
    return target
