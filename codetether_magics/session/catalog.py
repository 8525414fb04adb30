"""Finding sessions: listing them and picking the latest one of a directory from headers.

The cost of finding the latest session grows with the number of files, not with their
size: only headers are read (see ``header.py``), and while the workspace index is valid
(see ``index.py``) only the one file it names is read.
"""

from __future__ import annotations

import os
from pathlib import Path

from . import index
from .header import SessionSummary, directory_key, parse_time, try_read_header
from .paths import sessions_dir

__all__ = ["latest_summary", "list_summaries"]


def _candidate_paths() -> list[Path]:
    folder = sessions_dir()
    try:
        names = [entry.path for entry in os.scandir(folder) if entry.name.endswith(".json")]
    except FileNotFoundError:
        names = []
    paths = [Path(name) for name in names]
    return paths + [p for p in index.known_paths() if p not in paths]


def scan(count_messages: bool = False) -> list[SessionSummary]:
    """Headers of every readable session file (broken files are skipped and logged)."""
    found = (try_read_header(path, count_messages) for path in _candidate_paths())
    return [summary for summary in found if summary is not None]


class _Keys(dict):
    """``directory_key`` memoised for one scan (many files share a few directories)."""

    def __missing__(self, directory: str | None) -> str:
        self[directory] = value = directory_key(directory)
        return value


def _matches(summary: SessionSummary, key: str | None, keys: _Keys | None = None) -> bool:
    return key is None or (keys if keys is not None else _Keys())[summary.directory] == key


def _from_index(directory: str | None) -> SessionSummary | None:
    entry = index.latest_entry(directory)
    if not entry or not isinstance(entry.get("path"), str):
        return None
    summary = try_read_header(Path(entry["path"]))
    if summary is None or summary.id != entry.get("id"):
        return None
    if summary.updated_at != parse_time(entry.get("updated_at")):
        return None
    key = None if directory is None else directory_key(directory)
    return summary if _matches(summary, key) else None


def latest_summary(directory: str | os.PathLike[str] | None) -> SessionSummary | None:
    """The most recently updated session whose ``metadata.directory`` is ``directory`` (None: any)."""
    directory = None if directory is None else os.fspath(directory)
    cached = _from_index(directory)
    if cached is not None:
        return cached
    folder_mtime = index.folder_mtime_ns()  # before the scan: a change during it invalidates
    summaries = scan()
    index.replace_latest(summaries, folder_mtime)
    key, keys = (None if directory is None else directory_key(directory)), _Keys()
    matching = [s for s in summaries if _matches(s, key, keys)]
    return max(matching, key=lambda s: s.sort_key, default=None)


def list_summaries(directory: str | os.PathLike[str] | None = None) -> list[SessionSummary]:
    """Every session (of ``directory``, when given), newest first, with message counts."""
    key, keys = (None if directory is None else directory_key(os.fspath(directory))), _Keys()
    summaries = [s for s in scan(count_messages=True) if _matches(s, key, keys)]
    return sorted(summaries, key=lambda s: s.sort_key, reverse=True)
