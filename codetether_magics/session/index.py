"""The workspace index: a small cache in the data dir that makes two lookups cheap.

``<data dir>/index.json`` records, per directory, the latest session (id, path,
updated_at) and, per id, where sessions outside ``sessions/`` live (a notebook's
``analysis.codetether.json``). It is only a cache. The per-directory entries carry the
*signature* of the session files they were computed from (how many there are, their
newest mtime and their total size): any file added, removed, replaced or edited in
place by anyone changes it, and the entries are then ignored until the next header
scan rewrites them. An entry is also checked against its file's header before use. A
broken index is ignored and rebuilt.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Iterable

import orjson

from .files import file_lock, write_atomic
from .header import DirectoryKeys, SessionSummary, directory_key, parse_time
from .paths import data_dir

__all__ = ["forget", "known_paths", "latest_entry", "lookup_path", "record_location", "replace_latest"]

log = logging.getLogger(__name__)
INDEX_NAME = "index.json"


def _index_path() -> Path:
    return data_dir() / INDEX_NAME


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


def _update(change) -> None:  # change(index: dict) -> None, run under the index lock
    path = _index_path()
    try:
        with file_lock(path):
            index = _read()
            if not isinstance(index.get("latest"), dict):
                index["latest"] = {}
            if not isinstance(index.get("paths"), dict):
                index["paths"] = {}
            change(index)
            write_atomic(path, orjson.dumps(index), durable=False)
    except OSError as exc:  # the index is a cache: never fail a save because of it
        log.warning("Could not update the session index %s: %s", path, exc)


def record_location(session_id: str, path: Path) -> None:
    """Remember that ``session_id`` lives at ``path`` (a file outside ``sessions/``)."""
    paths = _read().get("paths")
    if isinstance(paths, dict) and paths.get(session_id) == str(path):
        return  # already known: no write

    def change(index: dict[str, Any]) -> None:
        index["paths"][session_id] = str(path)

    _update(change)


def replace_latest(headers: Iterable[SessionSummary], signature: list[int]) -> None:
    """After a full scan: the latest session of every directory, valid while ``signature`` holds."""
    latest: dict[str, SessionSummary] = {}
    keys = DirectoryKeys()
    for header in headers:
        key = keys[header.directory]
        if key not in latest or header.sort_key > latest[key].sort_key:
            latest[key] = header

    def change(index: dict[str, Any]) -> None:
        index["latest"] = {key: _entry(h) for key, h in latest.items()}
        index["signature"] = signature

    _update(change)


def latest_entry(directory: str | None, signature: list[int]) -> dict[str, Any] | None:
    """The recorded latest session of ``directory`` (None: of any), if the files still match."""
    index = _read()
    if index.get("signature") != signature:
        return None
    latest = index.get("latest") if isinstance(index.get("latest"), dict) else {}
    if directory is not None:
        return latest.get(directory_key(directory))
    entries = [entry for entry in latest.values() if isinstance(entry, dict)]
    return max(entries, key=lambda entry: parse_time(entry.get("updated_at")), default=None)


def lookup_path(session_id: str) -> Path | None:
    paths = _read().get("paths")
    path = paths.get(session_id) if isinstance(paths, dict) else None
    return Path(path) if isinstance(path, str) else None


def known_paths() -> list[Path]:
    """Session files outside ``sessions/`` that the index knows of."""
    paths = _read().get("paths")
    return [Path(p) for p in paths.values() if isinstance(p, str)] if isinstance(paths, dict) else []


def forget(session_id: str) -> None:
    def change(index: dict[str, Any]) -> None:
        index["paths"].pop(session_id, None)
        for key, entry in list(index["latest"].items()):
            if isinstance(entry, dict) and entry.get("id") == session_id:
                del index["latest"][key]

    _update(change)
