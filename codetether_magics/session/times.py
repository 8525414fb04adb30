"""Times as session files write them: aware UTC, RFC 3339 with a trailing ``Z``."""

from __future__ import annotations

from datetime import datetime, timezone

__all__ = ["format_time", "utc_now"]


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def format_time(value: datetime) -> str:
    """RFC 3339 in UTC with a trailing ``Z``, as every time in a session file is written."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")
