"""Stream events a running prompt emits (SPEC section 6).

A separate vocabulary from transcript parts: these describe what is happening now
(chunks, tool progress, retries), parts describe what was said. The union is
discriminated on ``type``; ``SessionEventAdapter`` is the one path to and from JSON.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, Field, TypeAdapter

__all__ = [
    "ARGUMENTS_CAP",
    "OUTPUT_CAP",
    "ApprovalRequestEvent",
    "DoneEvent",
    "ErrorEvent",
    "SessionEvent",
    "SessionEventAdapter",
    "StreamRetryEvent",
    "TextChunkEvent",
    "TextCompleteEvent",
    "ThinkingCompleteEvent",
    "ThinkingEvent",
    "ToolCallCompleteEvent",
    "ToolCallStartEvent",
    "ToolHeartbeatEvent",
    "UsageReportEvent",
    "cap_text",
]

ARGUMENTS_CAP = 4 * 1024
OUTPUT_CAP = 8 * 1024


def cap_text(text: str, limit: int) -> str:
    """Cut ``text`` to at most ``limit`` UTF-8 bytes, saying how much was left out."""
    raw = text.encode("utf-8")
    if len(raw) <= limit:
        return text
    kept = raw[: max(0, limit - 64)].decode("utf-8", errors="ignore")
    return f"{kept}\n… [truncated: {len(raw)} bytes in all]"


class _Event(BaseModel):
    pass


class ThinkingEvent(_Event):
    """The model is thinking; ``text`` is the reasoning so far (cumulative) when it is shown."""

    type: Literal["thinking"] = "thinking"
    text: str = ""


class TextChunkEvent(_Event):
    type: Literal["text_chunk"] = "text_chunk"
    text: str  # the whole answer text so far, not the delta


class TextCompleteEvent(_Event):
    type: Literal["text_complete"] = "text_complete"
    text: str


class ThinkingCompleteEvent(_Event):
    type: Literal["thinking_complete"] = "thinking_complete"
    text: str


class ToolCallStartEvent(_Event):
    type: Literal["tool_call_start"] = "tool_call_start"
    tool_call_id: str
    name: str
    arguments: str  # capped at ARGUMENTS_CAP


class ToolCallCompleteEvent(_Event):
    type: Literal["tool_call_complete"] = "tool_call_complete"
    tool_call_id: str
    name: str
    output: str  # capped at OUTPUT_CAP
    success: bool
    duration_ms: int


class ToolHeartbeatEvent(_Event):
    type: Literal["tool_heartbeat"] = "tool_heartbeat"
    tool_call_id: str
    name: str
    elapsed_secs: float


class StreamRetryEvent(_Event):
    type: Literal["stream_retry"] = "stream_retry"
    attempt: int
    max_restarts: int
    reason: str


class UsageReportEvent(_Event):
    type: Literal["usage_report"] = "usage_report"
    prompt_tokens: int
    completion_tokens: int
    duration_ms: int
    model: str


class ApprovalRequestEvent(_Event):
    """A tool that changes things wants to run; the approver decides."""

    type: Literal["approval_request"] = "approval_request"
    tool_call_id: str
    name: str
    arguments: str  # capped at ARGUMENTS_CAP
    reason: str = ""


class DoneEvent(_Event):
    type: Literal["done"] = "done"


class ErrorEvent(_Event):
    type: Literal["error"] = "error"
    message: str


SessionEvent = Annotated[
    Union[
        ThinkingEvent,
        TextChunkEvent,
        TextCompleteEvent,
        ThinkingCompleteEvent,
        ToolCallStartEvent,
        ToolCallCompleteEvent,
        ToolHeartbeatEvent,
        StreamRetryEvent,
        UsageReportEvent,
        ApprovalRequestEvent,
        DoneEvent,
        ErrorEvent,
    ],
    Field(discriminator="type"),
]

SessionEventAdapter: TypeAdapter[Any] = TypeAdapter(SessionEvent)
