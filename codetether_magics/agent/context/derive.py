"""The pure part of the budget: which transcript messages a request carries, and at what cost.

The transcript is never changed: a request is a derived list. Three rules shape it:

- Images of all but the last ``RECENT_IMAGE_TURNS`` user turns go as a one-line text
  placeholder (each image costs 2,000 tokens in every later request otherwise).
- A cut between messages is only made where no tool result is separated from the assistant
  message that called it: both protocols reject a tool result without its call. So a cut
  index never points at a ``tool`` message.
- Whatever is left out is replaced by ONE user message at the front: the stored summary,
  or a note saying how many messages were left out. The model knows something came before,
  and an Anthropic request still opens with a user message.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from ...messages import ImagePart, Message, TextPart
from .tokens import estimate_message, estimate_text

__all__ = ["RECENT_IMAGE_TURNS", "Costs", "StoredSummary", "assemble", "attach_extra", "cut_for_tail",
           "cut_keeping", "minimal_cut", "prefix_message", "with_placeholders"]

RECENT_IMAGE_TURNS = 2
IMAGE_PLACEHOLDER = "[image ({mime}) from an earlier turn, not sent again to save context]"


@dataclass(frozen=True)
class StoredSummary:
    """A summary of the first ``messages`` transcript messages; ``anchor`` fingerprints the last of
    them, so a transcript that changed underneath (a tail-loaded fork) does not reuse it."""

    text: str
    messages: int
    anchor: str
    tokens: int


def _recent_image_start(messages: Sequence[Message]) -> int:
    """Index of the oldest user turn whose images are still sent."""
    seen = 0
    for index in range(len(messages) - 1, -1, -1):
        if messages[index].role == "user":
            seen += 1
            if seen == RECENT_IMAGE_TURNS:
                return index
    return 0


def _placeholdered(message: Message) -> Message:
    parts = [TextPart(text=IMAGE_PLACEHOLDER.format(mime=p.mime_type or "image")) if isinstance(p, ImagePart)
             else p for p in message.content]
    return message.model_copy(update={"content": parts})


def with_placeholders(messages: Sequence[Message]) -> list[Message]:
    """``messages`` with old images as text (only messages that hold images are copied)."""
    start = _recent_image_start(messages)
    return [(_placeholdered(m) if i < start and any(isinstance(p, ImagePart) for p in m.content) else m)
            for i, m in enumerate(messages)]


class Costs:
    """Estimated tokens of each message, computed once per message object.

    Holding the messages keeps ``id()`` keys valid for the cache's life (one turn).
    """

    def __init__(self) -> None:
        self._known: dict[int, tuple[Message, int]] = {}

    def of(self, message: Message) -> int:
        hit = self._known.get(id(message))
        if hit is not None and hit[0] is message:
            return hit[1]
        tokens = estimate_message(message)
        self._known[id(message)] = (message, tokens)
        return tokens

    def each(self, messages: Sequence[Message]) -> list[int]:
        return [self.of(m) for m in messages]


def minimal_cut(messages: Sequence[Message]) -> int:
    """The latest safe cut: the newest message alone, or the newest tool results with their call."""
    index = len(messages) - 1
    while index > 0 and messages[index].role == "tool":
        index -= 1
    return max(index, 0)


def cut_keeping(messages: Sequence[Message], count: int) -> int:
    """A cut keeping about the last ``count`` messages (more when that would split a call from its result)."""
    index = max(0, len(messages) - count)
    while index > 0 and messages[index].role == "tool":
        index -= 1
    return index


def cut_for_tail(messages: Sequence[Message], costs: Sequence[int], limit: int, low: int = 0) -> int:
    """The earliest safe cut at or after ``low`` whose tail costs at most ``limit``; the latest safe
    cut (``minimal_cut``) when not even that fits."""
    best = minimal_cut(messages)
    total = 0
    for index in range(len(messages) - 1, max(low, 0) - 1, -1):
        total += costs[index]
        if total > limit:
            break
        if messages[index].role != "tool" and index <= best:
            best = index
    return best


def prefix_message(summary: StoredSummary | None, dropped: int, reason: str = "") -> Message | None:
    """The one user message standing for what the request leaves out (None when nothing is)."""
    lines = []
    if summary is not None:
        lines.append(f"[Summary of the first {summary.messages} messages of this conversation, which this request "
                     f"leaves out to fit the model's context window:]\n{summary.text}")
    if dropped:
        later = " later" if summary is not None else ""
        lines.append(f"[{dropped}{later} earlier message{'s' if dropped != 1 else ''} of this conversation "
                     f"{'were' if dropped != 1 else 'was'} left out of this request to fit the model's context "
                     f"window{reason}.]")
    return Message(role="user", content=[TextPart(text="\n\n".join(lines))]) if lines else None


def assemble(view: Sequence[Message], start: int, summary: StoredSummary | None, reason: str = "") -> list[Message]:
    """The request's messages: the prefix for ``view[:start]``, then ``view[start:]``."""
    covered = summary.messages if summary is not None else 0
    prefix = prefix_message(summary, max(0, start - covered), reason) if start else None
    return ([prefix] if prefix is not None else []) + list(view[start:])


def attach_extra(messages: list[Message], extra: str | None) -> list[Message]:
    """Put ``extra`` (text that rides in this request only, such as what the notebook did) first in the
    newest user message of the request copy; the transcript's message object is not touched."""
    if not extra:
        return messages
    part = TextPart(text=extra.rstrip() + "\n\n")  # a blank line before the user's own words
    for index in range(len(messages) - 1, -1, -1):
        if messages[index].role == "user":
            original = messages[index]
            messages[index] = original.model_copy(update={"content": [part, *original.content]})
            return messages
    return [Message(role="user", content=[part]), *messages]


def extra_tokens(extra: str | None) -> int:
    return estimate_text(extra or "")
