"""The file tools: ``read``, ``write``, ``edit`` and ``list``, confined to one root.

Each factory takes the root directory and returns a ``Tool`` whose blocking file work
runs in a thread of its own (``threaded_tool``). Only regular files are opened
(``fsafe.open_regular``: FIFOs, sockets and devices are refused without blocking).

``read`` reads at most what it returns: lines until the answer would pass what the
model is sent (``TOOL_OUTPUT_CAP``), each line cut at ``READ_LINE_BYTES``, and never
more than ``READ_SCAN_BYTES`` of the file to reach ``offset``. Memory stays at a buffer
or two whatever the file's size (a 5 GB file costs what a 5 KB one does).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, BinaryIO

from ...caps import TOOL_OUTPUT_CAP
from ...errors import ToolError
from .base import Tool
from .common import checkpoint, threaded_tool
from .fsafe import RefusedFile, file_kind, open_regular, printable
from .paths import confine, display_path

__all__ = ["edit_tool", "list_tool", "read_tool", "write_tool"]

READ_DEFAULT_LIMIT = 2000  # lines
READ_LINE_BYTES = 2000  # a longer line is cut, with a note
READ_BODY_BYTES = TOOL_OUTPUT_CAP - 200  # room for the note saying how to read on
READ_SCAN_BYTES = 16 * 1024 * 1024  # the most one call reads to reach its offset
EDIT_MAX_BYTES = 4 * 1024 * 1024  # edit rewrites the whole file: larger ones go through bash
BINARY_PROBE = 8192
LIST_LIMIT = 1000  # entries shown
LIST_SCAN = 100_000  # entries looked at
_MIB = 1024 * 1024


def _open(path: Path, shown: str, *, write: bool = False) -> int:
    if file_kind(path) == "directory":
        raise ToolError(f"{shown} is a directory; use `list` to see what it holds.")
    try:
        return open_regular(path, shown, write=write)
    except RefusedFile as exc:
        if str(exc).startswith("No such file"):
            raise ToolError(f"{exc}. Use `list` or `glob` to find the right path.") from None
        raise ToolError(f"{exc}; only regular files can be read or written "
                        "(FIFOs, sockets and devices are refused).") from None


def _refuse_binary(fd: int, shown: str) -> None:
    if b"\x00" in os.pread(fd, BINARY_PROBE, 0):
        size = os.fstat(fd).st_size
        raise ToolError(f"{shown} looks like a binary file ({size} bytes); only text files can be read.")


def _int_arg(args: dict[str, Any], name: str, default: int, minimum: int) -> int:
    value = args.get(name, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ToolError(f"'{name}' must be an integer >= {minimum}, got {value!r}.")
    return value


# -- read ---------------------------------------------------------------------


class _LineReader:
    """Lines of an open file, each cut at ``READ_LINE_BYTES``; counts every byte it reads."""

    def __init__(self, stream: BinaryIO) -> None:
        self.stream = stream
        self.scanned = 0

    def next(self) -> tuple[bytes, int] | None:
        """The next line without its end, and how many bytes of it were cut; None at the end."""
        line = self.stream.readline(READ_LINE_BYTES + 1)
        self.scanned += len(line)
        if not line:
            return None
        if line.endswith(b"\n"):
            return line[:-1].rstrip(b"\r"), 0
        if len(line) <= READ_LINE_BYTES:
            return line, 0  # the last line, without a newline
        return line[:READ_LINE_BYTES], len(line) - READ_LINE_BYTES + self._skip_rest()

    def _skip_rest(self) -> int:
        skipped = 0
        while self.scanned < READ_SCAN_BYTES:
            checkpoint()
            chunk = self.stream.readline(64 * 1024)
            self.scanned += len(chunk)
            skipped += len(chunk)
            if not chunk or chunk.endswith(b"\n"):
                break
        return skipped

    def at_end(self) -> bool:
        return not self.stream.peek(1)


def _skip_to(lines: _LineReader, offset: int, shown: str) -> int:
    """Skip to line ``offset``; returns how many lines the file has when it ends first."""
    for number in range(1, offset):
        if lines.scanned >= READ_SCAN_BYTES:
            raise ToolError(
                f"Line {offset} of {shown} lies past the first {READ_SCAN_BYTES // _MIB} MiB, more than `read` "
                f"looks at in one call. Use `grep` to find the text, or `bash` with sed -n '{offset},+40p'."
            )
        checkpoint()
        if lines.next() is None:
            return number - 1
    return offset - 1


def _read_page(stream: BinaryIO, shown: str, offset: int, limit: int) -> str:
    lines = _LineReader(stream)
    before = _skip_to(lines, offset, shown)
    if before < offset - 1:
        return f"[{shown} is empty]" if before == 0 else f"[{shown} has {before} lines; nothing from line {offset}]"
    body: list[str] = []
    size = 0
    number = offset
    while len(body) < limit and lines.scanned < READ_SCAN_BYTES:
        checkpoint()
        item = lines.next()
        if item is None:
            break
        raw, cut = item
        text = f"{number:6}\t{raw.decode('utf-8', errors='replace')}" + (f" … [line cut: {cut} more bytes]" if cut else "")
        size += len(text.encode("utf-8")) + 1
        if body and size > READ_BODY_BYTES:
            return "\n".join(body) + f"\n[more lines follow; read on with offset={number}]"
        body.append(text)
        number += 1
    if not body:
        return f"[{shown} is empty]" if offset == 1 else f"[{shown} has {offset - 1} lines; nothing from line {offset}]"
    if not lines.at_end():
        body.append(f"[more lines follow; read on with offset={number}]")
    return "\n".join(body)


def read_tool(root: Path) -> Tool:
    def work(args: dict[str, Any]) -> str:
        path = confine(root, args.get("path"))
        shown = display_path(path, root)
        offset = _int_arg(args, "offset", 1, 1)
        limit = _int_arg(args, "limit", READ_DEFAULT_LIMIT, 1)
        fd = _open(path, shown)
        with os.fdopen(fd, "rb", buffering=64 * 1024) as stream:
            _refuse_binary(fd, shown)
            return _read_page(stream, shown, offset, limit)

    return threaded_tool(
        "read",
        "Read a text file in the session directory; lines are numbered (cat -n style). A long answer "
        "ends with the offset to read on from.",
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


def _write_text(path: Path, shown: str, content: str) -> None:
    fd = _open(path, shown, write=True)
    with os.fdopen(fd, "wb") as stream:
        stream.truncate(0)
        stream.write(content.encode("utf-8"))


def write_tool(root: Path) -> Tool:
    def work(args: dict[str, Any]) -> str:
        path = confine(root, args.get("path"))
        shown = display_path(path, root)
        content = args.get("content")
        if not isinstance(content, str):
            raise ToolError("'content' must be a string: the whole new text of the file.")
        if path.is_dir():
            raise ToolError(f"{shown} is a directory; give a file path.")
        existed = path.exists()
        checkpoint()  # the last point where a cancel stops it: once writing, it finishes
        path.parent.mkdir(parents=True, exist_ok=True)
        _write_text(path, shown, content)
        verb = "Overwrote" if existed else "Created"
        return f"{verb} {shown} ({len(content.encode('utf-8'))} bytes)."

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


def _read_whole(path: Path, shown: str) -> str:
    fd = _open(path, shown)
    with os.fdopen(fd, "rb") as stream:
        size = os.fstat(fd).st_size
        if size > EDIT_MAX_BYTES:
            raise ToolError(f"{shown} is {size} bytes, more than `edit` rewrites ({EDIT_MAX_BYTES // _MIB} MiB); "
                            "use `bash` (sed) for a file this large.")
        _refuse_binary(fd, shown)
        data = stream.read(EDIT_MAX_BYTES + 1)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ToolError(f"{shown} is not UTF-8 text; `edit` would corrupt it. Use `bash` instead.") from None


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
        text = _read_whole(path, shown)
        count = text.count(old)
        if count == 0:
            raise ToolError(f"'old_string' was not found in {shown}; read the file and copy the text exactly.")
        if count > 1 and not replace_all:
            raise ToolError(
                f"'old_string' occurs {count} times in {shown}; add surrounding lines to make it unique "
                "or set replace_all to true."
            )
        checkpoint()
        _write_text(path, shown, text.replace(old, new))
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


def _entries(path: Path) -> tuple[list[str], int]:
    """Up to ``LIST_SCAN`` entry names ("name/" for a folder, a link to one included) and how many were seen."""
    names: list[str] = []
    seen = 0
    with os.scandir(path) as listing:
        for entry in listing:
            checkpoint()
            seen += 1
            if seen > LIST_SCAN:
                break
            try:
                folder = entry.is_dir()  # a symlink loop or dangling link is just a name
            except OSError:
                folder = False
            names.append(printable(entry.name) + ("/" if folder else ""))
    return sorted(names, key=lambda n: n.rstrip("/")), seen


def list_tool(root: Path) -> Tool:
    def work(args: dict[str, Any]) -> str:
        path = confine(root, args.get("path") or ".")
        shown = display_path(path, root)
        if not path.is_dir():
            raise ToolError(f"{shown} is not a directory; use `read` for files.")
        names, seen = _entries(path)
        lines = names[:LIST_LIMIT]
        if seen > LIST_SCAN:
            lines.append(f"[more than {LIST_SCAN} entries; the first {LIST_LIMIT} found are shown, in order]")
        elif len(names) > LIST_LIMIT:
            lines.append(f"[{len(names)} entries in all; first {LIST_LIMIT} shown]")
        return "\n".join(lines) if lines else f"[{shown} is empty]"

    return threaded_tool(
        "list",
        "List the entries of a directory in the session directory (directories end with '/').",
        work,
        properties={
            "path": {"type": "string", "description": "Directory, relative to the session directory (default '.')."},
        },
        required=(),
        read_only=True,
    )
