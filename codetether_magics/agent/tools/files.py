"""The file tools: ``read``, ``write``, ``edit`` and ``list``, confined to one root.

Each factory takes the root directory and returns a ``Tool`` whose blocking file work
runs in a worker thread (``threaded_tool``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ...errors import ToolError
from .base import Tool
from .common import threaded_tool
from .paths import confine, display_path

__all__ = ["edit_tool", "list_tool", "read_tool", "write_tool"]

READ_DEFAULT_LIMIT = 2000  # lines
LIST_LIMIT = 1000  # entries


def _read_text(path: Path, shown: str) -> str:
    if not path.exists():
        raise ToolError(f"No such file: {shown}. Use `list` or `glob` to find the right path.")
    if path.is_dir():
        raise ToolError(f"{shown} is a directory; use `list` to see what it holds.")
    data = path.read_bytes()
    if b"\x00" in data[:8192]:
        raise ToolError(f"{shown} looks like a binary file ({len(data)} bytes); only text files can be read.")
    return data.decode("utf-8", errors="replace")


def _int_arg(args: dict[str, Any], name: str, default: int, minimum: int) -> int:
    value = args.get(name, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ToolError(f"'{name}' must be an integer >= {minimum}, got {value!r}.")
    return value


# -- read ---------------------------------------------------------------------


def read_tool(root: Path) -> Tool:
    def work(args: dict[str, Any]) -> str:
        path = confine(root, args.get("path"))
        shown = display_path(path, root)
        offset = _int_arg(args, "offset", 1, 1)
        limit = _int_arg(args, "limit", READ_DEFAULT_LIMIT, 1)
        lines = _read_text(path, shown).splitlines()
        if not lines:
            return f"[{shown} is empty]"
        chosen = lines[offset - 1 : offset - 1 + limit]
        if not chosen:
            return f"[{shown} has {len(lines)} lines; nothing from line {offset}]"
        body = "\n".join(f"{n:6}\t{line}" for n, line in enumerate(chosen, start=offset))
        if offset - 1 + limit < len(lines):
            body += f"\n[{len(lines)} lines in all; read on with offset={offset + limit}]"
        return body

    return threaded_tool(
        "read",
        "Read a text file in the session directory; lines are numbered (cat -n style).",
        work,
        properties={
            "path": {"type": "string", "description": "File path, relative to the session directory."},
            "offset": {"type": "integer", "minimum": 1, "description": "First line to read (1-based)."},
            "limit": {"type": "integer", "minimum": 1, "description": "How many lines to read."},
        },
        required=["path"],
        read_only=True,
    )


# -- write --------------------------------------------------------------------


def write_tool(root: Path) -> Tool:
    def work(args: dict[str, Any]) -> str:
        path = confine(root, args.get("path"))
        content = args.get("content")
        if not isinstance(content, str):
            raise ToolError("'content' must be a string: the whole new text of the file.")
        if path.is_dir():
            raise ToolError(f"{display_path(path, root)} is a directory; give a file path.")
        path.parent.mkdir(parents=True, exist_ok=True)
        existed = path.exists()
        path.write_text(content, encoding="utf-8")
        verb = "Overwrote" if existed else "Created"
        return f"{verb} {display_path(path, root)} ({len(content.encode('utf-8'))} bytes)."

    return threaded_tool(
        "write",
        "Create or overwrite a text file in the session directory with the given content.",
        work,
        properties={
            "path": {"type": "string", "description": "File path, relative to the session directory."},
            "content": {"type": "string", "description": "The complete new content of the file."},
        },
        required=["path", "content"],
        read_only=False,
    )


# -- edit ---------------------------------------------------------------------


def edit_tool(root: Path) -> Tool:
    def work(args: dict[str, Any]) -> str:
        path = confine(root, args.get("path"))
        shown = display_path(path, root)
        old, new = args.get("old_string"), args.get("new_string")
        if not isinstance(old, str) or not old:
            raise ToolError("'old_string' must be a non-empty string: the exact text to replace.")
        if not isinstance(new, str):
            raise ToolError("'new_string' must be a string: the replacement text.")
        replace_all = bool(args.get("replace_all", False))
        text = _read_text(path, shown)
        count = text.count(old)
        if count == 0:
            raise ToolError(f"'old_string' was not found in {shown}; read the file and copy the text exactly.")
        if count > 1 and not replace_all:
            raise ToolError(
                f"'old_string' occurs {count} times in {shown}; add surrounding lines to make it unique "
                "or set replace_all to true."
            )
        path.write_text(text.replace(old, new), encoding="utf-8")
        return f"Edited {shown}: replaced {count} occurrence{'s' if count > 1 else ''}."

    return threaded_tool(
        "edit",
        "Replace exact text in a file in the session directory (old_string must be unique "
        "unless replace_all is true).",
        work,
        properties={
            "path": {"type": "string", "description": "File path, relative to the session directory."},
            "old_string": {"type": "string", "description": "The exact text to replace."},
            "new_string": {"type": "string", "description": "The text to put in its place."},
            "replace_all": {"type": "boolean", "description": "Replace every occurrence (default false)."},
        },
        required=["path", "old_string", "new_string"],
        read_only=False,
    )


# -- list ---------------------------------------------------------------------


def list_tool(root: Path) -> Tool:
    def work(args: dict[str, Any]) -> str:
        path = confine(root, args.get("path") or ".")
        shown = display_path(path, root)
        if not path.is_dir():
            raise ToolError(f"{shown} is not a directory; use `read` for files.")
        entries = sorted(path.iterdir(), key=lambda p: p.name)
        lines = [f"{p.name}/" if p.is_dir() else p.name for p in entries[:LIST_LIMIT]]
        if len(entries) > LIST_LIMIT:
            lines.append(f"[{len(entries)} entries in all; first {LIST_LIMIT} shown]")
        return "\n".join(lines) if lines else f"[{shown} is empty]"

    return threaded_tool(
        "list",
        "List the entries of a directory in the session directory (directories end with '/').",
        work,
        properties={
            "path": {"type": "string", "description": "Directory, relative to the session directory (default '.')."},
        },
        read_only=True,
    )
