"""How much text may travel where: the caps on event fields and on tool output, in one place.

Events carry a tool call's arguments and output to the notebook's view, which renders every
byte it is given; the model gets a tool's output back in its next request, where every byte
costs context. Both are cut here, with a note saying how much there was, so nobody reads a cut
text as the whole of it.
"""

from __future__ import annotations

__all__ = ["ARGUMENTS_CAP", "OUTPUT_CAP", "TOOL_OUTPUT_CAP", "cap_text", "cap_tool_output"]

ARGUMENTS_CAP = 4 * 1024  # bytes of a tool call's arguments in an event
OUTPUT_CAP = 8 * 1024  # bytes of a tool's output in an event
TOOL_OUTPUT_CAP = 4096  # bytes of tool output sent back to the model


def cap_text(text: str, limit: int) -> str:
    """Cut ``text`` to at most ``limit`` UTF-8 bytes, saying how much was left out."""
    raw = text.encode("utf-8")
    if len(raw) <= limit:
        return text
    kept = raw[: max(0, limit - 64)].decode("utf-8", errors="ignore")
    return f"{kept}\n… [truncated: {len(raw)} bytes in all]"


def cap_tool_output(text: str) -> str:
    """At most ``TOOL_OUTPUT_CAP`` UTF-8 bytes of ``text``, with a note of the full size when cut."""
    return cap_text(text, TOOL_OUTPUT_CAP)
