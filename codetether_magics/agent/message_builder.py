"""One accumulator that turns provider deltas into the assistant ``Message``.

Every provider yields the same small deltas (providers/base.py); feeding them here
gives the same transcript whatever the wire protocol was. Parts keep the order in
which they first appeared; tool-call fragments are joined by their ``index``.

    builder = MessageBuilder()
    async for delta in provider.stream(request):
        builder.feed(delta)
    message = builder.message()
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Union

from ..messages import Message, Part, TextPart, ThinkingPart, ToolCallPart, Usage
from ..providers.base import Finish, ProviderEvent, TextDelta, ThinkingDelta, ToolCallDelta, UsageDelta

__all__ = ["MessageBuilder", "PendingToolCall"]


@dataclass
class _TextBuffer:
    chunks: list[str] = field(default_factory=list)


@dataclass
class _ThinkingBuffer:
    chunks: list[str] = field(default_factory=list)
    signature: str | None = None


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

    def __init__(self) -> None:
        self._parts: list[_Buffer] = []
        self._calls: dict[int, PendingToolCall] = {}
        self.usage = Usage()
        self.finish_reason: str | None = None

    # -- feeding ------------------------------------------------------------------

    def feed(self, delta: ProviderEvent) -> None:
        if isinstance(delta, TextDelta):
            self._feed_text(delta)
        elif isinstance(delta, ThinkingDelta):
            self._feed_thinking(delta)
        elif isinstance(delta, ToolCallDelta):
            self._feed_tool_call(delta)
        elif isinstance(delta, UsageDelta):
            self._feed_usage(delta)
        elif isinstance(delta, Finish):
            self.finish_reason = delta.reason
        else:  # pragma: no cover - a new delta type must be handled here
            raise TypeError(f"Unknown provider delta {type(delta).__name__}")

    def _last(self, kind: type) -> _Buffer | None:
        return self._parts[-1] if self._parts and isinstance(self._parts[-1], kind) else None

    def _feed_text(self, delta: TextDelta) -> None:
        if not delta.text:
            return
        buffer = self._last(_TextBuffer) or self._append(_TextBuffer())
        buffer.chunks.append(delta.text)  # type: ignore[union-attr]

    def _feed_thinking(self, delta: ThinkingDelta) -> None:
        buffer = self._last(_ThinkingBuffer) or self._append(_ThinkingBuffer())
        if delta.text:
            buffer.chunks.append(delta.text)  # type: ignore[union-attr]
        if delta.signature:
            buffer.signature = (buffer.signature or "") + delta.signature  # type: ignore[union-attr]

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
        self.usage.total_tokens = self.usage.prompt_tokens + self.usage.completion_tokens

    def _append(self, buffer: _Buffer) -> _Buffer:
        self._parts.append(buffer)
        return buffer

    # -- reading ------------------------------------------------------------------

    def _joined(self, kind: type) -> str:
        return "".join(chunk for buffer in self._parts if isinstance(buffer, kind) for chunk in buffer.chunks)

    @property
    def text(self) -> str:
        """Every text part so far, joined (read once per step, never per delta)."""
        return self._joined(_TextBuffer)

    @property
    def thinking(self) -> str:
        return self._joined(_ThinkingBuffer)

    @property
    def tool_calls(self) -> list[PendingToolCall]:
        return [p for p in self._parts if isinstance(p, PendingToolCall)]

    def has_content(self) -> bool:
        return bool(self._calls) or any(buffer.chunks for buffer in self._parts)

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
                parts.append(ThinkingPart(text="".join(buffer.chunks), signature=buffer.signature))
            elif not without_tool_calls:
                parts.append(buffer.to_part())
        return Message(role="assistant", content=parts)
