"""``%codetether export md|json``: the transcript as Markdown to read, or JSON to process.

JSON is the session file format itself (docs/design.md, "The session file"); Markdown shows each message under
its role, tool calls with their arguments and results in code fences, and images as a
note (a data URL is megabytes of noise in a document meant for reading).
"""

from __future__ import annotations

import json
from typing import Any

from ..messages import ImagePart, TextPart, ThinkingPart, ToolCallPart, ToolResultPart

__all__ = ["to_json", "to_markdown"]


def pretty_arguments(arguments: str) -> str:
    """Indent JSON arguments for reading; anything else is shown as it came."""
    try:
        return json.dumps(json.loads(arguments), indent=2, ensure_ascii=False)
    except (ValueError, TypeError):
        return arguments


def to_json(session: Any) -> bytes:
    from ..session.codec import encode_session

    return encode_session(session)


def to_markdown(session: Any) -> bytes:
    lines = [f"# {session.title or 'CodeTether session'}", "", f"Session `{session.id}`"]
    if session.metadata.model:
        lines[-1] += f", model `{session.metadata.model}`"
    for message in session.messages:
        if message.role in ("system", "developer"):
            continue
        lines += ["", f"## {message.role.capitalize()}", ""]
        lines += [_part(part) for part in message.content]
    usage = session.usage
    lines += ["", f"*Tokens: {usage.prompt_tokens} prompt, {usage.completion_tokens} completion.*", ""]
    return "\n".join(lines).encode("utf-8")


def _part(part: Any) -> str:
    if isinstance(part, TextPart):
        return part.text + "\n"
    if isinstance(part, ThinkingPart):
        return "<details><summary>Thinking</summary>\n\n" + part.text + "\n\n</details>\n"
    if isinstance(part, ToolCallPart):
        return f"**Tool call `{part.name}`**\n\n{_fence(pretty_arguments(part.arguments), 'json')}"
    if isinstance(part, ToolResultPart):
        return f"**Result**\n\n{_fence(part.content)}"
    if isinstance(part, ImagePart):
        return f"*(image attached: {part.mime_type or 'image'})*\n"
    return f"*({getattr(part, 'type', 'part')})*\n"


def _fence(text: str, language: str = "") -> str:
    fence = "```"
    while fence in text:
        fence += "`"
    return f"{fence}{language}\n{text}\n{fence}\n"
