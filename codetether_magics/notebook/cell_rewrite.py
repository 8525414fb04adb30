"""Rewrite a ``%%codetether`` cell into ``await <runner>(line, body)`` under ipykernel.

Why: a cell magic is synchronous, and inside ipykernel the only way to run the agent on
the kernel's own event loop (live widget updates, Approve / Deny clicks arriving while the
cell runs, a kernel interrupt cancelling the run) is a top-level ``await`` (docs/design.md,
"One road for a cell").
The magic line and the body become Python string literals (``repr``), so ``{}``, ``$`` and
quotes in the prompt reach the model exactly as written.
"""

from __future__ import annotations

import re

__all__ = ["NBVAL_LINE", "RUNNER_NAME", "rewrite_codetether_cell", "strip_nbval_lines"]

RUNNER_NAME = "__codetether_run_cell__"  # where the runner lives in the user namespace
NBVAL_LINE = re.compile(r"^\s*#\s*NBVAL_")
_MAGIC_LINE = re.compile(r"^%%codetether(?:\s(?P<line>.*))?$")
_FIX_LINE = re.compile(r"^%codetether\s+fix(?:\s+(?P<words>.*))?$")  # a cell that is only `%codetether fix`


def strip_nbval_lines(text: str) -> str:
    """Drop ``# NBVAL_...`` marker lines: they are for nbval, not for the model."""
    return "".join(line for line in text.splitlines(keepends=True) if not NBVAL_LINE.match(line))


def rewrite_codetether_cell(lines: list[str]) -> list[str]:
    """An IPython cleanup transformer: leaves every other cell untouched.

    A cell that is only ``%codetether fix [WORDS]`` becomes ``await <runner>('--fix', WORDS)``, so a
    fix streams like any agent cell. The magic may follow blank lines and ``# NBVAL_`` marker
    lines. ``%%codetether?`` is left alone so IPython shows the help; so is every cell under ``%autoawait off`` (the
    cell magic then runs the agent on a worker thread).
    """
    if not _autoawait():
        return lines
    for index, raw in enumerate(lines):
        if not raw.strip() or NBVAL_LINE.match(raw):
            continue
        fix = _FIX_LINE.match(raw.strip())
        if fix is not None and not "".join(lines[index + 1:]).strip():
            return [f"await {RUNNER_NAME}('--fix', {(fix.group('words') or '').strip()!r})\n"]
        match = _MAGIC_LINE.match(raw.rstrip("\r\n"))
        if match is None or raw.rstrip().endswith("?"):
            return lines
        line = (match.group("line") or "").strip()
        body = strip_nbval_lines("".join(lines[index + 1 :]))
        return [f"await {RUNNER_NAME}({line!r}, {body!r})\n"]
    return lines


def _autoawait() -> bool:
    from IPython import get_ipython

    shell = get_ipython()
    return shell is None or bool(getattr(shell, "autoawait", True))
