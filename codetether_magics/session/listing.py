"""Finding sessions: listing them and picking the latest one of a directory from headers.

The cost of finding the latest session grows with the number of files, not with their
size: while the workspace index matches the files (one ``stat`` each, see ``index.py``)
only the one file it names is read; otherwise only headers are read (``header.py``).
"""

from __future__ import annotations

import os
from pathlib import Path

from . import index
from .header import DirectoryKeys, SessionSummary, directory_key, parse_time, try_read_header
from .paths import sessions_dir

__all__ = ["latest_summary", "list_summaries", "scan"]


def _candidates() -> list[tuple[Path, os.stat_result]]:
    """Every session file with its stat: ``sessions/*.json`` and the index's notebook files."""
    found: list[tuple[Path, os.stat_result]] = []
    try:
        with os.scandir(sessions_dir()) as entries:
            for entry in entries:
                if entry.name.endswith(".json"):
                    try:
                        found.append((Path(entry.path), entry.stat()))
                    except FileNotFoundError:
                        continue
    except FileNotFoundError:
        pass
    seen = {path for path, _ in found}
    for path in index.known_paths():
        if path not in seen:
            try:
                found.append((path, path.stat()))
            except FileNotFoundError:
                continue
    return found


def _signature(candidates: list[tuple[Path, os.stat_result]]) -> list[int]:
    """Changes whenever a file is added, removed, replaced or edited in place."""
    return [len(candidates), max((st.st_mtime_ns for _, st in candidates), default=0),
            sum(st.st_size for _, st in candidates), sum(st.st_ino for _, st in candidates)]


def scan(count_messages: bool = False) -> list[SessionSummary]:
    """Headers of every readable session file (broken files are skipped and logged)."""
    found = (try_read_header(path, count_messages) for path, _ in _candidates())
    return [summary for summary in found if summary is not None]


def _matches(summary: SessionSummary, key: str | None, keys: DirectoryKeys) -> bool:
    return key is None or keys[summary.directory] == key


def _from_index(directory: str | None, signature: list[int]) -> SessionSummary | None:
    entry = index.latest_entry(directory, signature)
    if not entry or not isinstance(entry.get("path"), str):
        return None
    summary = try_read_header(Path(entry["path"]))
    if summary is None or summary.id != entry.get("id"):
        return None
    if summary.updated_at != parse_time(entry.get("updated_at")):
        return None
    key = None if directory is None else directory_key(directory)
    return summary if _matches(summary, key, DirectoryKeys()) else None


def latest_summary(directory: str | os.PathLike[str] | None) -> SessionSummary | None:
    """The most recently updated session whose ``metadata.directory`` is ``directory`` (None: any)."""
    directory = None if directory is None else os.fspath(directory)
    candidates = _candidates()
    signature = _signature(candidates)  # taken before reading: a change meanwhile invalidates
    cached = _from_index(directory, signature)
    if cached is not None:
        return cached
    summaries = [s for s in (try_read_header(path) for path, _ in candidates) if s is not None]
    index.replace_latest(summaries, signature)
    key, keys = (None if directory is None else directory_key(directory)), DirectoryKeys()
    matching = [s for s in summaries if _matches(s, key, keys)]
    return max(matching, key=lambda s: s.sort_key, default=None)


def list_summaries(
    directory: str | os.PathLike[str] | None = None, count_messages: bool = True
) -> list[SessionSummary]:
    """Every session (of ``directory``, when given), newest first.

    ``count_messages`` fills ``message_count``, which walks each whole transcript; without it
    only the headers are read.
    """
    key, keys = (None if directory is None else directory_key(os.fspath(directory))), DirectoryKeys()
    newest: dict[str, SessionSummary] = {}  # one row per id: a copy in two places shows once
    for summary in scan(count_messages):
        if _matches(summary, key, keys) and (
            summary.id not in newest or summary.sort_key > newest[summary.id].sort_key
        ):
            newest[summary.id] = summary
    return sorted(newest.values(), key=lambda s: s.sort_key, reverse=True)
