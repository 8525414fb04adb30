"""The built-in tools, each confined to one root directory.

    tools = builtin_tools(Path("/work/project"))   # read, write, edit, list, glob, grep, bash

``read``, ``list``, ``glob`` and ``grep`` are read-only and run at once; ``write``,
``edit`` and ``bash`` change things and go through the approver.
"""

from __future__ import annotations

from pathlib import Path

from .base import Tool
from .files import edit_tool, list_tool, read_tool, write_tool
from .grep import grep_tool
from .search import glob_tool
from .shell import BASH_TIMEOUT, bash_tool

__all__ = ["BASH_TIMEOUT", "builtin_tools"]


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
