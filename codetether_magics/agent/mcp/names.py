"""Tool names the model sees: ``mcp__<server>__<tool>``, valid for OpenAI and Anthropic alike.

Both APIs accept ``^[a-zA-Z0-9_-]{1,64}$``. Other characters become ``_``; a server key
never holds ``__`` (so ``--allow mcp__<server>`` cannot match another server's tools); a
name over 64 characters, or two tools that sanitize alike, get a short hash of the
original tool name so every name stays unique and stable across kernels.
"""

from __future__ import annotations

import hashlib
import re

__all__ = ["MAX_TOOL_NAME", "PREFIX", "server_key", "tool_names"]

PREFIX = "mcp"
MAX_TOOL_NAME = 64
_INVALID = re.compile(r"[^A-Za-z0-9_-]")


def server_key(name: str) -> str:
    """``"My DB"`` -> ``"My_DB"``: the server's part of its tool names and of ``--allow mcp__<key>``."""
    key = re.sub(r"_{2,}", "_", _INVALID.sub("_", name)).strip("_")
    return key[:24].rstrip("_")  # room left for the tool's own name within 64


def tool_names(key: str, tools: list[str]) -> dict[str, str]:
    """``{model-facing name: the server's own tool name}`` for one server's tools."""
    chosen: dict[str, str] = {}
    for tool in tools:
        name = _candidate(key, tool)
        if name in chosen:  # "a.b" and "a b" both sanitize to "a_b"
            name = _candidate(key, tool, hashed=True)
        chosen[name] = tool
    return chosen


def _candidate(key: str, tool: str, *, hashed: bool = False) -> str:
    prefix = f"{PREFIX}__{key}__"
    safe = _INVALID.sub("_", tool) or "tool"
    if not hashed and len(prefix) + len(safe) <= MAX_TOOL_NAME:
        return prefix + safe
    digest = hashlib.sha1(tool.encode("utf-8")).hexdigest()[:8]
    room = MAX_TOOL_NAME - len(prefix) - len(digest) - 1
    return f"{prefix}{safe[:room]}_{digest}"
