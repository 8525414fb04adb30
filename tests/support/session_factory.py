"""Sessions for tests: every part type, and files written the way other writers might."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import orjson

from codetether_magics.messages import (
    FilePart,
    ImagePart,
    Message,
    TextPart,
    ThinkingPart,
    ToolCallPart,
    ToolResultPart,
    ToolUse,
    Usage,
)
from codetether_magics.session.session import Session

PNG_DATA_URL = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="


def every_part_messages() -> list[Message]:
    return [
        Message(role="system", content=[TextPart(text="You are a careful data scientist.")]),
        Message(role="developer", content=[TextPart(text="Prefer pandas.")]),
        Message(role="user", content=[
            TextPart(text="Why does the residual plot fan out? ünïcødé \"quoted\" \\ back"),
            ImagePart(url=PNG_DATA_URL, mime_type="image/png"),
            FilePart(path="data/sales.csv", mime_type="text/csv"),
        ]),
        Message(role="assistant", content=[
            ThinkingPart(text="Heteroscedasticity, probably.", signature="sig-abc"),
            TextPart(text="Let me check the variance."),
            ToolCallPart(id="call_1", name="python", arguments='{"code": "df.var()", "n": 1}'),
        ]),
        Message(role="tool", content=[ToolResultPart(tool_call_id="call_1", content="x    4.2\ndtype: float64")]),
        Message(role="assistant", content=[ThinkingPart(text="no signature here")]),
    ]


async def session_with_every_part(directory: str | None = None) -> Session:
    session = await Session.new(directory)
    for message in every_part_messages():
        session.add_message(message)
    session.tool_uses.append(ToolUse(id="call_1", name="python", input={"code": "df.var()"}, output="4.2", success=True))
    session.usage = Usage(prompt_tokens=10, completion_tokens=5, total_tokens=15, cache_read_tokens=2, cache_write_tokens=1)
    session.title = "Residuals"
    return session


def session_document(session_id: str, directory: str, updated_at: datetime, n_messages: int = 1,
                     padding: int = 0, title: str | None = None) -> dict:
    """A session file's JSON as another writer would produce it (same layout)."""
    text = "x" * padding
    return {
        "id": session_id,
        "title": title,
        "created_at": "2026-01-01T00:00:00Z",
        "updated_at": updated_at.astimezone(timezone.utc).isoformat().replace("+00:00", "Z"),
        "metadata": {"directory": directory, "model": None, "notebook": None, "provenance": None,
                     "auto_apply_edits": False, "allow_network": False, "shared": False},
        "agent": "build",
        "messages": [{"role": "user", "content": [{"type": "text", "text": f"m{i} {text}"}]}
                     for i in range(n_messages)],
        "tool_uses": [],
        "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0,
                  "cache_read_tokens": 0, "cache_write_tokens": 0},
    }


def write_document(folder: Path, document: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{document['id']}.json"
    path.write_bytes(orjson.dumps(document))
    return path


def times(n: int, start: datetime | None = None) -> list[datetime]:
    base = start or datetime(2026, 3, 1, tzinfo=timezone.utc)
    return [base + timedelta(seconds=i) for i in range(n)]
