"""The ``grep`` tool's worker process: walk, open, match, print JSON lines; the kernel kills it at will.

Run as ``python -I -S -c`` with this folder put first on ``sys.path`` (see ``search.grep_tool``),
so it imports only the standard library and ``fsafe``. It reads one JSON request on stdin
and prints one JSON object a line: ``{"file": rel}`` as each file starts (so a timeout can
name the file it was stuck in), ``{"match": "rel:n: text"}`` for the first ``limit`` matches,
then ``{"total": n}``; or ``{"error": message}`` for a pattern that does not compile.
Its own address space and CPU time are capped, so even an orphaned worker ends.
"""

from __future__ import annotations

import json
import os
import re
import resource
import sys
from pathlib import Path

import fsafe  # type: ignore[import-not-found]  # this folder is on sys.path in the worker

MEMORY_LIMIT = 1024 * 1024 * 1024  # bytes of address space


def _limit_self(cpu_seconds: int) -> None:
    """Cap this process; a limit the system will not lower (macOS and RLIMIT_AS) is left as it is,
    since the kernel's kill at the time limit is what bounds the search."""
    for kind, value in ((resource.RLIMIT_AS, MEMORY_LIMIT), (resource.RLIMIT_CPU, cpu_seconds)):
        try:
            resource.setrlimit(kind, (value, value))
        except (ValueError, OSError):
            pass


def _emit(item: dict) -> None:
    sys.stdout.write(json.dumps(item) + "\n")


def _lines_of(path: Path, file_bytes: int) -> list[str] | None:
    try:
        fd = fsafe.open_regular(path, path.name)
    except (fsafe.RefusedFile, OSError):
        return None
    with os.fdopen(fd, "rb") as stream:
        if os.fstat(fd).st_size > file_bytes:
            return None  # grep is for source, not data
        data = stream.read(file_bytes + 1)
    if b"\x00" in data[:8192]:
        return None  # binary
    return data.decode("utf-8", errors="replace").splitlines()


def _wanted(include: re.Pattern[str] | None, path: Path, base: Path) -> bool:
    if include is None:
        return True
    return bool(include.match(path.name) or include.match(path.relative_to(base).as_posix()))


def search(request: dict) -> None:
    try:
        regex = re.compile(request["pattern"], re.IGNORECASE if request["ignore_case"] else 0)
    except re.error as exc:
        _emit({"error": f"'pattern' is not a valid regular expression: {exc}."})
        return
    include = re.compile(request["include"]) if request["include"] else None
    root, base = Path(request["root"]), Path(request["base"])
    files = [base] if request["single"] else fsafe.walk_files(base, root)
    total = 0
    for path in files:
        if not _wanted(include, path, base):
            continue
        rel = fsafe.printable(path.relative_to(root).as_posix())
        _emit({"file": rel})
        for number, line in enumerate(_lines_of(path, request["file_bytes"]) or (), start=1):
            if regex.search(line):
                total += 1
                if total <= request["limit"]:
                    _emit({"match": f"{rel}:{number}: {line[:300]}"})
    _emit({"total": total})


def main() -> None:
    request = json.loads(sys.stdin.read())
    sys.stdout.reconfigure(line_buffering=True)  # the kernel sees progress as it happens
    _limit_self(int(request["cpu_seconds"]))
    search(request)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
