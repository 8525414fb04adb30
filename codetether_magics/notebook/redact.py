"""Keep credentials out of what the notebook layer shows or hands to the model.

The providers never put a key in a message; this is the second line of defence for text
that comes from elsewhere: the ``python`` tool's output (``os.environ`` is one line of code
away), and error messages shown in the cell. Values of credential-like environment
variables are replaced wherever they appear.
"""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING, Mapping

if TYPE_CHECKING:  # pragma: no cover
    from ..agent.tools.base import Tool, ToolResult

__all__ = ["REDACTED", "redact", "redacting", "secret_values"]

REDACTED = "[redacted]"
_SECRET_NAME = re.compile(r"(API_KEY|_TOKEN|_SECRET|PASSWORD)$|^VAULT_TOKEN$", re.IGNORECASE)
_MIN_LENGTH = 8  # shorter values would redact ordinary words


def secret_values(environ: Mapping[str, str] | None = None) -> list[str]:
    environ = os.environ if environ is None else environ
    values = {value for name, value in environ.items() if _SECRET_NAME.search(name) and len(value) >= _MIN_LENGTH}
    return sorted(values, key=len, reverse=True)  # longest first: a key containing another


def redact(text: str, environ: Mapping[str, str] | None = None) -> str:
    for value in secret_values(environ):
        if value in text:
            text = text.replace(value, REDACTED)
    return text


def redacting(tool: "Tool") -> "Tool":
    """``tool`` with credentials removed from its output before the model (and the
    transcript) sees it: ``bash -c env`` must not save a key in the session file."""
    import dataclasses

    from ..agent.tools.base import ToolResult

    handler = tool.handler

    async def redacted(arguments: dict) -> "ToolResult | str":
        result = await handler(arguments)
        if isinstance(result, ToolResult):  # images pass through: they are pixels, not text
            return dataclasses.replace(result, output=redact(result.output))
        return redact(result) if isinstance(result, str) else result

    return dataclasses.replace(tool, handler=redacted)
