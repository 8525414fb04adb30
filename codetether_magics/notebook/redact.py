"""Keep credentials out of what the notebook layer shows or hands to the model.

The providers never put a key in a message; this is the second line of defence for text
that comes from elsewhere: the ``python`` tool's output (``os.environ`` is one line of code
away), and error messages shown in the cell. The rule itself (which values are secrets) is
``codetether_magics.redaction``, the one redaction module of the package.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..redaction import REDACTED, redact, secret_values

if TYPE_CHECKING:  # pragma: no cover
    from ..agent.tools.base import Tool, ToolResult

__all__ = ["REDACTED", "redact", "redacting", "secret_values"]


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
