"""Blocking file operations for session files; callers run them in a worker thread.

- :func:`read_file` reads a whole file after checking its size, and returns a
  :class:`DiskStamp` of exactly the bytes it read (same file descriptor).
- :func:`write_atomic` writes ``<file>.tmp``, flushes, fsyncs, renames it over the file
  and fsyncs the folder: a crash leaves the old or the new file, never a torn one.
- :func:`file_lock` is an advisory ``flock`` on the file's folder that serialises writers
  of one file across threads and processes.
"""

from __future__ import annotations

import fcntl
import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterator, Sequence

from ..errors import SessionError, SessionNotFoundError, SessionTooLargeError

__all__ = [
    "DiskStamp", "MAX_SESSION_BYTES", "file_lock", "head_of", "not_found", "open_for_reading", "read_file",
    "stamp_of", "stamp_of_open", "unwritable", "write_atomic",
]

MAX_SESSION_BYTES = 512 * 1024 * 1024
_HEAD = 256  # enough bytes to include id, title and updated_at


@dataclass(frozen=True)
class DiskStamp:
    """What identifies one version of a file: any other writer changes at least one field."""

    inode: int
    size: int
    mtime_ns: int
    head: bytes


def _stamp(st: os.stat_result, head: bytes) -> DiskStamp:
    return DiskStamp(st.st_ino, st.st_size, st.st_mtime_ns, head)


def stamp_of(path: Path) -> DiskStamp | None:
    """The stamp of the file now on disk, or None when there is none."""
    try:
        with open(path, "rb") as handle:
            return stamp_of_open(handle)
    except FileNotFoundError:
        return None


def stamp_of_open(handle: BinaryIO) -> DiskStamp:
    """The stamp of an open file, which is left positioned at its start."""
    st = os.fstat(handle.fileno())
    head = handle.read(_HEAD)
    handle.seek(0)
    return _stamp(st, head)


def not_found(path: Path, what: str) -> SessionNotFoundError:
    return SessionNotFoundError(
        f"No session {what} (looked for {path}). `%codetether list` shows the sessions "
        "there are; `%codetether new` starts one."
    )


def too_large(path: Path, size: int) -> SessionTooLargeError:
    return SessionTooLargeError(
        f"Session file {path} is {size / 2**20:.0f} MiB, over the {MAX_SESSION_BYTES // 2**20} MiB "
        "load limit. Resume it with a window instead: "
        "`await Session.last_for_directory_tail(directory, window=200)`."
    )


def unreadable(path: Path, exc: OSError) -> SessionError:
    return SessionError(
        f"Cannot read session file {path}: {exc.strerror or exc}. Check that it is a file you "
        "may read (permissions, not a folder)."
    )


def unwritable(path: Path, exc: OSError) -> SessionError:
    return SessionError(
        f"Cannot write session file {path}: {exc.strerror or exc}. Check the folder's "
        "permissions and free space, or set CODETETHER_DATA_DIR to a writable folder."
    )


def open_for_reading(path: Path, what: str) -> BinaryIO:
    try:
        return open(path, "rb")
    except FileNotFoundError:
        raise not_found(path, what) from None
    except OSError as exc:
        raise unreadable(path, exc) from None


def read_file(path: Path, what: str) -> tuple[bytes, DiskStamp]:
    handle = open_for_reading(path, what)
    with handle:
        st = os.fstat(handle.fileno())
        if st.st_size > MAX_SESSION_BYTES:
            raise too_large(path, st.st_size)
        try:
            data = handle.read(MAX_SESSION_BYTES + 1)
        except OSError as exc:  # e.g. a folder named like a session file
            raise unreadable(path, exc) from None
    if len(data) > MAX_SESSION_BYTES:  # grew while we read it
        raise too_large(path, len(data))
    return data, _stamp(st, data[:_HEAD])


def _fsync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes | Sequence[bytes | memoryview], durable: bool = True) -> DiskStamp:
    """Replace ``path`` with ``data`` (bytes, or pieces written in order) atomically and durably
    (fsync); return the new stamp."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    parts = [data] if isinstance(data, (bytes, bytearray, memoryview)) else data
    with open(tmp, "wb") as handle:
        handle.writelines(parts)
        handle.flush()
        if durable:
            os.fsync(handle.fileno())
    os.replace(tmp, path)
    if durable:
        _fsync_folder(path.parent)
    return _stamp(os.stat(path), head_of(parts))


def head_of(parts: Sequence[bytes | memoryview]) -> bytes:
    """The first bytes of ``parts`` joined, as a stamp keeps them."""
    head = b""
    for part in parts:
        head += bytes(part[: _HEAD - len(head)])
        if len(head) >= _HEAD:
            break
    return head


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive advisory lock for ``path``.

    The lock is taken on the folder that holds the file, not on a ``<file>.lock`` beside it: a
    notebook's transcript lives in the user's own folder, where a stray lock file is clutter. Saves
    are short, so serialising the writers of one folder costs nothing noticeable.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path.parent, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock
