"""What every built-in tool shares: its JSON schema shape and a worker thread for blocking work."""

from __future__ import annotations

import asyncio
from typing import Any, Callable, Sequence

from .base import Tool

__all__ = ["object_schema", "threaded_tool"]


def object_schema(properties: dict[str, Any], required: Sequence[str] = ()) -> dict[str, Any]:
    """A JSON schema for an object with exactly these properties."""
    return {"type": "object", "properties": properties, "required": list(required), "additionalProperties": False}


def threaded_tool(
    name: str,
    description: str,
    work: Callable[[dict[str, Any]], str],
    *,
    properties: dict[str, Any],
    required: Sequence[str] = (),
    read_only: bool,
) -> Tool:
    """A ``Tool`` whose blocking ``work(args)`` runs in a worker thread; the event loop (and a view) keeps running."""

    async def handler(args: dict[str, Any]) -> str:
        return await asyncio.to_thread(work, args)

    return Tool(name=name, description=description, parameters=object_schema(properties, required),
                handler=handler, read_only=read_only)
