"""The workspace index: a small cache in the data dir that makes two lookups cheap.

``<data dir>/index.json`` records, per directory, the latest session (id, path,
updated_at) and, per id, where sessions outside ``sessions/`` live (a notebook's
``analysis.codetether.json``). It is only a cache: every entry is checked against the
file's header before use, and the per-directory entries are trusted only while the
``sessions/`` folder's mtime is the one recorded with them (a file added, removed or
replaced there by anyone changes it). A broken index is ignored and rebuilt.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Iterable

import orjson

from .files import file_lock, write_atomic
from .header import SessionSummary, directory_key, parse_time
from .paths import data_dir, sessions_dir

__all__ = ["folder_mtime_ns", "known_paths", "latest_entry", "lookup_path", "record", "replace_latest", "forget"]

log = logging.getLogger(__name__)
INDEX_NAME = "index.json"


def _index_path() -> Path:
    return data_dir() / INDEX_NAME


def _folder_mtime_ns() -> int | None:
    try:
        return os.stat(sessions_dir()).st_mtime_ns
    except FileNotFoundError:
        return None


def _read() -> dict[str, Any]:
    try:
        data = orjson.loads(_index_path().read_bytes())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError):
        log.warning("Ignoring unreadable session index %s; it will be rebuilt", _index_path())
        return {}
    return data if isinstance(data, dict) else {}


def _entry(header: SessionSummary) -> dict[str, Any]:
    return {"id": header.id, "path": str(header.path), "updated_at": header.updated_at.isoformat()}


def _update(change) -> None:  # change(index: dict) -> None, under the index lock
    path = _index_path()
    try:
        with file_lock(path):
            index = _read()
            index.setdefault("latest", {})
            index.setdefault("paths", {})
            change(index)
            write_atomic(path, orjson.dumps(index), durable=False)
    except OSError as exc:  # the index is a cache: never fail a save because of it
        log.warning("Could not update the session index %s: %s", path, exc)


def folder_mtime_ns() -> int | None:
    return _folder_mtime_ns()


def record(header: SessionSummary, folder_mtimes: tuple[int | None, int | None] | None) -> None:
    """Note a session just saved.

    ``folder_mtimes`` is ``sessions/``'s mtime just before and just after the save, both
    read under the folder lock (None for a file outside ``sessions/``): the per-directory
    entries stay trusted only if the index was valid right before our own change.
    """

    def change(index: dict[str, Any]) -> None:
        key = directory_key(header.directory)
        latest = index["latest"].get(key)
        if latest is None or parse_time(latest.get("updated_at")) <= header.updated_at:
            index["latest"][key] = _entry(header)
        if folder_mtimes is None:
            index["paths"][header.id] = str(header.path)
            return
        before, after = folder_mtimes
        valid = before is not None and index.get("sessions_mtime_ns") == before
        index["sessions_mtime_ns"] = after if valid else None

    _update(change)


def replace_latest(headers: Iterable[SessionSummary], folder_mtime: int | None) -> None:
    """After a full scan: the latest session of every directory, valid for ``folder_mtime``."""
    latest: dict[str, SessionSummary] = {}
    keys: dict[str | None, str] = {}
    for header in headers:
        if header.directory not in keys:
            keys[header.directory] = directory_key(header.directory)
        key = keys[header.directory]
        if key not in latest or header.sort_key > latest[key].sort_key:
            latest[key] = header

    def change(index: dict[str, Any]) -> None:
        index["latest"] = {key: _entry(h) for key, h in latest.items()}
        index["sessions_mtime_ns"] = folder_mtime

    _update(change)


def latest_entry(directory: str | None) -> dict[str, Any] | None:
    """The recorded latest session of ``directory`` (None = any), if the index is still valid."""
    index = _read()
    recorded = index.get("sessions_mtime_ns")
    if recorded is None or recorded != _folder_mtime_ns():
        return None
    latest = index.get("latest") or {}
    if directory is not None:
        return latest.get(directory_key(directory))
    entries = [entry for entry in latest.values() if isinstance(entry, dict)]
    return max(entries, key=lambda entry: parse_time(entry.get("updated_at")), default=None)


def lookup_path(session_id: str) -> Path | None:
    path = (_read().get("paths") or {}).get(session_id)
    return Path(path) if isinstance(path, str) else None


def known_paths() -> list[Path]:
    """Session files outside ``sessions/`` that the index knows of."""
    return [Path(p) for p in (_read().get("paths") or {}).values() if isinstance(p, str)]


def forget(session_id: str) -> None:
    def change(index: dict[str, Any]) -> None:
        index["paths"].pop(session_id, None)
        for key, entry in list(index["latest"].items()):
            if isinstance(entry, dict) and entry.get("id") == session_id:
                del index["latest"][key]

    _update(change)
