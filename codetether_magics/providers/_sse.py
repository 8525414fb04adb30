"""A small Server-Sent Events parser shared by every streaming protocol.

It follows the WHATWG event-stream rules that matter here: ``field: value`` lines,
comments starting with ``:``, several ``data`` lines joined with newlines, and an
event dispatched at each blank line (or at the end of the stream).
"""

from __future__ import annotations

from typing import Any, AsyncIterable, AsyncIterator, NamedTuple

import orjson

from ..errors import ProviderStreamError

__all__ = ["SSEEvent", "load_event_json", "parse_sse"]


class SSEEvent(NamedTuple):  # a tuple: built once per streamed chunk, and cheaper than a frozen dataclass
    event: str  # "message" when the server named none
    data: str


async def parse_sse(lines: AsyncIterable[str]) -> AsyncIterator[SSEEvent]:
    """Events from decoded lines (as ``httpx.Response.aiter_lines`` gives them)."""
    event_name = ""
    data: list[str] = []
    async for line in lines:
        if not line:
            if data:
                yield SSEEvent(event_name or "message", "\n".join(data))
            event_name, data = "", []
            continue
        if line.startswith(":"):
            continue  # a comment / keep-alive
        field, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if field == "event":
            event_name = value
        elif field == "data":
            data.append(value)
        # "id" and "retry" mean nothing for a single model response; other fields are ignored by the spec.
    if data:
        yield SSEEvent(event_name or "message", "\n".join(data))


def load_event_json(data: str, provider: str) -> dict[str, Any]:
    """The JSON object in one event's ``data``; anything else is a malformed stream.

    orjson (a dependency already, for session files) parses a chunk about four times
    faster than ``json``: this runs once per streamed chunk."""
    try:
        value = orjson.loads(data)
    except ValueError:
        raise ProviderStreamError(f"{provider}: malformed event in the stream: {data[:200]!r}") from None
    if not isinstance(value, dict):
        raise ProviderStreamError(f"{provider}: unexpected event in the stream: {data[:200]!r}")
    return value
