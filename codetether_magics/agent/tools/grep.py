"""The ``grep`` tool: a regular-expression search that cannot freeze the kernel.

Why a worker process: Python's ``re`` holds the GIL for the whole of one match, so a
catastrophic pattern such as ``(a+)+$`` on a long line of ``a``s stops every thread of the
kernel, its interrupt handler included, and no thread can be stopped from outside. The
``regex`` package's ``timeout=`` and ``concurrent=True`` cover matching but not compiling
(``a{4294967294}`` took the whole memory of a test process while compiling). A separate
process covers both: the walk, the open of each file and the matching run in
``grep_worker`` (one short-lived ``python -I -S``, about 20 ms to start), which the kernel
kills (SIGKILL) when ``GREP_TIME_LIMIT`` passes or the call is cancelled, so an interrupt
ends a grep at once. The worker caps its own memory and CPU time too, and gets no
environment (no credentials).
"""

from __future__ import annotations

import asyncio
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...errors import ToolError
from .base import Tool
from .common import object_schema
from .fsafe import file_kind
from .paths import confine, display_path
from .search import glob_to_regex, relative_pattern

__all__ = ["GREP_TIME_LIMIT", "grep_tool"]

GREP_TIME_LIMIT = 5.0  # seconds: a pattern still matching then ends with an error
GREP_LIMIT = 200  # matches shown
GREP_FILE_BYTES = 2 * 1024 * 1024  # larger files are skipped: grep is for source, not data
_WORKER_DIR = str(Path(__file__).parent)
_BOOT = "import sys; sys.path.insert(0, sys.argv[1]); import grep_worker; grep_worker.main()"


@dataclass
class _Found:
    matches: list[str] = field(default_factory=list)
    files: int = 0
    current: str | None = None
    total: int | None = None
    error: str | None = None

    def add(self, item: dict[str, Any]) -> None:
        if "file" in item:
            self.files += 1
            self.current = item["file"]
        elif "match" in item:
            self.matches.append(item["match"])
        elif "total" in item:
            self.total = item["total"]
        elif "error" in item:
            self.error = item["error"]

    def listing(self) -> str:
        lines = list(self.matches)
        if self.total is not None and self.total > GREP_LIMIT:
            lines.append(f"[{self.total} matches in all; first {GREP_LIMIT} shown: narrow the pattern or path]")
        return "\n".join(lines) if lines else "[no matches]"


def _request(root: Path, args: dict[str, Any]) -> dict[str, Any]:
    pattern = args.get("pattern")
    if not isinstance(pattern, str) or not pattern:
        raise ToolError("'pattern' must be a non-empty regular expression.")
    real_root = root.resolve()
    base = confine(root, args.get("path") or ".")
    kind = file_kind(base)
    if kind not in ("file", "directory"):
        raise ToolError(f"{display_path(base, root)} is {kind}; grep searches regular files and folders only.")
    include = glob_to_regex(relative_pattern(args, "include")).pattern if args.get("include") else None
    return {"pattern": pattern, "ignore_case": bool(args.get("ignore_case", False)), "include": include,
            "root": str(real_root), "base": str(base), "single": kind == "file", "limit": GREP_LIMIT,
            "file_bytes": GREP_FILE_BYTES, "cpu_seconds": int(GREP_TIME_LIMIT) + 5}


async def _consume(stream: asyncio.StreamReader, found: _Found) -> None:
    async for raw in stream:
        found.add(json.loads(raw))


def _too_slow(found: _Found) -> ToolError:
    where = f" while searching {found.current}" if found.current else ""
    so_far = "\n".join(found.matches)
    return ToolError(
        f"grep stopped after {GREP_TIME_LIMIT:g} s{where} ({found.files} files started, {len(found.matches)} "
        "matches so far): the pattern may backtrack catastrophically (nested quantifiers such as (a+)+) or the "
        "search is too wide. Simplify the pattern, or narrow 'path' or 'include'." + (f"\n{so_far}" if so_far else "")
    )


def _kill(process: asyncio.subprocess.Process) -> None:
    try:
        process.kill()
    except ProcessLookupError:  # it ended on its own a moment ago
        pass


async def run_grep(request: dict[str, Any], cwd: Path) -> _Found:
    """Run one search in a worker process; it is killed on timeout or cancellation."""
    if not sys.executable:
        raise ToolError("grep needs a Python interpreter to run its search in, and sys.executable is empty.")
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-I", "-S", "-c", _BOOT, _WORKER_DIR,
        cwd=str(cwd), env={}, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    found = _Found()
    try:
        process.stdin.write(json.dumps(request).encode("utf-8"))
        process.stdin.close()
        await asyncio.wait_for(_consume(process.stdout, found), GREP_TIME_LIMIT)
        code = await process.wait()
    except asyncio.TimeoutError:
        raise _too_slow(found) from None
    finally:  # a timeout, a cancellation or a crash: the worker goes, and is reaped before we return
        if process.returncode is None:
            _kill(process)
            await process.wait()
    if found.error:
        raise ToolError(found.error)
    if code != 0 or found.total is None:
        raise ToolError(f"grep's search process ended early (exit code {code}; it may have run out of memory). "
                        "Narrow 'path' or 'include', or simplify the pattern.")
    return found


def grep_tool(root: Path) -> Tool:
    async def handler(args: dict[str, Any]) -> str:
        found = await run_grep(_request(root, args), root.resolve())
        return found.listing()

    return Tool(
        name="grep",
        description="Search file contents in the session directory with a regular expression; "
        f"prints path:line: text for each match (stopped after {GREP_TIME_LIMIT:g} s).",
        parameters=object_schema({
            "pattern": {"type": "string", "description": "Python regular expression."},
            "path": {"type": "string", "description": "File or directory to search (default: the session directory)."},
            "include": {"type": "string", "description": "Only files matching this glob ('*.py')."},
            "ignore_case": {"type": "boolean", "description": "Case-insensitive match (default false)."},
        }, ["pattern"]),
        handler=handler,
        read_only=True,
    )
