"""The search tools: ``glob`` and ``grep``, walking the root without leaving it.

The walk never follows a symlinked directory and skips files whose real path lies
outside the root, so neither tool can be used to read past the session directory.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Iterator

from ...errors import ToolError
from .base import Tool
from .common import threaded_tool
from .paths import confine, is_inside

__all__ = ["glob_tool", "grep_tool", "glob_to_regex"]

GLOB_LIMIT = 500
GREP_LIMIT = 200
GREP_FILE_BYTES = 2 * 1024 * 1024  # larger files are skipped: grep is for source, not data
SKIPPED_DIRS = {".git", ".hg", ".svn", "__pycache__", ".ipynb_checkpoints", "node_modules", ".venv"}


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


def _walk_files(base: Path, root: Path) -> Iterator[Path]:
    """Every regular file under ``base`` whose real path stays inside ``root`` (sorted, symlinked dirs not followed).

    ``base`` is already resolved and no symlinked directory is entered, so every folder of a
    yielded path is real: ``path.relative_to(root)`` names it without resolving it again.
    """
    for dirpath, dirnames, filenames in os.walk(base, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIPPED_DIRS)
        for name in sorted(filenames):
            path = Path(dirpath, name)
            real = path.resolve()
            if is_inside(real, root) and real.is_file():
                yield path


def _relative_pattern(args: dict[str, Any], key: str) -> str:
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
        regex = glob_to_regex(_relative_pattern(args, "pattern"))
        hits = [p for p in _walk_files(base, real_root) if regex.match(p.relative_to(base).as_posix())]
        lines = [p.relative_to(real_root).as_posix() for p in hits[:GLOB_LIMIT]]
        if len(hits) > GLOB_LIMIT:
            lines.append(f"[{len(hits)} matches in all; first {GLOB_LIMIT} shown: narrow the pattern]")
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


def _compile(pattern: object, ignore_case: bool) -> re.Pattern[str]:
    if not isinstance(pattern, str) or not pattern:
        raise ToolError("'pattern' must be a non-empty regular expression.")
    try:
        return re.compile(pattern, re.IGNORECASE if ignore_case else 0)
    except re.error as exc:
        raise ToolError(f"'pattern' is not a valid regular expression: {exc}.") from None


def _grep_file(path: Path, regex: re.Pattern[str]) -> Iterator[tuple[int, str]]:
    if path.stat().st_size > GREP_FILE_BYTES:
        return
    data = path.read_bytes()
    if b"\x00" in data[:8192]:
        return  # binary
    for number, line in enumerate(data.decode("utf-8", errors="replace").splitlines(), start=1):
        if regex.search(line):
            yield number, line[:300]


def grep_tool(root: Path) -> Tool:
    def work(args: dict[str, Any]) -> str:
        real_root = root.resolve()
        regex = _compile(args.get("pattern"), bool(args.get("ignore_case", False)))
        base = confine(root, args.get("path") or ".")
        include = glob_to_regex(_relative_pattern(args, "include")) if args.get("include") else None
        files = [base] if base.is_file() else _walk_files(base, real_root)
        lines: list[str] = []
        total = 0
        for path in files:
            if include is not None and not include.match(path.name) and not include.match(
                path.relative_to(base).as_posix() if path != base else path.name
            ):
                continue
            for number, text in _grep_file(path, regex):
                total += 1
                if len(lines) < GREP_LIMIT:
                    lines.append(f"{path.relative_to(real_root).as_posix()}:{number}: {text}")
        if total > GREP_LIMIT:
            lines.append(f"[{total} matches in all; first {GREP_LIMIT} shown: narrow the pattern or path]")
        return "\n".join(lines) if lines else "[no matches]"

    return threaded_tool(
        "grep",
        "Search file contents in the session directory with a regular expression; "
        "prints path:line: text for each match.",
        work,
        properties={
            "pattern": {"type": "string", "description": "Python regular expression."},
            "path": {"type": "string", "description": "File or directory to search (default: the session directory)."},
            "include": {"type": "string", "description": "Only files matching this glob ('*.py')."},
            "ignore_case": {"type": "boolean", "description": "Case-insensitive match (default false)."},
        },
        required=["pattern"],
        read_only=True,
    )
