"""The heuristic title: the first user message with text, whitespace
folded, cut to 47 characters plus "..." when longer. The agent loop may replace it with a
model-made title; this is what every session falls back to."""

from __future__ import annotations

from typing import Iterable

from ..messages import Message, TextPart

__all__ = ["TITLE_MAX_CHARS", "cut_title", "title_from_messages"]

TITLE_MAX_CHARS = 47


def _folded(text: str) -> str:
    return " ".join(text.split())


def cut_title(text: str) -> str:
    """At most 47 characters, plus "..." when the text was longer (every title, heuristic or model-made)."""
    return text if len(text) <= TITLE_MAX_CHARS else text[:TITLE_MAX_CHARS] + "..."


def title_from_messages(messages: Iterable[Message]) -> str | None:
    for message in messages:
        if message.role != "user":
            continue
        text = _folded(" ".join(p.text for p in message.content if isinstance(p, TextPart)))
        if text:
            return cut_title(text)
    return None
