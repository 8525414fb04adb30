"""Session headers: what comes before ``messages`` in a file, read without the transcript.

The writer puts ``id``, ``title``, times and ``metadata`` first (``Session``'s field order), so a
header costs one small read per file whatever the transcript's size. A file written in
another key order is still understood: its arrays are skipped element by element.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import orjson

from .jsonstream import JsonStream, JsonStreamError

__all__ = ["DirectoryKeys", "SessionSummary", "directory_key", "parse_time", "read_header", "try_read_header"]

log = logging.getLogger(__name__)
_ARRAYS = ("messages", "tool_uses")
_HEADER_KEYS = ("id", "updated_at", "metadata")
_QUICK_READ = 4096
_FRACTION = re.compile(r"\.(\d+)")
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def parse_time(value: Any) -> datetime:
    """An RFC 3339 time from a file; anything unreadable sorts as the oldest."""
    if not isinstance(value, str):
        return _EPOCH
    # Python 3.10's fromisoformat takes exactly 3 or 6 fraction digits; other writers
    # (chrono: nanoseconds) use more, or fewer.
    value = _FRACTION.sub(lambda m: "." + (m.group(1) + "000000")[:6], value.replace("Z", "+00:00"), count=1)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return _EPOCH
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def directory_key(directory: str | os.PathLike[str] | None) -> str:
    """The form in which directories are compared: absolute, symlinks resolved."""
    return os.path.realpath(directory) if directory else ""


class DirectoryKeys(dict):
    """``directory_key`` memoised for one scan (many files share a few directories)."""

    def __missing__(self, directory: str | None) -> str:
        self[directory] = value = directory_key(directory)
        return value


@dataclass(frozen=True)
class SessionSummary:
    id: str
    title: str | None
    created_at: datetime
    updated_at: datetime
    directory: str | None
    model: str | None
    notebook: str | None
    path: Path
    file_bytes: int
    mtime_ns: int
    message_count: int | None = None  # only when asked for (it reads the whole file)

    @property
    def sort_key(self) -> tuple[datetime, int]:
        return (self.updated_at, self.mtime_ns)


def _walk(stream: JsonStream, count_messages: bool) -> tuple[dict[str, Any], int | None]:
    fields: dict[str, Any] = {}
    count: int | None = None
    for key in stream.iter_object_keys():
        if key in _ARRAYS:
            have_header = all(name in fields for name in _HEADER_KEYS)
            if have_header and not count_messages:
                break
            n = stream.skip_array()
            if key == "messages":
                count = n
            if have_header and count is not None:
                break
        else:
            fields[key] = orjson.loads(stream.read_value())
    return fields, count


def _quick_fields(head: bytes) -> dict[str, Any] | None:
    """The header of a file in our own layout, from its first bytes alone.

    ``,"messages":`` cannot occur inside a JSON string (quotes there are escaped), so it
    is a key; if it is a nested one the cut leaves an open brace and parsing fails, and
    the caller falls back to the streaming walk.
    """
    cut = head.find(b',"messages":')
    if cut < 0:
        return None
    try:
        fields = orjson.loads(head[:cut] + b"}")
    except orjson.JSONDecodeError:
        return None
    return fields if isinstance(fields, dict) and all(k in fields for k in _HEADER_KEYS) else None


def read_header(path: Path, count_messages: bool = False) -> SessionSummary:
    """Read one file's header; raises ``JsonStreamError``/``ValueError`` when it is not a session."""
    with open(path, "rb") as handle:
        st = os.fstat(handle.fileno())
        fields = None if count_messages else _quick_fields(handle.read(_QUICK_READ))
        count = None
        if fields is None:
            handle.seek(0)
            fields, count = _walk(JsonStream(handle, first_chunk=_QUICK_READ), count_messages)
    meta = fields.get("metadata")
    session_id = fields.get("id")
    if not isinstance(session_id, str) or not isinstance(meta, dict):
        raise ValueError("no id or metadata before the transcript")
    title = fields.get("title")
    return SessionSummary(
        id=session_id,
        title=title if isinstance(title, str) else None,
        created_at=parse_time(fields.get("created_at")),
        updated_at=parse_time(fields.get("updated_at")),
        directory=meta.get("directory") if isinstance(meta.get("directory"), str) else None,
        model=meta.get("model") if isinstance(meta.get("model"), str) else None,
        notebook=meta.get("notebook") if isinstance(meta.get("notebook"), str) else None,
        path=path,
        file_bytes=st.st_size,
        mtime_ns=st.st_mtime_ns,
        message_count=count,
    )


def try_read_header(path: Path, count_messages: bool = False) -> SessionSummary | None:
    """``read_header`` for scans: a missing or broken file is skipped (and logged), never touched."""
    try:
        return read_header(path, count_messages)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, JsonStreamError) as exc:
        log.warning("Skipping %s: not a readable session file (%s)", path, exc)
        return None
