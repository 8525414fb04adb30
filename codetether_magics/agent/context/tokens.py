"""Token estimates without a tokenizer download.

The rule is codetether-agent's: a text costs its UTF-8 bytes divided by 2.8 to 4.0 bytes a
token, by how much of it is whitespace. Dense text (code without indentation, JSON, base64,
signatures) tokenises at about 2.8 bytes a token; prose, where about one character in six is
a space, at about 4.0. An image costs a flat 2,000 tokens whatever its size (both APIs bill an
image by its pixels, not by the length of its base64). Each message adds a few tokens of
framing (role, separators). The estimate errs high on purpose: a budget that is a little too
strict costs an early compaction; one that is too loose costs a rejected request.
"""

from __future__ import annotations

import json
import math
from typing import Iterable

from ...messages import (FilePart, ImagePart, Message, Part, TextPart, ThinkingPart, ToolCallPart,
                         ToolResultPart)
from ...providers.base import ModelRequest, ToolSpec

__all__ = ["IMAGE_TOKENS", "MESSAGE_OVERHEAD", "estimate_message", "estimate_messages", "estimate_part",
           "estimate_request", "estimate_text", "estimate_tools"]

IMAGE_TOKENS = 2000
MESSAGE_OVERHEAD = 4  # role and framing tokens of one message
DENSE_BYTES_PER_TOKEN = 2.8
PROSE_BYTES_PER_TOKEN = 4.0
PROSE_WHITESPACE = 1 / 6  # the whitespace share of ordinary prose: at or above it, 4.0 bytes a token
_WHITESPACE = (" ", "\n", "\t", "\r")


def estimate_text(text: str) -> int:
    """Estimated tokens of ``text``: bytes / (2.8 .. 4.0 by whitespace ratio), rounded up."""
    if not text:
        return 0
    size = len(text.encode("utf-8"))
    spaces = sum(text.count(c) for c in _WHITESPACE)  # str.count runs in C: no per-character Python loop
    share = min(1.0, (spaces / len(text)) / PROSE_WHITESPACE)
    per_token = DENSE_BYTES_PER_TOKEN + (PROSE_BYTES_PER_TOKEN - DENSE_BYTES_PER_TOKEN) * share
    return math.ceil(size / per_token)


def estimate_part(part: Part) -> int:
    if isinstance(part, TextPart):
        return estimate_text(part.text)
    if isinstance(part, ImagePart):
        return IMAGE_TOKENS
    if isinstance(part, ToolCallPart):
        return estimate_text(part.name) + estimate_text(part.arguments) + MESSAGE_OVERHEAD
    if isinstance(part, ToolResultPart):
        return estimate_text(part.content) + MESSAGE_OVERHEAD
    if isinstance(part, ThinkingPart):
        return estimate_text(part.text) + estimate_text(part.signature or "")
    if isinstance(part, FilePart):
        return estimate_text(part.path) + MESSAGE_OVERHEAD
    return estimate_text(str(part))


def estimate_message(message: Message) -> int:
    return MESSAGE_OVERHEAD + sum(estimate_part(p) for p in message.content)


def estimate_messages(messages: Iterable[Message]) -> int:
    return sum(estimate_message(m) for m in messages)


def estimate_tools(tools: Iterable[ToolSpec]) -> int:
    return sum(estimate_text(json.dumps([t.name, t.description, t.parameters], separators=(",", ":")))
               + MESSAGE_OVERHEAD for t in tools)


def estimate_request(request: ModelRequest) -> int:
    """The whole request: system prompt, tool specs and messages."""
    system = estimate_text(request.system or "") + (MESSAGE_OVERHEAD if request.system else 0)
    return system + estimate_tools(request.tools) + estimate_messages(request.messages)
