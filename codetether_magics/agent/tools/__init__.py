"""The built-in tools, each confined to one root directory.

    tools = builtin_tools(Path("/work/project"))   # read, write, edit, list, glob, grep, bash

``read``, ``list``, ``glob`` and ``grep`` are read-only and run at once; ``write``,
``edit`` and ``bash`` change things and go through the approver.
"""

from __future__ import annotations

from pathlib import Path

from ..events import cap_text
from ..tooling import Tool
from .files import edit_tool, list_tool, read_tool, write_tool
from .search import glob_tool, grep_tool
from .shell import BASH_TIMEOUT, bash_tool

__all__ = ["BASH_TIMEOUT", "TOOL_OUTPUT_CAP", "builtin_tools", "cap_tool_output"]

TOOL_OUTPUT_CAP = 4096  # bytes of tool output sent back to the model


def builtin_tools(root: Path | str, *, bash_timeout: float = BASH_TIMEOUT) -> list[Tool]:
    """The seven built-in tools, confined to ``root``."""
    root = Path(root)
    if not root.is_dir():
        raise NotADirectoryError(f"Tool root {root} is not a directory; give the session's working directory.")
    return [
        read_tool(root),
        write_tool(root),
        edit_tool(root),
        list_tool(root),
        glob_tool(root),
        grep_tool(root),
        bash_tool(root, timeout=bash_timeout),
    ]


def cap_tool_output(text: str) -> str:
    """At most ``TOOL_OUTPUT_CAP`` UTF-8 bytes of ``text``, with a note of the full size when cut."""
    return cap_text(text, TOOL_OUTPUT_CAP)
