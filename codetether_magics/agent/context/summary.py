"""The compaction call: one model request, no tools, that summarises earlier turns.

The earlier messages go to the summariser as ONE user message holding a plain-text rendering
of them (roles, text, tool calls and results, images as a placeholder) rather than as protocol
messages: a plain text cannot carry an orphan tool result or an unsigned thinking block, and
it can be cut to fit. Long messages are shortened in that rendering (a summary needs the gist
of a 40 kB tool output, not all of it); when the rendering is still too long for the window,
the oldest messages are left out of it first.
"""

from __future__ import annotations

import asyncio
from typing import Sequence

from ...messages import FilePart, ImagePart, Message, TextPart, ThinkingPart, ToolCallPart, ToolResultPart, Usage
from ...providers.base import ModelRequest, Provider
from ..message_builder import MessageBuilder
from .tokens import estimate_text

__all__ = ["SUMMARY_SYSTEM", "render_for_summary", "summarise"]

SUMMARY_SYSTEM = (
    "You compress the earlier part of a conversation between a user and a coding agent that works in a "
    "Jupyter notebook, so the agent can go on without it. Write a concise summary: what the user wants "
    "(quote their latest request word for word), decisions taken, facts learned (file and variable names, "
    "numbers, errors and their fixes), what the tools did and found, and what is still open. Plain text or "
    "short bullet points, no preamble."
)
MESSAGE_CHARS = 2000  # of one message in the rendering
SUMMARY_TIMEOUT = 120.0  # seconds


def _clip(text: str, limit: int = MESSAGE_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 40] + f" … [{len(text) - limit + 40} characters cut]"


def _render_message(message: Message) -> str:
    pieces = []
    for part in message.content:
        if isinstance(part, TextPart):
            pieces.append(part.text)
        elif isinstance(part, ImagePart):
            pieces.append(f"[image {part.mime_type or ''}]".replace(" ]", "]"))
        elif isinstance(part, ToolCallPart):
            pieces.append(f"[calls tool {part.name} with {part.arguments}]")
        elif isinstance(part, ToolResultPart):
            pieces.append(f"[tool result] {part.content}")
        elif isinstance(part, FilePart):
            pieces.append(f"[file {part.path}]")
        elif isinstance(part, ThinkingPart):
            continue  # the agent's private reasoning: its conclusions are in what it said and did
    return f"{message.role}: {_clip(' '.join(p for p in pieces if p))}"


def render_for_summary(messages: Sequence[Message], previous: str | None, limit_tokens: int) -> str:
    """The summariser's input: the previous summary, then as many of ``messages`` (newest kept first)
    as fit in ``limit_tokens``."""
    head = f"Summary so far:\n{previous}\n\n" if previous else ""
    budget = limit_tokens - estimate_text(head)
    lines: list[str] = []
    for message in reversed(messages):
        line = _render_message(message)
        cost = estimate_text(line) + 1
        if cost > budget:
            lines.append(f"[{len(messages) - len(lines)} older messages left out]")
            break
        budget -= cost
        lines.append(line)
    return head + "Conversation to summarise:\n" + "\n".join(reversed(lines))


async def summarise(provider: Provider, model_id: str, text: str, max_tokens: int,
                    timeout: float = SUMMARY_TIMEOUT) -> tuple[str, Usage]:
    """The model's summary of ``text`` and the call's usage; raises when the call fails or says nothing."""
    builder = MessageBuilder()
    request = ModelRequest(model=model_id, messages=[Message.user(text)], system=SUMMARY_SYSTEM,
                           max_tokens=max_tokens, temperature=0.2)

    async def collect() -> None:
        async for delta in provider.stream(request):
            builder.feed(delta)

    await asyncio.wait_for(collect(), timeout)
    summary = builder.text.strip()
    if not summary:
        raise ValueError("the model answered the summary request with no text")
    return summary, builder.usage
