"""A model-made title for a session's first turn, falling back to the heuristic.

The request is the one CodeTether's agent makes for titles: a terse system instruction, the
first user message cut to 800 characters, at most 24 tokens, temperature 0.2, no tools (a
title is worth a few tokens, not a second conversation). The
answer's first line is stripped of quotes and trailing dots and cut like any title
(47 characters plus "..."). Any failure returns None so the heuristic title stays.
"""

from __future__ import annotations

import asyncio
import logging

from ..messages import Message, Usage
from ..providers.base import ModelRequest, Provider
from ..session.titles import cut_title  # the same rule as the heuristic title
from .message_builder import MessageBuilder

__all__ = ["TITLE_SYSTEM", "clean_title", "model_title"]

log = logging.getLogger(__name__)

TITLE_SYSTEM = (
    "You give developer chat sessions a name. Answer with the title only: at most six words, "
    "no quotes, no final punctuation, nothing before or after it."
)
TITLE_SEED_CHARS = 800


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit].rstrip() + "..."


def clean_title(raw: str) -> str:
    """First line, without surrounding quotes, backticks, dots or spaces, whitespace folded, cut to 47 + '...'."""
    lines = raw.strip().splitlines()
    first = lines[0] if lines else ""
    first = " ".join(first.strip(" \t\"'`.*#").split())
    return cut_title(first)


async def model_title(provider: Provider, model_id: str, seed: str, *, timeout: float = 20.0) -> tuple[str | None, Usage]:
    """Ask ``provider`` for a short title of a conversation that starts with ``seed``.

    Returns (title or None, usage of the call). Never raises except on cancellation.
    """
    builder = MessageBuilder()
    request = ModelRequest(
        model=model_id,
        messages=[Message.user(_cut(seed, TITLE_SEED_CHARS))],
        system=TITLE_SYSTEM,
        max_tokens=24,
        temperature=0.2,
    )

    async def collect() -> None:
        async for delta in provider.stream(request):
            builder.feed(delta)

    try:
        await asyncio.wait_for(collect(), timeout)
    except Exception as exc:  # noqa: BLE001 - any failure (not a cancellation) falls back to the heuristic
        log.info("model title failed, keeping the heuristic title: %s", exc)
        return None, builder.usage
    title = clean_title(builder.text)  # text only, never the thinking
    return (title or None), builder.usage
