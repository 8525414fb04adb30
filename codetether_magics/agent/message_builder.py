"""One accumulator that turns provider deltas into the assistant ``Message``.

Every provider yields the same small deltas (providers/base.py); feeding them here
gives the same transcript whatever the wire protocol was. Parts keep the order in
which they first appeared; tool-call fragments are joined by their ``index``; thinking
blocks numbered by the provider stay separate parts (each keeps its own signature).

An answer is bounded: past ``MAX_ANSWER_BYTES`` of content (text, thinking, tool arguments)
the delta is cut at the limit, ``limit_reached`` is set and later content is dropped, so a
hostile or runaway server cannot fill the kernel's memory. Feeding costs the same per delta
however long the answer is: chunks are appended, and joined only when read.

    builder = MessageBuilder()
    async for delta in provider.stream(request):
        builder.feed(delta)
    message = builder.message()
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from dataclasses import dataclass, field
from typing import Any, Union

from ..messages import Message, Part, TextPart, ThinkingPart, ToolCallPart, Usage
from ..providers.base import (Finish, ProviderEvent, RefusalDelta, TextDelta, ThinkingDelta, ToolCallDelta,
                              UsageDelta)

__all__ = ["MAX_ANSWER_BYTES", "MessageBuilder", "PendingToolCall", "refusal_note"]

MAX_ANSWER_BYTES = 4 * 1024 * 1024


def refusal_note(text: str) -> str:
    """How a refusal reads in the answer: never an empty success."""
    return f"[The model refused: {text.strip()}]" if text.strip() else "[The model refused to answer.]"


@dataclass
class _TextBuffer:
    chunks: list[str] = field(default_factory=list)


@dataclass
class _ThinkingBuffer:
    chunks: list[str] = field(default_factory=list)
    signature: str | None = None
    block: int | None = None
    redacted: str | None = None
    extra: dict = field(default_factory=dict)


@dataclass
class PendingToolCall:
    """A tool call being assembled from ``ToolCallDelta`` fragments."""

    index: int
    id: str | None = None
    name: str | None = None
    chunks: list[str] = field(default_factory=list)

    @property
    def arguments(self) -> str:
        return "".join(self.chunks)

    def is_complete(self) -> bool:
        """A name and arguments that parse as JSON (empty arguments count as ``{}``)."""
        if not self.name:
            return False
        try:
            json.loads(self.arguments or "{}")
        except ValueError:
            return False
        return True

    def to_part(self) -> ToolCallPart:
        call_id = self.id or f"call_{uuid.uuid4().hex[:24]}"
        self.id = call_id  # keep the generated id stable across calls
        return ToolCallPart(id=call_id, name=self.name or "", arguments=self.arguments or "{}")


_Buffer = Union[_TextBuffer, _ThinkingBuffer, PendingToolCall]


class MessageBuilder:
    """Accumulates deltas of one model response; also keeps the running text, thinking and usage."""

    def __init__(self, *, max_bytes: int = MAX_ANSWER_BYTES) -> None:
        self._parts: list[_Buffer] = []
        self._calls: dict[int, PendingToolCall] = {}
        self.usage = Usage()
        self._server_total: int | None = None
        self.finish_reason: str | None = None
        self._refusal: list[str] | None = None  # None: no refusal; else its text pieces
        self._max_bytes = max_bytes
        self._bytes = 0
        self.limit_reached = False

    # -- feeding ------------------------------------------------------------------

    def feed(self, delta: ProviderEvent) -> ProviderEvent | None:
        """Take ``delta``; return it as kept (cut at the size limit), or None when it was dropped."""
        if isinstance(delta, (TextDelta, ThinkingDelta, ToolCallDelta, RefusalDelta)):
            delta = self._within_limit(delta)
            if delta is None:
                return None
        if isinstance(delta, TextDelta):
            self._feed_text(delta)
        elif isinstance(delta, ThinkingDelta):
            self._feed_thinking(delta)
        elif isinstance(delta, ToolCallDelta):
            self._feed_tool_call(delta)
        elif isinstance(delta, RefusalDelta):
            self._refusal = (self._refusal or []) + ([delta.text] if delta.text else [])
        elif isinstance(delta, UsageDelta):
            self._feed_usage(delta)
        elif isinstance(delta, Finish):
            self.finish_reason = delta.reason
        else:  # pragma: no cover - a new delta type must be handled here
            raise TypeError(f"Unknown provider delta {type(delta).__name__}")
        return delta

    def _within_limit(self, delta: Any) -> Any:
        """``delta``, cut so the answer stays within ``max_bytes``; None once the limit is reached."""
        if self.limit_reached:
            return None
        field_name = "arguments" if isinstance(delta, ToolCallDelta) else "text"
        piece: str = getattr(delta, field_name)
        size = len(piece) if piece.isascii() else len(piece.encode("utf-8"))
        if self._bytes + size <= self._max_bytes:
            self._bytes += size
            return delta
        self.limit_reached = True
        room = self._max_bytes - self._bytes
        kept = piece.encode("utf-8")[:room].decode("utf-8", errors="ignore")
        self._bytes = self._max_bytes
        return dataclasses.replace(delta, **{field_name: kept}) if kept else None

    def _last(self, kind: type) -> _Buffer | None:
        return self._parts[-1] if self._parts and isinstance(self._parts[-1], kind) else None

    def _feed_text(self, delta: TextDelta) -> None:
        if not delta.text:
            return
        buffer = self._last(_TextBuffer) or self._append(_TextBuffer())
        buffer.chunks.append(delta.text)  # type: ignore[union-attr]

    def _feed_thinking(self, delta: ThinkingDelta) -> None:
        buffer = self._last(_ThinkingBuffer)
        if buffer is None or buffer.block != delta.block or delta.redacted or buffer.redacted:  # type: ignore
            buffer = self._append(_ThinkingBuffer(block=delta.block, redacted=delta.redacted))
        if delta.text:
            buffer.chunks.append(delta.text)  # type: ignore[union-attr]
        if delta.signature:
            buffer.signature = (buffer.signature or "") + delta.signature  # type: ignore[union-attr]
        if delta.extra:
            buffer.extra.update(delta.extra)  # type: ignore[union-attr]

    def _feed_tool_call(self, delta: ToolCallDelta) -> None:
        call = self._calls.get(delta.index)
        if call is None:
            call = self._calls[delta.index] = PendingToolCall(delta.index)
            self._parts.append(call)
        if delta.id:
            call.id = delta.id
        if delta.name:
            call.name = delta.name
        if delta.arguments:
            call.chunks.append(delta.arguments)

    def _feed_usage(self, delta: UsageDelta) -> None:
        for name in ("prompt_tokens", "completion_tokens", "cache_read_tokens", "cache_write_tokens"):
            value = getattr(delta, name)
            if value is not None:
                setattr(self.usage, name, value)
        if delta.total_tokens is not None:
            self._server_total = delta.total_tokens  # the server's own total wins (xAI counts reasoning in it)
        computed = self.usage.prompt_tokens + self.usage.completion_tokens
        self.usage.total_tokens = self._server_total if self._server_total is not None else computed

    def _append(self, buffer: _Buffer) -> _Buffer:
        self._parts.append(buffer)
        return buffer

    # -- reading ------------------------------------------------------------------

    def _joined(self, kind: type) -> str:
        return "".join(chunk for buffer in self._parts if isinstance(buffer, kind) for chunk in buffer.chunks)

    @property
    def text(self) -> str:
        """Every text part so far, joined, with the refusal note when the model refused (read once per
        step, never per delta)."""
        text, refusal = self._joined(_TextBuffer), self.refusal
        if refusal is None:
            return text
        return text + ("\n\n" if text else "") + refusal_note(refusal)

    @property
    def thinking(self) -> str:
        return self._joined(_ThinkingBuffer)

    @property
    def refusal(self) -> str | None:
        """The refusal's text ("" when the model refused without saying why), None when it did not refuse."""
        if self._refusal is None and self.finish_reason != "refusal":
            return None
        return "".join(self._refusal or [])

    @property
    def tool_calls(self) -> list[PendingToolCall]:
        return [p for p in self._parts if isinstance(p, PendingToolCall)]

    def has_content(self) -> bool:
        return bool(self._calls) or any(_kept(buffer) for buffer in self._parts)

    def message(self, *, without_tool_calls: bool = False) -> Message:
        """The assistant message so far.

        ``without_tool_calls`` leaves the calls out: for a response that was cut or
        interrupted, whose calls will never run (a call without a result would make the
        next request invalid in both wire protocols).
        """
        parts: list[Part] = []
        for buffer in self._parts:
            if isinstance(buffer, _TextBuffer):
                parts.append(TextPart(text="".join(buffer.chunks)))
            elif isinstance(buffer, _ThinkingBuffer):
                parts.append(_thinking_part(buffer))
            elif not without_tool_calls:
                parts.append(buffer.to_part())
        refusal = self.refusal
        if refusal is not None:
            parts.append(TextPart(text=("\n\n" if parts else "") + refusal_note(refusal)))
        return Message(role="assistant", content=parts)


def _kept(buffer: _Buffer) -> bool:
    """A part with something in it (redacted or encrypted reasoning counts, though it has no text)."""
    return bool(buffer.chunks or getattr(buffer, "redacted", None) or getattr(buffer, "extra", None))


def _thinking_part(buffer: _ThinkingBuffer) -> ThinkingPart:
    if buffer.redacted is not None:
        # Kept as an extra field of the part (the file format keeps unknown keys): the opaque data must
        # go back to Anthropic byte for byte, and no other provider can read it.
        return ThinkingPart(text="", signature=None, redacted=buffer.redacted)
    return ThinkingPart(text="".join(buffer.chunks), signature=buffer.signature, **buffer.extra)
