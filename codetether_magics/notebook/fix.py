"""``%codetether fix`` and ``%%codetether --fix``: the prompt made from the kernel's last exception.

The prompt holds the exception's type and message, its traceback (cells named by number,
library paths shortened, so the text is the same on every machine and replay finds the turn
again) and the failing cell's source, then asks for an explanation and the fix as an
``insert_cell``. The user's own words, if any, come last.
"""

from __future__ import annotations

from typing import Any

from .cell_log import CellRecord
from .redact import redact

__all__ = ["NO_EXCEPTION", "fix_prompt", "prompt_for"]

NO_EXCEPTION = "CodeTether: no exception in this kernel since the extension was loaded, so there is nothing to fix."
INSTRUCTION = (
    "Explain briefly why this exception happened, then propose the fix as ONE new cell with the "
    "insert_cell tool (the user reviews and runs it). Look at the notebook (cells, variables) before "
    "guessing."
)


def prompt_for(cell: CellRecord, extra: str = "") -> str:
    """The fix request for ``cell``, which raised."""
    assert cell.error is not None
    fence = "```"
    while fence in cell.source or fence in cell.error.traceback:
        fence += "`"
    parts = [
        f"Cell {cell.number} raised {cell.error.summary.splitlines()[-1]}",
        f"The cell's source:\n{fence}python\n{cell.source.rstrip()}\n{fence}",
        f"Traceback:\n{fence}\n{cell.error.traceback}\n{fence}",
        INSTRUCTION,
    ]
    if extra.strip():
        parts.append(extra.strip())
    return redact("\n\n".join(parts))  # it is saved in the transcript: no credential may ride along


def fix_prompt(magics: Any, extra: str = "") -> str | None:
    """The fix prompt for the last exception, or None after printing the one-line 'nothing to fix'."""
    log = magics.cell_log
    cell = log.last_error() if log is not None else None
    if cell is None:
        print(NO_EXCEPTION)
        return None
    return prompt_for(cell, extra)
