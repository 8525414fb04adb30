"""The ``glob`` tool and the glob translation ``grep``'s ``include`` shares.

The walk (``fsafe.walk_files``) never follows a symlinked directory, skips links whose
real path lies outside the root or loops, and lists regular files only, so ``glob`` can
neither read past the session directory nor stop at a FIFO or a symlink loop.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ...errors import ToolError
from .base import Tool
from .common import checkpoint, threaded_tool
from .fsafe import printable, walk_files
from .paths import confine

__all__ = ["glob_to_regex", "glob_tool", "relative_pattern"]

GLOB_LIMIT = 500


def glob_to_regex(pattern: str) -> re.Pattern[str]:
    """Translate a glob with ``**`` (any number of directories), ``*``, ``?`` and ``[...]`` to a regex."""
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        elif pattern[i] == "[" and "]" in pattern[i + 1 :]:
            end = pattern.index("]", i + 1)
            body = pattern[i + 1 : end].replace("\\", "\\\\")
            out.append("[^" + body[1:] + "]" if body.startswith("!") else "[" + body + "]")
            i = end + 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out) + r"\Z")


def relative_pattern(args: dict[str, Any], key: str) -> str:
    value = args.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ToolError(f"'{key}' must be a non-empty glob pattern such as '**/*.py'.")
    if value.startswith("/") or ".." in Path(value).parts:
        raise ToolError(f"'{key}' must be relative to the search directory and may not contain '..'.")
    return value


def glob_tool(root: Path) -> Tool:
    def work(args: dict[str, Any]) -> str:
        real_root = root.resolve()
        base = confine(root, args.get("path") or ".")
        regex = glob_to_regex(relative_pattern(args, "pattern"))
        lines: list[str] = []
        total = 0
        for path in walk_files(base, real_root, checkpoint):
            if regex.match(path.relative_to(base).as_posix()):
                total += 1
                if total <= GLOB_LIMIT:
                    lines.append(printable(path.relative_to(real_root).as_posix()))
        if total > GLOB_LIMIT:
            lines.append(f"[{total} matches in all; first {GLOB_LIMIT} shown: narrow the pattern]")
        return "\n".join(lines) if lines else "[no files match]"

    return threaded_tool(
        "glob",
        "Find files in the session directory by glob pattern ('**/*.py', 'data/*.csv').",
        work,
        properties={
            "pattern": {"type": "string", "description": "Glob pattern relative to 'path'; '**' spans directories."},
            "path": {"type": "string", "description": "Directory to search (default: the session directory)."},
        },
        required=["pattern"],
        read_only=True,
    )
